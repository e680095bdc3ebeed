//! `markbase mount` (the serving process: in the foreground, or the background half)
//! and `markbase umount`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use markbase_fuse::{Mount, MountOptions, Unmounted, unmount_path};
use markbase_nfs::{NfsMount, NfsMountOptions};
use markbase_vfs::Vfs;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::backend::{self, Machine, Way};
use crate::cli::{Backend, MountArgs, Passthrough, UmountArgs};
use crate::registry::{self, Record, Registration};
use crate::status::{Mounted, Status};

/// How often the foreground loop looks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// How long `markbase umount` may take: to unmount, and for the serving process to end.
const UMOUNT_LIMIT: Duration = Duration::from_secs(15);

/// `markbase mount` in the process that serves: mounts `vfs` the way `--backend` says
/// (for `auto`, the first way this machine offers that works, each failure named
/// before the next is tried), and stays until the mount ends or a signal asks to
/// unmount.
pub fn mount(vfs: Vfs, args: &MountArgs) -> anyhow::Result<()> {
    if let Some(protocol) = args.fuse_t_backend
        && matches!(args.backend, Backend::Fuse | Backend::Nfs)
    {
        bail!(
            "--fuse-t-backend {} is for mounts made through fuse-t, and --backend {} does not use it",
            value_name(&protocol),
            value_name(&args.backend)
        );
    }
    let backend = match (args.passthrough, args.backend) {
        (Passthrough::On, _) if cfg!(target_os = "macos") => {
            bail!("--passthrough on is Linux's FUSE passthrough, which macOS does not have")
        }
        // Only the kernel's FUSE passes files through: asked for, it is the one way.
        (Passthrough::On, Backend::Auto) => Backend::Fuse,
        (Passthrough::On, Backend::FuseT | Backend::Nfs) => bail!(
            "--passthrough on needs the kernel's FUSE (--backend fuse, Linux), and --backend {} does not pass files through",
            value_name(&args.backend)
        ),
        (_, backend) => backend,
    };
    let mut options = MountOptions {
        threads: args.threads,
        writeback_cache: args.writeback_cache,
        allow_other: args.allow_other,
        passthrough: args.passthrough.into(),
        ..MountOptions::default()
    };
    options.helper.backend = args.fuse_t_backend.map(Into::into);
    let ways = Ways {
        backend,
        fuse: options,
        nfs: NfsMountOptions {
            mount_timeout: args.mount_timeout,
            ..NfsMountOptions::default()
        },
    };
    let reporting = match &args.serve_for_parent {
        Some(log) => Reporting {
            status: Status::Parent,
            log: Some(log.clone()),
        },
        None => Reporting::terminal(),
    };
    mount_as(Arc::new(vfs), &args.mountpoint, &ways, reporting)
}

/// A flag value as it is written on the command line.
fn value_name(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default()
}

/// Where a serving process reports, and the log it writes, if not the terminal.
pub struct Reporting {
    /// Where progress and the outcome go.
    pub status: Status,
    /// The background mount's log file.
    pub log: Option<PathBuf>,
}

impl Reporting {
    /// On the terminal, logging there too: a foreground mount.
    pub fn terminal() -> Self {
        Self {
            status: Status::Terminal,
            log: None,
        }
    }
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

/// Mounts `vfs` on `mountpoint` as `ways` says, reporting as `reporting` says, and
/// serves it until it is taken off from outside, or SIGINT, SIGTERM or SIGHUP unmounts
/// it.
pub fn mount_as(
    vfs: Arc<Vfs>,
    mountpoint: &Path,
    ways: &Ways,
    mut reporting: Reporting,
) -> anyhow::Result<()> {
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
            reporting
                .status
                .say(&format!("mounting via {} ({why})", way.name()));
        }
        match start(*way, Arc::clone(&vfs), mountpoint, ways) {
            Ok(mount) => return stay(&vfs, mount, *way, &mut signals, reporting),
            Err(err) => match tries.peek() {
                Some((next, _)) => reporting.status.say(&format!(
                    "mounting via {} failed: {err:#}; trying {}",
                    way.name(),
                    next.name()
                )),
                // When markbase chose, the ways it passed over say what else to do.
                None if ways.backend == Backend::Auto && !plan.passed.is_empty() => {
                    bail!(
                        "mounting via {} failed: {err:#}; no other way to mount is left ({})",
                        way.name(),
                        plan.passed_over()
                    );
                }
                None => return Err(err),
            },
        }
    }
    unreachable!("a plan with tries returns from its last")
}

