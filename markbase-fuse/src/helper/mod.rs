//! The fuse-t session, owned by us: start `go-nfsv4`, ask it to mount, believe it
//! only once the mount is verified, and stop it within a deadline.
//!
//! fuse-t has no kernel module: its helper is a local NFS server that carries FUSE
//! messages over a socket pair and mounts itself with `mount_nfs`. The protocol is
//! platform-neutral, so this module builds everywhere, and is tested on Linux with a
//! fake helper.

mod channel;
mod locate;
mod output;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuse_backend_rs::api::server::Server;

pub use locate::{HELPER_ENV, INSTALL_LOCATIONS, locate, user_location};

use crate::error::{HelperError, MountError};
use crate::fs::MarkbaseFs;
use crate::mounts;
use crate::workers::Workers;
use channel::Channel;
use output::OutputLog;

/// Socket buffer size on the FUSE channel, as fuse-t's libfuse sets it.
const CHANNEL_BUFFER: usize = 4 << 20;

/// How the fuse-t helper is run.
#[derive(Clone, Debug)]
pub struct HelperConfig {
    /// The helper to run; `None` to look in fuse-t's install locations.
    pub path: Option<PathBuf>,
    /// The volume name Finder shows.
    pub volume_name: String,
    /// How long the helper may take to answer the mount request.
    pub status_timeout: Duration,
    /// How long the mounted filesystem may take to answer the verifying `stat`.
    pub verify_timeout: Duration,
    /// Whether Finder shows the volume in its sidebar (`false`: fuse-t's `nobrowse`).
    pub browse: bool,
    /// Where the helper's output goes, a file of its own: kept when the mount fails
    /// or ends badly, removed when it ends well.
    pub log_dir: PathBuf,
    /// How fuse-t serves the mount to macOS (its `--backend`); `None` for fuse-t's
    /// default, NFS.
    pub backend: Option<FuseTBackend>,
}

/// The protocol fuse-t's helper serves the mount to macOS with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuseTBackend {
    /// NFSv4, mounted by `mount_nfs` (fuse-t's default).
    Nfs,
    /// SMB, mounted by `mount_smbfs`: what fuse-t's maintainer suggests where NFS is slow.
    Smb,
}

impl FuseTBackend {
    /// Its name on the helper's command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nfs => "nfs",
            Self::Smb => "smb",
        }
    }
}

impl HelperConfig {
    /// Defaults, with the helper path from `FUSE_NFSSRV_PATH` when it is set.
    pub fn from_env(volume_name: impl Into<String>) -> Self {
        Self {
            path: std::env::var_os(HELPER_ENV)
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            volume_name: volume_name.into(),
            status_timeout: Duration::from_secs(20),
            verify_timeout: Duration::from_secs(10),
            browse: true,
            log_dir: std::env::temp_dir(),
            backend: None,
        }
    }
}

/// A verified mount served through the helper.
pub(crate) struct HelperSession {
    helper: PathBuf,
    child: Child,
    monitor: UnixStream,
    channel: Arc<Channel>,
    workers: Workers,
    mountpoint: PathBuf,
    /// The helper's output.
    output: OutputLog,
}

/// The two socket pairs: ours and the helper's end of each.
struct Sockets {
    comm: UnixStream,
    monitor: UnixStream,
    child_comm: UnixStream,
    child_monitor: UnixStream,
}

impl Sockets {
    fn new() -> io::Result<Self> {
        let (comm, child_comm) = UnixStream::pair()?;
        let (monitor, child_monitor) = UnixStream::pair()?;
        // As fuse-t's libfuse does, a buffer size the system refuses is no reason to
        // fail the mount (the helper then works with smaller sends).
        for socket in [&comm, &child_comm] {
            let sized = rustix::net::sockopt::set_socket_send_buffer_size(socket, CHANNEL_BUFFER)
                .and_then(|()| {
                    rustix::net::sockopt::set_socket_recv_buffer_size(socket, CHANNEL_BUFFER)
                });
            if let Err(err) = sized {
                tracing::warn!(
                    "cannot make the fuse-t channel's buffers {CHANNEL_BUFFER} bytes: {err}"
                );
            }
        }
        // A send after the helper has gone must fail, not raise SIGPIPE (on Linux,
        // each send asks for that instead).
        #[cfg(target_os = "macos")]
        rustix::net::sockopt::set_socket_nosigpipe(&comm, true)?;
        Ok(Self {
            comm,
            monitor,
            child_comm,
            child_monitor,
        })
    }
}

