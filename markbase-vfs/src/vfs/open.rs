//! Opening files: one decision, for every adapter, of what `open(2)`'s flags (or a
//! WebDAV PUT's) ask: read or write, create, exclusive, truncate, or a whole new
//! content that takes the name only when complete.

use crate::error::{Result, VfsError};
use crate::handles::FileHandle;
use crate::node::{FileAttr, NodeId, NodeKind};
use crate::vfs::Vfs;
use crate::vfs::namespace::NewFile;
use crate::vfs::upload::Upload;

/// How a file is opened, as `open(2)`'s flags say. Start from [`OpenFlags::read`] or
/// [`OpenFlags::write`], or take a kernel's flags with [`OpenFlags::from_libc`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenFlags {
    /// Read from it.
    pub read: bool,
    /// Write to it.
    pub write: bool,
    /// Create it when the name is free (`O_CREAT`; by name only).
    pub create: bool,
    /// With `create`, fail with `EEXIST` when the name is taken (`O_EXCL`).
    pub exclusive: bool,
    /// Cut it to nothing first, in place (`O_TRUNC`; with `write`).
    pub truncate: bool,
    /// Writes go to its end (`O_APPEND`). An adapter whose kernel places them (FUSE)
    /// passes the offsets it is given.
    pub append: bool,
    /// Write a whole new content that takes the name only when complete (a WebDAV
    /// PUT): readers see the old bytes, and a cut upload leaves them as they were.
    /// By path only ([`Vfs::open_path`]), with `write`.
    pub replace: bool,
    /// Read and write past the page cache (`O_DIRECT`, Linux): the handle's aligned
    /// requests reach the disk directly, as the program asked.
    pub direct: bool,
}

impl OpenFlags {
    /// Read only.
    pub fn read() -> Self {
        Self {
            read: true,
            ..Self::default()
        }
    }

    /// Read and write.
    pub fn write() -> Self {
        Self {
            read: true,
            write: true,
            ..Self::default()
        }
    }

    /// `open(2)`'s flags: the access mode, `O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_APPEND`,
    /// and on Linux `O_DIRECT`.
    pub fn from_libc(flags: i32) -> Self {
        let access = flags & libc::O_ACCMODE;
        #[cfg(target_os = "linux")]
        let direct = flags & libc::O_DIRECT != 0;
        #[cfg(not(target_os = "linux"))]
        let direct = false;
        Self {
            read: access != libc::O_WRONLY,
            write: access != libc::O_RDONLY,
            create: flags & libc::O_CREAT != 0,
            direct,
            exclusive: flags & libc::O_EXCL != 0,
            truncate: flags & libc::O_TRUNC != 0,
            append: flags & libc::O_APPEND != 0,
            replace: false,
        }
    }

    /// These flags, creating the file when the name is free.
    pub fn create(self) -> Self {
        Self {
            create: true,
            ..self
        }
    }

    /// These flags, failing when the name is taken (implies `create`).
    pub fn exclusive(self) -> Self {
        Self {
            create: true,
            exclusive: true,
            ..self
        }
    }

    /// These flags, cutting the file to nothing first.
    pub fn truncate(self) -> Self {
        Self {
            truncate: true,
            ..self
        }
    }

    /// These flags, writing at the end.
    pub fn append(self) -> Self {
        Self {
            append: true,
            ..self
        }
    }

    /// These flags, writing a whole new content that takes the name when complete.
    pub fn replace(self) -> Self {
        Self {
            replace: true,
            ..self
        }
    }

    /// Whether the open changes the file (write, append or truncate).
    pub fn writes(&self) -> bool {
        self.write || self.append || self.truncate || self.replace
    }
}

/// A file opened by [`Vfs::open_node`] or [`Vfs::open_at`]: its handle and its attributes
/// once opened (after a truncate, a truncated file's).
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The open handle; [`Vfs::release`] closes it.
    pub handle: FileHandle,
    /// The file's attributes.
    pub attr: FileAttr,
    /// Whether the open made the file.
    pub created: bool,
}

/// What [`Vfs::open_path`] opened.
#[derive(Debug)]
pub enum OpenedPath {
    /// A file, opened in place.
    File(Opened),
    /// A whole new content being written ([`OpenFlags::replace`]); it takes the name
    /// at [`Vfs::commit_upload`], and is discarded if dropped before.
    Upload(Upload),
}

