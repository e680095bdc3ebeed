//! The helper's output: a log file of its own, whose last lines go into error messages.
//!
//! fuse-t's libfuse sends go-nfsv4's output to `/dev/null`. Pipes to us, as this
//! session had, tie the helper to us: if markbase dies, a Go program writing to the
//! closed pipe gets SIGPIPE and may die before it unmounts, and a reader that stalls
//! blocks it. A file has neither problem and keeps what the helper said for later.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines of helper output kept for an error message.
const KEPT_LINES: usize = 12;

/// The end of a log read for its last lines: enough for [`KEPT_LINES`] long lines.
const TAIL_BYTES: u64 = 16 * 1024;

/// The helper's log file.
#[derive(Clone, Debug)]
pub(crate) struct OutputLog {
    path: PathBuf,
}

impl OutputLog {
    /// A new log file in `dir`, and its handle to give the helper as its output.
    pub fn create(dir: &Path) -> io::Result<(Self, File)> {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "markbase-go-nfsv4-{}-{}.log",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok((Self { path }, file))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its last lines (none when it cannot be read).
    pub fn lines(&self) -> Vec<String> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |meta| meta.len());
        let from = len.saturating_sub(TAIL_BYTES);
        if file.seek(SeekFrom::Start(from)).is_err() {
            return Vec::new();
        }
        let mut lines: Vec<String> = BufReader::new(file)
            .split(b'\n')
            .map_while(Result::ok)
            .map(|line| String::from_utf8_lossy(&line).trim_end().to_owned())
            .collect();
        if from > 0 && !lines.is_empty() {
            // The first line was cut by the seek.
            lines.remove(0);
        }
        let skip = lines.len().saturating_sub(KEPT_LINES);
        lines.split_off(skip)
    }

    /// Removes the file: the helper ended well, nothing in it is needed.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_last_lines_are_kept_whole() {
        let dir = std::env::temp_dir();
        let (log, mut file) = OutputLog::create(&dir).unwrap();
        for i in 0..5000 {
            writeln!(file, "line {i} {}", "x".repeat(i % 7)).unwrap();
        }
        let lines = log.lines();
        assert_eq!(lines.len(), KEPT_LINES);
        assert!(lines.last().unwrap().starts_with("line 4999"), "{lines:?}");
        assert!(lines[0].starts_with(&format!("line {}", 5000 - KEPT_LINES)));
        log.remove();
        assert!(log.lines().is_empty());
    }
}
