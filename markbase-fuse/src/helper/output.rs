//! The helper's output: logged line by line, the last lines kept for error messages.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::countdown::Countdown;

/// Lines of helper output kept for an error message.
const KEPT_LINES: usize = 12;

/// The tail of a child's output, filled by reader threads.
#[derive(Clone, Default)]
pub(crate) struct OutputTail {
    kept: Arc<Mutex<VecDeque<String>>>,
    /// Streams still being read.
    open: Countdown,
}

impl OutputTail {
    /// Reads `stream` line by line on a thread until it closes, logging each line.
    pub fn capture(&self, stream: impl Read + Send + 'static, name: &'static str) {
        let tail = self.clone();
        let reading = self.open.enter();
        let reader = std::thread::Builder::new()
            .name(format!("markbase-helper-{name}"))
            .spawn(move || {
                let _reading = reading;
                for line in BufReader::new(stream).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    tracing::info!(target: "markbase_fuse::helper", "go-nfsv4 {name}: {line}");
                    let mut kept = tail.kept.lock();
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            });
        if let Err(err) = reader {
            tracing::warn!("cannot read the fuse-t helper's {name}: {err}");
        }
    }

    /// The last lines seen.
    pub fn lines(&self) -> Vec<String> {
        self.kept.lock().iter().cloned().collect()
    }

    /// Waits up to `limit` until every captured stream has been read to its end (the
    /// child and whatever inherited its output have exited); true if they were.
    pub fn wait_closed(&self, limit: Duration) -> bool {
        self.open.wait(limit)
    }
}
