//! [`Remote`]: the one connection to the NFS server, called synchronously (one call
//! at a time) from the FUSE request threads.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use nfs3_client::nfs3_types::nfs3::{
    COMMIT3args, CREATE3args, FSSTAT3args, FSSTAT3resok, GETATTR3args, LOOKUP3args, MKDIR3args,
    READ3args, READDIRPLUS3args, READDIRPLUS3resok, REMOVE3args, RENAME3args, RMDIR3args,
    SETATTR3args, WRITE3args, cookie3, cookieverf3, createhow3, diropargs3, fattr3, filename3,
    nfs_fh3, post_op_attr, post_op_fh3, sattr3, sattrguard3, stable_how, writeverf3,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder, RpcError};
use tokio::runtime::Runtime;

use crate::error::{NfsError, status};
use crate::stream::{Stream, StreamConnector};

/// How long one call (or the MOUNT) may wait for its reply before the server is taken
/// as gone.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// Entries asked for per READDIRPLUS: bytes of names and cookies, and of the whole reply.
const DIR_COUNT: u32 = 16 * 1024;
const DIR_MAX_COUNT: u32 = 64 * 1024;

type Client = Nfs3Client<Stream>;

/// Where an export is served.
#[derive(Clone, Debug)]
pub struct Export {
    /// The server's address.
    pub host: IpAddr,
    /// Its NFS port.
    pub port: u16,
    /// Its MOUNT port.
    pub mount_port: u16,
    /// The exported path.
    pub path: String,
}

/// A file on the server: its handle and attributes.
#[derive(Clone, Debug)]
pub struct Node {
    /// The file handle.
    pub fh: nfs_fh3,
    /// Its attributes.
    pub attr: fattr3,
}

/// A mounted export.
pub struct Remote {
    runtime: Runtime,
    client: Mutex<Client>,
    root: nfs_fh3,
    /// Set once the connection failed: later calls fail at once.
    lost: AtomicBool,
}

