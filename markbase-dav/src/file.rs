//! An open file as a dav-server [`DavFile`]: GET bodies and PUT bodies.

use std::fmt;
use std::io::SeekFrom;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture, FsResult};
use futures_util::FutureExt;
use markbase_vfs::{FileAttr, NodeId, Vfs, handles::FileHandle, upload::Upload};

use crate::errors::{blocking, fs_error};
use crate::meta::Meta;
use crate::readahead::ReadAhead;

/// What an open file writes to.
pub(crate) enum Target {
    /// An open core handle: reads, and writes in place (partial updates).
    Handle {
        handle: FileHandle,
        node: NodeId,
        writes: bool,
    },
    /// A whole new content (a PUT), which takes the name only when complete:
    /// `expected` bytes, when the client announced them.
    Upload {
        upload: Option<Upload>,
        expected: Option<u64>,
    },
    /// An upload that took its name: what it became.
    Committed(FileAttr),
}

/// An open file and the position of the next read or write.
pub(crate) struct OpenFile {
    pub vfs: Arc<Vfs>,
    pub target: Target,
    pub position: u64,
    /// The next chunks of a sequential read, being read while the last ones are sent.
    pub read_ahead: ReadAhead,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Handle { handle, node, .. } => format!("node {node}, handle {handle:?}"),
            Target::Upload { .. } => String::from("upload"),
            Target::Committed(attr) => format!("uploaded node {}", attr.id),
        };
        f.debug_struct("OpenFile")
            .field("target", &target)
            .field("position", &self.position)
            .finish()
    }
}

/// dav-server has no close: a handle is released, and an upload that never took its
/// name discarded, when the file is dropped.
impl Drop for OpenFile {
    fn drop(&mut self) {
        let vfs = Arc::clone(&self.vfs);
        let finish: Box<dyn FnOnce() + Send> = match &mut self.target {
            Target::Handle { handle, .. } => {
                let handle = *handle;
                Box::new(move || {
                    if let Err(err) = vfs.release(handle) {
                        err.log();
                    }
                })
            }
            Target::Upload { upload, .. } => {
                let upload = upload.take();
                if upload.is_some() {
                    tracing::debug!("an upload ended before it was complete; discarded");
                }
                Box::new(move || drop(upload))
            }
            Target::Committed(_) => return,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(finish)),
            Err(_) => finish(),
        }
    }
}

impl OpenFile {
    async fn meta(&self) -> FsResult<Meta> {
        match &self.target {
            Target::Handle { handle, node, .. } => {
                let (vfs, node, handle) = (Arc::clone(&self.vfs), *node, *handle);
                blocking(move || vfs.getattr_open(node, Some(handle)).map_err(fs_error))
                    .await
                    .map(|attr| Meta::of_node(&attr))
            }
            Target::Committed(attr) => Ok(Meta::of_node(attr)),
            Target::Upload { .. } => Err(FsError::GeneralFailure),
        }
    }

    /// The upload, moved out for a blocking call (put back with [`Self::put_back`]).
    fn take_upload(&mut self) -> FsResult<Upload> {
        match &mut self.target {
            Target::Upload { upload, .. } => upload.take().ok_or(FsError::GeneralFailure),
            _ => Err(FsError::Forbidden),
        }
    }

    fn put_back(&mut self, returned: Upload) {
        if let Target::Upload { upload, .. } = &mut self.target {
            *upload = Some(returned);
        }
    }
}

impl DavFile for OpenFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        async move { Ok(Box::new(self.meta().await?) as Box<dyn DavMetaData>) }.boxed()
    }

    fn write_bytes(&mut self, bytes: Bytes) -> FsFuture<'_, ()> {
        async move {
            let (vfs, at) = (Arc::clone(&self.vfs), self.position);
            let len = bytes.len() as u64;
            match &self.target {
                Target::Handle {
                    handle,
                    writes: true,
                    ..
                } => {
                    let handle = *handle;
                    blocking(move || vfs.write_at(handle, at, &bytes).map(drop).map_err(fs_error))
                        .await?;
                }
                Target::Upload { .. } => {
                    let upload = self.take_upload()?;
                    let (upload, written) = blocking(move || {
                        let written = upload.write_at(at, &bytes).map_err(fs_error);
                        Ok((upload, written))
                    })
                    .await?;
                    self.put_back(upload);
                    written?;
                }
                _ => return Err(FsError::Forbidden),
            }
            self.position += len;
            Ok(())
        }
        .boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(bytes)
    }

    /// Reads straight from the alias file into the buffer the response sends, with the
    /// next chunks of a sequential read already on their way ([`ReadAhead`]).
    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            let Target::Handle { handle, .. } = &self.target else {
                return Err(FsError::Forbidden);
            };
            let handle = *handle;
            let bytes = self
                .read_ahead
                .read(&self.vfs, handle, self.position, count)
                .await?;
            self.position += bytes.len() as u64;
            Ok(bytes)
        }
        .boxed()
    }

    fn seek(&mut self, to: SeekFrom) -> FsFuture<'_, u64> {
        async move {
            self.position = match to {
                SeekFrom::Start(offset) => offset,
                SeekFrom::Current(delta) => self
                    .position
                    .checked_add_signed(delta)
                    .ok_or(FsError::GeneralFailure)?,
                SeekFrom::End(delta) => self
                    .meta()
                    .await?
                    .size
                    .checked_add_signed(delta)
                    .ok_or(FsError::GeneralFailure)?,
            };
            Ok(self.position)
        }
        .boxed()
    }

    /// Records a written handle's size; gives a complete upload its name.
    ///
    /// An upload of another length than announced is discarded instead, and the flush
    /// succeeds: dav-server counted the same bytes and answers such a PUT with 400
    /// right after flushing (a failed flush would be a 500).
    fn flush(&mut self) -> FsFuture<'_, ()> {
        async move {
            let vfs = Arc::clone(&self.vfs);
            match &self.target {
                Target::Handle {
                    handle,
                    writes: true,
                    ..
                } => {
                    let handle = *handle;
                    blocking(move || vfs.flush(handle).map_err(fs_error)).await
                }
                Target::Upload { expected, .. } => {
                    let expected = *expected;
                    let upload = self.take_upload()?;
                    let committed = blocking(move || {
                        let len = upload.len().map_err(fs_error)?;
                        if expected.is_some_and(|expected| expected != len) {
                            tracing::warn!(
                                "upload discarded: {len} bytes arrived, {expected:?} were announced"
                            );
                            return Ok(None);
                        }
                        vfs.commit_upload(upload).map(Some).map_err(fs_error)
                    })
                    .await?;
                    if let Some(attr) = committed {
                        self.target = Target::Committed(attr);
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        .boxed()
    }
}
