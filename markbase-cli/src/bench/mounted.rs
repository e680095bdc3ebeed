//! `markbase bench --backend`: the catalog mounted each way asked for, in turn, and
//! benched there, then its store's own directory as the baseline: on a Mac this says
//! which way to mount.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use markbase_vfs::Vfs;

use super::progress::Progress;
use super::run::{Run, Settings, bench_target};
use crate::backend::Way;
use crate::cli::BenchBackend;
use crate::mount::{self, Ways};

/// The label of the store's own directory, the baseline.
pub const RAW: &str = "raw";

/// Benches `vfs` mounted the way(s) `backend` says, each on a new temporary directory
/// and unmounted after, then the store's directory. With `all`, a way this machine
/// does not offer, or that fails to mount, is named with why and skipped; a way asked
/// for by name must work.
pub fn runs(
    vfs: Arc<Vfs>,
    backend: BenchBackend,
    settings: &Settings,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Vec<Run>> {
    let ways = Ways::auto();
    let chosen = match backend {
        BenchBackend::All => {
            let plan = ways.plan();
            for (way, why) in &plan.passed {
                eprintln!("markbase: not benching via {}: {why}", way.name());
            }
            plan.tries.iter().map(|(way, _)| *way).collect()
        }
        BenchBackend::Fuse => vec![Way::Fuse],
        BenchBackend::FuseT => vec![Way::FuseT],
        BenchBackend::Nfs => vec![Way::Nfs],
    };
    let mut runs = Vec::new();
    for way in chosen {
        match bench_mounted(way, &vfs, &ways, settings, progress, stop) {
            Ok(run) => runs.push(run),
            Err(err) if backend == BenchBackend::All && err.is::<Unmountable>() => {
                eprintln!("markbase: not benching via {}: {err:#}", way.name());
            }
            Err(err) => return Err(err),
        }
    }
    if runs.is_empty() {
        bail!("no way to mount worked on this machine, so nothing was benched");
    }
    let store = vfs.store_dir();
    std::fs::create_dir_all(store)
        .with_context(|| format!("cannot create the store directory {}", store.display()))?;
    runs.push(bench_target(RAW, store, settings, progress, stop)?);
    Ok(runs)
}

/// A way that could not mount (as opposed to a bench that failed on its mount).
#[derive(Debug, thiserror::Error)]
#[error("mounting failed: {0:#}")]
struct Unmountable(anyhow::Error);

/// Mounts `vfs` the way `way` says on a new temporary directory, benches the mount and
/// unmounts it, whatever the bench's outcome.
fn bench_mounted(
    way: Way,
    vfs: &Arc<Vfs>,
    ways: &Ways,
    settings: &Settings,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Run> {
    let point = tempfile::Builder::new()
        .prefix(&format!("markbase-bench-{}-", way.name()))
        .tempdir()
        .context("cannot make a temporary mount point")?;
    let mount = mount::start(way, Arc::clone(vfs), point.path(), ways).map_err(Unmountable)?;
    let run = bench_target(way.name(), mount.mountpoint(), settings, progress, stop);
    let unmounted = unmount(mount, point.path());
    let run = run?;
    unmounted?;
    Ok(run)
}

fn unmount(mount: Box<dyn mount::Foreground>, point: &Path) -> Result<()> {
    mount
        .unmount()
        .with_context(|| format!("cannot unmount the bench's mount {}", point.display()))
}
