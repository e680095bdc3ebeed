//! [`ReadAhead`]: when a reader reads in sequence, and how far ahead of it the
//! kernel should be asked to read.
//!
//! A pure state machine: it is told of each read and answers with the range to
//! prefetch, if any; the caller asks the kernel ([`crate::prefetch`]). The kernel's own
//! read-ahead stays small (128 KiB by default); a window of [`WINDOW`] ahead keeps a
//! disk's queue full without holding the bytes in the process.
//!
//! - A *run* is a series of reads each of which starts within [`SLACK`] of where the
//!   furthest read of the run ended: requests issued in parallel by one sequential
//!   reader (an NFS client, a WebDAV server reading chunks ahead) arrive slightly out
//!   of order and still count. Any other read is a seek and starts a new run.
//! - After [`AFTER`] reads in a run, each read that finds the window at least
//!   [`STEP`] short of [`WINDOW`] past the run's end asks for the missing part, so
//!   the kernel is asked once per 4 MiB read, never twice for the same bytes. The
//!   first request starts at the read that makes it, so that its bytes come first.
//!   A short Range request (two reads or fewer) costs nothing.

use std::ops::Range;

/// How far past the end of a sequential reader's reads the kernel is asked to read.
pub(crate) const WINDOW: u64 = 16 << 20;

/// How far a reader goes before the window is moved on (one request per step).
pub(crate) const STEP: u64 = 4 << 20;

/// Reads in sequence before the kernel is asked to read ahead: the next one asks.
pub(crate) const AFTER: u32 = 2;

/// How far from the end of a run a read may start and still continue it.
pub(crate) const SLACK: u64 = STEP;

/// The read-ahead state of one reader (an open handle, or a cached node file).
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// The current run; `None` before the first read.
    run: Option<Run>,
}

/// A series of reads in sequence.
#[derive(Debug)]
struct Run {
    /// Where the furthest read of the run ended.
    end: u64,
    /// Reads in the run so far.
    reads: u32,
    /// Where the kernel was asked to read up to (0: not yet).
    prefetched_to: u64,
}

impl ReadAhead {
    /// Takes note of a read of `len` bytes at `offset`, before it is made, and returns
    /// the range the kernel should be asked to read now, if any.
    pub fn on_read(&mut self, offset: u64, len: u64) -> Option<Range<u64>> {
        if len == 0 {
            return None;
        }
        let end = offset.saturating_add(len);
        let run = match &mut self.run {
            Some(run) if run.continued_by(offset) => {
                run.end = run.end.max(end);
                run.reads = run.reads.saturating_add(1);
                run
            }
            _ => self.run.insert(Run {
                end,
                reads: 1,
                prefetched_to: 0,
            }),
        };
        if run.reads <= AFTER {
            return None;
        }
        let target = run.end.saturating_add(WINDOW);
        if target.saturating_sub(run.prefetched_to) < STEP {
            return None;
        }
        let start = run.prefetched_to.max(offset);
        run.prefetched_to = target;
        Some(start..target)
    }
}

