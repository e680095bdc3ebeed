//! `markbase bench DIR`: the disk test of video tools (AJA System Test, Blackmagic Disk
//! Speed Test) on any directory: one file of video-sized frames written and read back
//! frame by frame past the page cache, timed, checked, and removed.
//!
//! A bench is a list of targets (label, directory), each benched in turn by
//! [`bench_target`] and reported together by [`Report`]: `--compare` adds the raw
//! directory as a second target and baseline.

mod chart;
mod formats;
mod io;
mod mounted;
mod progress;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use markbase_vfs::Vfs;

pub use formats::Format;
pub use run::Interrupted;

use crate::cli::BenchArgs;
use progress::Progress;
use report::Report;
use run::{Settings, bench_target};

/// Runs `markbase bench` as `args` say, printing the report on stdout; `open` opens
/// the catalog, for `--backend`.
pub fn run(args: &BenchArgs, open: impl FnOnce() -> Result<Vfs>) -> Result<()> {
    let settings = Settings::new(
        args.format,
        args.frame_size,
        args.target_fps,
        args.file_size,
        args.duration,
        !args.cached,
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .context("cannot install signal handlers")?;
    }
    let progress = Progress::stderr();
    let (runs, baseline) = match (&args.dir, args.backend) {
        (_, Some(backend)) => (
            mounted::runs(Arc::new(open()?), backend, &settings, &progress, &stop)?,
            Some(String::from(mounted::RAW)),
        ),
        (Some(dir), None) => {
            let mut runs = vec![bench_target("dir", dir, &settings, &progress, &stop)?];
            if let Some(raw) = &args.compare {
                runs.push(bench_target("raw", raw, &settings, &progress, &stop)?);
            }
            (runs, args.compare.as_ref().map(|_| String::from("raw")))
        }
        (None, None) => unreachable!("clap requires DIR or --backend"),
    };
    drop(progress);

    let mut report = Report::new(settings, runs, baseline);
    let chart = chart_path(args).and_then(|path| match path {
        Some(path) => chart::write_svg(&report, &path).map(|()| Some(path)),
        None => Ok(None),
    });
    report.chart = chart.as_ref().ok().cloned().flatten();
    if args.json {
        println!("{}", report.json()?);
    } else {
        print!("{}", report.table());
    }
    chart.map(|_| ())
}

/// Where the chart goes: `--chart FILE`, none with `--no-chart`, otherwise a file named
/// by the time in the data directory's `bench/` (created).
fn chart_path(args: &BenchArgs) -> Result<Option<PathBuf>> {
    if args.no_chart {
        return Ok(None);
    }
    if let Some(path) = &args.chart {
        return Ok(Some(path.clone()));
    }
    let dir = crate::data_dir::data_dir()
        .context("pass --chart FILE or --no-chart")?
        .join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Ok(Some(
        dir.join(format!("bench-{}.svg", now.replace(':', "-"))),
    ))
}
