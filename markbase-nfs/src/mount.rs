//! `mount_nfs` of our own server: the server started in-process on a free loopback
//! port, the system's NFS mount command run against it, and the mount verified
//! before it is reported; unmounted before the server stops, because an NFS mount
//! whose server is gone hangs every program that touches it.
//!
//! On macOS the command is `/sbin/mount_nfs`, on Linux `mount -t nfs`; the
//! environment variable [`MOUNT_COMMAND_ENV`] names another one that takes the same
//! arguments (the tests' fakes).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use markbase_vfs::Vfs;
use tokio::runtime::Runtime;

use crate::server::{MountsServed, NfsServer, ServeError};

/// Names the program run instead of the system's NFS mount command; it gets
/// `mount_nfs`'s arguments (`-o OPTIONS 127.0.0.1:/ DIR`).
pub const MOUNT_COMMAND_ENV: &str = "MARKBASE_MOUNT_NFS";

/// The system's NFS mount command and the options it gets before its own.
#[cfg(target_os = "macos")]
const SYSTEM_COMMAND: (&str, &[&str]) = ("/sbin/mount_nfs", &[]);
#[cfg(not(target_os = "macos"))]
const SYSTEM_COMMAND: (&str, &[&str]) = ("mount", &["-t", "nfs"]);

/// How a mount is made and taken off.
#[derive(Clone, Debug)]
pub struct NfsMountOptions {
    /// How long the mount command may run.
    pub mount_timeout: Duration,
    /// How long the mount may take to show once the command succeeded.
    pub verify_timeout: Duration,
    /// How long unmounting may take.
    pub unmount_timeout: Duration,
}

impl Default for NfsMountOptions {
    fn default() -> Self {
        Self {
            mount_timeout: Duration::from_secs(30),
            verify_timeout: Duration::from_secs(3),
            unmount_timeout: Duration::from_secs(10),
        }
    }
}

/// Why an NFS mount did not happen or did not come off.
#[derive(Debug, thiserror::Error)]
pub enum NfsMountError {
    /// The mount point cannot be used.
    #[error("cannot mount on {}: {reason}", path.display())]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not start.
    #[error("cannot start the NFS server: {0}")]
    Server(#[from] ServeError),
    /// The server's runtime did not start.
    #[error("cannot start the NFS server's threads: {0}")]
    Runtime(io::Error),
    /// The mount command is not there.
    #[error(
        "the NFS mount command {program} was not found ({cause}){}",
        missing_hint()
    )]
    CommandMissing {
        /// The command.
        program: String,
        /// The system's error.
        cause: io::Error,
    },
    /// The mount command failed.
    #[error("{program} {exit}{}{}", said(output), failure_hint(output))]
    CommandFailed {
        /// The command.
        program: String,
        /// How it ended.
        exit: String,
        /// What it printed.
        output: String,
    },
    /// The mount command did not end in time (it was killed).
    #[error(
        "{program} did not return within {limit:?} and was stopped{}",
        said(output)
    )]
    CommandHung {
        /// The command.
        program: String,
        /// The time it had.
        limit: Duration,
        /// What it printed.
        output: String,
    },
    /// The command succeeded but the mount is not ours or not there.
    #[error("{program} reported success, but {}: {reason}{}", mountpoint.display(), said(output))]
    NotVisible {
        /// The command.
        program: String,
        /// The mount point.
        mountpoint: PathBuf,
        /// What the verification saw.
        reason: String,
        /// What the command printed.
        output: String,
    },
    /// Unmounting failed; the server keeps serving so that the mount does not hang.
    #[error("cannot unmount {}: {reason}", mountpoint.display())]
    Unmount {
        /// The mount point.
        mountpoint: PathBuf,
        /// What the unmount command said.
        reason: String,
    },
}

fn said(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!("; it said: {output}")
    }
}

fn missing_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "; it is part of macOS, in /sbin"
    } else {
        "; install the NFS client (Debian: nfs-common), or mount through FUSE"
    }
}

/// What to do about a mount command's failure, where its output says.
fn failure_hint(output: &str) -> &'static str {
    if output.contains("Operation not permitted") {
        if cfg!(target_os = "macos") {
            " (macOS refused: give the terminal the Network Volumes permission in System Settings > Privacy & Security > Files and Folders, or run as root)"
        } else {
            " (mounting NFS needs root)"
        }
    } else if output.contains("Permission denied") {
        " (the server refused the mount)"
    } else {
        ""
    }
}