impl Run {
    /// Whether a read at `offset` belongs to this run.
    fn continued_by(&self, offset: u64) -> bool {
        offset.abs_diff(self.end) <= SLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Reads `count` chunks of `len` bytes in sequence from `from`; the prefetches asked.
    fn sequential(ahead: &mut ReadAhead, from: u64, len: u64, count: u64) -> Vec<Range<u64>> {
        (0..count)
            .filter_map(|i| ahead.on_read(from + i * len, len))
            .collect()
    }

    #[test]
    fn the_third_read_in_sequence_asks_for_the_window() {
        let mut ahead = ReadAhead::default();
        assert_eq!(ahead.on_read(0, MIB), None);
        assert_eq!(ahead.on_read(MIB, MIB), None);
        assert_eq!(ahead.on_read(2 * MIB, MIB), Some(2 * MIB..3 * MIB + WINDOW));
    }

    #[test]
    fn the_window_moves_in_steps_and_never_asks_twice_for_a_byte() {
        let mut ahead = ReadAhead::default();
        let asked = sequential(&mut ahead, 0, MIB, 64);
        assert_eq!(asked[0], 2 * MIB..19 * MIB);
        assert_eq!(asked[1], 19 * MIB..23 * MIB);
        for pair in asked.windows(2) {
            assert_eq!(
                pair[0].end, pair[1].start,
                "contiguous, no overlap: {asked:?}"
            );
        }
        for range in &asked[1..] {
            assert_eq!(range.end - range.start, STEP);
        }
        // One request per 4 MiB read: reads 3, 7, 11, ... of 64.
        assert_eq!(asked.len(), 16);
        assert_eq!(asked.last().unwrap().end, 63 * MIB + WINDOW);
    }

    #[test]
    fn small_reads_ask_once_per_step() {
        let mut ahead = ReadAhead::default();
        let asked = sequential(&mut ahead, 0, 64 << 10, 1024);
        // The first at the third read (ending at 192 KiB), then one per 4 MiB read.
        assert_eq!(asked[0], (128 << 10)..(192 << 10) + WINDOW);
        assert_eq!(asked.len(), 16);
        assert!(asked.iter().skip(1).all(|r| r.end - r.start == STEP));
    }

    #[test]
    fn a_seek_starts_again() {
        let mut ahead = ReadAhead::default();
        assert_eq!(sequential(&mut ahead, 0, MIB, 3).len(), 1);
        // Far away: a new run, which needs its own reads in sequence.
        assert_eq!(ahead.on_read(500 * MIB, MIB), None);
        assert_eq!(ahead.on_read(501 * MIB, MIB), None);
        assert_eq!(
            ahead.on_read(502 * MIB, MIB),
            Some(502 * MIB..503 * MIB + WINDOW)
        );
        // Back to the start of the file: a seek too, and the window starts over.
        let asked = sequential(&mut ahead, 0, MIB, 3);
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0], 2 * MIB..3 * MIB + WINDOW);
    }

    #[test]
    fn reads_out_of_order_by_a_little_stay_in_sequence() {
        let mut ahead = ReadAhead::default();
        // Two requests in flight at a time, answered in either order.
        let order = [0, 2, 1, 3, 5, 4, 6, 7];
        let asked: Vec<_> = order
            .iter()
            .filter_map(|&chunk| ahead.on_read(chunk * MIB, MIB))
            .collect();
        assert_eq!(
            asked[0],
            MIB..3 * MIB + WINDOW,
            "the third read asks, wherever it is"
        );
        assert!(asked.len() >= 2, "the window kept moving: {asked:?}");
    }

    #[test]
    fn random_reads_never_ask() {
        let mut ahead = ReadAhead::default();
        let mut offset = 7u64;
        for _ in 0..1000 {
            offset = offset
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1)
                % (1 << 40);
            assert_eq!(ahead.on_read(offset, 4096), None);
        }
    }

    #[test]
    fn a_short_range_costs_nothing() {
        let mut ahead = ReadAhead::default();
        assert_eq!(sequential(&mut ahead, 10 * MIB, MIB, 2), []);
    }

    #[test]
    fn empty_reads_change_nothing_and_offsets_saturate() {
        let mut ahead = ReadAhead::default();
        assert_eq!(ahead.on_read(0, MIB), None);
        assert_eq!(ahead.on_read(MIB, 0), None);
        assert_eq!(ahead.on_read(MIB, MIB), None);
        assert_eq!(ahead.on_read(2 * MIB, MIB), Some(2 * MIB..3 * MIB + WINDOW));
        let mut ahead = ReadAhead::default();
        for _ in 0..4 {
            let asked = ahead.on_read(u64::MAX - MIB, MIB);
            assert!(asked.is_none_or(|r| r.end == u64::MAX));
        }
    }
}
