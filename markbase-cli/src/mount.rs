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
    // Signals are caught before mounting, so that none is lost in between.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    let mount = Mount::new(vfs, mountpoint, options)?;
    let mountpoint = mount.mountpoint().display().to_string();
    eprintln!(
        "markbase: {catalog} mounted on {mountpoint}{}; Ctrl-C or `markbase umount {mountpoint}` unmounts",
        if read_only { " (read-only)" } else { "" }
    );
    if !signalled(&mut signals, &mountpoint, |limit| mount.wait_ended(limit)) {
        return Ok(());
    }
    mount.unmount()?;
    eprintln!("markbase: unmounted {mountpoint}");
    Ok(())
}

/// Mounts `vfs` on `mountpoint` through markbase's NFS server, in the foreground as
/// [`serve`] does; unmounts before the server stops.
fn serve_nfs(vfs: Arc<Vfs>, mountpoint: &Path, options: NfsMountOptions) -> anyhow::Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    let mount = NfsMount::start(vfs, mountpoint, options)?;
    let mountpoint = mount.mountpoint().display().to_string();
    eprintln!(
        "markbase: {catalog} mounted on {mountpoint} via NFS{}; Ctrl-C or `markbase umount {mountpoint}` unmounts",
        if read_only { " (read-only)" } else { "" }
    );
    if !signalled(&mut signals, &mountpoint, |limit| mount.wait_ended(limit)) {
        return Ok(());
    }
    mount.unmount()?;
    eprintln!("markbase: unmounted {mountpoint}");
    Ok(())
}

/// Waits until the mount at `mountpoint` is taken off from outside (false: said so)
/// or a signal asks to unmount it (true).
fn signalled(signals: &mut Signals, mountpoint: &str, ended: impl Fn(Duration) -> bool) -> bool {
    loop {
        if ended(SIGNAL_POLL) {
            eprintln!("markbase: {mountpoint} was unmounted");
            return false;
        }
        if let Some(signal) = signals.pending().next() {
            tracing::info!("signal {signal} received; unmounting");
            return true;
        }
    }
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
