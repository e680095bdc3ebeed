//! Writing file contents: writable handles, `pwrite`, truncate, mtime, flush and fsync.
//!
//! The data path never touches SQLite: bytes go straight into the file with
//! `pwrite`. The catalog learns a file's new size and mtime when its handle is
//! flushed, synced or released, when a node file ([`crate::node_files`]) is
//! committed or closed, and on `setattr`.

use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::alias::{Backing, FileStat};
use crate::direct::DirectIo;
use crate::error::{Result, VfsError};
use crate::handles::{FileHandle, OpenFile, WriteSource};
use crate::node::{Content, FileAttr, NodeId, system_time_from_ns};
use crate::vfs::Vfs;

/// Attribute changes for [`Vfs::setattr`]; `None` leaves an attribute as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetAttr {
    /// Truncate or extend a file to this size.
    pub size: Option<u64>,
    /// Set the modification time (ns since the Unix epoch).
    pub mtime_ns: Option<i64>,
    /// Permission bits (`0o777` at most are kept). A file whose bytes the store holds
    /// takes them; for folders and for files whose bytes are elsewhere (a user's
    /// original is never changed but for its bytes) they are accepted and ignored, so
    /// that copies that preserve modes do not fail.
    pub mode: Option<u32>,
    /// A new owner and/or group, for a file whose bytes the store holds (only a
    /// process running as root may give a file away; the error says so otherwise).
    /// Accepted and ignored for folders and for files whose bytes are elsewhere.
    pub owner: Option<OwnerChange>,
}

/// The owner and group a `chown` asks for; `None` leaves one as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerChange {
    /// The new user id.
    pub uid: Option<u32>,
    /// The new group id.
    pub gid: Option<u32>,
}

impl SetAttr {
    /// A change of size only.
    pub fn size(size: u64) -> Self {
        Self {
            size: Some(size),
            ..Self::default()
        }
    }

    /// A change of permission bits only.
    pub fn mode(mode: u32) -> Self {
        Self {
            mode: Some(mode),
            ..Self::default()
        }
    }

    /// A change of mtime only.
    pub fn mtime_ns(mtime_ns: i64) -> Self {
        Self {
            mtime_ns: Some(mtime_ns),
            ..Self::default()
        }
    }
}

impl Vfs {
    /// Opens file `ino` for reading and writing. Writes go to the alias that serves it.
    pub fn open_file_rw(&self, ino: NodeId) -> Result<FileHandle> {
        self.ensure_writable()?;
        if !ino.in_catalog() {
            return self.open_outside(ino, true);
        }
        let node = self.node(ino)?;
        let backing = self.backing_for_open(&node)?;
        let file = open_rw(&backing)?;
        Ok(self.open_writable(ino, file, &backing))
    }

    /// Registers a writable handle on `file`, which is `backing`'s path opened read-write.
    pub(crate) fn open_writable(&self, ino: NodeId, file: File, backing: &Backing) -> FileHandle {
        let writable = Arc::new(writable_backing(file, backing));
        self.handles.insert(OpenFile::writing(ino, writable))
    }

    /// Writes all of `data` at `offset` of an open file.
    pub fn write_at(&self, handle: FileHandle, offset: u64, data: &[u8]) -> Result<usize> {
        let open = self.writable(handle)?;
        self.write_open_at(&open, offset, data)
    }

    /// Writes up to `len` bytes at `offset` of an open file, taken by `source` straight
    /// from its own buffer. Returns the bytes written (fewer only if the source had fewer).
    pub fn write<S: WriteSource + ?Sized>(
        &self,
        handle: FileHandle,
        offset: u64,
        len: usize,
        source: &mut S,
    ) -> Result<usize> {
        let open = self.writable(handle)?;
        self.write_open(&open, offset, len, source)
    }

    /// [`Vfs::write_at`] to a writer (a handle's, or a cached node file's).
    pub(crate) fn write_open_at(&self, open: &OpenFile, offset: u64, data: &[u8]) -> Result<usize> {
        if let Some(direct) = open.direct.get()
            && DirectIo::takes(offset, data.len())
        {
            let fill = |room: &mut [u8]| {
                room.copy_from_slice(data);
                Ok(data.len())
            };
            direct
                .write(offset, data.len(), fill, &open.backing.file)
                .map_err(|err| write_error(open, offset, err))?;
            self.wrote(open);
            return Ok(data.len());
        }
        open.backing
            .file
            .write_all_at(data, offset)
            .map_err(|err| write_error(open, offset, err))?;
        self.wrote(open);
        Ok(data.len())
    }

