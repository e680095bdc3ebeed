//! Figures of one direction (write or read) of a run, from its per-frame timings.

use std::time::Duration;

use serde::Serialize;

/// Latency percentiles of the frames' calls, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Half the frames took at most this long.
    pub p50: f64,
    /// 99% of the frames took at most this long.
    pub p99: f64,
    /// The slowest frame.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `frames` (nearest rank; all zero without frames).
    pub fn of(frames: &[Duration]) -> Self {
        let mut ms: Vec<f64> = frames.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Self {
            p50: nearest_rank(&ms, 50),
            p99: nearest_rank(&ms, 99),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// The smallest value at or above `percent`% of the sorted `values` (nearest rank).
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// One direction's figures.
///
/// `seconds` is the time spent in the I/O calls: every frame's `write` or `read`, and for
/// writing the closing `fsync` too; the filling and checking of frames between calls is
/// not counted. MB/s is 10^6 bytes per second.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// Frames written or read.
    pub frames: u64,
    /// Bytes written or read.
    pub bytes: u64,
    /// Seconds in the I/O calls (fsync included).
    pub seconds: f64,
    /// Of those, the closing fsync's (writing only; 0 when reading).
    pub fsync_seconds: f64,
    /// `bytes / seconds / 10^6`.
    pub mb_per_s: f64,
    /// `frames / seconds`.
    pub frames_per_s: f64,
    /// Per-frame call latency.
    pub latency_ms: Latency,
    /// Frames whose call took longer than one frame's time (1 / fps): a player or recorder
    /// without a buffer would have dropped them.
    pub dropped_frames: u64,
    /// Each frame's call time, in order (for the chart; not in the JSON).
    #[serde(skip)]
    pub frame_times: Vec<Duration>,
}

impl Phase {
    /// The figures of `frame_times` (one per frame of `frame_bytes`) plus a closing
    /// `fsync` of `fsync`, at a target rate of `fps`.
    pub fn new(frame_bytes: u64, frame_times: Vec<Duration>, fsync: Duration, fps: f64) -> Self {
        let frames = frame_times.len() as u64;
        let bytes = frames * frame_bytes;
        let seconds = (frame_times.iter().sum::<Duration>() + fsync).as_secs_f64();
        let per_second = |amount: f64| if seconds > 0.0 { amount / seconds } else { 0.0 };
        let frame_time = Duration::from_secs_f64(1.0 / fps);
        Self {
            frames,
            bytes,
            seconds,
            fsync_seconds: fsync.as_secs_f64(),
            mb_per_s: per_second(bytes as f64) / 1e6,
            frames_per_s: per_second(frames as f64),
            latency_ms: Latency::of(&frame_times),
            dropped_frames: frame_times.iter().filter(|&&t| t > frame_time).count() as u64,
            frame_times,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let latency = Latency::of(&(1..=100).rev().map(ms).collect::<Vec<_>>());
        assert_eq!((latency.p50, latency.p99, latency.max), (50.0, 99.0, 100.0));
        let latency = Latency::of(&[ms(7)]);
        assert_eq!((latency.p50, latency.p99, latency.max), (7.0, 7.0, 7.0));
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn a_frame_drops_when_its_call_outlasts_the_frame_time() {
        // 25 fps: 40 ms a frame.
        let times = [10, 40, 41, 200].map(Duration::from_millis).to_vec();
        let phase = Phase::new(1_000_000, times, Duration::from_millis(709), 25.0);
        assert_eq!(phase.dropped_frames, 2);
        assert_eq!(phase.bytes, 4_000_000);
        assert!((phase.seconds - 1.0).abs() < 1e-9);
        assert!((phase.mb_per_s - 4.0).abs() < 1e-9);
        assert!((phase.frames_per_s - 4.0).abs() < 1e-9);
    }
}
