//! What the NFS test files share: a server over a temp catalog started in this
//! process, a client of it with one call per procedure, and the catalog read with
//! plain SQL as another program would.

// Each test file uses its own part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use markbase_nfs::NfsServer;
use markbase_testkit::RawCatalog;
use markbase_vfs::schema::SCHEMA_SQL;
use markbase_vfs::{Vfs, VfsConfig};
use nfs3_client::tokio::TokioIo;
use nfs3_client::{MountClient, MountError, Nfs3Client};
use nfs3_types::mount::dirpath;
use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::Opaque;
use rusqlite::Connection;
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The catalog file name in every test's directory.
pub const CATALOG: &str = "warren.sqlite";

/// The root directory's node id in every catalog.
pub const ROOT_ID: i64 = 1;

/// A server started in this process over a catalog in a temp dir; dropping it
/// stops the server.
pub struct Served {
    pub dir: TempDir,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// A server over a new catalog with only the root, with `fill` run on the raw
    /// catalog first (rows written as another program would).
    pub async fn start_with(fill: impl FnOnce(&RawCatalog, &Path)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = RawCatalog::create(&dir.path().join(CATALOG), SCHEMA_SQL).expect("catalog");
        fill(&raw, dir.path());
        drop(raw);
        let addr_and_task = serve(&dir.path().join(CATALOG)).await;
        Self {
            dir,
            addr: addr_and_task.0,
            task: addr_and_task.1,
        }
    }

    /// A server over a new catalog with only the root.
    pub async fn start() -> Self {
        Self::start_with(|_, _| ()).await
    }

    /// The catalog file.
    pub fn catalog(&self) -> PathBuf {
        self.dir.path().join(CATALOG)
    }

    /// The store directory, where files created through NFS keep their bytes.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("warren-store")
    }

    /// A connection to the catalog, as another program would open it.
    pub fn sql(&self) -> Connection {
        let conn = Connection::open(self.catalog()).expect("open the catalog with SQLite");
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// A new client connection to the server.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `catalog` on a free loopback port: its address and the serving task.
async fn serve(catalog: &Path) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let mut config = VfsConfig::new(catalog);
    // Outside changes are seen at the next call, never hidden by a cache.
    config.change_check_interval = Duration::ZERO;
    config.attr_ttl = Duration::ZERO;
    config.busy_timeout = Duration::from_secs(5);
    let vfs = Arc::new(Vfs::open(config).expect("open the catalog"));
    let server = NfsServer::bind(vfs, "127.0.0.1:0".parse().unwrap(), Vec::new())
        .await
        .expect("bind the NFS server");
    let addr = server.local_addr();
    let task = tokio::spawn(server.run(std::future::pending()));
    (addr, task)
}

/// The node id the catalog has for `name` in directory `parent`, if any.
pub fn catalog_child(conn: &Connection, parent: i64, name: &str) -> Option<(i64, String)> {
    conn.query_row(
        "SELECT id, kind FROM nodes WHERE parent_id = ?1 AND name = ?2",
        rusqlite::params![parent, name],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .ok()
}

/// The node id a handle of this server names (after the 8-byte generation, the
/// first 8 bytes of the adapter's handle, big-endian).
pub fn node_id(handle: &nfs_fh3) -> i64 {
    i64::from_be_bytes(handle.data[8..16].try_into().expect("a 24-byte handle"))
}

/// `bytes` as a file name argument.
pub fn name(bytes: &[u8]) -> filename3<'static> {
    filename3::from(bytes.to_vec())
}

/// Attributes that change nothing.
pub fn no_change() -> sattr3 {
    sattr3::default()
}

/// Attributes that set the size to `size`.
pub fn size_attr(size: u64) -> sattr3 {
    sattr3 {
        size: set_size3::Some(size),
        ..sattr3::default()
    }
}

/// The status of an NFS result, `NFS3_OK` when it succeeded.
pub fn status_of<T, E>(result: &Nfs3Result<T, E>) -> nfsstat3 {
    match result {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((stat, _)) => *stat,
    }
}

/// A result as a `Result` with the NFS status as its error.
pub fn ok<T, E>(result: Nfs3Result<T, E>) -> Result<T, nfsstat3> {
    match result {
        Nfs3Result::Ok(value) => Ok(value),
        Nfs3Result::Err((stat, _)) => Err(stat),
    }
}

/// One entry of a directory listing: name, file id, cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub fileid: u64,
    pub cookie: u64,
}

/// What a page of READDIR or READDIRPLUS gave.
pub struct Page {
    pub entries: Vec<Listed>,
    pub eof: bool,
    pub verifier: cookieverf3,
}

/// An NFSv3 client on one connection, one method per call; NFS errors are the
/// `Err` of each result, RPC failures panic.
pub struct Client {
    nfs: Nfs3Client<TokioIo<TcpStream>>,
    addr: SocketAddr,
}

