//! How `markbase mount` says how mounting goes: on the terminal in the foreground, or,
//! for a background mount, as messages over a pipe to the process the user started,
//! which prints them and exits once the mount is verified.

use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One message from the serving process to the one waiting for it: a line of JSON.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Progress worth showing the user ("mounting via nfs (...)").
    Say(String),
    /// The mount is verified and served; nothing follows.
    Mounted(Mounted),
}

/// A verified mount, as the waiting process reports it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mounted {
    /// The catalog served.
    pub catalog: PathBuf,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The way it was mounted.
    pub backend: String,
    /// Whether every change is refused.
    pub read_only: bool,
}

/// Where a mount's progress and outcome go.
#[derive(Debug)]
pub enum Status {
    /// The terminal (stderr): a foreground mount.
    Terminal,
    /// The waiting process, through this process's stdout (a pipe), until the mount
    /// is reported.
    Parent,
}

impl Status {
    /// Says `text` (a line, without the `markbase: ` prefix).
    pub fn say(&mut self, text: &str) {
        match self {
            Self::Terminal => eprintln!("markbase: {text}"),
            Self::Parent => {
                tracing::info!("{text}");
                // A parent that is gone (interrupted) finds out by itself; the mount
                // goes on, and its outcome is in the log.
                if let Err(err) = send(&Message::Say(text.to_owned())) {
                    tracing::warn!("cannot tell the waiting process: {err}");
                }
            }
        }
    }

    /// Reports the verified mount `mounted`; `unmount_hint` is how it is taken off.
    /// A parent's pipe is closed afterwards: stdout then goes where stderr does.
    pub fn mounted(&mut self, mounted: Mounted, unmount_hint: &str) {
        let text = format!(
            "{} mounted on {} via {}{}",
            mounted.catalog.display(),
            mounted.mountpoint.display(),
            mounted.backend,
            if mounted.read_only {
                " (read-only)"
            } else {
                ""
            }
        );
        match self {
            Self::Terminal => eprintln!("markbase: {text}; {unmount_hint}"),
            Self::Parent => {
                tracing::info!("{text}");
                if let Err(err) = send(&Message::Mounted(mounted)) {
                    tracing::warn!("cannot tell the waiting process: {err}");
                }
                if let Err(err) = rustix::stdio::dup2_stdout(io::stderr()) {
                    tracing::warn!("cannot close the status pipe: {err}");
                }
                *self = Self::Terminal;
            }
        }
    }
}

fn send(message: &Message) -> io::Result<()> {
    let mut line = serde_json::to_string(message).expect("a message serializes");
    line.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}
