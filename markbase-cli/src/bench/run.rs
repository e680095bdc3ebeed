//! One target's run: checks, then the write pass, the read pass and their timings.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::HumanBytes;
use serde::Serialize;

use super::formats::Format;
use super::io::{ALIGN, Access, AlignedBuf, Caching, open};
use super::progress::Progress;
use super::stats::Phase;

/// The project's target speed for reading and writing, in MB/s.
pub const TARGET_MB_PER_S: f64 = 600.0;

/// What every target of a bench is tested with.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// The `--format` preset, when one is used unchanged.
    pub format: Option<&'static str>,
    /// What is streamed, for people (the preset's description, or custom sizes).
    pub description: String,
    /// Bytes of one frame as asked (rounded up to 4096 bytes where the cache is bypassed).
    pub frame_bytes: u64,
    /// Frames per second the format needs.
    pub fps: f64,
    /// Bytes of the test file at most.
    pub file_bytes: u64,
    /// Writing stops after this many seconds, if it has not reached `file_bytes` before.
    pub duration_seconds: Option<f64>,
    /// Whether the page cache is bypassed where the filesystem allows it (not `--cached`).
    pub bypass_cache: bool,
}

impl Settings {
    /// Settings of `format`, with the frame size and rate overridden when given.
    pub fn new(
        format: Format,
        frame_bytes: Option<u64>,
        fps: Option<f64>,
        file_bytes: u64,
        duration: Option<Duration>,
        bypass_cache: bool,
    ) -> Self {
        let description = match (frame_bytes, fps) {
            (None, None) => format.description().to_owned(),
            _ => format!(
                "{} frames at {} fps",
                HumanBytes(frame_bytes.unwrap_or(format.frame_bytes())),
                fps.unwrap_or(format.fps())
            ),
        };
        Self {
            format: (frame_bytes.is_none() && fps.is_none()).then(|| format.name()),
            description,
            frame_bytes: frame_bytes.unwrap_or(format.frame_bytes()),
            fps: fps.unwrap_or(format.fps()),
            file_bytes,
            duration_seconds: duration.map(|d| d.as_secs_f64()),
            bypass_cache,
        }
    }
}

/// Whether a run is good enough for its format.
///
/// It passes when writing and reading both reach the format's data rate (frame bytes x fps)
/// and no frame dropped either way. Reaching the project's 600 MB/s is said apart.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Fast enough both ways, and nothing dropped.
    pub pass: bool,
    /// Why it did not pass (empty when it did).
    pub reasons: Vec<String>,
    /// Both ways at or above [`TARGET_MB_PER_S`].
    pub reaches_600_mb_per_s: bool,
}

impl Verdict {
    fn of(write: &Phase, read: &Phase, need_mb_per_s: f64) -> Self {
        let mut reasons = Vec::new();
        for (name, phase) in [("write", write), ("read", read)] {
            if phase.mb_per_s < need_mb_per_s {
                reasons.push(format!(
                    "{name} {:.1} MB/s < {need_mb_per_s:.1} MB/s needed",
                    phase.mb_per_s
                ));
            }
            if phase.dropped_frames > 0 {
                reasons.push(format!("{name} dropped {} frames", phase.dropped_frames));
            }
        }
        Self {
            pass: reasons.is_empty(),
            reasons,
            reaches_600_mb_per_s: write.mb_per_s >= TARGET_MB_PER_S
                && read.mb_per_s >= TARGET_MB_PER_S,
        }
    }
}

/// The figures of one target.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The target's name in the report (`dir`, `raw`...).
    pub label: String,
    /// The directory tested.
    pub dir: PathBuf,
    /// Bytes of one frame as written (rounded up to 4096 under `O_DIRECT`).
    pub frame_bytes: u64,
    /// The format's data rate at this frame size: frame bytes x fps / 10^6.
    pub need_mb_per_s: f64,
    /// Whether the page cache was bypassed.
    pub cache_bypassed: bool,
    /// How it was bypassed (`O_DIRECT`, `F_NOCACHE`), or why it was not.
    pub cache_note: String,
    /// Writing the file, closing fsync included.
    pub write: Phase,
    /// Reading it back from a fresh open.
    pub read: Phase,
    /// Good enough for the format?
    pub verdict: Verdict,
}

impl Run {
    /// The slower direction's MB/s: a report puts the run where it is highest first.
    pub fn slower_mb_per_s(&self) -> f64 {
        self.write.mb_per_s.min(self.read.mb_per_s)
    }
}

