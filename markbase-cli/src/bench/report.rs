//! The report of a bench: every target's run in one table (fastest first) or as JSON,
//! with each figure's ratio to the baseline target when there is one.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::run::{Run, Settings, TARGET_MB_PER_S};

/// What `markbase bench` found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The units and rules of the figures.
    pub units: &'static str,
    /// What every target was tested with.
    pub settings: Settings,
    /// One run per target, fastest (by its slower direction) first.
    pub runs: Vec<Run>,
    /// The label of the run the others are compared with (`--compare`'s `raw`).
    pub baseline: Option<String>,
    /// Each run's figures divided by the baseline's.
    pub ratios: Vec<Ratios>,
    /// The SVG chart written, if any.
    pub chart: Option<PathBuf>,
}

/// One run's figures divided by the baseline's (`None` where the baseline's is 0).
#[derive(Debug, Serialize)]
pub struct Ratios {
    /// The run.
    pub label: String,
    /// The baseline run.
    pub baseline: String,
    /// Figure name (those of [`FIGURES`] whose ratio means something) and ratio.
    pub figures: serde_json::Map<String, serde_json::Value>,
}

/// The units and rules of the figures, as the JSON states them.
const UNITS: &str = "MB/s = 10^6 bytes/s over the seconds spent in the write or read calls \
    (writing: with the closing fsync); latencies in ms, per frame's call; a frame drops when its \
    call takes longer than 1/fps; pass = write and read both >= need_mb_per_s and no dropped frame";

/// A figure of a run: its JSON name, its label in the table, its decimals, how to get
/// it, and whether its ratio to the baseline means anything (not for counts of dropped
/// frames, nor for an fsync that takes no time on one side).
struct Figure {
    name: &'static str,
    label: &'static str,
    decimals: usize,
    get: fn(&Run) -> f64,
    compared: bool,
}

/// The figures of the table and of the ratios, in order.
const FIGURES: &[Figure] = &[
    Figure {
        name: "write_mb_per_s",
        label: "write MB/s",
        decimals: 1,
        get: |r| r.write.mb_per_s,
        compared: true,
    },
    Figure {
        name: "read_mb_per_s",
        label: "read MB/s",
        decimals: 1,
        get: |r| r.read.mb_per_s,
        compared: true,
    },
    Figure {
        name: "write_frames_per_s",
        label: "write frames/s",
        decimals: 1,
        get: |r| r.write.frames_per_s,
        compared: true,
    },
    Figure {
        name: "read_frames_per_s",
        label: "read frames/s",
        decimals: 1,
        get: |r| r.read.frames_per_s,
        compared: true,
    },
    Figure {
        name: "write_p50_ms",
        label: "write latency p50 ms",
        decimals: 2,
        get: |r| r.write.latency_ms.p50,
        compared: true,
    },
    Figure {
        name: "write_p99_ms",
        label: "write latency p99 ms",
        decimals: 2,
        get: |r| r.write.latency_ms.p99,
        compared: true,
    },
    Figure {
        name: "write_max_ms",
        label: "write latency max ms",
        decimals: 2,
        get: |r| r.write.latency_ms.max,
        compared: true,
    },
    Figure {
        name: "read_p50_ms",
        label: "read latency p50 ms",
        decimals: 2,
        get: |r| r.read.latency_ms.p50,
        compared: true,
    },
    Figure {
        name: "read_p99_ms",
        label: "read latency p99 ms",
        decimals: 2,
        get: |r| r.read.latency_ms.p99,
        compared: true,
    },
    Figure {
        name: "read_max_ms",
        label: "read latency max ms",
        decimals: 2,
        get: |r| r.read.latency_ms.max,
        compared: true,
    },
    Figure {
        name: "write_fsync_s",
        label: "write: closing fsync s",
        decimals: 3,
        get: |r| r.write.fsync_seconds,
        compared: false,
    },
    Figure {
        name: "write_dropped_frames",
        label: "write dropped frames",
        decimals: 0,
        get: |r| r.write.dropped_frames as f64,
        compared: false,
    },
    Figure {
        name: "read_dropped_frames",
        label: "read dropped frames",
        decimals: 0,
        get: |r| r.read.dropped_frames as f64,
        compared: false,
    },
];

