//! The Linux session: the kernel's `/dev/fuse`, served by a pool of request threads.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::FuseSession;

use crate::error::MountError;
use crate::fs::MarkbaseFs;
use crate::mount::PassthroughMode;
use crate::mounts;
use crate::passthrough::Passthrough;
use crate::workers::Workers;

/// A live `/dev/fuse` mount and its request threads.
pub(crate) struct KernelSession {
    session: FuseSession,
    mountpoint: PathBuf,
    workers: Workers,
    /// The mount's FUSE connection's abort switch, opened while the mount was ours.
    abort: Option<File>,
}

impl KernelSession {
    /// Mounts `server`'s filesystem on `mountpoint` (checked and canonical) and starts
    /// `threads` request threads. Only the mounting user reaches it unless
    /// `allow_other`; the kernel checks every access against the reported owners and
    /// modes (`default_permissions`).
    pub fn start(
        server: Arc<Server<Arc<MarkbaseFs>>>,
        mountpoint: &Path,
        read_only: bool,
        threads: usize,
        allow_other: bool,
        (passthrough, probe): (&Passthrough, &Path),
    ) -> Result<Self, MountError> {
        let failed = |cause: fuse_backend_rs::transport::Error| MountError::Session {
            path: mountpoint.to_path_buf(),
            cause: cause.to_string(),
        };
        let mut session = FuseSession::new(mountpoint, crate::SUBTYPE, crate::SUBTYPE, read_only)
            .map_err(failed)?;
        session.set_allow_other(allow_other);
        session.mount().map_err(failed)?;
        if passthrough.wanted() {
            passthrough.attach(session.clone_fuse_file().map_err(failed)?);
        }
        let mut this = Self {
            session,
            mountpoint: mountpoint.to_path_buf(),
            workers: Workers::new(),
            abort: None,
        };
        for index in 0..threads {
            let mut channel = this.session.new_channel().map_err(failed)?;
            let server = Arc::clone(&server);
            this.workers
                .spawn(format!("markbase-fuse-{index}"), move || {
                    loop {
                        match channel.get_request() {
                            Ok(Some((reader, writer))) => {
                                // Errors here are replies the kernel no longer wants (an
                                // interrupted request): the session goes on.
                                if let Err(err) =
                                    server.handle_message(reader, writer.into(), None, None)
                                {
                                    tracing::debug!("FUSE request not answered: {err}");
                                }
                            }
                            // Woken for shutdown, or the device is gone.
                            Ok(None) => break,
                            // After an unmount the device reports an error: the normal end.
                            Err(err) => {
                                tracing::debug!("FUSE channel closed: {err}");
                                break;
                            }
                        }
                    }
                })?;
        }
        // The first stat waits for the session to start, so it comes after the threads;
        // answered, it is the proof that the mount serves.
        match rustix::fs::stat(mountpoint) {
            Ok(stat) => {
                raise_readahead(stat.st_dev);
                this.abort = abort_switch(stat.st_dev);
                // INIT is answered by now: the kernel has said whether it passes through.
                if let Err(err) = start_passthrough(passthrough, probe) {
                    if let Err(stop) = this.stop(Duration::from_secs(5)) {
                        tracing::warn!("{stop}");
                    }
                    return Err(err);
                }
                Ok(this)
            }
            Err(err) => {
                let cause = format!("the new mount did not answer a stat: {err}");
                if let Err(stop) = this.stop(Duration::from_secs(5)) {
                    tracing::warn!("{stop}");
                }
                Err(MountError::Session {
                    path: mountpoint.to_path_buf(),
                    cause,
                })
            }
        }
    }

