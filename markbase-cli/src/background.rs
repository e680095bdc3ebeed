//! A background `markbase mount`, as `mount-s3` does it: this process starts a copy of
//! itself in its own session to serve the mount, relays what that one says over a pipe,
//! and exits 0 once it reports the mount verified, or non-zero with the cause.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, PipeReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::cli::{MountArgs, SERVE_FOR_PARENT};
use crate::status::Message;

/// How many mount logs the data directory keeps; older ones are removed.
const LOGS_KEPT: usize = 20;

/// How long the serving process may take to exit once it has closed its pipe, or once
/// it is asked to stop.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Starts the process that serves `args`'s mount, and waits (bounded) until it reports
/// the mount verified or fails.
pub fn mount(args: &MountArgs) -> Result<()> {
    let log = log_file(args.log_file.as_deref())?;
    let (reader, writer) = std::io::pipe().context("cannot make the status pipe")?;
    let log_out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open the log file {}", log.display()))?;
    let exe = std::env::current_exe().context("cannot find the markbase executable")?;
    let mut command = Command::new(exe);
    command
        .args(serving_args(std::env::args_os().skip(1), &log))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(log_out);
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        command.pre_exec(|| {
            // Its own session: the terminal's Ctrl-C and hangup no longer reach it.
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let child = command
        .spawn()
        .context("cannot start the serving process")?;
    // The pipe's only writer is now the child's: its end is the end of the messages.
    drop(command);
    Waiting::new(
        child,
        reader,
        log,
        args.mount_timeout * 2 + Duration::from_secs(15),
    )?
    .wait()
}

/// The serving process's arguments: this one's, with the hidden option that makes it
/// serve in the foreground and report through its stdout, before any `--`.
fn serving_args(args: impl Iterator<Item = OsString>, log: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.collect();
    let at = args
        .iter()
        .position(|arg| arg == "--")
        .unwrap_or(args.len());
    args.splice(
        at..at,
        [OsString::from(SERVE_FOR_PARENT), log.as_os_str().to_owned()],
    );
    args
}

/// The log file: `chosen`, or a new one in the data directory's `logs/`, whose oldest
/// files beyond [`LOGS_KEPT`] are removed. Its path is absolute.
fn log_file(chosen: Option<&Path>) -> Result<PathBuf> {
    if let Some(chosen) = chosen {
        return std::path::absolute(chosen)
            .with_context(|| format!("cannot resolve the log file {}", chosen.display()));
    }
    let dir = crate::data_dir::data_dir()
        .context("cannot choose a log file; pass --log-file")?
        .join("logs");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    prune_logs(&dir);
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    Ok(dir.join(format!("mount-{stamp}-{}.log", std::process::id())))
}

/// Removes all but the newest [`LOGS_KEPT`] - 1 mount logs of `dir`.
fn prune_logs(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<PathBuf> = listing
        .filter_map(|item| item.ok().map(|item| item.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("mount-") && name.ends_with(".log"))
        })
        .collect();
    // The names start with their time, so name order is age order.
    logs.sort();
    let excess = logs.len().saturating_sub(LOGS_KEPT - 1);
    for old in &logs[..excess] {
        // Another mount starting at the same time may have removed it first.
        if let Err(err) = fs::remove_file(old)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the old log {}: {err}", old.display());
        }
    }
}

/// The user's process, waiting for the serving one.
struct Waiting {
    child: Child,
    messages: mpsc::Receiver<Result<Message>>,
    log: PathBuf,
    deadline: Instant,
    limit: Duration,
    interrupted: Arc<AtomicBool>,
}

impl Waiting {
    fn new(child: Child, reader: PipeReader, log: PathBuf, limit: Duration) -> Result<Self> {
        let interrupted = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(signal, Arc::clone(&interrupted))
                .context("cannot install signal handlers")?;
        }
        let (send, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let message = line.map_err(anyhow::Error::from).and_then(|line| {
                    serde_json::from_str(&line)
                        .with_context(|| format!("unexpected status line {line:?}"))
                });
                if send.send(message).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            messages,
            log,
            deadline: Instant::now() + limit,
            limit,
            interrupted,
        })
    }

    fn wait(mut self) -> Result<()> {
        let pid = self.child.id();
        loop {
            if self.interrupted.load(Ordering::Relaxed) {
                self.stop();
                bail!("interrupted; stopped the mount process (pid {pid})");
            }
            if Instant::now() >= self.deadline {
                self.stop();
                bail!(
                    "the mount process (pid {pid}) reported nothing within {}; stopped it (log: {})",
                    humantime::format_duration(self.limit),
                    self.log.display()
                );
            }
            match self.messages.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(Message::Say(text))) => eprintln!("markbase: {text}"),
                Ok(Ok(Message::Mounted(mounted))) => {
                    eprintln!(
                        "markbase: mounted {} on {} via {}{} (pid {pid}, log {})",
                        mounted.catalog.display(),
                        mounted.mountpoint.display(),
                        mounted.backend,
                        if mounted.read_only { ", read-only" } else { "" },
                        self.log.display()
                    );
                    return Ok(());
                }
                Ok(Err(err)) => {
                    self.stop();
                    return Err(err.context(format!("the mount process (pid {pid}) said")));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended_unmounted()),
            }
        }
    }

    /// The cause of the serving process's ending before it reported a mount.
    fn ended_unmounted(mut self) -> anyhow::Error {
        let pid = self.child.id();
        let Some(status) = markbase_process::wait_within(&mut self.child, EXIT_LIMIT) else {
            self.stop();
            return anyhow!(
                "the mount process (pid {pid}) closed its status pipe without a report; stopped it (log: {})",
                self.log.display()
            );
        };
        let said = fs::read_to_string(&self.log).unwrap_or_default();
        // Its own error line says it best: it is relayed as it is.
        if let Some(error) = said
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("markbase: error: "))
        {
            return anyhow!("{error}");
        }
        anyhow!(
            "the mount process (pid {pid}) {} before the mount was verified{} (log: {})",
            markbase_process::describe_exit(status),
            said.lines()
                .find(|line| line.contains("panicked"))
                .map(|line| format!(": {line}"))
                .unwrap_or_default(),
            self.log.display()
        )
    }

    /// Asks the serving process to stop (it unmounts whatever it mounted) and waits,
    /// bounded; it is killed if it does not.
    fn stop(&mut self) {
        markbase_process::stop(&mut self.child, EXIT_LIMIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_option_goes_before_a_double_dash() {
        let log = Path::new("/l.log");
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            serving_args(args(&["mount", "/m"]).into_iter(), log),
            args(&["mount", "/m", SERVE_FOR_PARENT, "/l.log"])
        );
        assert_eq!(
            serving_args(args(&["mount", "--", "-m"]).into_iter(), log),
            args(&["mount", SERVE_FOR_PARENT, "/l.log", "--", "-m"])
        );
    }
}
