//! [`Mount`]: a catalog mounted on a directory, until it is unmounted.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuse_backend_rs::api::server::Server;
use markbase_vfs::Vfs;

use crate::error::MountError;
use crate::fs::{CachePolicy, MarkbaseFs};
use crate::helper::{HelperConfig, HelperSession};
#[cfg(target_os = "linux")]
use crate::kernel::KernelSession;
use crate::mounts;
#[cfg(target_os = "linux")]
use crate::passthrough::Passthrough;

/// Whether a `/dev/fuse` mount passes files through to the kernel (Linux 6.9+), which
/// then reads and writes them itself, at the disk's speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PassthroughMode {
    /// Where the kernel offers it and this process may use it (CAP_SYS_ADMIN).
    #[default]
    Auto,
    /// Always: a mount that cannot fails.
    On,
    /// Never: markbase serves every read and write.
    Off,
}

/// How a catalog is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Request threads.
    pub threads: NonZeroUsize,
    /// Let the kernel gather writes in its page cache (Linux; faster small writes,
    /// but a crash loses what it had not sent yet).
    pub writeback_cache: bool,
    /// Let users other than the one mounting reach the mount (`allow_other`; Linux,
    /// where an unprivileged user needs `user_allow_other` in `/etc/fuse.conf`). The
    /// kernel then checks each user's access against the owner and mode every node
    /// reports.
    pub allow_other: bool,
    /// How long unmounting may take, threads included.
    pub shutdown_limit: Duration,
    /// Whether files are passed through to the kernel (a `/dev/fuse` mount on Linux;
    /// not with `writeback_cache`, which the kernel does not combine with it).
    pub passthrough: PassthroughMode,
    /// The fuse-t helper (macOS, or [`Mount::with_helper`]).
    pub helper: HelperConfig,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            threads: NonZeroUsize::new(4).expect("non-zero"),
            writeback_cache: false,
            allow_other: false,
            shutdown_limit: Duration::from_secs(5),
            passthrough: PassthroughMode::default(),
            helper: HelperConfig::from_env("markbase"),
        }
    }
}

/// A live mount. It stays until [`Mount::unmount`], until dropped, or until it is
/// unmounted from outside ([`Mount::wait_ended`] then returns true).
pub struct Mount {
    mountpoint: PathBuf,
    shutdown_limit: Duration,
    session: Option<Session>,
}

enum Session {
    #[cfg(target_os = "linux")]
    Kernel(KernelSession),
    Helper(HelperSession),
}

impl Mount {
    /// Mounts `vfs` on `mountpoint` the platform's way: `/dev/fuse` on Linux, fuse-t on macOS.
    ///
    /// The mount point must be an existing, empty directory that is not a mount point;
    /// a dead FUSE mount left there by a killed server is cleared first.
    pub fn new(
        vfs: Arc<Vfs>,
        mountpoint: &Path,
        options: &MountOptions,
    ) -> Result<Self, MountError> {
        #[cfg(target_os = "linux")]
        {
            let mountpoint = mounts::prepare_mount_point(mountpoint)?;
            let read_only = vfs.config().read_only;
            let passthrough = Arc::new(Passthrough::new(passthrough_mode(options)?));
            // Where the files to pass through live (the catalog's directory until the
            // store is made): a backing is tried there. Not the catalog itself: closing
            // any descriptor of it would drop SQLite's locks on it.
            let probe = Some(vfs.store_dir())
                .filter(|store| store.is_dir())
                .or_else(|| vfs.catalog_path().parent())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let cache = cache_policy(&vfs, options);
            let fs =
                Arc::new(MarkbaseFs::new(vfs, cache).passing_through(Arc::clone(&passthrough)));
            let session = KernelSession::start(
                Arc::new(Server::new(fs)),
                &mountpoint,
                read_only,
                options.threads.get(),
                options.allow_other,
                (&passthrough, &probe),
            )?;
            Ok(Self::live(mountpoint, options, Session::Kernel(session)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            Self::with_helper(vfs, mountpoint, options)
        }
    }

    /// Mounts `vfs` through a fuse-t helper ([`MountOptions::helper`]), verifying the
    /// mount before returning. This is how macOS mounts; on Linux, tests use it with a
    /// helper that speaks the same protocol.
    pub fn with_helper(
        vfs: Arc<Vfs>,
        mountpoint: &Path,
        options: &MountOptions,
    ) -> Result<Self, MountError> {
        let mountpoint = mounts::prepare_mount_point(mountpoint)?;
        let read_only = vfs.config().read_only;
        let (server, fs) = server(vfs, options);
        let session = HelperSession::start(
            server,
            &fs,
            &mountpoint,
            read_only,
            options.threads.get(),
            &options.helper,
        )?;
        Ok(Self::live(mountpoint, options, Session::Helper(session)))
    }

    fn live(mountpoint: PathBuf, options: &MountOptions, session: Session) -> Self {
        Self {
            mountpoint,
            shutdown_limit: options.shutdown_limit,
            session: Some(session),
        }
    }

    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits up to `limit` for the mount to end from outside (`umount`, the helper
    /// exiting); true if it has ended.
    pub fn wait_ended(&self, limit: Duration) -> bool {
        match &self.session {
            #[cfg(target_os = "linux")]
            Some(Session::Kernel(session)) => session.wait_ended(limit),
            Some(Session::Helper(session)) => session.wait_ended(limit),
            None => true,
        }
    }

    /// Unmounts and ends every request thread within [`MountOptions::shutdown_limit`],
    /// even while programs still use the mount (they then get errors).
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), MountError> {
        match self.session.take() {
            #[cfg(target_os = "linux")]
            Some(Session::Kernel(session)) => session.stop(self.shutdown_limit),
            Some(Session::Helper(session)) => session.stop(self.shutdown_limit),
            None => Ok(()),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!("{err}");
        }
    }
}

/// The kernel-cache policy of a mount of `vfs` with `options`.
fn cache_policy(vfs: &Vfs, options: &MountOptions) -> CachePolicy {
    CachePolicy {
        ttl: vfs.config().attr_ttl,
        writeback: options.writeback_cache,
    }
}

/// The passthrough `options` ask for, as the kernel allows it: not beside the
/// writeback cache (asked for both, the mount fails; `auto` gives it up).
#[cfg(target_os = "linux")]
fn passthrough_mode(options: &MountOptions) -> Result<PassthroughMode, MountError> {
    match (options.passthrough, options.writeback_cache) {
        (PassthroughMode::On, true) => Err(MountError::Passthrough(String::from(
            "the kernel passes no file through on a mount with the writeback cache; leave out one of them",
        ))),
        (PassthroughMode::Auto, true) => {
            tracing::info!(
                "files are not passed through to the kernel: the writeback cache was asked for, and the kernel does not combine them"
            );
            Ok(PassthroughMode::Off)
        }
        (mode, _) => Ok(mode),
    }
}

/// The FUSE server over `vfs`, and the filesystem it serves (through fuse-t's helper).
fn server(
    vfs: Arc<Vfs>,
    options: &MountOptions,
) -> (Arc<Server<Arc<MarkbaseFs>>>, Arc<MarkbaseFs>) {
    let cache = cache_policy(&vfs, options);
    let fs = Arc::new(MarkbaseFs::new(vfs, cache));
    (Arc::new(Server::new(Arc::clone(&fs))), fs)
}