    /// Waits up to `limit` for the request threads to end (the filesystem was
    /// unmounted from outside); true if they did.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        self.workers.wait(limit)
    }

    /// Unmounts (lazily, so that a busy mount goes too), wakes every request thread and
    /// waits at most `limit` for them.
    pub fn stop(mut self, limit: Duration) -> Result<(), MountError> {
        if let Err(err) = self.session.umount() {
            tracing::debug!("FUSE session unmount: {err}");
        }
        // fuse-backend-rs skips the unmount when the connection was already aborted.
        if matches!(mounts::mount_at(&self.mountpoint), Ok(Some(entry)) if entry.is_fuse())
            && let Err(err) = mounts::detach(&self.mountpoint)
        {
            tracing::warn!("cannot detach {}: {err}", self.mountpoint.display());
        }
        if let Err(err) = self.session.wake() {
            tracing::warn!("cannot wake FUSE request threads: {err}");
        }
        let finished = self.workers.finish(&self.mountpoint, limit);
        if let Some(abort) = self.abort {
            abort_connection(abort);
        }
        finished
    }
}

/// Kernel readahead wanted on the mount, in KiB: one full-size (1 MiB) request.
const READAHEAD_KIB: u32 = 1024;

/// The sysfs directory of the kernel's settings for the mount with device `device`.
fn bdi_dir(device: u64) -> PathBuf {
    let (major, minor) = (rustix::fs::major(device), rustix::fs::minor(device));
    PathBuf::from(format!("/sys/class/bdi/{major}:{minor}"))
}

/// Raises the mount's readahead from the kernel's 128 KiB, so that a sequential read
/// becomes 1 MiB requests (a FUSE server cannot ask for more in `init`). It takes
/// root; without it, reads stay correct and take more requests.
fn raise_readahead(device: u64) {
    let path = bdi_dir(device).join("read_ahead_kb");
    if let Err(err) = std::fs::write(&path, READAHEAD_KIB.to_string()) {
        tracing::debug!("readahead left as it is: {}: {err}", path.display());
    }
}

/// Where the kernel lists FUSE connections (the fusectl filesystem).
const FUSECTL: &str = "/sys/fs/fuse/connections";

/// Opens the abort switch of the FUSE connection of the mount with device `device`
/// (mounting the fusectl filesystem if absent). It is opened now, while the device
/// number is ours: after the unmount the number goes to the next FUSE mount, but an
/// open switch stays tied to its own connection. Needs root; `None` otherwise.
fn abort_switch(device: u64) -> Option<File> {
    let fusectl = Path::new(FUSECTL);
    let empty = std::fs::read_dir(fusectl).is_ok_and(|mut entries| entries.next().is_none());
    if empty
        && let Err(err) = rustix::mount::mount(
            "fusectl",
            fusectl,
            "fusectl",
            rustix::mount::MountFlags::empty(),
            None,
        )
    {
        tracing::debug!("cannot mount {FUSECTL}: {err}");
    }
    let path = fusectl
        .join(rustix::fs::minor(device).to_string())
        .join("abort");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .inspect_err(|err| tracing::debug!("no abort switch {}: {err}", path.display()))
        .ok()
}

/// Aborts the mount's FUSE connection if it outlived our descriptors: a process
/// forked from this one (before it ran another program) holds a copy of them, and
/// its requests, and those of anyone still using a lazily detached mount, would
/// otherwise wait forever for a server that is gone. A switch whose connection has
/// ended does nothing.
fn abort_connection(mut abort: File) {
    if let Err(err) = abort.write_all(b"1") {
        tracing::debug!("cannot abort the FUSE connection: {err}");
    }
}

/// Starts passing files through where `passthrough` asks for it and the kernel and
/// this process allow it (checked with a backing of a new unnamed file in `probe`, the
/// store's directory); with `on`, a mount that cannot fails.
fn start_passthrough(passthrough: &Passthrough, probe: &Path) -> Result<(), MountError> {
    if !passthrough.wanted() {
        return Ok(());
    }
    let started = tempfile::tempfile_in(probe)
        .map_err(|err| {
            format!(
                "cannot make a file in {} to check it: {err}",
                probe.display()
            )
        })
        .and_then(|probe| passthrough.activate(&probe));
    match started {
        Ok(()) => tracing::info!("files are passed through to the kernel"),
        Err(why) if passthrough.mode() == PassthroughMode::On => {
            return Err(MountError::Passthrough(why));
        }
        Err(why) => tracing::info!("files are not passed through to the kernel: {why}"),
    }
    Ok(())
}
