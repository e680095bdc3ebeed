//! [`VfsFile`]: an open file of the catalog that programs use as they use
//! [`std::fs::File`]: `Read`, `Write`, `Seek`, `read_at`/`write_at`, closed on drop.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::error::{Result, VfsError};
use crate::handles::FileHandle;
use crate::node::{FileAttr, NodeId};
use crate::vfs::Vfs;
use crate::vfs::open::{OpenFlags, Opened, OpenedPath};

/// An open file of the catalog, with a position, as [`std::fs::File`] is: it
/// implements [`Read`], [`Seek`] and (opened for writing) [`Write`], and releases
/// its handle when dropped, recording a written file's size and mtime.
///
/// ```
/// # use markbase_vfs::import::{import, ImportOptions};
/// # use markbase_vfs::{OpenFlags, Vfs, VfsConfig, VfsFile};
/// # use std::io::Read;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # std::fs::create_dir(dir.path().join("media"))?;
/// # std::fs::write(dir.path().join("media/clip.mov"), b"frames")?;
/// # let catalog = dir.path().join("warren.sqlite");
/// # import(&dir.path().join("media"), &catalog, &ImportOptions::default())?;
/// let vfs = Vfs::open(VfsConfig::new(&catalog))?;
/// let mut clip = VfsFile::open(&vfs, "/clip.mov", OpenFlags::read())?;
/// let mut bytes = Vec::new();
/// clip.read_to_end(&mut bytes)?;
/// assert_eq!(bytes, b"frames");
/// # Ok(())
/// # }
/// ```
pub struct VfsFile<'v> {
    vfs: &'v Vfs,
    handle: FileHandle,
    node: NodeId,
    flags: OpenFlags,
    position: u64,
}

impl<'v> VfsFile<'v> {
    /// Opens the file at an absolute path as `flags` ask ([`Vfs::open_path`]; a
    /// whole new content, [`OpenFlags::replace`], is an upload, not a file: `EINVAL`).
    pub fn open(vfs: &'v Vfs, path: &str, flags: OpenFlags) -> Result<Self> {
        match vfs.open_path(path, flags)? {
            OpenedPath::File(opened) => Ok(Self::from_opened(vfs, opened, flags)),
            OpenedPath::Upload(_) => Err(VfsError::InvalidOpen(
                "a whole new content is an upload, not a file",
            )),
        }
    }

    /// Opens file `node` as `flags` ask ([`Vfs::open_node`]).
    pub fn open_node(vfs: &'v Vfs, node: NodeId, flags: OpenFlags) -> Result<Self> {
        let opened = vfs.open_node(node, flags)?;
        Ok(Self::from_opened(vfs, opened, flags))
    }

    fn from_opened(vfs: &'v Vfs, opened: Opened, flags: OpenFlags) -> Self {
        let position = if flags.append { opened.attr.size } else { 0 };
        Self {
            vfs,
            handle: opened.handle,
            node: opened.attr.id,
            flags,
            position,
        }
    }

    /// The file's node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The file's attributes now (those of the open file, if its node was removed).
    pub fn attr(&self) -> Result<FileAttr> {
        self.vfs.getattr_open(self.node, Some(self.handle))
    }

    /// Reads up to `buf.len()` bytes at `offset`, leaving the position as it is.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.vfs.read_at(self.handle, offset, buf)
    }

    /// Writes all of `data` at `offset`, leaving the position as it is.
    pub fn write_at(&self, data: &[u8], offset: u64) -> Result<usize> {
        self.vfs.write_at(self.handle, offset, data)
    }

    /// Makes what was written durable: the bytes, and the size and mtime in the catalog.
    pub fn sync_all(&self) -> Result<()> {
        self.vfs.fsync(self.handle, false)
    }
}

impl std::fmt::Debug for VfsFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfsFile")
            .field("node", &self.node)
            .field("handle", &self.handle)
            .field("flags", &self.flags)
            .field("position", &self.position)
            .finish()
    }
}

impl Read for VfsFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Write for VfsFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.flags.append {
            self.position = self.attr()?.size;
        }
        let n = self.write_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }

    /// Records the size and mtime in the catalog (the bytes are in the file already).
    fn flush(&mut self) -> io::Result<()> {
        Ok(self.vfs.flush(self.handle)?)
    }
}

impl Seek for VfsFile<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(offset) => {
                self.position = offset;
                return Ok(offset);
            }
            SeekFrom::Current(delta) => (self.position, delta),
            SeekFrom::End(delta) => (self.attr()?.size, delta),
        };
        self.position = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a seek to before the start of the file",
            )
        })?;
        Ok(self.position)
    }
}

impl Drop for VfsFile<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.vfs.release(self.handle) {
            err.log();
        }
    }
}
