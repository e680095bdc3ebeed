//! Zero-copy plumbing between FUSE request/reply buffers and the core's open files.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use fuse_backend_rs::api::filesystem::{ZeroCopyReader, ZeroCopyWriter};
use fuse_backend_rs::file_buf::FileVolatileSlice;
use fuse_backend_rs::file_traits::FileReadWriteVolatile;
use markbase_vfs::handles::{ReadSink, WriteSource};

/// A borrowed alias file, positioned I/O only: the shape fuse-backend-rs copies from and to.
struct BorrowedFile<'a>(&'a File);

impl FileReadWriteVolatile for BorrowedFile<'_> {
    fn read_volatile(&mut self, _: FileVolatileSlice) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::ESPIPE))
    }

    fn write_volatile(&mut self, _: FileVolatileSlice) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::ESPIPE))
    }

    fn read_at_volatile(&mut self, slice: FileVolatileSlice, offset: u64) -> io::Result<usize> {
        let offset = file_offset(offset)?;
        // SAFETY: the slice is valid for `len` writable bytes for the duration of the
        // call (fuse-backend-rs hands out its own reply buffer); `pread` writes no more.
        byte_count(unsafe {
            libc::pread(
                self.0.as_raw_fd(),
                slice.as_ptr().cast(),
                slice.len(),
                offset,
            )
        })
    }

    fn write_at_volatile(&mut self, slice: FileVolatileSlice, offset: u64) -> io::Result<usize> {
        let offset = file_offset(offset)?;
        // SAFETY: the slice is valid for `len` readable bytes for the duration of the call.
        byte_count(unsafe {
            libc::pwrite(
                self.0.as_raw_fd(),
                slice.as_ptr().cast(),
                slice.len(),
                offset,
            )
        })
    }
}

fn file_offset(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// The result of `pread`/`pwrite`: a byte count, or the error in `errno`.
fn byte_count(result: isize) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::last_os_error())
}

/// A FUSE read reply as a [`ReadSink`]: bytes go from the alias file straight into
/// the reply, until the request is satisfied or the file ends (a short FUSE read
/// means end of file to the kernel).
pub(crate) struct ReplySink<'w>(pub &'w mut dyn ZeroCopyWriter);

impl ReadSink for ReplySink<'_> {
    fn read_from(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let len = len.min(self.0.available_bytes());
        let mut done = 0;
        while done < len {
            match self
                .0
                .write_from(&mut BorrowedFile(file), len - done, offset + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if done > 0 => {
                    tracing::debug!("short read after {done} bytes: {err}");
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(done)
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len().min(self.0.available_bytes());
        self.0.write_all(&bytes[..len])?;
        Ok(len)
    }
}

/// A FUSE write request as a [`WriteSource`]: bytes go from the request buffer
/// straight into the file, all of them (FUSE has no short writes).
pub(crate) struct RequestSource<'r>(pub &'r mut dyn ZeroCopyReader);

impl WriteSource for RequestSource<'_> {
    fn write_to(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let mut done = 0;
        while done < len {
            match self
                .0
                .read_to(&mut BorrowedFile(file), len - done, offset + done as u64)
            {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(done)
    }

    fn copy_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(done)
    }
}