impl Remote {
    /// MOUNTs `export` with AUTH_UNIX credentials of this process and opens the NFS
    /// connection.
    pub fn mount(export: &Export) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the I/O runtime")?;
        let builder = Nfs3ConnectionBuilder::new(
            StreamConnector,
            export.host.to_string(),
            export.path.as_str(),
        )
        .mount_port(export.mount_port)
        .nfs3_port(export.port)
        .connect_from_privileged_port(false)
        .credential(credential());
        let what = || {
            format!(
                "cannot MOUNT {}:{} (NFS port {}, MOUNT port {})",
                export.host, export.path, export.port, export.mount_port
            )
        };
        let connection = runtime
            .block_on(async { tokio::time::timeout(CALL_LIMIT, builder.mount()).await })
            .map_err(|_| anyhow!("no reply within {CALL_LIMIT:?}"))
            .with_context(what)?
            // The error's message already names its cause, which `{:#}` would repeat.
            .map_err(|err| anyhow!("{}: {err}", what()))?;
        let root = connection.root_nfs_fh3();
        Ok(Self {
            runtime,
            client: Mutex::new(connection.into_nfs3_client()),
            root,
            lost: AtomicBool::new(false),
        })
    }

    /// The handle of the export's root.
    pub fn root(&self) -> &nfs_fh3 {
        &self.root
    }

    /// Whether the server still answers (NULL).
    pub fn ping(&self) -> Result<(), NfsError> {
        self.call("NULL", async |client| client.null().await)
    }

    /// GETATTR.
    pub fn getattr(&self, fh: &nfs_fh3) -> Result<fattr3, NfsError> {
        let args = GETATTR3args { object: fh.clone() };
        let reply = self.call("GETATTR", async |client| client.getattr(&args).await)?;
        Ok(status(reply)?.obj_attributes)
    }

    /// SETATTR, then the attributes after it.
    pub fn setattr(&self, fh: &nfs_fh3, changes: sattr3) -> Result<fattr3, NfsError> {
        let args = SETATTR3args {
            object: fh.clone(),
            new_attributes: changes,
            guard: sattrguard3::None,
        };
        let reply = self.call("SETATTR", async |client| client.setattr(&args).await)?;
        match status(reply)?.obj_wcc.after {
            post_op_attr::Some(attr) => Ok(attr),
            post_op_attr::None => self.getattr(fh),
        }
    }

    /// LOOKUP of `name` in `dir`.
    pub fn lookup(&self, dir: &nfs_fh3, name: &[u8]) -> Result<Node, NfsError> {
        let args = LOOKUP3args {
            what: dirop(dir, name),
        };
        let reply = self.call("LOOKUP", async |client| client.lookup(&args).await)?;
        let found = status(reply)?;
        self.node(
            post_op_fh3::Some(found.object),
            found.obj_attributes,
            dir,
            name,
        )
    }

    /// CREATE of `name` in `dir` the way `how` says.
    pub fn create(&self, dir: &nfs_fh3, name: &[u8], how: createhow3) -> Result<Node, NfsError> {
        let args = CREATE3args {
            where_: dirop(dir, name),
            how,
        };
        let reply = self.call("CREATE", async |client| client.create(&args).await)?;
        let made = status(reply)?;
        self.node(made.obj, made.obj_attributes, dir, name)
    }

    /// MKDIR of `name` in `dir`.
    pub fn mkdir(&self, dir: &nfs_fh3, name: &[u8], attr: sattr3) -> Result<Node, NfsError> {
        let args = MKDIR3args {
            where_: dirop(dir, name),
            attributes: attr,
        };
        let reply = self.call("MKDIR", async |client| client.mkdir(&args).await)?;
        let made = status(reply)?;
        self.node(made.obj, made.obj_attributes, dir, name)
    }

    /// REMOVE of the file `name` in `dir`.
    pub fn remove(&self, dir: &nfs_fh3, name: &[u8]) -> Result<(), NfsError> {
        let args = REMOVE3args {
            object: dirop(dir, name),
        };
        let reply = self.call("REMOVE", async |client| client.remove(&args).await)?;
        status(reply).map(drop)
    }

    /// RMDIR of the directory `name` in `dir`.
    pub fn rmdir(&self, dir: &nfs_fh3, name: &[u8]) -> Result<(), NfsError> {
        let args = RMDIR3args {
            object: dirop(dir, name),
        };
        let reply = self.call("RMDIR", async |client| client.rmdir(&args).await)?;
        status(reply).map(drop)
    }

    /// RENAME of `from` in `from_dir` to `to` in `to_dir`.
    pub fn rename(
        &self,
        from_dir: &nfs_fh3,
        from: &[u8],
        to_dir: &nfs_fh3,
        to: &[u8],
    ) -> Result<(), NfsError> {
        let args = RENAME3args {
            from: dirop(from_dir, from),
            to: dirop(to_dir, to),
        };
        let reply = self.call("RENAME", async |client| client.rename(&args).await)?;
        status(reply).map(drop)
    }

    /// READ of up to `count` bytes at `offset`: the bytes, and whether the file ends there.
    pub fn read(&self, fh: &nfs_fh3, offset: u64, count: u32) -> Result<(Vec<u8>, bool), NfsError> {
        let args = READ3args {
            file: fh.clone(),
            offset,
            count,
        };
        let reply = self.call("READ", async |client| client.read(&args).await)?;
        let read = status(reply)?;
        Ok((read.data.into_owned(), read.eof))
    }

    /// WRITE (UNSTABLE) of `data` at `offset`: how many bytes the server took, and its
    /// write verifier.
    pub fn write(
        &self,
        fh: &nfs_fh3,
        offset: u64,
        data: &[u8],
    ) -> Result<(u32, writeverf3), NfsError> {
        let args = WRITE3args {
            file: fh.clone(),
            offset,
            // A FUSE write is at most 1 MiB, so its length fits.
            count: data.len() as u32,
            stable: stable_how::UNSTABLE,
            data: Opaque::borrowed(data),
        };
        let reply = self.call("WRITE", async |client| client.write(&args).await)?;
        let written = status(reply)?;
        Ok((written.count, written.verf))
    }

    /// COMMIT of the whole file: the server's write verifier.
    pub fn commit(&self, fh: &nfs_fh3) -> Result<writeverf3, NfsError> {
        let args = COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        };
        let reply = self.call("COMMIT", async |client| client.commit(&args).await)?;
        Ok(status(reply)?.verf)
    }

    /// One READDIRPLUS page of `dir` after `cookie` (0: from the start), whose verifier
    /// is `verifier` (zero from the start).
    pub fn readdirplus(
        &self,
        dir: &nfs_fh3,
        cookie: cookie3,
        verifier: cookieverf3,
    ) -> Result<READDIRPLUS3resok<'static>, NfsError> {
        let args = READDIRPLUS3args {
            dir: dir.clone(),
            cookie,
            cookieverf: verifier,
            dircount: DIR_COUNT,
            maxcount: DIR_MAX_COUNT,
        };
        let reply = self.call("READDIRPLUS", async |client| {
            client.readdirplus(&args).await
        })?;
        status(reply)
    }

    /// FSSTAT of the export.
    pub fn fsstat(&self) -> Result<FSSTAT3resok, NfsError> {
        let args = FSSTAT3args {
            fsroot: self.root.clone(),
        };
        let reply = self.call("FSSTAT", async |client| client.fsstat(&args).await)?;
        status(reply)
    }

    /// The node a reply names, asking the server for what it left out (a server may
    /// omit the handle or attributes of what it made or found).
    fn node(
        &self,
        fh: post_op_fh3,
        attr: post_op_attr,
        dir: &nfs_fh3,
        name: &[u8],
    ) -> Result<Node, NfsError> {
        match (fh, attr) {
            (post_op_fh3::Some(fh), post_op_attr::Some(attr)) => Ok(Node { fh, attr }),
            (post_op_fh3::Some(fh), post_op_attr::None) => {
                let attr = self.getattr(&fh)?;
                Ok(Node { fh, attr })
            }
            (post_op_fh3::None, _) => self.lookup(dir, name),
        }
    }

    /// Runs one call on the connection, within [`CALL_LIMIT`]. A failure of the
    /// connection itself marks it lost for good.
    fn call<T>(
        &self,
        what: &str,
        call: impl AsyncFnOnce(&mut Client) -> Result<T, RpcError>,
    ) -> Result<T, NfsError> {
        if self.lost.load(Ordering::Acquire) {
            return Err(NfsError::Lost);
        }
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let failure = match self
            .runtime
            .block_on(async { tokio::time::timeout(CALL_LIMIT, call(&mut client)).await })
        {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(err)) if err.is_connection_reusable() => return Err(NfsError::Rpc(err)),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no reply within {CALL_LIMIT:?}"),
        };
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::warn!("{what}: the NFS connection failed: {failure}");
        }
        Err(NfsError::Lost)
    }
}

/// `name` in `dir`, as calls name it.
fn dirop<'a>(dir: &nfs_fh3, name: &'a [u8]) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: filename3::from(name),
    }
}

/// AUTH_UNIX credentials of this process (its effective user and group).
fn credential() -> opaque_auth<'static> {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::borrowed(b"nfs-fuse-bridge"),
        uid,
        gid,
        gids: Vec::new(),
    })
}
