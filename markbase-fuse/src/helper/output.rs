//! The helper's output: logged line by line, the last lines kept for error messages.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

/// Lines of helper output kept for an error message.
const KEPT_LINES: usize = 12;

/// The tail of a child's output, filled by reader threads.
#[derive(Clone, Default)]
pub(crate) struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    /// Reads `stream` line by line on a thread until it closes, logging each line.
    pub fn capture(
        &self,
        stream: impl Read + Send + 'static,
        name: &'static str,
    ) -> Option<JoinHandle<()>> {
        let tail = self.clone();
        std::thread::Builder::new()
            .name(format!("markbase-helper-{name}"))
            .spawn(move || {
                for line in BufReader::new(stream).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    tracing::info!(target: "markbase_fuse::helper", "go-nfsv4 {name}: {line}");
                    let mut kept = tail.0.lock();
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            })
            .ok()
    }

    /// The last lines seen.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().iter().cloned().collect()
    }
}
