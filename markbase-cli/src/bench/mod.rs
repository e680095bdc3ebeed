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
mod progress;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

pub use formats::Format;
pub use run::Interrupted;

use crate::cli::BenchArgs;
use progress::Progress;
use report::Report;
use run::{Settings, bench_target};

/// Runs `markbase bench` as `args` say, printing the report on stdout.
pub fn run(args: &BenchArgs) -> Result<()> {
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
    let mut targets = vec![("dir", args.dir.clone())];
    if let Some(raw) = &args.compare {
        targets.push(("raw", raw.clone()));
    }
    let progress = Progress::stderr();
    let runs = targets
        .iter()
        .map(|(label, dir)| bench_target(label, dir, &settings, &progress, &stop))
        .collect::<Result<Vec<_>>>()?;
    drop(progress);

    let mut report = Report::new(settings, runs, args.compare.as_ref().map(|_| "raw".into()));
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
    let dir = crate::data_dir::markbase_data_dir()
        .context("neither XDG_DATA_HOME nor HOME is set; pass --chart FILE or --no-chart")?
        .join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Ok(Some(
        dir.join(format!("bench-{}.svg", now.replace(':', "-"))),
    ))
}