impl Vfs {
    /// Opens file `ino` as `flags` ask (`create` has no effect: the file exists, so
    /// `exclusive` fails with `EEXIST`). A directory is `EISDIR`.
    pub fn open_node(&self, ino: NodeId, flags: OpenFlags) -> Result<Opened> {
        if flags.create && flags.exclusive {
            return Err(VfsError::Exists(format!("node {ino}")));
        }
        if flags.replace {
            return Err(VfsError::InvalidOpen(
                "a whole new content is opened by path",
            ));
        }
        let handle = if flags.writes() {
            self.open_file_rw(ino)?
        } else {
            self.open_file(ino)?
        };
        self.finish_open(ino, handle, flags, false)
    }

    /// Opens file `name` in `parent` as `flags` ask, making it as `new` says when
    /// `flags.create` and the name is free.
    pub fn open_at(
        &self,
        parent: NodeId,
        name: &str,
        flags: OpenFlags,
        new: NewFile,
    ) -> Result<Opened> {
        if flags.replace {
            return Err(VfsError::InvalidOpen(
                "a whole new content is opened by path",
            ));
        }
        if !flags.create {
            let attr = self.lookup(parent, name)?;
            return self.open_node(attr.id, flags);
        }
        let (attr, handle, created) = self.create_file(parent, name, flags.exclusive, Some(new))?;
        self.finish_open(attr.id, handle, flags, created)
    }

    /// Opens the file at an absolute path as `flags` ask, for path-based adapters: a
    /// directory is `EISDIR`, a free name without `create` `ENOENT`, a taken one with
    /// `exclusive` `EEXIST`; with `replace`, the new content is an [`Upload`].
    pub fn open_path(&self, path: &str, flags: OpenFlags) -> Result<OpenedPath> {
        let existing = match self.lookup_path(path) {
            Ok(attr) if attr.kind == NodeKind::Dir => {
                return Err(VfsError::IsADirectory(path.to_owned()));
            }
            Ok(_) if flags.exclusive => return Err(VfsError::Exists(path.to_owned())),
            Ok(attr) => Some(attr),
            Err(VfsError::NotFound(_)) if flags.create => None,
            Err(err) => return Err(err),
        };
        if flags.replace {
            let (parent, name) = self.lookup_parent(path)?;
            return self.begin_upload(parent.id, name).map(OpenedPath::Upload);
        }
        match existing {
            Some(attr) => self.open_node(attr.id, flags),
            None => {
                let (parent, name) = self.lookup_parent(path)?;
                self.open_at(parent.id, name, flags, NewFile::default())
            }
        }
        .map(OpenedPath::File)
    }

    /// Truncates a file just opened if `flags` ask, and gives its attributes; the
    /// handle is released again when that fails.
    fn finish_open(
        &self,
        ino: NodeId,
        handle: FileHandle,
        flags: OpenFlags,
        created: bool,
    ) -> Result<Opened> {
        if flags.direct {
            self.bypass_cache(handle, flags.writes());
        }
        let attr = if flags.truncate && flags.writes() && !created {
            self.setattr(ino, crate::vfs::write::SetAttr::size(0), Some(handle))
        } else {
            self.getattr_open(ino, Some(handle))
        };
        match attr {
            Ok(attr) => Ok(Opened {
                handle,
                attr,
                created,
            }),
            Err(err) => {
                if let Err(release) = self.release(handle) {
                    tracing::debug!("releasing a failed open: {release}");
                }
                Err(err)
            }
        }
    }

    /// Gives `handle` its `O_DIRECT` descriptor (Linux). A filesystem without direct I/O
    /// leaves the handle cached, with a note in the log.
    fn bypass_cache(&self, handle: FileHandle, write: bool) {
        #[cfg(target_os = "linux")]
        if let Some(open) = self.handles.get(handle) {
            match crate::direct::DirectIo::open(&open.backing.file, write) {
                Ok(direct) => {
                    let _ = open.direct.set(direct);
                }
                Err(err) => tracing::info!(
                    "{} is read and written through the page cache for an O_DIRECT open: {err}",
                    open.backing.path.display()
                ),
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (handle, write);
    }
}
