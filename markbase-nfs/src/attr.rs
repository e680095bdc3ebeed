//! Attributes between the core and NFS: `fattr3` from [`FileAttr`], [`SetAttr`] from
//! `sattr3`.

use std::time::{SystemTime, UNIX_EPOCH};

use markbase_vfs::write::SetAttr;
use markbase_vfs::{FileAttr, NodeKind};
use nfs3_server::nfs3_types::nfs3::{
    fattr3, ftype3, nfstime3, sattr3, set_mode3, set_mtime, set_size3, specdata3,
};

/// `attr` as NFS reports it, in the filesystem `fsid`. There are no access times:
/// atime is the mtime.
pub fn fattr(attr: &FileAttr, fsid: u64) -> fattr3 {
    let mtime = nfs_time(attr.mtime_ns);
    fattr3 {
        type_: match attr.kind {
            NodeKind::Dir => ftype3::NF3DIR,
            NodeKind::File => ftype3::NF3REG,
        },
        mode: u32::from(attr.perm),
        nlink: attr.nlink,
        uid: attr.owner.uid,
        gid: attr.owner.gid,
        size: attr.size,
        used: attr.blocks.saturating_mul(512),
        rdev: specdata3::default(),
        fsid,
        fileid: attr.id.get(),
        atime: mtime,
        mtime,
        ctime: nfs_time(attr.ctime_ns),
    }
}

/// The changes `sattr` asks for that the core makes: size, mtime and mode. Owners
/// are left out: clients' AUTH_SYS identities are not trusted, files are served as
/// the server's user. There are no access times to set.
pub fn set_attr(sattr: &sattr3) -> SetAttr {
    let mut changes = SetAttr::default();
    if let set_size3::Some(size) = sattr.size {
        changes.size = Some(size);
    }
    if let set_mode3::Some(mode) = sattr.mode {
        changes.mode = Some(mode);
    }
    changes.mtime_ns = match sattr.mtime {
        set_mtime::DONT_CHANGE => None,
        set_mtime::SET_TO_SERVER_TIME => Some(now_ns()),
        set_mtime::SET_TO_CLIENT_TIME(time) => Some(time_ns(time)),
    };
    changes
}

/// Nanoseconds since the Unix epoch as NFSv3's unsigned 32-bit seconds (times before
/// 1970 are 1970, after 2106 are 2106).
pub fn nfs_time(ns: i64) -> nfstime3 {
    let ns = u64::try_from(ns).unwrap_or(0);
    nfstime3 {
        seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX),
        nseconds: (ns % 1_000_000_000) as u32,
    }
}

/// An NFS time in nanoseconds since the Unix epoch.
pub fn time_ns(time: nfstime3) -> i64 {
    i64::from(time.seconds) * 1_000_000_000 + i64::from(time.nseconds.min(999_999_999))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_clamp_to_nfs_range() {
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(time_ns(nfs_time(ns)), ns);
        assert_eq!(
            nfs_time(-5),
            nfstime3 {
                seconds: 0,
                nseconds: 0
            }
        );
        assert_eq!(nfs_time(i64::MAX).seconds, u32::MAX);
    }
}