impl Report {
    /// The report of `runs`, ordered fastest first, compared with the run labelled
    /// `baseline` when given.
    pub fn new(settings: Settings, mut runs: Vec<Run>, baseline: Option<String>) -> Self {
        runs.sort_by(|a, b| b.slower_mb_per_s().total_cmp(&a.slower_mb_per_s()));
        let base = baseline
            .as_ref()
            .and_then(|label| runs.iter().find(|run| &run.label == label));
        let ratios = base.map_or_else(Vec::new, |base| {
            runs.iter()
                .filter(|run| run.label != base.label)
                .map(|run| Ratios {
                    label: run.label.clone(),
                    baseline: base.label.clone(),
                    figures: FIGURES
                        .iter()
                        .filter(|f| f.compared)
                        .map(|f| (f.name.to_owned(), ratio((f.get)(run), (f.get)(base)).into()))
                        .collect(),
                })
                .collect()
        });
        Self {
            units: UNITS,
            settings,
            runs,
            baseline,
            ratios,
            chart: None,
        }
    }

    /// The report as pretty-printed JSON.
    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The report as a table for people, one column per run and one per ratio.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "markbase bench: {} ({}): frames of {} bytes at {} fps, test file up to {}\n\n",
            s.format.unwrap_or("custom"),
            s.description,
            grouped(s.frame_bytes as f64, 0),
            s.fps,
            indicatif::HumanBytes(s.file_bytes),
        );
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec![String::new()];
        header.extend(self.runs.iter().map(|r| r.label.clone()));
        header.extend(
            self.ratios
                .iter()
                .map(|r| format!("{}/{}", r.label, r.baseline)),
        );
        rows.push(header);
        let text_row = |label: &str, cell: &dyn Fn(&Run) -> String| {
            let mut row = vec![label.to_owned()];
            row.extend(self.runs.iter().map(cell));
            row
        };
        rows.push(text_row("directory", &|r| r.dir.display().to_string()));
        rows.push(text_row("page cache", &|r| {
            if r.cache_bypassed {
                format!("bypassed ({})", r.cache_note)
            } else {
                "used (see below)".into()
            }
        }));
        rows.push(text_row("frames x bytes", &|r| {
            format!(
                "{} x {}",
                grouped(r.write.frames as f64, 0),
                grouped(r.frame_bytes as f64, 0)
            )
        }));
        rows.push(text_row("format needs MB/s", &|r| {
            grouped(r.need_mb_per_s, 1)
        }));
        for figure in FIGURES {
            let mut row = text_row(figure.label, &|r| grouped((figure.get)(r), figure.decimals));
            row.extend(self.ratios.iter().map(|ratios| {
                match ratios.figures.get(figure.name).and_then(|v| v.as_f64()) {
                    Some(ratio) => format!("{ratio:.2}x"),
                    None => "-".into(),
                }
            }));
            rows.push(row);
        }
        rows.push(text_row("verdict", &|r| {
            if r.verdict.pass {
                "PASS".into()
            } else {
                "FAIL".into()
            }
        }));
        rows.push(text_row("reaches 600 MB/s", &|r| {
            if r.verdict.reaches_600_mb_per_s {
                "yes".into()
            } else {
                "no".into()
            }
        }));
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                rows.iter()
                    .filter_map(|row| row.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    let _ = write!(line, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(line, "  {}{cell}", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
        for run in &self.runs {
            if !run.cache_bypassed {
                let _ = writeln!(out, "{}: {}", run.label, run.cache_note);
            }
            if !run.verdict.pass {
                let _ = writeln!(
                    out,
                    "{}: FAIL: {}",
                    run.label,
                    run.verdict.reasons.join("; ")
                );
            }
        }
        let _ = writeln!(
            out,
            "MB/s = 10^6 bytes/s of time spent in the write or read calls (writing: with the closing fsync).\n\
             A frame drops when its call takes longer than 1/fps ({:.1} ms). PASS: writing and reading both\n\
             reach the format's MB/s and no frame dropped; {TARGET_MB_PER_S} MB/s is the project's target.",
            1e3 / s.fps
        );
        if let Some(chart) = &self.chart {
            let _ = writeln!(out, "chart: {}", chart.display());
        }
        out
    }
}

/// `value / base`, or `None` when `base` is 0.
fn ratio(value: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| value / base)
}

/// `value` with `decimals` decimals and its thousands separated by commas.
fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((&text[..], None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::from(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(1234567.891, 1), "1,234,567.9");
        assert_eq!(grouped(999.0, 0), "999");
        assert_eq!(grouped(1000.0, 2), "1,000.00");
        assert_eq!(grouped(-12345.0, 0), "-12,345");
    }
}
