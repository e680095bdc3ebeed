//! Opening files through their aliases, and the zero-copy read path.
//!
//! A resolved alias stays open in the resolution cache, so that open/close
//! storms reuse its descriptor. Before reuse, the alias path is stat'ed: if the
//! file vanished or another file took its place, the node is resolved again.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::alias::Resolution;
use crate::alias::{self, Backing, FileStat, SkippedAlias};
use crate::cache::{CachedResolution, Resolved};
use crate::direct::DirectIo;
use crate::error::{Result, VfsError};
use crate::handles::{FileHandle, OpenFile, ReadSink};
use crate::node::{Content, FileAttr, Node, NodeId};
use crate::prefetch::prefetch;
use crate::vfs::Vfs;

impl Vfs {
    /// Opens file `ino` for reading and returns a handle that owns its alias file.
    pub fn open_file(&self, ino: NodeId) -> Result<FileHandle> {
        if !ino.in_catalog() {
            return self.open_outside(ino, false);
        }
        let node = self.node(ino)?;
        let backing = self.backing_for_open(&node)?;
        Ok(self.handles.insert(OpenFile::reading(node.id, backing)))
    }

    /// Reads up to `len` bytes at `offset` of an open file into `sink`, straight from the
    /// alias file. Returns the bytes read: fewer than `len` at end of file, or when the
    /// sink takes fewer.
    ///
    /// The sink is called once (again only when interrupted before reading anything):
    /// a sink such as a slice puts the bytes of every call at its start, so a second
    /// call after a short read (end of file, a file still growing, a slice smaller than
    /// `len`) would overwrite the bytes of the first with those of a later offset.
    ///
    /// A handle read in sequence has the kernel read ahead of it ([`VfsConfig::read_ahead`]).
    /// No lock is held while the sink does I/O, and nothing is allocated.
    ///
    /// [`VfsConfig::read_ahead`]: crate::VfsConfig::read_ahead
    pub fn read<S: ReadSink + ?Sized>(
        &self,
        handle: FileHandle,
        offset: u64,
        len: usize,
        sink: &mut S,
    ) -> Result<usize> {
        let open = self
            .handles
            .get(handle)
            .ok_or(VfsError::BadHandle(handle))?;
        self.read_open(&open, offset, len, sink)
    }

    /// Reads into `buf` at `offset` of an open file; returns the bytes read
    /// (fewer than `buf.len()` only at end of file).
    pub fn read_at(&self, handle: FileHandle, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let open = self
            .handles
            .get(handle)
            .ok_or(VfsError::BadHandle(handle))?;
        self.read_open_at(&open, offset, buf)
    }

    /// Asks the operating system to start reading `len` bytes at `offset` of an open
    /// file into its page cache, and returns without waiting for them
    /// (`posix_fadvise(WILLNEED)`; `F_RDADVISE` on macOS). Reads in sequence need no
    /// such call: the core reads ahead of them itself. A hint: only an unknown handle
    /// is an error.
    pub fn prefetch(&self, handle: FileHandle, offset: u64, len: u64) -> Result<()> {
        let open = self
            .handles
            .get(handle)
            .ok_or(VfsError::BadHandle(handle))?;
        let range = offset..offset.saturating_add(len);
        prefetch(&open.backing.file, &open.backing.path, range);
        Ok(())
    }

    /// [`Vfs::read`] of an open file (a handle's, or a cached node file's).
    pub(crate) fn read_open<S: ReadSink + ?Sized>(
        &self,
        open: &OpenFile,
        offset: u64,
        len: usize,
        sink: &mut S,
    ) -> Result<usize> {
        if let Some(direct) = open.direct.get()
            && DirectIo::takes(offset, len)
        {
            return direct
                .read(offset, len, sink)
                .map_err(|err| read_error(open, offset, err));
        }
        self.read_ahead(open, offset, len as u64);
        loop {
            match sink.read_from(&open.backing.file, offset, len) {
                Ok(n) => return Ok(n),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(read_error(open, offset, err)),
            }
        }
    }