    /// [`Vfs::write`] to a writer (a handle's, or a cached node file's).
    pub(crate) fn write_open<S: WriteSource + ?Sized>(
        &self,
        open: &OpenFile,
        offset: u64,
        len: usize,
        source: &mut S,
    ) -> Result<usize> {
        if let Some(direct) = open.direct.get()
            && DirectIo::takes(offset, len)
        {
            let written = direct
                .write(offset, len, |room| source.copy_to(room), &open.backing.file)
                .map_err(|err| write_error(open, offset, err))?;
            self.wrote(open);
            return Ok(written);
        }
        let written = loop {
            match source.write_to(&open.backing.file, offset, len) {
                Ok(n) => break n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(write_error(open, offset, err)),
            }
        };
        self.wrote(open);
        Ok(written)
    }

    /// Records a written file's size and mtime in the catalog (`close` calls this).
    pub fn flush(&self, handle: FileHandle) -> Result<()> {
        let open = self.handle(handle)?;
        self.recorder.record_written(&open, false)
    }

    /// Makes an open file durable: its bytes (only the data with `datasync`), and its
    /// node with its size and mtime, survive a crash of the process or the machine.
    pub fn fsync(&self, handle: FileHandle, datasync: bool) -> Result<()> {
        let open = self.handle(handle)?;
        let synced = if datasync {
            open.backing.file.sync_data()
        } else {
            open.backing.file.sync_all()
        };
        synced
            .map_err(|err| VfsError::io(format!("syncing {}", open.backing.path.display()), err))?;
        if let Some(write) = &open.write {
            write.dirty.store(true, Ordering::Release);
        }
        self.recorder.record_written(&open, true)
    }

    /// Changes a node's size or mtime. `handle`, when given, is the open file to use
    /// (as `ftruncate` would), even after the node was removed; otherwise the alias
    /// that serves the file is opened.
    pub fn setattr(
        &self,
        ino: NodeId,
        changes: SetAttr,
        handle: Option<FileHandle>,
    ) -> Result<FileAttr> {
        if changes == SetAttr::default() {
            return self.getattr(ino);
        }
        self.ensure_writable()?;
        if !ino.in_catalog() {
            return self.setattr_outside(ino, changes, handle);
        }
        if changes.mode.is_some() || changes.owner.is_some() {
            self.set_mode_and_owner(ino, changes.mode, changes.owner)?;
        }
        if changes.size.is_none() && changes.mtime_ns.is_none() {
            // Nothing to record in the catalog.
            return self.getattr_open(ino, handle);
        }
        let open = match handle {
            Some(handle) => Some(self.writable(handle)?),
            None => None,
        };
        let node = match (self.node(ino), &open) {
            (Ok(node), _) => node,
            // An open file outlives its node (unlinked, or replaced by a rename), as
            // on any filesystem: `ftruncate` still changes it; there is nothing to record.
            (Err(VfsError::NotFound(_)), Some(open)) => return self.set_unlinked(open, changes),
            (Err(err), _) => return Err(err),
        };
        if let Content::Dir = node.content {
            if changes.size.is_some() {
                return Err(VfsError::IsADirectory(self.describe(&node)));
            }
            let mtime = changes.mtime_ns.unwrap_or(node.mtime_ns);
            self.primary
                .write(false, || self.drop_caches(), |w| w.set_mtime(ino, mtime))?;
            self.times.status_changed(ino, crate::times::now_ns());
            self.caches.forget(&[ino], &[]);
            return self.getattr(ino);
        }
        let owned;
        let file = match &open {
            Some(open) => &open.backing.file,
            None => {
                let backing = self.backing_for_open(&node)?;
                owned = open_rw(&backing)?;
                &owned
            }
        };
        let path = || match &open {
            Some(open) => open.backing.path.display().to_string(),
            None => self.describe(&node),
        };
        let stat = apply_to_file(file, path, changes)?;
        self.primary.write(
            false,
            || self.drop_caches(),
            |w| w.set_size_mtime(ino, stat.size, stat.mtime_ns),
        )?;
        self.caches.forget(&[ino], &[]);
        self.getattr(ino)
    }