/// Mounts `vfs` on `mountpoint` the way `way` says.
pub fn start(
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
pub trait Foreground {
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

/// Reports that `mount` of `vfs` (made `way`) is there, records it, and stays until
/// it is taken off from outside or one of `signals` asks to unmount it.
fn stay(
    vfs: &Vfs,
    mount: Box<dyn Foreground>,
    way: Way,
    signals: &mut Signals,
    mut reporting: Reporting,
) -> anyhow::Result<()> {
    let mountpoint = mount.mountpoint().to_owned();
    let shown = mountpoint.display().to_string();
    let _registration = register(vfs, &mountpoint, way, reporting.log.clone());
    reporting.status.mounted(
        Mounted {
            catalog: vfs.catalog_path().to_owned(),
            mountpoint: mountpoint.clone(),
            backend: way.name().to_owned(),
            read_only: vfs.config().read_only,
        },
        &format!("Ctrl-C or `markbase umount {shown}` unmounts"),
    );
    loop {
        if mount.wait_ended(SIGNAL_POLL) {
            reporting.status.say(&format!("{shown} was unmounted"));
            return Ok(());
        }
        if let Some(signal) = signals.pending().next() {
            tracing::info!("signal {signal} received; unmounting");
            break;
        }
    }
    mount.unmount()?;
    reporting.status.say(&format!("unmounted {shown}"));
    Ok(())
}

/// Records the mount for `markbase mounts` and `markbase umount`; a mount that cannot
/// be recorded still serves, with a warning.
fn register(vfs: &Vfs, mountpoint: &Path, way: Way, log: Option<PathBuf>) -> Option<Registration> {
    let entry = markbase_fuse::mount_at(mountpoint).ok().flatten();
    let record = Record {
        mountpoint: mountpoint.to_owned(),
        catalog: vfs.catalog_path().to_owned(),
        backend: way.name().to_owned(),
        pid: std::process::id(),
        since: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        log,
        fstype: entry.as_ref().map(|e| e.fstype.clone()).unwrap_or_default(),
        source: entry.map(|e| e.source).unwrap_or_default(),
    };
    Registration::new(&record)
        .inspect_err(|err| tracing::warn!("`markbase mounts` will not list this mount: {err:#}"))
        .ok()
}

/// `markbase umount`: unmounts a mount point, or clears a dead mount there, within
/// [`UMOUNT_LIMIT`]; then waits (within the same limit) for the markbase process that
/// served it to end, and says so.
pub fn umount(args: &UmountArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let point = registry::canonical(&args.mountpoint)?;
    let path = point.display().to_string();
    let served_by = registry::find(&point)?;
    let (lazy, asked) = (args.lazy, args.mountpoint.clone());
    let done = markbase_process::with_deadline(UMOUNT_LIMIT, move || unmount_path(&asked, lazy))
        .with_context(|| {
            format!(
                "unmounting {path} did not finish within {} (its server may be gone); `markbase umount --lazy {path}` forces it",
                humantime::format_duration(UMOUNT_LIMIT)
            )
        })??;
    let said = match done {
        Unmounted::Unmounted => format!("unmounted {path}"),
        Unmounted::Detached => {
            format!("detached {path}; it goes away when the last program using it is done")
        }
        Unmounted::ClearedDead => format!(
            "{path} was a dead mount (its server had exited: Transport endpoint is not connected); cleared it"
        ),
    };
    let Some(entry) = served_by else {
        eprintln!("markbase: {said}");
        return Ok(());
    };
    let pid = entry.record.pid;
    // The serving process sees the mount end, removes its record and exits; a detached
    // mount ends only when its last user leaves.
    let deadline = started + UMOUNT_LIMIT;
    while done != Unmounted::Detached && entry.file.exists() && entry.record.process_alive() {
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !entry.file.exists() {
        eprintln!("markbase: {said}; markbase pid {pid}, which served it, has stopped");
    } else if entry.record.process_alive() {
        let log = entry.record.log.as_ref();
        eprintln!(
            "markbase: {said}; markbase pid {pid}, which serves it, is still finishing{}",
            log.map(|log| format!(" (log: {})", log.display()))
                .unwrap_or_default()
        );
    } else {
        // Its process was gone already (killed): the record is stale.
        entry.forget();
        eprintln!("markbase: {said}");
    }
    Ok(())
}
