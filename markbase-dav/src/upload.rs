//! A PUT's whole new content, for a catalog node or a Finder file kept aside: written
//! under another name, it takes its place only when complete.

use markbase_vfs::{AsideFile, AsideUpload, FileAttr, Result, Upload, Vfs};

/// New content being written.
pub(crate) enum PendingUpload {
    /// For a catalog node (new or replaced).
    Node(Upload),
    /// For a Finder file kept aside.
    Aside(AsideUpload),
}

/// What a committed upload became.
pub(crate) enum Uploaded {
    /// The node, with its attributes.
    Node(FileAttr),
    /// The Finder file.
    Aside(AsideFile),
}

impl PendingUpload {
    /// Writes all of `data` at `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        match self {
            Self::Node(upload) => upload.write_at(offset, data),
            Self::Aside(upload) => upload.write_at(offset, data),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> Result<u64> {
        match self {
            Self::Node(upload) => upload.len(),
            Self::Aside(upload) => upload.len(),
        }
    }

    /// Puts the content in place: a catalog transaction, or a rename.
    pub fn commit(self, vfs: &Vfs) -> Result<Uploaded> {
        match self {
            Self::Node(upload) => vfs.commit_upload(upload).map(Uploaded::Node),
            Self::Aside(upload) => upload.commit().map(Uploaded::Aside),
        }
    }
}
