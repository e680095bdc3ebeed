//! Attributes as dav-server metadata and directory entries.

use std::time::SystemTime;

use dav_server::fs::{DavDirEntry, DavMetaData, FsFuture, FsResult};
use futures_util::FutureExt;
use markbase_vfs::{FileAttr, NodeKind, node::system_time_from_ns};

/// What a client sees of a file or directory.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub size: u64,
    mtime_ns: i64,
    dir: bool,
    /// Tells one file from another in the ETag: `n<node id>`.
    identity: String,
}

impl Meta {
    /// A node's attributes (a catalog node, or a file the core keeps out of the catalog).
    pub fn of_node(attr: &FileAttr) -> Self {
        Self {
            size: attr.size,
            mtime_ns: attr.mtime_ns,
            dir: attr.kind == NodeKind::Dir,
            identity: format!("n{:x}", attr.id.get()),
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.size
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(system_time_from_ns(self.mtime_ns))
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    /// Identity, size and mtime: any change of the bytes that serve a file changes it.
    fn etag(&self) -> Option<String> {
        Some(format!(
            "{}-{:x}-{:x}",
            self.identity, self.size, self.mtime_ns
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
        let meta: Box<dyn DavMetaData> = Box::new(Meta::of_node(&self.attr));
        async move { Ok(meta) }.boxed()
    }

    fn is_dir(&self) -> FsFuture<'_, bool> {
        let dir = self.attr.kind == NodeKind::Dir;
        async move { Ok(dir) }.boxed()
    }
}
