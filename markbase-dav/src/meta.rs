//! Node attributes as dav-server metadata and directory entries.

use std::time::SystemTime;

use dav_server::fs::{DavDirEntry, DavMetaData, FsFuture, FsResult};
use futures_util::FutureExt;
use markbase_vfs::{FileAttr, NodeKind};

/// A node's attributes.
#[derive(Clone, Debug)]
pub(crate) struct Meta(pub FileAttr);

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.0.size
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(self.0.mtime())
    }

    fn is_dir(&self) -> bool {
        self.0.kind == NodeKind::Dir
    }

    /// Node id, size and mtime: any change of the bytes that serve a file changes it.
    fn etag(&self) -> Option<String> {
        Some(format!(
            "{:x}-{:x}-{:x}",
            self.0.ino.get(),
            self.0.size,
            self.0.mtime_ns
        ))
    }
}

/// One entry of a listing, with its attributes.
pub(crate) struct Entry {
    pub name: String,
    pub attr: FileAttr,
}

impl DavDirEntry for Entry {
    fn name(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }

    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(Meta(self.attr));
        async move { Ok(meta) }.boxed()
    }

    fn is_dir(&self) -> FsFuture<'_, bool> {
        let dir = self.attr.kind == NodeKind::Dir;
        async move { Ok(dir) }.boxed()
    }
}
