//! `markbase mounts`: every markbase mount on this machine, whether each answers, and
//! for each that does not, the command that clears it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cli::MountsArgs;
use crate::registry::{self, Entry};

/// How long a mount may take to answer a `statfs`.
const ANSWER_LIMIT: Duration = Duration::from_secs(2);

/// One mount as listed.
#[derive(Debug, Serialize)]
struct Listed {
    mountpoint: PathBuf,
    /// The catalog served, when the mount was recorded.
    catalog: Option<PathBuf>,
    backend: Option<String>,
    pid: Option<u32>,
    /// RFC 3339, UTC.
    since: Option<String>,
    log: Option<PathBuf>,
    #[serde(flatten)]
    state: State,
}

/// What a mount is now.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    /// Mounted and answering.
    Answers,
    /// Its process runs but the mount did not answer within [`ANSWER_LIMIT`].
    NotAnswering { detail: String },
    /// Its server is gone and the mount is left behind.
    Dead { fix: String },
    /// Something else is mounted there now.
    Foreign { fstype: String, source: String },
}

impl State {
    fn word(&self) -> &'static str {
        match self {
            Self::Answers => "answers",
            Self::NotAnswering { .. } => "not answering",
            Self::Dead { .. } => "dead",
            Self::Foreign { .. } => "foreign",
        }
    }

    /// A line saying more, for every state but a healthy one.
    fn note(&self, point: &Path) -> Option<String> {
        let point = point.display();
        match self {
            Self::Answers => None,
            Self::NotAnswering { detail } => Some(format!("{point}: {detail}")),
            Self::Dead { fix } => Some(format!("{point}: its server is gone; `{fix}` clears it")),
            Self::Foreign { fstype, source } => Some(format!(
                "{point}: now holds a {fstype} mount of {source}, not markbase's (its record was stale and is forgotten)"
            )),
        }
    }
}

/// `markbase mounts`.
pub fn run(args: &MountsArgs) -> Result<()> {
    let mut listed = Vec::new();
    for entry in registry::entries()? {
        if let Some(state) = recorded_state(&entry) {
            listed.push(Listed {
                mountpoint: entry.record.mountpoint.clone(),
                catalog: Some(entry.record.catalog.clone()),
                backend: Some(entry.record.backend.clone()),
                pid: Some(entry.record.pid),
                since: Some(humantime::format_rfc3339_seconds(entry.record.since()).to_string()),
                log: entry.record.log.clone(),
                state,
            });
        }
    }
    unrecorded(&mut listed);
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &listed)?;
        writeln!(out)?;
    } else {
        render(&listed, &mut out)?;
    }
    Ok(out.flush()?)
}

/// The state of a recorded mount; `None` for a record of a mount that has ended
/// (forgotten on the way).
fn recorded_state(entry: &Entry) -> Option<State> {
    let record = &entry.record;
    let alive = record.process_alive();
    let point = record.mountpoint.clone();
    let probe = markbase_process::with_deadline(ANSWER_LIMIT, move || {
        let mounted = markbase_fuse::mount_at(&point);
        let answer = rustix::fs::statfs(&point).map(drop);
        (mounted, answer)
    });
    let dead = || State::Dead {
        fix: format!("markbase umount {}", record.mountpoint.display()),
    };
    let Some((mounted, answer)) = probe else {
        return Some(if alive {
            State::NotAnswering {
                detail: format!(
                    "no answer within {}; markbase pid {} still runs{}",
                    humantime::format_duration(ANSWER_LIMIT),
                    record.pid,
                    record
                        .log
                        .as_ref()
                        .map(|log| format!(" (log: {})", log.display()))
                        .unwrap_or_default()
                ),
            }
        } else {
            dead()
        });
    };
    match mounted {
        Ok(Some(found)) if found.fstype != record.fstype || found.source != record.source => {
            if !alive {
                entry.forget();
            }
            Some(State::Foreign {
                fstype: found.fstype,
                source: found.source,
            })
        }
        Ok(Some(_)) => Some(match answer {
            Ok(()) if alive => State::Answers,
            Ok(()) | Err(rustix::io::Errno::NOTCONN) => dead(),
            Err(err) if alive => State::NotAnswering {
                detail: format!("statfs fails: {err}"),
            },
            Err(_) => dead(),
        }),
        // Nothing there: a mount that ended without its record (killed, and then
        // cleared), or one whose process is unmounting it right now.
        Ok(None) | Err(_) => {
            if !alive {
                entry.forget();
            }
            None
        }
    }
}

/// Adds the `/dev/fuse` markbase mounts that have no record: another user's, or a
/// mount that lost its record (Linux; the mount table shows their type).
fn unrecorded(listed: &mut Vec<Listed>) {
    #[cfg(target_os = "linux")]
    {
        let Ok(table) = markbase_fuse::mount_table() else {
            return;
        };
        for (point, entry) in table {
            if !markbase_fuse::is_markbase_fstype(&entry.fstype)
                || listed.iter().any(|known| known.mountpoint == point)
            {
                continue;
            }
            let state = if markbase_fuse::is_dead_fuse_mount(&point) {
                State::Dead {
                    fix: format!("markbase umount {}", point.display()),
                }
            } else {
                State::Answers
            };
            listed.push(Listed {
                mountpoint: point,
                catalog: None,
                backend: Some(String::from("fuse")),
                pid: None,
                since: None,
                log: None,
                state,
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = listed;
}

/// The table, then a line for each mount that needs one.
fn render(listed: &[Listed], out: &mut impl Write) -> io::Result<()> {
    if listed.is_empty() {
        return writeln!(out, "no markbase mounts");
    }
    let unknown = || String::from("-");
    let rows: Vec<[String; 6]> = listed
        .iter()
        .map(|mount| {
            [
                mount.mountpoint.display().to_string(),
                mount.backend.clone().unwrap_or_else(unknown),
                mount.pid.map_or_else(unknown, |pid| pid.to_string()),
                mount.since.clone().unwrap_or_else(unknown),
                mount.state.word().to_owned(),
                mount.catalog.as_ref().map_or_else(
                    || String::from("(not recorded: another user's, or an older markbase's)"),
                    |catalog| catalog.display().to_string(),
                ),
            ]
        })
        .collect();
    let header = ["MOUNT POINT", "BACKEND", "PID", "SINCE", "STATE", "CATALOG"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn Write| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{text}")
    };
    line(&header, out)?;
    for row in &rows {
        line(&row.each_ref().map(String::as_str), out)?;
    }
    for mount in listed {
        if let Some(note) = mount.state.note(&mount.mountpoint) {
            writeln!(out, "{note}")?;
        }
    }
    Ok(())
}
