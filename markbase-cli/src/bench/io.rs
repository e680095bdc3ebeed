//! The test file's I/O: a page-aligned buffer, and opening past the page cache as disk
//! test tools do (`O_DIRECT` on Linux, `F_NOCACHE` on macOS).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::ptr::NonNull;

use anyhow::{Context, Result};

/// The alignment of buffers, offsets and sizes under `O_DIRECT`: a page, which covers
/// every disk's logical block.
pub const ALIGN: usize = 4096;

/// A zeroed heap buffer whose start is [`ALIGN`]-aligned, as `O_DIRECT` needs.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer owns its allocation, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// A buffer of `len` bytes (at least 1).
    pub fn new(len: usize) -> Result<Self> {
        let layout = Layout::from_size_align(len.max(1), ALIGN)
            .with_context(|| format!("a buffer of {len} bytes is too large"))?;
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .with_context(|| format!("cannot allocate a buffer of {len} bytes"))?;
        Ok(Self { ptr, layout })
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` holds `layout.size()` initialised (zeroed) bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// How the test file's bytes went to the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Past the page cache; the string names how (`O_DIRECT`, `F_NOCACHE`).
    Bypassed(&'static str),
    /// Through the page cache, and why.
    Cached(String),
}

/// Which way to open the test file.
#[derive(Clone, Copy, Debug)]
pub enum Access {
    /// Create it (it must not exist) and write.
    Create,
    /// Read it.
    Read,
}

/// Opens `path` past the page cache when `bypass` is asked for and the filesystem
/// allows it, otherwise through it; says which in the [`Caching`].
pub fn open(path: &Path, access: Access, bypass: bool) -> Result<(File, Caching)> {
    let context = || match access {
        Access::Create => format!("cannot create {}", path.display()),
        Access::Read => format!("cannot open {}", path.display()),
    };
    if !bypass {
        let file = options(access).open(path).with_context(context)?;
        return Ok((file, Caching::Cached("--cached was given".into())));
    }
    match open_bypassing(path, access) {
        Ok(opened) => Ok(opened),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            tracing::info!(
                "{} refused O_DIRECT ({err}): using the page cache",
                path.display()
            );
            // Linux creates the file before it checks O_DIRECT (ramfs): it is ours, and empty.
            let mut options = options(access);
            if let Access::Create = access {
                options.create_new(false).create(true).truncate(true);
            }
            let file = options.open(path).with_context(context)?;
            let why = format!("the filesystem refused O_DIRECT ({err})");
            Ok((file, Caching::Cached(why)))
        }
        Err(err) => Err(err).with_context(context),
    }
}

fn options(access: Access) -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    match access {
        Access::Create => options.write(true).create_new(true).mode(0o600),
        Access::Read => options.read(true),
    };
    options
}

#[cfg(target_os = "linux")]
fn open_bypassing(path: &Path, access: Access) -> io::Result<(File, Caching)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = options(access).custom_flags(libc::O_DIRECT).open(path)?;
    Ok((file, Caching::Bypassed("O_DIRECT")))
}

#[cfg(target_os = "macos")]
fn open_bypassing(path: &Path, access: Access) -> io::Result<(File, Caching)> {
    use std::os::fd::AsRawFd;
    let file = options(access).open(path)?;
    // SAFETY: F_NOCACHE takes an int and touches nothing but the open file's flags.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_NOCACHE, 1) } == -1 {
        let err = io::Error::last_os_error();
        return Ok((file, Caching::Cached(format!("F_NOCACHE failed ({err})"))));
    }
    Ok((file, Caching::Bypassed("F_NOCACHE")))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn open_bypassing(path: &Path, access: Access) -> io::Result<(File, Caching)> {
    let file = options(access).open(path)?;
    let why = "this system has no way to bypass the page cache that markbase knows".into();
    Ok((file, Caching::Cached(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_zeroed() {
        for len in [1, 4096, 5_526_042] {
            let buf = AlignedBuf::new(len).unwrap();
            assert_eq!(buf.as_ptr() as usize % ALIGN, 0);
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&b| b == 0));
        }
    }
}
