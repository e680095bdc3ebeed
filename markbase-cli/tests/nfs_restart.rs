//! `markbase serve nfs` as a real process across a crash and a stop: what a client
//! was told is committed survives SIGKILL byte for byte (through NFS and in the
//! store file), the write verifier changes with the restart so that a client
//! resends its uncommitted writes, handles from before the restart still work, and
//! SIGTERM stops the server within 5 s with committed files intact.

mod common;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::markbase;
use markbase_testkit::pattern_byte;
use markbase_vfs::schema::SCHEMA_SQL;
use nfs3_client::nfs3_types::mount::dirpath;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::{MountClient, Nfs3Client};
use tokio::net::TcpStream;

/// How long the server may take to start listening (a loaded 2-core machine).
const START_LIMIT: Duration = Duration::from_secs(30);

/// How long the server may take to exit once sent SIGTERM.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

const MIB: usize = 1 << 20;

/// A `markbase serve nfs` child; killed when dropped.
struct NfsProcess {
    child: Child,
    stderr_file: PathBuf,
    addr: SocketAddr,
}

impl NfsProcess {
    /// Starts `markbase --catalog CATALOG serve nfs --listen 127.0.0.1:0`, its stderr
    /// in a new file of `log_dir`, and waits until it says where it listens.
    fn start(catalog: &Path, log_dir: &Path, run: usize) -> Self {
        let stderr_file = log_dir.join(format!("serve-nfs-{run}.stderr"));
        let child = markbase()
            .arg("--catalog")
            .arg(catalog)
            .args(["serve", "nfs", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_file).unwrap())
            .spawn()
            .expect("start markbase serve nfs");
        let deadline = Instant::now() + START_LIMIT;
        let addr = loop {
            let said = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            if let Some(addr) = listening_address(&said) {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "not listening within {START_LIMIT:?}; stderr: {said}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            stderr_file,
            addr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    fn signal(&self, signal: libc::c_int) {
        common::signal(&self.child, signal);
    }

    /// Waits up to `limit` for the process to exit: its status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let status = common::exit_within(&mut self.child, limit).unwrap_or_else(|| {
            panic!(
                "markbase serve nfs still runs {limit:?} later; stderr: {}",
                self.stderr()
            )
        });
        (status, started.elapsed())
    }

    /// Kills the server at once, as a crash would.
    fn crash(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(SHUTDOWN_LIMIT);
    }
}

impl Drop for NfsProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the server's `serving CAT over NFSv3 at ADDR; ...` line.
fn listening_address(stderr: &str) -> Option<SocketAddr> {
    let line = stderr
        .lines()
        .find(|line| line.contains(" over NFSv3 at "))?;
    let after = line.split(" over NFSv3 at ").nth(1)?;
    after.split(';').next()?.trim().parse().ok()
}

/// `len` bytes of the pattern made with `seed`, from `offset` of it.
fn pattern(seed: u64, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| pattern_byte(seed, i as u64))
        .collect()
}

/// A new catalog with only the root in `dir`.
fn new_catalog(dir: &Path) -> PathBuf {
    let catalog = dir.join("warren.sqlite");
    markbase_testkit::RawCatalog::create(&catalog, SCHEMA_SQL).expect("create a catalog");
    catalog
}

