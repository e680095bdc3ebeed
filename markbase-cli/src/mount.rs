//! `markbase mount` and `markbase umount`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use markbase_fuse::{Mount, MountOptions, Unmounted, unmount_path};
use markbase_nfs::{NfsMount, NfsMountOptions};
use markbase_vfs::Vfs;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{Backend, MountArgs, UmountArgs};

/// How often the foreground loop looks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// `markbase mount`: mounts `vfs` and stays until the mount ends or a signal asks to unmount.
pub fn mount(vfs: Vfs, args: &MountArgs) -> anyhow::Result<()> {
    if args.backend == Backend::Nfs {
        let options = NfsMountOptions {
            mount_timeout: args.mount_timeout,
            ..NfsMountOptions::default()
        };
        return serve_nfs(Arc::new(vfs), &args.mountpoint, options);
    }
    let options = MountOptions {
        threads: args.threads,
        writeback_cache: args.writeback_cache,
        allow_other: args.allow_other,
        ..MountOptions::default()
    };
    serve(Arc::new(vfs), &args.mountpoint, &options)
}

/// Mounts `vfs` on `mountpoint` in the foreground: until it is unmounted from
/// outside, or SIGINT, SIGTERM or SIGHUP unmounts it.
pub fn serve(vfs: Arc<Vfs>, mountpoint: &Path, options: &MountOptions) -> anyhow::Result<()> {
    foreground(vfs, "", |vfs| Ok(Mount::new(vfs, mountpoint, options)?))
}

/// Mounts `vfs` on `mountpoint` through markbase's NFS server, in the foreground as
/// [`serve`] does; unmounts before the server stops.
fn serve_nfs(vfs: Arc<Vfs>, mountpoint: &Path, options: NfsMountOptions) -> anyhow::Result<()> {
    foreground(vfs, " via NFS", |vfs| {
        Ok(NfsMount::start(vfs, mountpoint, options)?)
    })
}

/// A mount `markbase mount` stays with: FUSE's or NFS's.
trait Foreground {
    /// Where it is mounted.
    fn mountpoint(&self) -> &Path;
    /// Whether it was taken off from outside, waiting up to `limit`.
    fn wait_ended(&self, limit: Duration) -> bool;
    /// Takes it off.
    fn unmount(self) -> anyhow::Result<()>;
}

impl Foreground for Mount {
    fn mountpoint(&self) -> &Path {
        Mount::mountpoint(self)
    }
    fn wait_ended(&self, limit: Duration) -> bool {
        Mount::wait_ended(self, limit)
    }
    fn unmount(self) -> anyhow::Result<()> {
        Ok(Mount::unmount(self)?)
    }
}

impl Foreground for NfsMount {
    fn mountpoint(&self) -> &Path {
        NfsMount::mountpoint(self)
    }
    fn wait_ended(&self, limit: Duration) -> bool {
        NfsMount::wait_ended(self, limit)
    }
    fn unmount(self) -> anyhow::Result<()> {
        Ok(NfsMount::unmount(self)?)
    }
}

/// Mounts `vfs` with `mount`, says so (`via` names the way), and stays until the
/// mount is taken off from outside or a signal asks to unmount it.
fn foreground<M: Foreground>(
    vfs: Arc<Vfs>,
    via: &str,
    mount: impl FnOnce(Arc<Vfs>) -> anyhow::Result<M>,
) -> anyhow::Result<()> {
    // Signals are caught before mounting, so that none is lost in between.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    let mount = mount(vfs)?;
    let mountpoint = mount.mountpoint().display().to_string();
    eprintln!(
        "markbase: {catalog} mounted on {mountpoint}{via}{}; Ctrl-C or `markbase umount {mountpoint}` unmounts",
        if read_only { " (read-only)" } else { "" }
    );
    loop {
        if mount.wait_ended(SIGNAL_POLL) {
            eprintln!("markbase: {mountpoint} was unmounted");
            return Ok(());
        }
        if let Some(signal) = signals.pending().next() {
            tracing::info!("signal {signal} received; unmounting");
            break;
        }
    }
    mount.unmount()?;
    eprintln!("markbase: unmounted {mountpoint}");
    Ok(())
}

/// Why this machine cannot mount, if it cannot: no FUSE device, no fuse-t helper.
pub fn unavailable(options: &MountOptions) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let _ = options;
        (!Path::new("/dev/fuse").exists()).then(|| {
            String::from("/dev/fuse is missing (load the fuse module, or give the container --device /dev/fuse)")
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        markbase_fuse::locate_helper(options.helper.path.as_deref())
            .err()
            .map(|err| err.to_string())
    }
}

/// Unmounts a mount point, or clears a dead mount there.
pub fn umount(args: &UmountArgs) -> anyhow::Result<()> {
    let path = args.mountpoint.display();
    match unmount_path(&args.mountpoint, args.lazy)? {
        Unmounted::Unmounted => eprintln!("markbase: unmounted {path}"),
        Unmounted::Detached => eprintln!(
            "markbase: detached {path}; it goes away when the last program using it is done"
        ),
        Unmounted::ClearedDead => eprintln!(
            "markbase: {path} was a dead mount (its server had exited: Transport endpoint is not connected); cleared it"
        ),
    }
    Ok(())
}
