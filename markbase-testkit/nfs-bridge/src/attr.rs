//! NFS attributes in the kernel's shapes, and the kernel's attribute changes in NFS's.

use std::mem;

use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64};
use fuse_backend_rs::api::filesystem::SetattrValid;
use nfs3_client::nfs3_types::nfs3::{
    FSSTAT3resok, Nfs3Option, fattr3, ftype3, nfstime3, sattr3, set_atime, set_mtime,
};
use nfs3_client::nfs3_types::xdr_codec::{Pack, Unpack};

/// The block size `statfs` counts in.
const BLOCK: u64 = 4096;

/// The longest name NFSv3 servers commonly take (PATHCONF is not asked).
const NAME_MAX: u64 = 255;

/// `attr` as a `stat` structure, numbered `inode`.
pub fn stat_of(attr: &fattr3, inode: u64) -> stat64 {
    // SAFETY: `stat64` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: stat64 = unsafe { mem::zeroed() };
    st.st_ino = inode;
    st.st_mode = file_type(attr.type_) | (attr.mode & 0o7777);
    st.st_nlink = attr.nlink.into();
    st.st_uid = attr.uid;
    st.st_gid = attr.gid;
    st.st_size = attr.size as i64;
    st.st_blocks = attr.used.div_ceil(512) as i64;
    st.st_blksize = 1 << 20;
    st.st_rdev = libc::makedev(attr.rdev.specdata1, attr.rdev.specdata2);
    (st.st_atime, st.st_atime_nsec) = time_of(attr.atime);
    (st.st_mtime, st.st_mtime_nsec) = time_of(attr.mtime);
    (st.st_ctime, st.st_ctime_nsec) = time_of(attr.ctime);
    st
}

/// The `S_IF*` bits of an NFS file type.
pub fn file_type(kind: ftype3) -> u32 {
    match kind {
        ftype3::NF3REG => libc::S_IFREG,
        ftype3::NF3DIR => libc::S_IFDIR,
        ftype3::NF3BLK => libc::S_IFBLK,
        ftype3::NF3CHR => libc::S_IFCHR,
        ftype3::NF3LNK => libc::S_IFLNK,
        ftype3::NF3SOCK => libc::S_IFSOCK,
        ftype3::NF3FIFO => libc::S_IFIFO,
    }
}

/// An NFS time as the kernel's seconds and nanoseconds.
fn time_of(time: nfstime3) -> (i64, i64) {
    (time.seconds.into(), time.nseconds.into())
}

/// FSSTAT's byte and file counts as a `statvfs` structure.
pub fn statvfs_of(fs: &FSSTAT3resok) -> statvfs64 {
    // SAFETY: `statvfs64` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: statvfs64 = unsafe { mem::zeroed() };
    st.f_bsize = BLOCK;
    st.f_frsize = BLOCK;
    st.f_blocks = fs.tbytes / BLOCK;
    st.f_bfree = fs.fbytes / BLOCK;
    st.f_bavail = fs.abytes / BLOCK;
    st.f_files = fs.tfiles;
    st.f_ffree = fs.ffiles;
    st.f_favail = fs.afiles;
    st.f_namemax = NAME_MAX;
    st
}

/// The changes a FUSE `setattr` asks for, as SETATTR's attributes.
pub fn changes(attr: &stat64, valid: SetattrValid) -> sattr3 {
    let given = |flag| valid.contains(flag);
    sattr3 {
        mode: option(given(SetattrValid::MODE), attr.st_mode & 0o7777),
        uid: option(given(SetattrValid::UID), attr.st_uid),
        gid: option(given(SetattrValid::GID), attr.st_gid),
        size: option(given(SetattrValid::SIZE), attr.st_size as u64),
        atime: if given(SetattrValid::ATIME_NOW) {
            set_atime::SET_TO_SERVER_TIME
        } else if given(SetattrValid::ATIME) {
            set_atime::SET_TO_CLIENT_TIME(nfs_time(attr.st_atime, attr.st_atime_nsec))
        } else {
            set_atime::DONT_CHANGE
        },
        mtime: if given(SetattrValid::MTIME_NOW) {
            set_mtime::SET_TO_SERVER_TIME
        } else if given(SetattrValid::MTIME) {
            set_mtime::SET_TO_CLIENT_TIME(nfs_time(attr.st_mtime, attr.st_mtime_nsec))
        } else {
            set_mtime::DONT_CHANGE
        },
    }
}

/// The attributes of a new file or directory: only its permission bits.
pub fn new_mode(mode: u32, umask: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode & !umask & 0o7777),
        ..sattr3::default()
    }
}

/// `value` if `given`: a field of SETATTR's attributes.
fn option<T: Pack + Unpack>(given: bool, value: T) -> Nfs3Option<T> {
    if given {
        Nfs3Option::Some(value)
    } else {
        Nfs3Option::None
    }
}

/// A kernel time as NFS's (unsigned 32-bit seconds, clamped).
fn nfs_time(seconds: i64, nanos: i64) -> nfstime3 {
    nfstime3 {
        seconds: seconds.clamp(0, u32::MAX.into()) as u32,
        nseconds: nanos.clamp(0, 999_999_999) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_changes_asked_for_are_sent() {
        // SAFETY: all-zero bytes are a valid `stat64`.
        let mut attr: stat64 = unsafe { mem::zeroed() };
        attr.st_size = 42;
        attr.st_mode = libc::S_IFREG | 0o640;
        attr.st_mtime = 1_700_000_000;
        attr.st_mtime_nsec = 5;
        let sent = changes(
            &attr,
            SetattrValid::SIZE | SetattrValid::MODE | SetattrValid::MTIME,
        );
        assert_eq!(sent.size, Nfs3Option::Some(42));
        assert_eq!(sent.mode, Nfs3Option::Some(0o640));
        assert_eq!(sent.uid, Nfs3Option::None);
        assert!(matches!(sent.atime, set_atime::DONT_CHANGE));
        assert!(matches!(
            sent.mtime,
            set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 1_700_000_000,
                nseconds: 5
            })
        ));
        assert!(matches!(
            changes(&attr, SetattrValid::MTIME_NOW).mtime,
            set_mtime::SET_TO_SERVER_TIME
        ));
    }

    #[test]
    fn new_files_get_the_mode_less_the_umask() {
        assert_eq!(new_mode(0o100666, 0o022).mode, Nfs3Option::Some(0o644));
    }
}