/// A verified NFS mount of a catalog, served in-process.
pub struct NfsMount {
    mountpoint: PathBuf,
    /// The device of the directory before the mount.
    before: u64,
    program: String,
    options: NfsMountOptions,
    /// Whether the mount was verified as ours: only then is it unmounted on drop.
    verified: bool,
    /// The server's runtime; dropped (and the server with it) after the unmount.
    runtime: Option<Runtime>,
    server: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl NfsMount {
    /// Serves `vfs` on a free loopback port, mounts it on `mountpoint` with the
    /// system's NFS mount command and verifies the mount: the directory became
    /// another filesystem, and our server answered its MOUNT.
    pub fn start(
        vfs: Arc<Vfs>,
        mountpoint: &Path,
        options: NfsMountOptions,
    ) -> Result<Self, NfsMountError> {
        let (mountpoint, before) = check_mount_point(mountpoint)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("markbase-nfs")
            .build()
            .map_err(NfsMountError::Runtime)?;
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let server = runtime.block_on(NfsServer::bind(vfs, loopback, Vec::new()))?;
        let port = server.local_addr().port();
        let mounts = server.mounts_served();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        let (program, args) = mount_command(port, &mountpoint);
        let mut mount = Self {
            mountpoint,
            before,
            program: program.to_string_lossy().into_owned(),
            options,
            verified: false,
            runtime: Some(runtime),
            server: task,
            stop: Some(stop),
        };
        let output = mount.run_mount_command(&program, &args)?;
        mount
            .verify(&mounts)
            .map_err(|reason| NfsMountError::NotVisible {
                program: mount.program.clone(),
                mountpoint: mount.mountpoint.clone(),
                reason,
                output,
            })?;
        mount.verified = true;
        tracing::info!(port, mountpoint = %mount.mountpoint.display(), "NFS mount verified");
        Ok(mount)
    }

    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits up to `limit` for the mount to be taken off from outside (`umount`);
    /// true if it was.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_mounted() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100).min(limit));
        }
    }

    /// Unmounts, then stops the server. When unmounting fails the server keeps
    /// serving (until the process exits), so that the mount's users do not hang.
    pub fn unmount(mut self) -> Result<(), NfsMountError> {
        if self.is_mounted()
            && let Err(err) = self.run_umount()
        {
            // Dropping would try again and stop the server; the caller reports this.
            self.verified = false;
            std::mem::forget(self.runtime.take());
            return Err(err);
        }
        self.stop_server();
        Ok(())
    }

    fn is_mounted(&self) -> bool {
        device_of(&self.mountpoint).is_some_and(|dev| dev != self.before)
    }

    /// Runs the mount command, bounded; what it printed, when it succeeded.
    fn run_mount_command(
        &self,
        program: &Path,
        args: &[OsString],
    ) -> Result<String, NfsMountError> {
        let program_name = self.program.clone();
        let mut log = tempfile::tempfile().map_err(NfsMountError::Runtime)?;
        let mut child = spawn(program, args, &log).map_err(|cause| {
            if cause.kind() == io::ErrorKind::NotFound {
                NfsMountError::CommandMissing {
                    program: program_name.clone(),
                    cause,
                }
            } else {
                NfsMountError::Runtime(cause)
            }
        })?;
        let status = markbase_process::wait_or_kill_group(&mut child, self.options.mount_timeout);
        let output = read_back(&mut log);
        match status {
            None => Err(NfsMountError::CommandHung {
                program: program_name,
                limit: self.options.mount_timeout,
                output,
            }),
            Some(status) if status.success() => Ok(output),
            Some(status) => Err(NfsMountError::CommandFailed {
                program: program_name,
                exit: markbase_process::describe_exit(status),
                output,
            }),
        }
    }

    /// Checks that the mount point is another filesystem now, and ours.
    fn verify(&self, mounts: &MountsServed) -> Result<(), String> {
        let deadline = Instant::now() + self.options.verify_timeout;
        while !self.is_mounted() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "it is still the directory it was before after {:?} (nothing was mounted there)",
                    self.options.verify_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if mounts.count() == 0 {
            return Err(String::from(
                "another filesystem is mounted there, but it never asked markbase's NFS server to MOUNT",
            ));
        }
        Ok(())
    }

    /// Runs `umount`, then `umount -f`, each bounded.
    fn run_umount(&self) -> Result<(), NfsMountError> {
        let mut last = String::new();
        for force in [false, true] {
            let mut args: Vec<OsString> = Vec::new();
            if force {
                args.push("-f".into());
            }
            args.push(self.mountpoint.clone().into());
            let mut log = tempfile::tempfile().map_err(NfsMountError::Runtime)?;
            let result = spawn(Path::new("umount"), &args, &log).map(|mut child| {
                markbase_process::wait_or_kill_group(&mut child, self.options.unmount_timeout)
            });
            let output = read_back(&mut log);
            match result {
                Ok(Some(status)) if status.success() && !self.is_mounted() => return Ok(()),
                Ok(Some(status)) => {
                    last = format!(
                        "umount {}{}",
                        markbase_process::describe_exit(status),
                        said(&output)
                    )
                }
                Ok(None) => {
                    last = format!(
                        "umount did not return within {:?}",
                        self.options.unmount_timeout
                    )
                }
                Err(err) => last = format!("cannot run umount: {err}"),
            }
        }
        Err(NfsMountError::Unmount {
            mountpoint: self.mountpoint.clone(),
            reason: last,
        })
    }

    fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            let server = &mut self.server;
            let _ = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), server).await });
            runtime.shutdown_timeout(Duration::from_secs(3));
        }
    }
}

