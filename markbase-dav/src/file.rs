//! An open file as a dav-server [`DavFile`]: GET bodies and PUT bodies.

use std::fmt;
use std::io::SeekFrom;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture};
use futures_util::FutureExt;
use markbase_vfs::{FileHandle, NodeId, Vfs};

use crate::errors::{blocking, fs_error};
use crate::meta::Meta;

/// An open core handle and the position of the next read or write.
pub(crate) struct OpenFile {
    pub vfs: Arc<Vfs>,
    pub handle: FileHandle,
    pub node: NodeId,
    pub position: u64,
    pub writes: bool,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile")
            .field("node", &self.node)
            .field("handle", &self.handle)
            .field("position", &self.position)
            .finish()
    }
}

/// dav-server has no close: the handle is released when the file is dropped (a
/// written file's size is recorded then, or at `flush`, which a PUT calls).
impl Drop for OpenFile {
    fn drop(&mut self) {
        let (vfs, handle) = (Arc::clone(&self.vfs), self.handle);
        let release = move || {
            if let Err(err) = vfs.release(handle) {
                tracing::warn!("{err}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

impl DavFile for OpenFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let (vfs, node, handle) = (Arc::clone(&self.vfs), self.node, self.handle);
        async move {
            let attr =
                blocking(move || vfs.getattr_open(node, Some(handle)).map_err(fs_error)).await?;
            Ok(Box::new(Meta(attr)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn write_bytes(&mut self, bytes: Bytes) -> FsFuture<'_, ()> {
        async move {
            let (vfs, handle, at) = (Arc::clone(&self.vfs), self.handle, self.position);
            let written =
                blocking(move || vfs.write_at(handle, at, &bytes).map_err(fs_error)).await?;
            self.position += written as u64;
            Ok(())
        }
        .boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        self.write_bytes(bytes)
    }

    /// Reads straight from the alias file into the buffer the response sends.
    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            let (vfs, handle, at) = (Arc::clone(&self.vfs), self.handle, self.position);
            let bytes = blocking(move || {
                let mut buf = BytesMut::zeroed(count);
                let n = vfs.read_at(handle, at, &mut buf).map_err(fs_error)?;
                buf.truncate(n);
                Ok(buf.freeze())
            })
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
                SeekFrom::End(delta) => {
                    let (vfs, node, handle) = (Arc::clone(&self.vfs), self.node, self.handle);
                    let attr =
                        blocking(move || vfs.getattr_open(node, Some(handle)).map_err(fs_error))
                            .await?;
                    attr.size
                        .checked_add_signed(delta)
                        .ok_or(FsError::GeneralFailure)?
                }
            };
            Ok(self.position)
        }
        .boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        let (vfs, handle, writes) = (Arc::clone(&self.vfs), self.handle, self.writes);
        async move {
            if writes {
                blocking(move || vfs.flush(handle).map_err(fs_error)).await?;
            }
            Ok(())
        }
        .boxed()
    }
}
