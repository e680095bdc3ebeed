//! Why a mount or unmount failed, each cause named.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A mount, or an unmount, that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount point does not exist.
    #[error("mount point {} does not exist; create an empty directory there first", .0.display())]
    MissingMountPoint(PathBuf),
    /// The mount point is a file or something else that is not a directory.
    #[error("mount point {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The mount point holds entries that the mount would hide.
    #[error("mount point {} is not empty (it holds {example:?}, ...); mount on an empty directory", path.display())]
    NotEmpty {
        /// The mount point.
        path: PathBuf,
        /// One of its entries.
        example: String,
    },
    /// Something is mounted there already.
    #[error("{} is already a mount point ({fstype}); unmount it first", path.display())]
    AlreadyMounted {
        /// The mount point.
        path: PathBuf,
        /// The type of what is mounted there.
        fstype: String,
    },
    /// The mount point could not be examined.
    #[error("cannot examine mount point {}: {cause}", path.display())]
    Inspect {
        /// The mount point.
        path: PathBuf,
        /// The operating system error.
        cause: io::Error,
    },
    /// A dead FUSE mount was found and could not be cleared.
    #[error("{} is a dead FUSE mount (its server exited) and clearing it failed: {cause}", path.display())]
    ClearDead {
        /// The mount point.
        path: PathBuf,
        /// Why the lazy unmount failed.
        cause: io::Error,
    },
    /// The kernel's FUSE session could not be set up (no /dev/fuse, no permission...).
    #[error("cannot mount {} through FUSE: {cause}", path.display())]
    Session {
        /// The mount point.
        path: PathBuf,
        /// What failed, as fuse-backend-rs or the system reported it.
        cause: String,
    },
    /// Passthrough was asked for and cannot be used.
    #[error("FUSE passthrough was asked for, and cannot be used: {0}")]
    Passthrough(String),
    /// A request thread could not be started.
    #[error("cannot start FUSE request thread: {0}")]
    Thread(io::Error),
    /// The fuse-t helper failed; see [`HelperError`].
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// `markbase umount` on a path that is not a mount point.
    #[error("{} is not a mount point", .0.display())]
    NotMounted(PathBuf),
    /// The mount is in use.
    #[error("{} is busy: a process has files open or its working directory there (`fuser -vm {}` names it); close them, or unmount lazily with --lazy", .0.display(), .0.display())]
    Busy(PathBuf),
    /// Unmounting failed for another reason.
    #[error("cannot unmount {}: {cause}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The operating system error.
        cause: io::Error,
    },
    /// Request threads still ran when the shutdown deadline passed.
    #[error("{busy} FUSE request thread(s) still running {limit:?} after unmounting {}", path.display())]
    ThreadsStuck {
        /// The mount point.
        path: PathBuf,
        /// Threads not finished.
        busy: usize,
        /// How long they were given.
        limit: Duration,
    },
}

impl MountError {
    pub(crate) fn inspect(path: &Path, cause: io::Error) -> Self {
        Self::Inspect {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// How the fuse-t helper (`go-nfsv4`) failed to mount.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// No helper at any place looked.
    #[error("the fuse-t helper go-nfsv4 was not found; looked at: {}. Install fuse-t (https://www.fuse-t.org) or set FUSE_NFSSRV_PATH", looked.join(", "))]
    Missing {
        /// Every place looked, in order.
        looked: Vec<String>,
    },
    /// The helper exists but may not be run.
    #[error("the fuse-t helper {} is not executable", .0.display())]
    NotExecutable(PathBuf),
    /// Starting the helper, or talking to it, failed at the system level.
    #[error("cannot {what} the fuse-t helper {}: {cause}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The helper.
        path: PathBuf,
        /// The operating system error.
        cause: io::Error,
    },
    /// The helper exited before reporting a status.
    #[error("the fuse-t helper {} {exit} before answering the mount request{}", path.display(), said(.output))]
    Exited {
        /// The helper.
        path: PathBuf,
        /// How it ended ("exited with code 1", "was killed by signal 9").
        exit: String,
        /// Its last lines of output.
        output: Vec<String>,
    },
    /// The helper reported a failed mount.
    #[error("the fuse-t helper {} reported mount status {status}{}{}", path.display(), errno_text(*.status), said(.output))]
    Status {
        /// The helper.
        path: PathBuf,
        /// The status it sent (non-zero).
        status: i32,
        /// Its last lines of output.
        output: Vec<String>,
    },
    /// The helper did not answer in time.
    #[error("the fuse-t helper {} sent no mount status within {limit:?}{}", path.display(), said(.output))]
    NoStatus {
        /// The helper.
        path: PathBuf,
        /// How long it was given.
        limit: Duration,
        /// Its last lines of output.
        output: Vec<String>,
    },
    /// The helper reported success, but the mount is not there (the original report's failure).
    #[error("the fuse-t helper {} reported success, but {} is not mounted: {reason}{}", path.display(), mountpoint.display(), said(.output))]
    NotVisible {
        /// The helper.
        path: PathBuf,
        /// The mount point.
        mountpoint: PathBuf,
        /// What the verification found.
        reason: String,
        /// Its last lines of output.
        output: Vec<String>,
    },
}

impl HelperError {
    /// The same error with `lines` as the helper's output, where it reports output.
    pub(crate) fn with_output(mut self, lines: Vec<String>) -> Self {
        match &mut self {
            Self::Exited { output, .. }
            | Self::Status { output, .. }
            | Self::NoStatus { output, .. }
            | Self::NotVisible { output, .. } => *output = lines,
            Self::Missing { .. } | Self::NotExecutable(_) | Self::Io { .. } => {}
        }
        self
    }
}

/// "; it said: ..." with the helper's last output lines, or nothing.
fn said(output: &[String]) -> String {
    if output.is_empty() {
        String::from(" (it printed nothing)")
    } else {
        format!("; its last output:\n  {}", output.join("\n  "))
    }
}

/// " (No such file or directory)" for a status that is an errno.
fn errno_text(status: i32) -> String {
    if (1..256).contains(&status) {
        format!(" ({})", io::Error::from_raw_os_error(status))
    } else {
        String::new()
    }
}
