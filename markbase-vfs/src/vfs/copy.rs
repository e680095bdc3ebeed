//! Copying a file's bytes into a new file: COPY for path-based adapters.

use crate::error::Result;
use crate::handles::FileHandle;
use crate::node::{FileAttr, NodeId};
use crate::vfs::Vfs;

/// Bytes copied per read/write.
const CHUNK: usize = 1 << 20;

impl Vfs {
    /// Copies file `src` to a new file `name` in `parent`, byte for byte, with its
    /// client-set properties; the copy's bytes live in the store. Fails with `EEXIST`
    /// when `name` exists. A copy that fails midway (out of space, an unreadable
    /// source) is removed again, so no partial copy is left under the name.
    ///
    /// A file kept out of the catalog by the Finder rule copies only to another such
    /// name, and a catalog file only to a catalog name (`EXDEV` otherwise).
    pub fn copy_file(&self, src: NodeId, parent: NodeId, name: &str) -> Result<FileAttr> {
        self.ensure_same_side(src, parent, name)?;
        let from = self.open_file(src)?;
        let copied = self.copy_into_new(src, from, parent, name);
        // A read handle records nothing on release, so releasing cannot fail.
        let _ = self.release(from);
        copied
    }

    fn copy_into_new(
        &self,
        src: NodeId,
        from: FileHandle,
        parent: NodeId,
        name: &str,
    ) -> Result<FileAttr> {
        let (copy, to) = self.create(parent, name, true)?;
        let copied = self.copy_bytes(from, to);
        let released = self.release(to);
        let done = copied.and(released).and_then(|()| match src.in_catalog() {
            true => self.properties.copy(src, copy.id),
            false => Ok(()),
        });
        match done {
            Ok(()) => self.lookup(parent, name),
            Err(err) => {
                if let Err(cleanup) = self.unlink(parent, name) {
                    tracing::warn!("cannot remove the failed copy {name:?}: {cleanup}");
                }
                Err(err)
            }
        }
    }

    fn copy_bytes(&self, from: FileHandle, to: FileHandle) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        loop {
            let n = self.read_at(from, offset, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.write_at(to, offset, &buf[..n])?;
            offset += n as u64;
        }
    }
}