    /// [`Vfs::read_at`] of an open file (a handle's, or a cached node file's).
    pub(crate) fn read_open_at(
        &self,
        open: &OpenFile,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        if open.direct.get().is_some() && DirectIo::takes(offset, buf.len()) {
            // One direct read: short only at the end of the file.
            return self.read_open(open, offset, buf.len(), buf);
        }
        self.read_ahead(open, offset, buf.len() as u64);
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            match open.backing.file.read_at(&mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(read_error(open, at, err)),
            }
        }
        Ok(done)
    }

    /// Tells `open`'s read-ahead of a read of `len` bytes at `offset`, and asks the
    /// kernel for what it says to read ahead (the lock is released first).
    fn read_ahead(&self, open: &OpenFile, offset: u64, len: u64) {
        if !self.config.read_ahead {
            return;
        }
        let asked = open.read_ahead.lock().on_read(offset, len);
        if let Some(range) = asked {
            prefetch(&open.backing.file, &open.backing.path, range);
        }
    }

    /// Closes a handle, recording a written file's size and mtime in the catalog.
    /// The alias file of a read handle stays cached for the next open.
    pub fn release(&self, handle: FileHandle) -> Result<()> {
        let open = self
            .handles
            .remove(handle)
            .ok_or(VfsError::BadHandle(handle))?;
        let recorded = self.recorder.record_written(&open, false);
        if open
            .write
            .as_ref()
            .is_some_and(|write| write.unseen.load(Ordering::Acquire))
        {
            self.unseen_writers.remove(open.node);
        }
        recorded
    }

    /// The attributes of node `ino`, or, when the node is gone (unlinked, or replaced
    /// by a rename) and a handle is open on it, those of the open file (`fstat`):
    /// `handle` if given, otherwise any handle open on the node (Linux asks FUSE for
    /// the attributes of an `fstat` without naming the handle).
    pub fn getattr_open(&self, ino: NodeId, handle: Option<FileHandle>) -> Result<FileAttr> {
        match self.getattr(ino) {
            Err(VfsError::NotFound(what)) => {
                let open = match handle {
                    Some(handle) => self.handles.get(handle).filter(|open| open.node == ino),
                    None => self.handles.any_open_on(ino),
                };
                let Some(open) = open else {
                    return Err(VfsError::NotFound(what));
                };
                let stat = open.backing.fstat().map_err(|err| {
                    VfsError::io(format!("reading {}", open.backing.path.display()), err)
                })?;
                Ok(self.served_attr(open.node, &stat, 0))
            }
            result => result,
        }
    }

    /// How many file handles are open.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// Resolves file `ino` afresh, bypassing the caches, for diagnosis
    /// (`markbase resolve`): which alias serves it and why every other was passed over.
    pub fn resolve(&self, ino: NodeId) -> Result<Resolution> {
        let node = self.node(ino)?;
        let Content::File(aliases) = &node.content else {
            return Err(VfsError::IsADirectory(self.describe(&node)));
        };
        let outcome = alias::resolve(aliases, self.catalog.base_dir(), &self.reach).map(Arc::new);
        Ok(Resolution { node, outcome })
    }

    /// The alias file for an open: the cached one if it is still the file at its path,
    /// otherwise a fresh resolution.
    pub(crate) fn backing_for_open(&self, node: &Node) -> Result<Arc<Backing>> {
        let Content::File(_) = &node.content else {
            return Err(VfsError::IsADirectory(self.describe(node)));
        };
        if let Some(cached) = self.caches.resolution(node.id)
            && let Some((backing, _)) = self.reusable(node.id, cached)
        {
            return Ok(backing);
        }
        match self.resolve_into_cache(node) {
            Resolved::Served { backing, .. } => Ok(backing),
            Resolved::Unreadable(skipped) => Err(self.unreadable(node, &skipped)),
        }
    }

    /// The current size and mtime of a file node's alias, trusted for `attr_ttl`;
    /// `None` when no alias can be read.
    pub(crate) fn current_stat(&self, node: &Node) -> Option<FileStat> {
        // The stat outlives the descriptor: with more files in use than `open_file_cache`
        // holds, a warm getattr must not reopen the alias.
        // A file the kernel writes unseen may have changed since any stat was cached.
        if let Some(attr) = self.caches.attr(node.id)
            && attr.checked.elapsed() < self.config.attr_ttl
            && !self.unseen_writers.has(node.id)
        {
            return attr.stat;
        }
        if let Some(cached) = self.caches.resolution(node.id)
            && let Some((_, stat)) = self.reusable(node.id, cached)
        {
            return Some(stat);
        }
        match self.resolve_into_cache(node) {
            Resolved::Served { stat, .. } => Some(stat),
            Resolved::Unreadable(_) => None,
        }
    }

    /// The cached serving file and its fresh stat, if it may still serve: its path still
    /// leads to it, and it is the first alias or the earlier ones were tried within
    /// `attr_ttl` (an alias that comes back takes over again).
    fn reusable(&self, id: NodeId, cached: CachedResolution) -> Option<(Arc<Backing>, FileStat)> {
        let Resolved::Served { backing, .. } = cached.resolved else {
            return None;
        };
        if backing.index > 0 && cached.resolved_at.elapsed() >= self.config.attr_ttl {
            return None;
        }
        let stat = still_there(&backing)?;
        let generation = self.caches.generation();
        let resolved = Resolved::Served {
            backing: Arc::clone(&backing),
            stat,
        };
        let refreshed = CachedResolution {
            resolved,
            resolved_at: cached.resolved_at,
            checked: Instant::now(),
        };
        self.caches.insert_resolution(generation, id, refreshed);
        Some((backing, stat))
    }

    /// Resolves `node`'s aliases (no lock held while opening files) and caches the result.
    /// A directory resolves to nothing: it has no alias to read.
    fn resolve_into_cache(&self, node: &Node) -> Resolved {
        let generation = self.caches.generation();
        let Content::File(aliases) = &node.content else {
            return Resolved::Unreadable(Arc::from([]));
        };
        let resolved = match alias::resolve(aliases, self.catalog.base_dir(), &self.reach) {
            Ok(backing) => {
                for skipped in &backing.skipped {
                    tracing::info!(node = %node.id, name = %node.name, "skipping {skipped}");
                }
                let stat = backing.stat;
                Resolved::Served {
                    backing: Arc::new(backing),
                    stat,
                }
            }
            Err(skipped) => Resolved::Unreadable(skipped.into()),
        };
        self.caches.insert_resolution(
            generation,
            node.id,
            CachedResolution {
                resolved: resolved.clone(),
                resolved_at: Instant::now(),
                checked: Instant::now(),
            },
        );
        resolved
    }

    fn unreadable(&self, node: &Node, skipped: &[SkippedAlias]) -> VfsError {
        VfsError::NoUsableAlias {
            id: node.id,
            path: self.describe(node),
            skipped: skipped.to_vec(),
        }
    }

    /// The node's path for messages, or `#id` when it has none.
    pub(crate) fn describe(&self, node: &Node) -> String {
        self.path_of(node.id)
            .unwrap_or_else(|_| format!("#{}", node.id))
    }
}

/// The alias file's current stat if its path still leads to the same file.
fn still_there(backing: &Backing) -> Option<FileStat> {
    alias::stat_path(&backing.path)
        .ok()
        .filter(|now| now.same_file(&backing.stat))
        .map(|now| now.within(backing.reach))
}

fn read_error(open: &OpenFile, offset: u64, err: std::io::Error) -> VfsError {
    VfsError::io(
        format!(
            "reading node {} from {} at offset {offset}",
            open.node,
            open.backing.path.display()
        ),
        err,
    )
}