impl Drop for NfsMount {
    fn drop(&mut self) {
        // Never leave a mount whose server is gone: take it off first.
        if self.verified
            && self.runtime.is_some()
            && self.is_mounted()
            && let Err(err) = self.run_umount()
        {
            tracing::error!("{err}");
        }
        self.stop_server();
    }
}

/// The canonical mount point and its device, if it is an empty directory.
fn check_mount_point(path: &Path) -> Result<(PathBuf, u64), NfsMountError> {
    let refuse = |reason: String| NfsMountError::MountPoint {
        path: path.to_owned(),
        reason,
    };
    let canonical = std::fs::canonicalize(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => refuse(String::from(
            "it does not exist; create an empty directory there first",
        )),
        _ => refuse(err.to_string()),
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|err| refuse(err.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse(String::from("it is not a directory")));
    }
    if let Some(entry) = std::fs::read_dir(&canonical)
        .map_err(|err| refuse(err.to_string()))?
        .next()
    {
        let name = entry.map_or_else(
            |_| String::from("?"),
            |e| e.file_name().to_string_lossy().into_owned(),
        );
        return Err(refuse(format!(
            "it is not empty (it holds {name:?}); mount on an empty directory"
        )));
    }
    Ok((canonical, meta.dev()))
}

/// The device of `path`, if it can be examined.
fn device_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|meta| meta.dev())
}

/// The mount command for the server on loopback `port` and `mountpoint`: NFSv3 over
/// TCP, NFS and MOUNT on the one port (no rpcbind), no lock manager (the server has
/// none), 1 MiB reads and writes.
fn mount_command(port: u16, mountpoint: &Path) -> (PathBuf, Vec<OsString>) {
    // A replacement takes mount_nfs's arguments, without mount's `-t nfs`.
    let (program, leading) = match std::env::var_os(MOUNT_COMMAND_ENV) {
        Some(program) => (PathBuf::from(program), &[][..]),
        None => (PathBuf::from(SYSTEM_COMMAND.0), SYSTEM_COMMAND.1),
    };
    let locks = if cfg!(target_os = "macos") {
        "nolocks"
    } else {
        "nolock"
    };
    let options =
        format!("vers=3,tcp,port={port},mountport={port},{locks},rsize=1048576,wsize=1048576");
    let mut args: Vec<OsString> = leading.iter().map(OsString::from).collect();
    args.extend([
        "-o".into(),
        options.into(),
        "127.0.0.1:/".into(),
        mountpoint.into(),
    ]);
    (program, args)
}

/// Starts `program` in a process group of its own, its output to `log`.
fn spawn(program: &Path, args: &[OsString], log: &File) -> io::Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .spawn()
}

/// What was written to `log`, at most its last 4 KiB.
fn read_back(log: &mut File) -> String {
    const KEPT: u64 = 4096;
    let len = log.metadata().map_or(0, |meta| meta.len());
    let mut text = String::new();
    if log
        .seek(io::SeekFrom::Start(len.saturating_sub(KEPT)))
        .is_ok()
    {
        let mut bytes = Vec::new();
        let _ = log.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).trim().to_owned();
    }
    text
}
