//! [`Session`]: the FUSE mount on `/dev/fuse` and the threads that serve it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fuse_backend_rs::api::filesystem::ROOT_ID;
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{FuseChannel, FuseSession};

use crate::fs::BridgeFs;

/// The source and subtype of the mount: `/proc/self/mountinfo` shows it as
/// `fuse.nfs-bridge` from `nfs-bridge`.
const NAME: &str = "nfs-bridge";

/// Request threads. One NFS connection serves them one call at a time; a second
/// thread keeps the mount answering (interrupts, `INIT`) while one waits.
const THREADS: usize = 2;

/// A live FUSE mount.
pub struct Session {
    session: FuseSession,
    mountpoint: PathBuf,
    /// Disconnected once every request thread has ended.
    ended: Receiver<()>,
}

impl Session {
    /// Mounts `fs` on the directory `mountpoint` and starts serving it.
    pub fn mount(fs: BridgeFs, mountpoint: &Path) -> anyhow::Result<Self> {
        let failed = || format!("cannot mount FUSE on {}", mountpoint.display());
        let mut session = FuseSession::new(mountpoint, NAME, NAME, false).with_context(failed)?;
        // Like an NFS mount, it is there for every user, within the modes it reports.
        session.set_allow_other(true);
        session.mount().with_context(failed)?;
        let (alive, ended) = mpsc::channel();
        let mut this = Self {
            mountpoint: session.mountpoint().to_path_buf(),
            session,
            ended,
        };
        if let Err(err) = this.serve(Arc::new(Server::new(fs)), alive) {
            this.detach();
            return Err(err.context(failed()));
        }
        Ok(this)
    }

    /// Checks that the mount point now shows the served root (a `stat` through the
    /// mount, answered by the request threads), unmounting if it does not.
    pub fn check_served(self) -> anyhow::Result<Self> {
        match served(&self.mountpoint) {
            Ok(()) => Ok(self),
            Err(err) => {
                self.detach();
                Err(err)
            }
        }
    }

    /// Waits up to `limit` for the mount to end from outside (`umount`); true if it has.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        matches!(
            self.ended.recv_timeout(limit),
            Err(RecvTimeoutError::Disconnected)
        )
    }

    /// Unmounts lazily (a busy mount goes too) and stops the request threads. Requests
    /// still in the kernel fail once this process has exited and closed the device.
    pub fn detach(mut self) {
        if let Err(err) = self.session.umount() {
            tracing::warn!("cannot unmount {}: {err}", self.mountpoint.display());
        }
        if let Err(err) = self.session.wake() {
            tracing::warn!("cannot wake the FUSE request threads: {err}");
        }
    }

    fn serve(&mut self, server: Arc<Server<BridgeFs>>, alive: Sender<()>) -> anyhow::Result<()> {
        for index in 0..THREADS {
            let channel = self
                .session
                .new_channel()
                .context("cannot open a FUSE channel")?;
            let (server, alive) = (Arc::clone(&server), alive.clone());
            std::thread::Builder::new()
                .name(format!("fuse-{index}"))
                .spawn(move || {
                    let _alive = alive;
                    answer(channel, &server);
                })
                .context("cannot start a FUSE request thread")?;
        }
        Ok(())
    }
}

/// Answers requests from `channel` until the mount ends or the session is woken.
fn answer(mut channel: FuseChannel, server: &Server<BridgeFs>) {
    loop {
        match channel.get_request() {
            Ok(Some((reader, writer))) => {
                if let Err(err) = server.handle_message(reader, writer.into(), None, None) {
                    // A reply the kernel no longer wants (an interrupted request).
                    tracing::debug!("FUSE request not answered: {err}");
                }
            }
            Ok(None) => return,
            // The device fails reads once the filesystem is unmounted: the normal end.
            Err(err) => {
                tracing::debug!("FUSE channel closed: {err}");
                return;
            }
        }
    }
}

/// Whether `mountpoint` shows a FUSE root on a device of its own.
fn served(mountpoint: &Path) -> anyhow::Result<()> {
    let parent = mountpoint.parent().unwrap_or(mountpoint);
    let root = rustix::fs::stat(mountpoint)
        .with_context(|| format!("the new mount at {} does not answer", mountpoint.display()))?;
    let below = rustix::fs::stat(parent).with_context(|| format!("stat {}", parent.display()))?;
    if root.st_dev == below.st_dev || root.st_ino != ROOT_ID {
        bail!("{} does not show the new mount", mountpoint.display());
    }
    Ok(())
}