impl HelperSession {
    /// Starts the helper for `mountpoint` (checked and canonical), serves its FUSE
    /// traffic on `threads` threads, asks it to mount and verifies the mount.
    pub fn start(
        server: Arc<Server<Arc<MarkbaseFs>>>,
        fs: &MarkbaseFs,
        mountpoint: &Path,
        read_only: bool,
        threads: usize,
        config: &HelperConfig,
    ) -> Result<Self, MountError> {
        let helper = locate(config.path.as_deref())?;
        let io_error = |what: &'static str| {
            let helper = helper.clone();
            move |cause: io::Error| HelperError::Io {
                what,
                path: helper,
                cause,
            }
        };
        let before = std::fs::metadata(mountpoint)
            .map_err(|cause| MountError::inspect(mountpoint, cause))?
            .dev();
        let sockets = Sockets::new().map_err(io_error("make sockets for"))?;
        let (output, log) =
            OutputLog::create(&config.log_dir).map_err(io_error("make a log file for"))?;
        tracing::info!(
            "the fuse-t helper's output goes to {}",
            output.path().display()
        );
        let child =
            spawn(&helper, &sockets, mountpoint, read_only, config, log).map_err(|cause| {
                match cause.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::ENOEXEC) => {
                        HelperError::NotExecutable(helper.clone())
                    }
                    _ => io_error("start")(cause),
                }
            })?;
        let Sockets {
            comm,
            monitor,
            child_comm,
            child_monitor,
        } = sockets;
        // Only the helper may hold its ends, or its exit would go unnoticed.
        drop((child_comm, child_monitor));
        let mut this = Self {
            helper: helper.clone(),
            child,
            monitor,
            channel: Arc::new(Channel::new(comm)),
            workers: Workers::new(),
            mountpoint: mountpoint.to_path_buf(),
            output,
        };
        // The helper's mount_nfs needs answers (INIT, the root's attributes) before it
        // can report, so requests are served before the status is awaited.
        for index in 0..threads {
            if let Err(err) = this.start_thread_pair(index, &server) {
                this.abandon(before);
                return Err(err);
            }
        }
        match this.handshake(fs, before, config) {
            Ok(()) => {
                tracing::info!(
                    "fuse-t helper {} (pid {}) mounted {}",
                    helper.display(),
                    this.child.id(),
                    mountpoint.display()
                );
                Ok(this)
            }
            Err(err) => {
                let output = this.output.clone();
                this.abandon(before);
                // The helper is gone now: its last lines are all in the file, those
                // it wrote just before answering (mount_nfs's error) too.
                tracing::warn!(
                    "the fuse-t helper's whole output is kept in {}",
                    output.path().display()
                );
                Err(err.with_output(output.lines()).into())
            }
        }
    }

    /// Starts request thread `index` and the thread that sends its replies.
    fn start_thread_pair(
        &mut self,
        index: usize,
        server: &Arc<Server<Arc<MarkbaseFs>>>,
    ) -> Result<(), MountError> {
        let (reader, writer) = std::io::pipe().map_err(MountError::Thread)?;
        let channel = Arc::clone(&self.channel);
        self.workers
            .spawn(format!("markbase-fuse-r{index}"), move || {
                channel.forward(reader)
            })?;
        let channel = Arc::clone(&self.channel);
        let server = Arc::clone(server);
        self.workers
            .spawn(format!("markbase-fuse-{index}"), move || {
                channel.serve(&server, writer)
            })
    }

    /// Sends `mount`, reads the status, and verifies the mount.
    fn handshake(
        &mut self,
        fs: &MarkbaseFs,
        before: u64,
        config: &HelperConfig,
    ) -> Result<(), HelperError> {
        let helper = self.helper.clone();
        let io_error = |what| {
            let helper = helper.clone();
            move |cause| HelperError::Io {
                what,
                path: helper,
                cause,
            }
        };
        (&self.monitor)
            .write_all(b"mount")
            .map_err(io_error("send the mount request to"))?;
        let status = self.read_status(config.status_timeout)?;
        if status != 0 {
            return Err(HelperError::Status {
                path: helper,
                status,
                output: self.output.lines(),
            });
        }
        self.verify(fs, before, config.verify_timeout)
            .map_err(|reason| HelperError::NotVisible {
                path: helper,
                mountpoint: self.mountpoint.clone(),
                reason,
                output: self.output.lines(),
            })
    }

    /// The helper's 4-byte status, waiting at most `limit` and watching for its exit.
    fn read_status(&mut self, limit: Duration) -> Result<i32, HelperError> {
        let deadline = Instant::now() + limit;
        let mut status = [0u8; 4];
        let mut got = 0;
        let poll = Duration::from_millis(50);
        self.monitor
            .set_read_timeout(Some(poll))
            .map_err(|cause| HelperError::Io {
                what: "wait for",
                path: self.helper.clone(),
                cause,
            })?;
        while got < status.len() {
            match (&self.monitor).read(&mut status[got..]) {
                // A reset is a close too: the helper exited before reading "mount".
                Ok(0) => return Err(self.exited(Duration::from_secs(2))),
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(self.exited(Duration::from_secs(2)));
                }
                Ok(n) => got += n,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return Err(self.exited(Duration::ZERO));
                    }
                    if Instant::now() >= deadline {
                        return Err(HelperError::NoStatus {
                            path: self.helper.clone(),
                            limit,
                            output: self.output.lines(),
                        });
                    }
                }
                Err(cause) => {
                    return Err(HelperError::Io {
                        what: "read the mount status from",
                        path: self.helper.clone(),
                        cause,
                    });
                }
            }
        }
        let _ = self.monitor.set_read_timeout(None);
        Ok(i32::from_ne_bytes(status))
    }

    /// The error for a helper that closed its end: how it exited, waiting up to `grace`.
    fn exited(&mut self, grace: Duration) -> HelperError {
        let exit = markbase_process::wait_within(&mut self.child, grace).map_or_else(
            || String::from("closed its socket"),
            markbase_process::describe_exit,
        );
        HelperError::Exited {
            path: self.helper.clone(),
            exit,
            output: self.output.lines(),
        }
    }

    /// Checks that the mount point now holds another filesystem, answered by us.
    fn verify(&self, fs: &MarkbaseFs, before: u64, limit: Duration) -> Result<(), String> {
        let path = self.mountpoint.clone();
        let stat = markbase_process::with_deadline(limit, move || std::fs::metadata(path))
            .ok_or_else(|| format!("a stat of it did not return within {limit:?}"))?
            .map_err(|err| format!("a stat of it failed: {err}"))?;
        if stat.dev() == before {
            return Err(String::from(
                "it is still the directory it was before (same device)",
            ));
        }
        if fs.root_getattrs() == 0 {
            return Err(String::from(
                "another filesystem is mounted there, but it never asked markbase for its root",
            ));
        }
        Ok(())
    }

    /// Waits up to `limit` for the request threads to end (the helper went away or
    /// the volume was unmounted from outside); true if they did.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        self.workers.wait(limit)
    }

    /// Asks the helper to unmount, then makes sure: unmounts if it is still mounted,
    /// ends the helper and every request thread, all within `limit`.
    pub fn stop(mut self, limit: Duration) -> Result<(), MountError> {
        let deadline = Instant::now() + limit;
        let _ = (&self.monitor).write_all(b"unmount");
        let half = limit / 2;
        if markbase_process::wait_within(&mut self.child, half).is_none() {
            tracing::warn!(
                "fuse-t helper (pid {}) still running {half:?} after the unmount request; stopping it",
                self.child.id()
            );
        }
        let output = self.output.clone();
        let finished = self.finish(deadline);
        if finished.is_ok() {
            output.remove();
        }
        finished
    }

    /// Cleans up after a failed start: whatever appeared on the mount point goes.
    fn abandon(self, before: u64) {
        let mountpoint = self.mountpoint.clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mounted = markbase_process::with_deadline(Duration::from_secs(2), move || {
            std::fs::metadata(mountpoint).map(|meta| meta.dev() != before)
        });
        if matches!(mounted, Some(Ok(true)) | None)
            && let Err(err) = mounts::detach(&self.mountpoint)
        {
            tracing::warn!("cannot unmount {}: {err}", self.mountpoint.display());
        }
        if let Err(err) = self.finish(deadline) {
            tracing::warn!("{err}");
        }
    }

    /// Unmounts if needed, ends the helper and the request threads by `deadline`.
    fn finish(mut self, deadline: Instant) -> Result<(), MountError> {
        // Bounded: on a mount whose server is gone, the statfs behind it can hang.
        let mountpoint = self.mountpoint.clone();
        let mounted = markbase_process::with_deadline(Duration::from_secs(2), move || {
            mounts::mount_at(&mountpoint)
        });
        if matches!(mounted, Some(Ok(Some(_))) | None) {
            let _ = mounts::detach(&self.mountpoint);
        }
        // Half a second of the time left is kept for the request threads.
        let grace = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_millis(500));
        markbase_process::stop(&mut self.child, grace);
        self.channel.shut_down();
        let limit = deadline.saturating_duration_since(Instant::now());
        self.workers.finish(&self.mountpoint, limit)
    }
}