/// The store file of node `id`: its first alias, relative to the catalog's dir.
fn store_file(catalog: &Path, id: i64) -> PathBuf {
    let conn = rusqlite::Connection::open(catalog).unwrap();
    let alias: String = conn
        .query_row(
            "SELECT json_extract(aliases_json, '$[0]') FROM nodes WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap();
    catalog.parent().unwrap().join(alias)
}

/// The node id in a handle of the server (after its 8-byte generation).
fn node_id(handle: &nfs_fh3) -> i64 {
    i64::from_be_bytes(handle.data[8..16].try_into().unwrap())
}

/// An NFS client of one server process.
struct Client(Nfs3Client<TokioIo<TcpStream>>);

impl Client {
    /// Connects to `addr` and mounts `/`: the client and the root's handle.
    async fn mount(addr: SocketAddr) -> (Self, nfs_fh3) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut mount = MountClient::new(TokioIo::new(stream));
        let ok = mount
            .mnt(dirpath(Opaque::borrowed(b"/")))
            .await
            .expect("MNT /");
        let root = nfs_fh3 {
            data: Opaque::owned(ok.fhandle.0.to_vec()),
        };
        let stream = TcpStream::connect(addr).await.unwrap();
        (Self(Nfs3Client::new(TokioIo::new(stream))), root)
    }

    async fn create(&mut self, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
        let res = self
            .0
            .create(&CREATE3args {
                where_: diropargs3 {
                    dir: dir.clone(),
                    name: filename3::from(name.as_bytes()),
                },
                how: createhow3::GUARDED(sattr3::default()),
            })
            .await
            .unwrap();
        res.expect("CREATE").obj.unwrap()
    }

    async fn mkdir(&mut self, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
        let res = self
            .0
            .mkdir(&MKDIR3args {
                where_: diropargs3 {
                    dir: dir.clone(),
                    name: filename3::from(name.as_bytes()),
                },
                attributes: sattr3::default(),
            })
            .await
            .unwrap();
        res.expect("MKDIR").obj.unwrap()
    }

    /// Writes `data` at `offset` in 1 MiB WRITEs; the verifier of the last one.
    async fn write(
        &mut self,
        file: &nfs_fh3,
        offset: usize,
        data: &[u8],
        stable: stable_how,
    ) -> writeverf3 {
        let mut verifier = None;
        for (i, chunk) in data.chunks(MIB).enumerate() {
            let res = self
                .0
                .write(&WRITE3args {
                    file: file.clone(),
                    offset: (offset + i * MIB) as u64,
                    count: chunk.len() as u32,
                    stable,
                    data: Opaque::borrowed(chunk),
                })
                .await
                .unwrap();
            let ok = res.expect("WRITE");
            assert_eq!(ok.count as usize, chunk.len());
            if let Some(earlier) = verifier {
                assert_eq!(ok.verf, earlier, "the verifier changed within a run");
            }
            verifier = Some(ok.verf);
        }
        verifier.expect("something written")
    }

    async fn commit(&mut self, file: &nfs_fh3) -> writeverf3 {
        let res = self
            .0
            .commit(&COMMIT3args {
                file: file.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .unwrap();
        res.expect("COMMIT").verf
    }

    async fn getattr(&mut self, object: &nfs_fh3) -> fattr3 {
        let res = self
            .0
            .getattr(&GETATTR3args {
                object: object.clone(),
            })
            .await
            .unwrap();
        res.expect("GETATTR").obj_attributes
    }

    /// `len` bytes from `offset`, in 1 MiB READs.
    async fn read(&mut self, file: &nfs_fh3, offset: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let res = self
                .0
                .read(&READ3args {
                    file: file.clone(),
                    offset: (offset + out.len()) as u64,
                    count: (len - out.len()).min(MIB) as u32,
                })
                .await
                .unwrap();
            let ok = res.expect("READ");
            assert!(!ok.data.is_empty(), "short file at {}", offset + out.len());
            out.extend_from_slice(&ok.data);
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_survive_sigkill_and_the_verifier_changes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = new_catalog(dir.path());
    let mut server = NfsProcess::start(&catalog, dir.path(), 0);
    let (mut client, root) = Client::mount(server.addr).await;
    let sub = client.mkdir(&root, "sub").await;
    let file = client.create(&sub, "data.bin").await;

    let committed = pattern(1, 0, 4 * MIB);
    let before = client
        .write(&file, 0, &committed, stable_how::UNSTABLE)
        .await;
    assert_eq!(client.commit(&file).await, before);
    // Written, never committed: the crash may lose it.
    let uncommitted_verifier = client
        .write(
            &file,
            4 * MIB,
            &pattern(2, 0, 2 * MIB),
            stable_how::UNSTABLE,
        )
        .await;
    assert_eq!(uncommitted_verifier, before);

    server.crash();
    let mut server = NfsProcess::start(&catalog, dir.path(), 1);
    let (mut client, new_root) = Client::mount(server.addr).await;
    assert_eq!(new_root, root, "the root's handle outlives the restart");

    // Handles from before the restart.
    assert_eq!(client.getattr(&sub).await.type_, ftype3::NF3DIR);
    let attr = client.getattr(&file).await;
    assert_eq!(attr.type_, ftype3::NF3REG);
    assert!(attr.size >= committed.len() as u64, "size {}", attr.size);
    assert!(
        client.read(&file, 0, committed.len()).await == committed,
        "committed bytes read through NFS after the crash differ"
    );
    let stored = std::fs::read(store_file(&catalog, node_id(&file))).unwrap();
    assert!(
        stored.len() >= committed.len() && stored[..committed.len()] == committed[..],
        "the store file after the crash lacks the committed bytes"
    );

    // A client's resend after the restart is answered with a new verifier.
    let after = client
        .write(
            &file,
            4 * MIB,
            &pattern(2, 0, 2 * MIB),
            stable_how::UNSTABLE,
        )
        .await;
    assert_ne!(after, before, "a restart must change the write verifier");
    assert_eq!(client.commit(&file).await, after);
    let mut whole = committed.clone();
    whole.extend(pattern(2, 0, 2 * MIB));
    assert!(client.read(&file, 0, whole.len()).await == whole);
    server.signal(libc::SIGTERM);
    server.wait_exit(SHUTDOWN_LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_promptly_with_committed_files_intact() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = new_catalog(dir.path());
    let mut server = NfsProcess::start(&catalog, dir.path(), 0);
    let (mut client, root) = Client::mount(server.addr).await;
    let file = client.create(&root, "kept.bin").await;
    let data = pattern(3, 0, 3 * MIB + 17);
    client.write(&file, 0, &data, stable_how::UNSTABLE).await;
    client.commit(&file).await;
    // The client stays connected, as a mounted client would.
    let _idle = TcpStream::connect(server.addr).await.unwrap();

    server.signal(libc::SIGTERM);
    let (status, took) = server.wait_exit(SHUTDOWN_LIMIT + Duration::from_secs(1));
    assert!(took <= SHUTDOWN_LIMIT, "SIGTERM: exit took {took:?}");
    assert!(status.success(), "{status:?}; stderr: {}", server.stderr());
    assert!(
        !server.stderr().contains("panicked"),
        "stderr: {}",
        server.stderr()
    );

    let stored = std::fs::read(store_file(&catalog, node_id(&file))).unwrap();
    assert!(stored == data, "the store file after SIGTERM differs");
    let server = NfsProcess::start(&catalog, dir.path(), 1);
    let (mut client, _) = Client::mount(server.addr).await;
    assert_eq!(client.getattr(&file).await.size, data.len() as u64);
    assert!(client.read(&file, 0, data.len()).await == data);
}
