//! The SVG chart of a bench: each frame's MB/s against the seconds elapsed in its phase,
//! one line per target and direction, and the format's need as a flat line.
//!
//! Drawn with `plotters` (SVG backend only). Without its `ttf` and `ab_glyph` features,
//! plotters lays text out with a built-in estimate of glyph widths and writes it as
//! `<text>` elements for the viewer to render (escaped), so it needs no font file: the
//! chart is made on a minimal machine with no fonts installed, as CI's is. A hand-made
//! SVG would have repeated its axes, ticks and legend for no gain.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use super::report::Report;

/// Most points a line gets: more frames than this are merged into even groups.
const MAX_POINTS: usize = 2000;

/// The lines' colours, in turn.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Writes the chart of `report` to `path` (an SVG file).
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    draw(report, path)
        .map_err(|err| anyhow!("{err}"))
        .with_context(|| format!("cannot write the chart {}", path.display()))
}

/// `(label, points)` of every line: x seconds, y MB/s.
type Series = Vec<(String, Vec<(f64, f64)>)>;

fn series(report: &Report) -> Series {
    let mut lines = Series::new();
    for run in &report.runs {
        for (direction, phase) in [("write", &run.write), ("read", &run.read)] {
            let points = points(run.frame_bytes, &phase.frame_times);
            lines.push((format!("{} {direction}", run.label), points));
        }
    }
    lines
}

/// One point per group of frames: the group's end (seconds of I/O since the phase
/// started) and its MB/s.
fn points(frame_bytes: u64, times: &[Duration]) -> Vec<(f64, f64)> {
    let group = times.len().div_ceil(MAX_POINTS).max(1);
    let mut elapsed = 0.0;
    times
        .chunks(group)
        .map(|chunk| {
            let seconds: f64 = chunk.iter().map(Duration::as_secs_f64).sum();
            elapsed += seconds;
            let bytes = (frame_bytes * chunk.len() as u64) as f64;
            (
                elapsed,
                if seconds > 0.0 {
                    bytes / seconds / 1e6
                } else {
                    0.0
                },
            )
        })
        .collect()
}

fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let lines = series(report);
    let need = report
        .runs
        .iter()
        .map(|r| r.need_mb_per_s)
        .fold(0.0, f64::max);
    let x_max = lines
        .iter()
        .flat_map(|(_, points)| points.last())
        .map(|&(x, _)| x)
        .fold(0.0, f64::max)
        .max(1e-3);
    // Single frames can be very fast (a cache): the scale stops at the 99th percentile of
    // all points, and points above are drawn at the top.
    let mut ys: Vec<f64> = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .collect();
    ys.sort_by(f64::total_cmp);
    let p99 = ys
        .get((ys.len() * 99 / 100).min(ys.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    let y_max = (p99.max(need) * 1.1).max(1.0);
    let clipped = ys.last().is_some_and(|&y| y > y_max);

    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "markbase bench: {}, {} B frames at {} fps",
        report.settings.description, report.settings.frame_bytes, report.settings.fps
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    let y_desc = if clipped {
        format!("MB/s per frame (10^6 B/s; above {y_max:.0} drawn at the top)")
    } else {
        "MB/s per frame (10^6 B/s)".to_owned()
    };
    chart
        .configure_mesh()
        .x_desc("seconds of I/O since the phase started")
        .y_desc(y_desc)
        .draw()?;
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = points.into_iter().map(|(x, y)| (x, y.min(y_max)));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(
            [(0.0, need), (x_max, need)],
            BLACK.stroke_width(1),
        ))?
        .label(format!("format needs {need:.1} MB/s"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
