//! Core attributes in the kernel's shapes (`stat`, `statvfs`), for Linux and macOS.

use std::mem;

use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64};
use markbase_vfs::{FileAttr, NodeKind, vfs::StatFs};

/// Preferred I/O size reported to programs that size their buffers by `st_blksize`.
const IO_BLOCK: i64 = 1 << 20;

/// `attr` as a `stat` structure.
pub(crate) fn stat_of(attr: &FileAttr) -> stat64 {
    // SAFETY: `stat64` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: stat64 = unsafe { mem::zeroed() };
    let kind = match attr.kind {
        NodeKind::Dir => libc::S_IFDIR,
        NodeKind::File => libc::S_IFREG,
    };
    st.st_ino = attr.id.get();
    st.st_mode = (kind | libc::mode_t::from(attr.perm)) as _;
    st.st_nlink = attr.nlink as _;
    st.st_uid = attr.owner.uid;
    st.st_gid = attr.owner.gid;
    st.st_size = attr.size as _;
    st.st_blksize = IO_BLOCK as _;
    st.st_blocks = attr.blocks as _;
    let (secs, nanos) = split_ns(attr.mtime_ns);
    st.st_mtime = secs as _;
    st.st_mtime_nsec = nanos as _;
    st.st_atime = secs as _;
    st.st_atime_nsec = nanos as _;
    let (secs, nanos) = split_ns(attr.ctime_ns);
    st.st_ctime = secs as _;
    st.st_ctime_nsec = nanos as _;
    st
}

/// Seconds and nanoseconds of a time in ns since the Unix epoch.
fn split_ns(ns: i64) -> (i64, i64) {
    (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

/// `fs` as a `statvfs` structure (counts clamped where the platform's fields are narrower).
pub(crate) fn statvfs_of(fs: &StatFs) -> statvfs64 {
    // SAFETY: `statvfs64` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: statvfs64 = unsafe { mem::zeroed() };
    st.f_bsize = fs.block_size as _;
    st.f_frsize = fs.block_size as _;
    st.f_blocks = clamp(fs.blocks);
    st.f_bfree = clamp(fs.blocks_free);
    st.f_bavail = clamp(fs.blocks_available);
    st.f_files = clamp(fs.files.saturating_add(fs.files_free));
    st.f_ffree = clamp(fs.files_free);
    st.f_favail = clamp(fs.files_free);
    st.f_namemax = fs.name_max as _;
    st
}

/// `value` in a count field of `statvfs`, saturating (they are 32 bits on macOS).
fn clamp<T: TryFrom<u64> + Bounded>(value: u64) -> T {
    T::try_from(value).unwrap_or(T::MAX)
}

/// Integer types with a largest value.
trait Bounded {
    const MAX: Self;
}

impl Bounded for u32 {
    const MAX: Self = u32::MAX;
}

impl Bounded for u64 {
    const MAX: Self = u64::MAX;
}
