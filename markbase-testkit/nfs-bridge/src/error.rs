//! [`NfsError`]: why a call to the server failed, and the errno the kernel gets for it.

use std::fmt;
use std::io;

use nfs3_client::RpcError;
use nfs3_client::nfs3_types::nfs3::{Nfs3Result, nfsstat3};

/// A failed call to the NFS server.
#[derive(Debug)]
pub enum NfsError {
    /// The server answered with an error status.
    Status(nfsstat3),
    /// The server refused the call at the RPC level (the connection is still usable).
    Rpc(RpcError),
    /// The connection is gone (closed, timed out or garbled): no call can succeed any more.
    Lost,
}

impl NfsError {
    /// The errno that stands for this error in a reply to the kernel.
    pub fn errno(&self) -> i32 {
        match self {
            Self::Status(status) => errno_of(*status),
            Self::Rpc(_) | Self::Lost => libc::EIO,
        }
    }
}

impl fmt::Display for NfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "{status}"),
            Self::Rpc(err) => write!(f, "RPC error: {err}"),
            Self::Lost => f.write_str("the connection to the NFS server is lost"),
        }
    }
}

impl std::error::Error for NfsError {}

impl From<NfsError> for io::Error {
    fn from(err: NfsError) -> Self {
        tracing::debug!("replying {}: {err}", err.errno());
        io::Error::from_raw_os_error(err.errno())
    }
}

/// The reply of a call as a result: its body when the status is `NFS3_OK`.
pub fn status<T, E>(reply: Nfs3Result<T, E>) -> Result<T, NfsError> {
    match reply {
        Nfs3Result::Ok(body) => Ok(body),
        Nfs3Result::Err((status, _)) => Err(NfsError::Status(status)),
    }
}

/// The errno of an NFS status; those without a close equivalent are `EIO`.
fn errno_of(status: nfsstat3) -> i32 {
    match status {
        nfsstat3::NFS3ERR_PERM => libc::EPERM,
        nfsstat3::NFS3ERR_NOENT => libc::ENOENT,
        nfsstat3::NFS3ERR_ACCES => libc::EACCES,
        nfsstat3::NFS3ERR_EXIST => libc::EEXIST,
        nfsstat3::NFS3ERR_XDEV => libc::EXDEV,
        nfsstat3::NFS3ERR_NOTDIR => libc::ENOTDIR,
        nfsstat3::NFS3ERR_ISDIR => libc::EISDIR,
        nfsstat3::NFS3ERR_INVAL => libc::EINVAL,
        nfsstat3::NFS3ERR_FBIG => libc::EFBIG,
        nfsstat3::NFS3ERR_NOSPC => libc::ENOSPC,
        nfsstat3::NFS3ERR_ROFS => libc::EROFS,
        nfsstat3::NFS3ERR_NAMETOOLONG => libc::ENAMETOOLONG,
        nfsstat3::NFS3ERR_NOTEMPTY => libc::ENOTEMPTY,
        nfsstat3::NFS3ERR_DQUOT => libc::EDQUOT,
        nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE => libc::ESTALE,
        nfsstat3::NFS3ERR_NOTSUPP => libc::EOPNOTSUPP,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_errnos_and_the_rest_to_eio() {
        let cases = [
            (nfsstat3::NFS3ERR_NOENT, libc::ENOENT),
            (nfsstat3::NFS3ERR_EXIST, libc::EEXIST),
            (nfsstat3::NFS3ERR_NOTDIR, libc::ENOTDIR),
            (nfsstat3::NFS3ERR_ISDIR, libc::EISDIR),
            (nfsstat3::NFS3ERR_NOTEMPTY, libc::ENOTEMPTY),
            (nfsstat3::NFS3ERR_ACCES, libc::EACCES),
            (nfsstat3::NFS3ERR_ROFS, libc::EROFS),
            (nfsstat3::NFS3ERR_NOSPC, libc::ENOSPC),
            (nfsstat3::NFS3ERR_NAMETOOLONG, libc::ENAMETOOLONG),
            (nfsstat3::NFS3ERR_STALE, libc::ESTALE),
            (nfsstat3::NFS3ERR_SERVERFAULT, libc::EIO),
            (nfsstat3::NFS3ERR_JUKEBOX, libc::EIO),
        ];
        for (status, errno) in cases {
            assert_eq!(NfsError::Status(status).errno(), errno, "{status}");
        }
        assert_eq!(NfsError::Lost.errno(), libc::EIO);
    }
}
