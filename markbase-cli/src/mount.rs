//! `markbase mount` and `markbase umount`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use markbase_fuse::{Mount, MountOptions, Unmounted, unmount_path};
use markbase_nfs::{NfsMount, NfsMountOptions};
use markbase_vfs::Vfs;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::backend::{self, Machine, Way};
use crate::cli::{Backend, MountArgs, UmountArgs};

/// How often the foreground loop looks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// `markbase mount`: mounts `vfs` the way `--backend` says (for `auto`, the first way
/// this machine offers that works, each failure named before the next is tried), and
/// stays until the mount ends or a signal asks to unmount.
pub fn mount(vfs: Vfs, args: &MountArgs) -> anyhow::Result<()> {
    let options = MountOptions {
        threads: args.threads,
        writeback_cache: args.writeback_cache,
        allow_other: args.allow_other,
        ..MountOptions::default()
    };
    let ways = Ways {
        backend: args.backend,
        fuse: options,
        nfs: NfsMountOptions {
            mount_timeout: args.mount_timeout,
            ..NfsMountOptions::default()
        },
    };
    mount_as(Arc::new(vfs), &args.mountpoint, &ways)
}

/// How to mount: the backend asked for, and each way's options.
pub struct Ways {
    /// `--backend`.
    pub backend: Backend,
    /// FUSE's and fuse-t's options.
    pub fuse: MountOptions,
    /// NFS's options.
    pub nfs: NfsMountOptions,
}

impl Ways {
    /// `auto` with every way's defaults (`markbase demo`).
    pub fn auto() -> Self {
        Self {
            backend: Backend::Auto,
            fuse: MountOptions::default(),
            nfs: NfsMountOptions::default(),
        }
    }

    /// The ways to try on this machine.
    pub fn plan(&self) -> backend::Plan {
        backend::plan(
            self.backend,
            &Machine::probe(self.fuse.helper.path.as_deref()),
        )
    }
}

/// Mounts `vfs` on `mountpoint` as `ways` says, in the foreground: until it is taken
/// off from outside, or SIGINT, SIGTERM or SIGHUP unmounts it.
pub fn mount_as(vfs: Arc<Vfs>, mountpoint: &Path, ways: &Ways) -> anyhow::Result<()> {
    // A mount point no way could use fails once, before any way is tried.
    markbase_fuse::prepare_mount_point(mountpoint)?;
    let plan = ways.plan();
    for (way, why) in &plan.passed {
        tracing::info!("not mounting via {}: {why}", way.name());
    }
    if plan.tries.is_empty() {
        bail!(
            "this machine offers no way to mount ({})",
            plan.passed_over()
        );
    }
    // Signals are caught before mounting, so that none is lost in between.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let mut tries = plan.tries.iter().peekable();
    while let Some((way, why)) = tries.next() {
        // The choice is said when markbase made it; one asked for needs no reason.
        if ways.backend == Backend::Auto {
            eprintln!("markbase: mounting via {} ({why})", way.name());
        }
        match start(*way, Arc::clone(&vfs), mountpoint, ways) {
            Ok(mount) => return stay(&vfs, mount, *way, &mut signals),
            Err(err) => match tries.peek() {
                Some((next, _)) => eprintln!(
                    "markbase: mounting via {} failed: {err:#}; trying {}",
                    way.name(),
                    next.name()
                ),
                None => return Err(err),
            },
        }
    }
    unreachable!("a plan with tries returns from its last")
}

/// Mounts `vfs` on `mountpoint` the way `way` says.
fn start(
    way: Way,
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    ways: &Ways,
) -> anyhow::Result<Box<dyn Foreground>> {
    Ok(match way {
        Way::Fuse if cfg!(target_os = "macos") => {
            bail!("--backend fuse is Linux's /dev/fuse; on macOS mount via nfs or fuse-t")
        }
        Way::Fuse => Box::new(Mount::new(vfs, mountpoint, &ways.fuse)?),
        Way::FuseT => Box::new(Mount::with_helper(vfs, mountpoint, &ways.fuse)?),
        Way::Nfs => Box::new(NfsMount::start(vfs, mountpoint, ways.nfs.clone())?),
    })
}

/// A mount `markbase mount` stays with: FUSE's or NFS's.
trait Foreground {
    /// Where it is mounted.
    fn mountpoint(&self) -> &Path;
    /// Whether it was taken off from outside, waiting up to `limit`.
    fn wait_ended(&self, limit: Duration) -> bool;
    /// Takes it off.
    fn unmount(self: Box<Self>) -> anyhow::Result<()>;
}

impl Foreground for Mount {
    fn mountpoint(&self) -> &Path {
        Mount::mountpoint(self)
    }
    fn wait_ended(&self, limit: Duration) -> bool {
        Mount::wait_ended(self, limit)
    }
    fn unmount(self: Box<Self>) -> anyhow::Result<()> {
        Ok(Mount::unmount(*self)?)
    }
}

impl Foreground for NfsMount {
    fn mountpoint(&self) -> &Path {
        NfsMount::mountpoint(self)
    }
    fn wait_ended(&self, limit: Duration) -> bool {
        NfsMount::wait_ended(self, limit)
    }
    fn unmount(self: Box<Self>) -> anyhow::Result<()> {
        Ok(NfsMount::unmount(*self)?)
    }
}

/// Says that `mount` of `vfs` (made `way`) is there, and stays until it is taken off
/// from outside or one of `signals` asks to unmount it.
fn stay(
    vfs: &Vfs,
    mount: Box<dyn Foreground>,
    way: Way,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let catalog = vfs.catalog_path().display();
    let mountpoint = mount.mountpoint().display().to_string();
    eprintln!(
        "markbase: {catalog} mounted on {mountpoint} via {}{}; Ctrl-C or `markbase umount {mountpoint}` unmounts",
        way.name(),
        if vfs.config().read_only {
            " (read-only)"
        } else {
            ""
        }
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
