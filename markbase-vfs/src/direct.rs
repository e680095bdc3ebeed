//! Direct I/O for handles opened with `O_DIRECT` (Linux): a second descriptor of the
//! handle's file, opened `O_DIRECT`, through which every aligned read and write goes
//! past the page cache, as the program asked; an unaligned one falls back to the
//! handle's ordinary descriptor. Adapters' buffers are not aligned (FUSE's data follow
//! its headers), so the bytes pass through aligned buffers of the handle's own, one
//! per request in flight: a kernel that splits one large read into several requests
//! sends them together, and they reach the disk together. A read goes straight into
//! the adapter's memory where the disk takes it (a FUSE reply's data starts on a page).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use parking_lot::Mutex;

use crate::handles::ReadSink;

/// The alignment of offsets, lengths and buffers that direct I/O is given: the page,
/// which is at least any disk's logical block.
const ALIGN: usize = 4096;

/// An `O_DIRECT` descriptor of a handle's file, and its aligned buffers.
#[derive(Debug)]
pub(crate) struct DirectIo {
    file: File,
    /// The buffers no request is using: at most as many as were ever in flight at once.
    idle: Mutex<Vec<Vec<u8>>>,
}

impl DirectIo {
    /// An `O_DIRECT` descriptor of `file` (read-write if `write`), or why not: a
    /// filesystem that has no direct I/O refuses it.
    #[cfg(target_os = "linux")]
    pub fn open(file: &File, write: bool) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        Ok(Self {
            file,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Whether a request of `len` bytes at `offset` may go direct.
    pub fn takes(offset: u64, len: usize) -> bool {
        offset.is_multiple_of(ALIGN as u64) && len.is_multiple_of(ALIGN) && len > 0
    }

    /// Reads up to `len` bytes at `offset` (aligned: [`DirectIo::takes`]) past the page
    /// cache into `sink`: straight into its room where the disk takes that memory (a
    /// FUSE reply's data is page-aligned), through an aligned buffer where it refuses it.
    pub fn read<S: ReadSink + ?Sized>(
        &self,
        offset: u64,
        len: usize,
        sink: &mut S,
    ) -> io::Result<usize> {
        loop {
            match sink.read_from(&self.file, offset, len) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // The sink's memory is not aligned as the disk needs: nothing was read.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => break,
                read => return read,
            }
        }
        self.with_buffer(len, |room| {
            let read = loop {
                match self.file.read_at(room, offset) {
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            sink.take(&room[..read])
        })
    }

    /// Writes `len` bytes at `offset` (aligned) past the page cache, `fill` putting them
    /// in the aligned buffer and saying how many it put. Fewer than `len` (a source that
    /// had fewer) are written through `fallback`: an unaligned length cannot go direct.
    pub fn write(
        &self,
        offset: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<usize>,
        fallback: &File,
    ) -> io::Result<usize> {
        self.with_buffer(len, |room| {
            let got = fill(room)?;
            if Self::takes(offset, got) {
                self.file.write_all_at(&room[..got], offset)?;
            } else {
                fallback.write_all_at(&room[..got], offset)?;
            }
            Ok(got)
        })
    }

    /// Runs `work` on `len` aligned bytes of an idle buffer (a new one when every
    /// buffer is in use), which is idle again afterwards.
    fn with_buffer<T>(&self, len: usize, work: impl FnOnce(&mut [u8]) -> T) -> T {
        let mut buffer = self.idle.lock().pop().unwrap_or_default();
        let done = work(aligned(&mut buffer, len));
        self.idle.lock().push(buffer);
        done
    }
}

/// `len` bytes of `buffer` that start on an [`ALIGN`] boundary, the buffer grown as
/// needed.
fn aligned(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len + ALIGN {
        buffer.resize(len + ALIGN, 0);
    }
    let start = buffer.as_ptr().align_offset(ALIGN);
    &mut buffer[start..start + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_aligned_however_it_grew() {
        let mut buffer = Vec::new();
        for len in [4096, 1 << 20, 8192] {
            let room = aligned(&mut buffer, len);
            assert_eq!(room.len(), len);
            assert_eq!(room.as_ptr() as usize % ALIGN, 0);
        }
        assert!(DirectIo::takes(8192, 4096));
        assert!(!DirectIo::takes(100, 4096));
        assert!(!DirectIo::takes(4096, 100));
        assert!(!DirectIo::takes(0, 0));
    }
}