/// Starts the helper with the sockets and environment fuse-t's libfuse gives it.
fn spawn(
    helper: &Path,
    sockets: &Sockets,
    mountpoint: &Path,
    read_only: bool,
    config: &HelperConfig,
    log: std::fs::File,
) -> io::Result<Child> {
    let comm_fd = sockets.child_comm.as_raw_fd();
    let monitor_fd = sockets.child_monitor.as_raw_fd();
    let mut command = Command::new(helper);
    // The flags in the order fuse-t's libfuse gives them. The helper sends writes of at
    // most `--rwsize` bytes, what the channel's buffers take; atimes are not kept.
    command.arg("--volname").arg(&config.volume_name);
    if read_only {
        command.arg("-r");
    }
    command.arg(format!("--rwsize={}", channel::max_write()));
    if !config.browse {
        command.arg("--dontbrowse=true");
    }
    command.arg("--noatime=true");
    if let Some(backend) = config.backend {
        command.arg("--backend").arg(backend.name());
    }
    command
        .arg(mountpoint)
        .env("_FUSE_CALL_BY_LIB", "1")
        .env("_FUSE_COMMFD", comm_fd.to_string())
        .env("_FUSE_MONFD", monitor_fd.to_string())
        .env("_FUSE_COMMVERS", "2")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Ok(exe) = std::env::current_exe() {
        command.env("_FUSE_DAEMON_PATH", exe);
    }
    // SAFETY: the closure only calls fcntl and setsid, which are async-signal-safe,
    // on two descriptors that stay open in the parent until the child has started.
    unsafe {
        command.pre_exec(move || {
            inherit(comm_fd)?;
            inherit(monitor_fd)?;
            // Its own session, as libfuse gives it: Ctrl-C and SIGHUP of our terminal
            // do not reach it, so they cannot race the orderly unmount we do on them.
            rustix::process::setsid()?;
            Ok(())
        });
    }
    command.spawn()
}

/// Lets descriptor `fd` survive `exec` (std makes sockets close-on-exec).
fn inherit(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number has no memory-safety requirements.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
