//! Core and I/O errors as the WebDAV statuses dav-server gives them.

use dav_server::fs::{FsError, FsResult};
use markbase_vfs::VfsError;

/// `err` as a dav-server error (its status is fixed by dav-server), logged at the
/// error's own level.
pub(crate) fn fs_error(err: VfsError) -> FsError {
    err.log();
    status_of(err.errno())
}

/// The dav-server error for `errno`. A file where a path needs a folder (`ENOTDIR`) is
/// a missing folder to WebDAV: 404 for a read, 409 for a PUT or MKCOL below it (RFC 4918
/// 9.7.1, 9.3.1). A move between the catalog and Finder files kept aside (`EXDEV`) is
/// refused.
fn status_of(errno: i32) -> FsError {
    match errno {
        libc::ENOENT | libc::ENOTDIR => FsError::NotFound,
        libc::EEXIST | libc::ENOTEMPTY => FsError::Exists,
        libc::EACCES | libc::EPERM | libc::EROFS | libc::EISDIR | libc::EINVAL | libc::EXDEV => {
            FsError::Forbidden
        }
        libc::ENOSPC | libc::EDQUOT => FsError::InsufficientStorage,
        libc::ENAMETOOLONG => FsError::PathTooLong,
        libc::ELOOP => FsError::LoopDetected,
        libc::EFBIG => FsError::TooLarge,
        _ => FsError::GeneralFailure,
    }
}

/// Runs blocking core code on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> FsResult<T> + Send + 'static,
) -> FsResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| FsError::GeneralFailure)?
}