/// The run was stopped by SIGINT or SIGTERM; its test file is removed.
#[derive(Debug)]
pub struct Interrupted {
    /// The test file, now removed.
    pub file: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted; removed {}", self.file.display())
    }
}

impl std::error::Error for Interrupted {}

/// Benches the directory `dir` under the name `label`: writes one test file of frames
/// there, reads it back, checks every byte, removes it (on error or interruption too),
/// and returns the figures. `stop` is checked between frames.
pub fn bench_target(
    label: &str,
    dir: &Path,
    settings: &Settings,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Run> {
    check_dir(dir)?;
    check_free_space(dir, settings.file_bytes)?;
    let test_file = TestFile(dir.join(format!("markbase-bench-{}.tmp", std::process::id())));
    let path = &test_file.0;

    let (mut file, caching) = open(path, Access::Create, settings.bypass_cache)?;
    let bypassed = matches!(caching, Caching::Bypassed(_));
    let frame_bytes = if bypassed {
        settings.frame_bytes.next_multiple_of(ALIGN as u64)
    } else {
        settings.frame_bytes
    };
    let max_frames = settings.file_bytes / frame_bytes;
    if max_frames == 0 {
        bail!(
            "the file size ({}) is smaller than one frame ({frame_bytes} bytes{})",
            settings.file_bytes,
            if bypassed {
                ", rounded up to a multiple of 4096 for O_DIRECT"
            } else {
                ""
            }
        );
    }
    let frame_len = usize::try_from(frame_bytes).context("the frame size is too large")?;
    let mut pattern = Pattern::new(frame_len)?;
    let mut read_buf = AlignedBuf::new(frame_len)?;
    let duration = settings.duration_seconds.map(Duration::from_secs_f64);
    tracing::info!(
        "{label}: {} frames of {frame_bytes} bytes to {}, {caching:?}",
        max_frames,
        path.display()
    );

    // Writing.
    progress.start(label, "write", max_frames);
    let mut times = Vec::new();
    let started = Instant::now();
    while (times.len() as u64) < max_frames && duration.is_none_or(|d| started.elapsed() < d) {
        test_file.stop_if(stop)?;
        let frame = times.len() as u64;
        let bytes = pattern.frame(frame * frame_bytes);
        let call = Instant::now();
        file.write_all(bytes)
            .with_context(|| format!("writing frame {frame} of {}", path.display()))?;
        times.push(call.elapsed());
        progress.done(
            frame + 1,
            (frame + 1) * frame_bytes,
            times.iter().sum::<Duration>().as_secs_f64(),
        );
    }
    test_file.stop_if(stop)?;
    let call = Instant::now();
    file.sync_all()
        .with_context(|| format!("fsync of {}", path.display()))?;
    let fsync = call.elapsed();
    drop(file);
    let write = Phase::new(frame_bytes, times, fsync, settings.fps);

    // Reading, from a fresh open.
    let (mut file, _) = open(path, Access::Read, bypassed)?;
    progress.start(label, "read", write.frames);
    let mut times = Vec::with_capacity(write.frames as usize);
    for frame in 0..write.frames {
        test_file.stop_if(stop)?;
        let call = Instant::now();
        file.read_exact(&mut read_buf)
            .with_context(|| format!("reading frame {frame} of {}", path.display()))?;
        times.push(call.elapsed());
        let offset = frame * frame_bytes;
        if let Some(at) = first_difference(pattern.frame(offset), &read_buf) {
            bail!(
                "{} read back differs from what was written: frame {frame}, byte {} of the file",
                path.display(),
                offset + at as u64
            );
        }
        progress.done(
            frame + 1,
            (frame + 1) * frame_bytes,
            times.iter().sum::<Duration>().as_secs_f64(),
        );
    }
    drop(file);
    let read = Phase::new(frame_bytes, times, Duration::ZERO, settings.fps);
    test_file.remove_now()?;

    let need_mb_per_s = frame_bytes as f64 * settings.fps / 1e6;
    let cache_note = match caching {
        Caching::Bypassed(how) => how.to_owned(),
        Caching::Cached(why) => format!("page cache used: {why}"),
    };
    Ok(Run {
        label: label.to_owned(),
        dir: dir.to_owned(),
        frame_bytes,
        need_mb_per_s,
        cache_bypassed: bypassed,
        cache_note,
        verdict: Verdict::of(&write, &read, need_mb_per_s),
        write,
        read,
    })
}

/// Refuses what is not an existing, writable directory.
fn check_dir(dir: &Path) -> Result<()> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("{shown}: no such directory")
        }
        Err(err) => Err(err).with_context(|| format!("cannot reach {shown}")),
        Ok(meta) if !meta.is_dir() => bail!("{shown} is not a directory"),
        Ok(_) => rustix::fs::access(dir, rustix::fs::Access::WRITE_OK)
            .map_err(std::io::Error::from)
            .with_context(|| format!("{shown} is not writable")),
    }
}

