//! Asking the kernel to read a range of a file into its page cache without waiting:
//! the mechanism under the read-ahead policy ([`crate::readahead`]) and
//! [`Vfs::prefetch`](crate::Vfs::prefetch).
//!
//! - Linux: `posix_fadvise(WILLNEED)`, in pieces of [`PIECE`]: the kernel reads at most
//!   its read-ahead limit of a device per call (the larger of `read_ahead_kb` and
//!   `max_sectors_kb`; 1,280 KiB by default) and silently drops the rest. When the
//!   range's last page is cached already (a probe with `preadv2(RWF_NOWAIT)`, which
//!   never starts I/O), nothing is asked: walking a cached range costs about 3% of
//!   reading it from memory.
//! - macOS: one `fcntl(F_RDADVISE)`.

use std::fs::File;
use std::ops::Range;

/// The most asked of the kernel in one call (Linux).
#[cfg(not(target_os = "macos"))]
const PIECE: u64 = 1 << 20;

/// Asks the kernel to read `range` of `file` (at `path`, for the log) into its page
/// cache, and returns without waiting. A hint: a refusal is only logged.
pub(crate) fn prefetch(file: &File, path: &std::path::Path, range: Range<u64>) {
    if range.is_empty() {
        return;
    }
    if let Err(err) = advise(file, range) {
        tracing::debug!(path = %path.display(), "prefetch not taken: {err}");
    }
}

#[cfg(not(target_os = "macos"))]
fn advise(file: &File, range: Range<u64>) -> rustix::io::Result<()> {
    use std::num::NonZeroU64;
    if cached(file, range.end - 1) {
        return Ok(());
    }
    let mut start = range.start;
    while start < range.end {
        let len = PIECE.min(range.end - start);
        let len = NonZeroU64::new(len).expect("start < end");
        rustix::fs::fadvise(file, start, Some(len), rustix::fs::Advice::WillNeed)?;
        start += len.get();
    }
    Ok(())
}

#[cfg(target_os = "macos")]
fn advise(file: &File, range: Range<u64>) -> rustix::io::Result<()> {
    let len = (range.end - range.start).min(i32::MAX as u64);
    rustix::fs::fcntl_rdadvise(file, range.start, len)
}

/// Whether the byte at `offset` of `file` is in the page cache: a one-byte read that
/// fails rather than wait for the disk (`EAGAIN`), or where not supported (`EOPNOTSUPP`:
/// then it is taken as not cached).
#[cfg(target_os = "linux")]
fn cached(file: &File, offset: u64) -> bool {
    let mut byte = [0u8];
    let mut bufs = [std::io::IoSliceMut::new(&mut byte)];
    rustix::io::preadv2(file, &mut bufs, offset, rustix::io::ReadWriteFlags::NOWAIT)
        .is_ok_and(|n| n == 1)
}

/// No way to ask elsewhere: nothing is taken as cached.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn cached(_: &File, _: u64) -> bool {
    false
}