    /// Gives file `ino` the permission bits of `mode` and the owner `owner` asks for,
    /// if the store holds its bytes.
    fn set_mode_and_owner(
        &self,
        ino: NodeId,
        mode: Option<u32>,
        owner: Option<OwnerChange>,
    ) -> Result<()> {
        let node = match self.node(ino) {
            Ok(node) => node,
            // A removed node's open file: nothing the catalog shows changes.
            Err(VfsError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err),
        };
        if !matches!(node.content, Content::File(_)) {
            return Ok(());
        }
        let backing = self.backing_for_open(&node)?;
        let path = &backing.path;
        if !self.store.contains(path) {
            return Ok(());
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(path, Permissions::from_mode(mode & 0o777)).map_err(
                |err| VfsError::io(format!("setting the mode of {}", path.display()), err),
            )?;
        }
        if let Some(owner) = owner {
            std::os::unix::fs::chown(path, owner.uid, owner.gid).map_err(|err| {
                VfsError::io(format!("changing the owner of {}", path.display()), err)
            })?;
        }
        self.caches.forget_attr(ino);
        Ok(())
    }

    /// [`Vfs::setattr`] through a handle whose node is gone: the open file changes, and
    /// its attributes are those of a file with no link left.
    pub(crate) fn set_unlinked(&self, open: &OpenFile, changes: SetAttr) -> Result<FileAttr> {
        let path = || open.backing.path.display().to_string();
        let stat = apply_to_file(&open.backing.file, path, changes)?;
        Ok(self.served_attr(open.node, &stat.within(open.backing.reach), 0))
    }

    pub(crate) fn handle(&self, handle: FileHandle) -> Result<Arc<OpenFile>> {
        self.handles.get(handle).ok_or(VfsError::BadHandle(handle))
    }

    pub(crate) fn writable(&self, handle: FileHandle) -> Result<Arc<OpenFile>> {
        let open = self.handle(handle)?;
        if open.write.is_none() {
            return Err(VfsError::NotWritable(handle));
        }
        Ok(open)
    }

    fn wrote(&self, open: &OpenFile) {
        if let Some(write) = &open.write {
            write.dirty.store(true, Ordering::Release);
        }
        self.caches.forget_attr(open.node);
    }
}

/// Truncates and/or sets the mtime of `file`, as `changes` asks, and returns its stat
/// afterwards. `path` names the file in errors (only computed when one occurs).
pub(crate) fn apply_to_file(
    file: &File,
    path: impl Fn() -> String,
    changes: SetAttr,
) -> Result<FileStat> {
    if let Some(size) = changes.size {
        file.set_len(size)
            .map_err(|err| VfsError::io(format!("truncating {} to {size} bytes", path()), err))?;
    }
    if let Some(mtime) = changes.mtime_ns {
        file.set_modified(system_time_from_ns(mtime))
            .map_err(|err| VfsError::io(format!("setting the mtime of {}", path()), err))?;
    }
    file.metadata()
        .map(|meta| FileStat::of(&meta))
        .map_err(|err| VfsError::io(format!("reading the size of {}", path()), err))
}

/// `file`, which is `backing`'s path opened read-write, as the backing of a writer.
pub(crate) fn writable_backing(file: File, backing: &Backing) -> Backing {
    let stat = file
        .metadata()
        .map(|meta| FileStat::of(&meta).within(backing.reach))
        .unwrap_or(backing.stat);
    Backing {
        file,
        path: backing.path.clone(),
        index: backing.index,
        skipped: Vec::new(),
        reach: backing.reach,
        stat,
    }
}

/// Opens the path of `backing` for reading and writing.
pub(crate) fn open_rw(backing: &Backing) -> Result<File> {
    let context = || format!("opening {} for writing", backing.path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&backing.path)
        .map_err(|err| VfsError::io(context(), err))?;
    Ok(file)
}

fn write_error(open: &OpenFile, offset: u64, err: std::io::Error) -> VfsError {
    if err.raw_os_error() == Some(libc::ENOSPC) {
        tracing::warn!(path = %open.backing.path.display(), "no space left for node {}", open.node);
    }
    VfsError::io(
        format!(
            "writing node {} to {} at offset {offset}",
            open.node,
            open.backing.path.display()
        ),
        err,
    )
}