/// Refuses to start unless the test file and a 5% margin fit in `dir`'s free space.
fn check_free_space(dir: &Path, file_bytes: u64) -> Result<()> {
    let stats = rustix::fs::statvfs(dir)
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot get the free space of {}", dir.display()))?;
    if stats.f_blocks == 0 {
        // ramfs, and some FUSE filesystems, report no size at all.
        tracing::warn!(
            "{} reports no size: its free space is not checked",
            dir.display()
        );
        return Ok(());
    }
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let needed = file_bytes.saturating_add(file_bytes / 20);
    if free < needed {
        bail!(
            "{} has {} free, and the test needs {} (a {} file and a 5% margin); pass a smaller --file-size",
            dir.display(),
            HumanBytes(free),
            HumanBytes(needed),
            HumanBytes(file_bytes)
        );
    }
    Ok(())
}

/// The test file, removed when this is dropped (on an error too).
struct TestFile(PathBuf);

impl TestFile {
    /// Removes the file and fails with [`Interrupted`] once `stop` is set.
    fn stop_if(&self, stop: &AtomicBool) -> Result<()> {
        if !stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.remove_now()?;
        Err(Interrupted {
            file: self.0.clone(),
        }
        .into())
    }

    fn remove_now(&self) -> Result<()> {
        match fs::remove_file(&self.0) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("cannot remove {}", self.0.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        if let Err(err) = self.remove_now() {
            tracing::warn!("{err:#}");
        }
    }
}

/// The frames' bytes: a pseudo-random frame, each of whose 4096-byte blocks starts with
/// this run's nonce and the block's offset in the file. Every frame differs, and stale
/// bytes of another run or another place in the file never pass for the right ones.
struct Pattern {
    buf: AlignedBuf,
    nonce: u64,
}

impl Pattern {
    fn new(len: usize) -> Result<Self> {
        let mut buf = AlignedBuf::new(len)?;
        let nonce = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32))
            | 1;
        // xorshift64: cheap bytes that no filesystem compresses or deduplicates.
        let mut state = nonce;
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        Ok(Self { buf, nonce })
    }

    /// The frame that starts at `offset` in the file.
    fn frame(&mut self, offset: u64) -> &[u8] {
        for (i, block) in self.buf.chunks_mut(ALIGN).enumerate() {
            let mut stamp = [0; 16];
            stamp[..8].copy_from_slice(&self.nonce.to_le_bytes());
            stamp[8..].copy_from_slice(&(offset + (i * ALIGN) as u64).to_le_bytes());
            let n = block.len().min(stamp.len());
            block[..n].copy_from_slice(&stamp[..n]);
        }
        &self.buf
    }
}

/// The index of the first byte where `got` differs from `expected`.
fn first_difference(expected: &[u8], got: &[u8]) -> Option<usize> {
    if expected == got {
        return None;
    }
    expected.iter().zip(got).position(|(a, b)| a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_and_carry_their_offset() {
        let mut pattern = Pattern::new(3 * ALIGN + 5).unwrap();
        let first = pattern.frame(0).to_vec();
        let second = pattern.frame(first.len() as u64).to_vec();
        assert_ne!(first, second);
        assert_eq!(first_difference(&first, &second), Some(8));
        assert_eq!(first[8..16], 0u64.to_le_bytes());
        assert_eq!(
            second[ALIGN + 8..ALIGN + 16],
            (first.len() + ALIGN).to_le_bytes()
        );
        // The last block is too short for its whole stamp.
        assert_eq!(second.len(), 3 * ALIGN + 5);
        assert_ne!(first[ALIGN..2 * ALIGN], first[2 * ALIGN..3 * ALIGN]);
        assert_eq!(pattern.frame(0), &first[..]);
    }
}
