//! The NFS status of each core error, and how it is logged.

use markbase_vfs::VfsError;
use nfs3_server::nfs3_types::nfs3::nfsstat3;

/// The status an NFS client gets for `err`, which is logged at its level: `JUKEBOX`
/// (try again later) when the catalog is locked by another program.
pub fn status(err: VfsError) -> nfsstat3 {
    err.log();
    if matches!(err, VfsError::CatalogBusy { .. }) {
        return nfsstat3::NFS3ERR_JUKEBOX;
    }
    errno_status(err.errno())
}

/// [`status`] of a call on the node a handle names: one the catalog no longer has is
/// `STALE` (the handle outlived it), not `NOENT`.
pub fn node_status(err: VfsError) -> nfsstat3 {
    if matches!(err, VfsError::NotFound(_)) {
        err.log();
        return nfsstat3::NFS3ERR_STALE;
    }
    status(err)
}

/// The status for an errno, as knfsd maps them.
fn errno_status(errno: i32) -> nfsstat3 {
    match errno {
        libc::EPERM => nfsstat3::NFS3ERR_PERM,
        libc::ENOENT => nfsstat3::NFS3ERR_NOENT,
        libc::ENXIO | libc::ENODEV => nfsstat3::NFS3ERR_NXIO,
        libc::EACCES => nfsstat3::NFS3ERR_ACCES,
        libc::EEXIST => nfsstat3::NFS3ERR_EXIST,
        libc::EXDEV => nfsstat3::NFS3ERR_XDEV,
        libc::ENOTDIR => nfsstat3::NFS3ERR_NOTDIR,
        libc::EISDIR => nfsstat3::NFS3ERR_ISDIR,
        libc::EINVAL | libc::ELOOP => nfsstat3::NFS3ERR_INVAL,
        libc::EFBIG => nfsstat3::NFS3ERR_FBIG,
        libc::ENOSPC | libc::EDQUOT => nfsstat3::NFS3ERR_NOSPC,
        libc::EROFS => nfsstat3::NFS3ERR_ROFS,
        libc::EMLINK => nfsstat3::NFS3ERR_MLINK,
        libc::ENAMETOOLONG => nfsstat3::NFS3ERR_NAMETOOLONG,
        libc::ENOTEMPTY => nfsstat3::NFS3ERR_NOTEMPTY,
        libc::ESTALE => nfsstat3::NFS3ERR_STALE,
        libc::EBADF => nfsstat3::NFS3ERR_BADHANDLE,
        libc::EBUSY | libc::EAGAIN => nfsstat3::NFS3ERR_JUKEBOX,
        libc::ENOTSUP => nfsstat3::NFS3ERR_NOTSUPP,
        _ => nfsstat3::NFS3ERR_IO,
    }
}