impl Client {
    /// Connects to the server at `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            nfs: Nfs3Client::new(TokioIo::new(stream)),
            addr,
        }
    }

    /// The handle MOUNT gives for `path` (on the same port).
    pub async fn mount(&self, path: &str) -> Result<nfs_fh3, MountError> {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut mount = MountClient::new(TokioIo::new(stream));
        let ok = mount
            .mnt(dirpath(Opaque::owned(path.as_bytes().to_vec())))
            .await?;
        Ok(nfs_fh3 {
            data: Opaque::owned(ok.fhandle.0.to_vec()),
        })
    }

    /// The root's handle, from MOUNT of `/`.
    pub async fn root(&self) -> nfs_fh3 {
        self.mount("/").await.expect("mount /")
    }

    /// The underlying client, for calls made with their full arguments.
    pub fn raw(&mut self) -> &mut Nfs3Client<TokioIo<TcpStream>> {
        &mut self.nfs
    }

    pub async fn null(&mut self) {
        self.nfs.null().await.expect("NULL");
    }

    pub async fn getattr(&mut self, object: &nfs_fh3) -> Result<fattr3, nfsstat3> {
        let res = self
            .nfs
            .getattr(&GETATTR3args {
                object: object.clone(),
            })
            .await
            .expect("GETATTR");
        ok(res).map(|ok| ok.obj_attributes)
    }

    pub async fn setattr(&mut self, object: &nfs_fh3, attr: sattr3) -> Result<fattr3, nfsstat3> {
        let res = self
            .nfs
            .setattr(&SETATTR3args {
                object: object.clone(),
                new_attributes: attr,
                guard: sattrguard3::None,
            })
            .await
            .expect("SETATTR");
        ok(res).map(|ok| ok.obj_wcc.after.unwrap())
    }

    pub async fn lookup(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<nfs_fh3, nfsstat3> {
        let res = self
            .nfs
            .lookup(&LOOKUP3args {
                what: diropargs3 {
                    dir: dir.clone(),
                    name: self::name(name),
                },
            })
            .await
            .expect("LOOKUP");
        ok(res).map(|ok| ok.object)
    }

    pub async fn access(&mut self, object: &nfs_fh3, access: u32) -> Result<u32, nfsstat3> {
        let res = self
            .nfs
            .access(&ACCESS3args {
                object: object.clone(),
                access,
            })
            .await
            .expect("ACCESS");
        ok(res).map(|ok| ok.access)
    }

    /// READ: the bytes and the eof flag.
    pub async fn read(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        let res = self
            .nfs
            .read(&READ3args {
                file: file.clone(),
                offset,
                count,
            })
            .await
            .expect("READ");
        ok(res).map(|ok| {
            assert_eq!(ok.count as usize, ok.data.len(), "READ count is its data");
            (ok.data.to_vec(), ok.eof)
        })
    }

    /// The whole file, read in 1 MiB READs until eof.
    pub async fn read_all(&mut self, file: &nfs_fh3) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self
                .read(file, out.len() as u64, 1 << 20)
                .await
                .expect("READ");
            out.extend_from_slice(&data);
            if eof {
                return out;
            }
            assert!(!data.is_empty(), "an empty READ before eof");
        }
    }

    pub async fn write(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> Result<WRITE3resok, nfsstat3> {
        let res = self
            .nfs
            .write(&WRITE3args {
                file: file.clone(),
                offset,
                count: data.len() as u32,
                stable,
                data: Opaque::borrowed(data),
            })
            .await
            .expect("WRITE");
        ok(res)
    }

    /// The write verifier of a COMMIT of the whole file.
    pub async fn commit(&mut self, file: &nfs_fh3) -> Result<writeverf3, nfsstat3> {
        let res = self
            .nfs
            .commit(&COMMIT3args {
                file: file.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .expect("COMMIT");
        ok(res).map(|ok| ok.verf)
    }

    pub async fn create(
        &mut self,
        dir: &nfs_fh3,
        name: &[u8],
        how: createhow3,
    ) -> Result<nfs_fh3, nfsstat3> {
        let res = self
            .nfs
            .create(&CREATE3args {
                where_: diropargs3 {
                    dir: dir.clone(),
                    name: self::name(name),
                },
                how,
            })
            .await
            .expect("CREATE");
        ok(res).map(|ok| ok.obj.unwrap())
    }

    /// A new file `name` in `dir` holding `data` (GUARDED, then a FILE_SYNC write).
    pub async fn new_file(&mut self, dir: &nfs_fh3, name: &[u8], data: &[u8]) -> nfs_fh3 {
        let file = self
            .create(dir, name, createhow3::GUARDED(no_change()))
            .await
            .expect("CREATE GUARDED");
        for (i, chunk) in data.chunks(1 << 20).enumerate() {
            self.write(&file, (i << 20) as u64, chunk, stable_how::FILE_SYNC)
                .await
                .expect("WRITE");
        }
        file
    }

    pub async fn mkdir(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<nfs_fh3, nfsstat3> {
        let res = self
            .nfs
            .mkdir(&MKDIR3args {
                where_: diropargs3 {
                    dir: dir.clone(),
                    name: self::name(name),
                },
                attributes: no_change(),
            })
            .await
            .expect("MKDIR");
        ok(res).map(|ok| ok.obj.unwrap())
    }

    pub async fn remove(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<(), nfsstat3> {
        let res = self
            .nfs
            .remove(&REMOVE3args {
                object: diropargs3 {
                    dir: dir.clone(),
                    name: self::name(name),
                },
            })
            .await
            .expect("REMOVE");
        ok(res).map(drop)
    }

    pub async fn rmdir(&mut self, dir: &nfs_fh3, name: &[u8]) -> Result<(), nfsstat3> {
        let res = self
            .nfs
            .rmdir(&RMDIR3args {
                object: diropargs3 {
                    dir: dir.clone(),
                    name: self::name(name),
                },
            })
            .await
            .expect("RMDIR");
        ok(res).map(drop)
    }

    pub async fn rename(
        &mut self,
        from_dir: &nfs_fh3,
        from: &[u8],
        to_dir: &nfs_fh3,
        to: &[u8],
    ) -> Result<(), nfsstat3> {
        let res = self
            .nfs
            .rename(&RENAME3args {
                from: diropargs3 {
                    dir: from_dir.clone(),
                    name: name(from),
                },
                to: diropargs3 {
                    dir: to_dir.clone(),
                    name: name(to),
                },
            })
            .await
            .expect("RENAME");
        ok(res).map(drop)
    }

    /// One READDIR page after `cookie`, in replies of at most `count` bytes.
    pub async fn readdir(
        &mut self,
        dir: &nfs_fh3,
        cookie: u64,
        verifier: cookieverf3,
        count: u32,
    ) -> Result<Page, nfsstat3> {
        let res = self
            .nfs
            .readdir(&READDIR3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verifier,
                count,
            })
            .await
            .expect("READDIR");
        ok(res).map(|ok| Page {
            entries: ok
                .reply
                .entries
                .0
                .iter()
                .map(|entry| Listed {
                    name: String::from_utf8(entry.name.0.to_vec()).unwrap(),
                    fileid: entry.fileid,
                    cookie: entry.cookie,
                })
                .collect(),
            eof: ok.reply.eof,
            verifier: ok.cookieverf,
        })
    }

    /// One READDIRPLUS page after `cookie`, in replies of at most `maxcount` bytes;
    /// every entry must carry its handle and attributes, whose file id agrees.
    pub async fn readdirplus(
        &mut self,
        dir: &nfs_fh3,
        cookie: u64,
        verifier: cookieverf3,
        maxcount: u32,
    ) -> Result<Page, nfsstat3> {
        let res = self
            .nfs
            .readdirplus(&READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verifier,
                dircount: maxcount / 2,
                maxcount,
            })
            .await
            .expect("READDIRPLUS");
        ok(res).map(|ok| Page {
            entries: ok
                .reply
                .entries
                .0
                .iter()
                .map(|entry| {
                    let Nfs3Option::Some(attr) = &entry.name_attributes else {
                        panic!("READDIRPLUS entry without attributes: {entry:?}");
                    };
                    assert_eq!(attr.fileid, entry.fileid, "{entry:?}");
                    assert!(entry.name_handle.is_some(), "no handle: {entry:?}");
                    Listed {
                        name: String::from_utf8(entry.name.0.to_vec()).unwrap(),
                        fileid: entry.fileid,
                        cookie: entry.cookie,
                    }
                })
                .collect(),
            eof: ok.reply.eof,
            verifier: ok.cookieverf,
        })
    }

    /// Every entry of `dir` (`.` and `..` left out), listed with READDIR (`plus`
    /// false) or READDIRPLUS in pages of `count` bytes.
    pub async fn list(&mut self, dir: &nfs_fh3, plus: bool, count: u32) -> Vec<Listed> {
        let mut all = Vec::new();
        let (mut cookie, mut verifier) = (0, cookieverf3::default());
        loop {
            let page = if plus {
                self.readdirplus(dir, cookie, verifier, count).await
            } else {
                self.readdir(dir, cookie, verifier, count).await
            }
            .expect("list a directory");
            if let Some(last) = page.entries.last() {
                cookie = last.cookie;
            } else {
                assert!(page.eof, "an empty page before eof");
            }
            verifier = page.verifier;
            all.extend(
                page.entries
                    .into_iter()
                    .filter(|entry| entry.name != "." && entry.name != ".."),
            );
            if page.eof {
                return all;
            }
        }
    }
}
