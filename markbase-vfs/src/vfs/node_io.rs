//! Stateless I/O by node: reads and writes that name a file node and an offset, with
//! no open or close, for protocols that have none (NFSv3).
//!
//! Each call uses the node's file in the node-file cache ([`crate::node_files`]),
//! opened by the first call: the alias is resolved once, and the kernel's and the
//! core's read-ahead follow the reader across calls. A cached file serves a call
//! only while
//!
//! - the catalog has the node, with the aliases the file was opened for: outside
//!   changes are looked for first, as by every call, so a removed node is `NotFound`
//!   and a row that another program gave other aliases gets a new file;
//! - its alias path still leads to it, checked once per [`VfsConfig::attr_ttl`] as
//!   an open checks it (an earlier alias that comes back takes over again);
//! - for a write, it was opened for writing: the reader is replaced by a writer, which
//!   serves the reads too.
//!
//! A file kept out of the catalog by the Finder rule (a `.DS_Store` or `._` file:
//! small, read and written whole) is opened for each call and not cached.
//!
//! [`VfsConfig::attr_ttl`]: crate::VfsConfig::attr_ttl

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::alias::AliasList;
use crate::error::{Result, VfsError};
use crate::handles::{OpenFile, ReadSink, WriteSource};
use crate::node::{Content, Node, NodeId};
use crate::node_files::{Access, NodeFile, NodeFileStats};
use crate::vfs::Vfs;
use crate::vfs::write::{open_rw, writable_backing};

impl Vfs {
    /// Reads up to `len` bytes at `offset` of file `node` into `sink`, as [`Vfs::read`]
    /// reads a handle, without an open: the file stays open for the next call on the
    /// node (see [`Vfs::node_file_stats`]), and reads in sequence have the kernel read
    /// ahead of them.
    ///
    /// A node the catalog no longer has is `NotFound`, a directory `IsADirectory`.
    pub fn read_node<S: ReadSink + ?Sized>(
        &self,
        node: NodeId,
        offset: u64,
        len: usize,
        sink: &mut S,
    ) -> Result<usize> {
        let file = self.node_file(node, Access::Read)?;
        self.read_open(file.open(), offset, len, sink)
    }

    /// Reads into `buf` at `offset` of file `node`, as [`Vfs::read_node`] does; returns
    /// the bytes read (fewer than `buf.len()` only at end of file).
    pub fn read_node_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let file = self.node_file(node, Access::Read)?;
        self.read_open_at(file.open(), offset, buf)
    }

    /// Writes up to `len` bytes at `offset` of file `node`, taken by `source` straight
    /// from its own buffer, as [`Vfs::write`] writes a handle, without an open. The
    /// bytes go to the alias that serves the node; the catalog records the file's size
    /// and mtime at [`Vfs::commit_node`], or when the file is closed unused
    /// ([`VfsConfig::node_file_idle`]) or pushed out of the cache.
    ///
    /// [`VfsConfig::node_file_idle`]: crate::VfsConfig::node_file_idle
    pub fn write_node<S: WriteSource + ?Sized>(
        &self,
        node: NodeId,
        offset: u64,
        len: usize,
        source: &mut S,
    ) -> Result<usize> {
        let file = self.node_file(node, Access::Write)?;
        let _turn = file.write_turn();
        self.write_open(file.open(), offset, len, source)
    }

    /// Writes all of `data` at `offset` of file `node`, as [`Vfs::write_node`] does.
    pub fn write_node_at(&self, node: NodeId, offset: u64, data: &[u8]) -> Result<usize> {
        let file = self.node_file(node, Access::Write)?;
        let _turn = file.write_turn();
        self.write_open_at(file.open(), offset, data)
    }

    /// Makes what was written to file `node` durable, as [`Vfs::fsync`] does for a
    /// handle: its bytes are synced to disk (whichever call wrote them, even through a
    /// file closed since), then its size and mtime are recorded in the catalog and
    /// synced with every commit before. NFS's COMMIT.
    pub fn commit_node(&self, node: NodeId) -> Result<()> {
        self.ensure_writable()?;
        let file = self.node_file(node, Access::Read)?;
        let open = file.open();
        // A write that lands from here on marks the file dirty again, for the next
        // commit or its close.
        let dirty = open
            .write
            .as_ref()
            .is_some_and(|write| write.dirty.swap(false, Ordering::AcqRel));
        let committed = open
            .backing
            .file
            .sync_all()
            .map_err(|err| {
                VfsError::io(
                    format!("syncing node {node} to {}", open.backing.path.display()),
                    err,
                )
            })
            .and_then(|()| self.recorder.record(open, true));
        if committed.is_err()
            && dirty
            && let Some(write) = &open.write
        {
            write.dirty.store(true, Ordering::Release);
        }
        committed
    }

    /// How many files the by-node calls keep open, and how many they opened.
    pub fn node_file_stats(&self) -> NodeFileStats {
        self.node_files.stats()
    }

    /// The file that serves `access` to node `id`: the cached one while it still serves
    /// the node (see the module documentation), otherwise one opened and cached now; a
    /// file out of the catalog opened for this call.
    fn node_file(&self, id: NodeId, access: Access) -> Result<Served> {
        if !id.in_catalog() {
            return self
                .outside_file(id, access == Access::Write)
                .map(Served::Outside);
        }
        self.catalog_file(id, access).map(Served::Cached)
    }

    /// [`Vfs::node_file`] for a catalog node.
    fn catalog_file(&self, id: NodeId, access: Access) -> Result<Arc<NodeFile>> {
        if access == Access::Write {
            self.ensure_writable()?;
        }
        self.refresh();
        let cached = self.node_files.get(id);
        let node = self.node_fresh(id).inspect_err(|err| {
            if let (Some(file), VfsError::NotFound(_)) = (&cached, err) {
                self.node_files.discard(file);
            }
        })?;
        let Content::File(aliases) = &node.content else {
            return Err(VfsError::IsADirectory(self.describe(&node)));
        };
        if let Some(file) = cached
            && self.still_serves(&file, &node, aliases)
            && file.allows(access)
        {
            return Ok(file);
        }
        let backing = self.backing_for_open(&node)?;
        let open = match access {
            Access::Read => OpenFile::reading(id, backing),
            Access::Write => {
                let writable = writable_backing(open_rw(&backing)?, &backing);
                OpenFile::writing(id, Arc::new(writable))
            }
        };
        let file = NodeFile::new(open, aliases.clone());
        Ok(self.node_files.insert(file, |existing| {
            existing.opened_for(aliases) && existing.allows(access)
        }))
    }

    /// Whether the cached `file` still serves `node` (whose aliases are `aliases`): it
    /// was opened for them, and their resolution, checked once per `attr_ttl`, still
    /// leads to it. A file that does not is discarded.
    fn still_serves(&self, file: &Arc<NodeFile>, node: &Node, aliases: &AliasList) -> bool {
        let serves = file.opened_for(aliases)
            && (file.verified_within(self.config.attr_ttl) || self.leads_to(node, file));
        if !serves {
            tracing::debug!(node = %node.id, "a node file no longer serves its node; reopening");
            self.node_files.discard(file);
        }
        serves
    }

    /// Whether the resolution an open of `node` would use now is `file`'s file.
    fn leads_to(&self, node: &Node, file: &NodeFile) -> bool {
        let same = self
            .backing_for_open(node)
            .is_ok_and(|backing| backing.stat.same_file(&file.open.backing.stat));
        if same {
            file.verified();
        }
        same
    }
}

/// The file a by-node call uses.
enum Served {
    /// A catalog node's, kept in the node-file cache.
    Cached(Arc<NodeFile>),
    /// A file out of the catalog, for this call alone.
    Outside(OpenFile),
}

impl Served {
    fn open(&self) -> &OpenFile {
        match self {
            Self::Cached(file) => &file.open,
            Self::Outside(open) => open,
        }
    }

    /// The right to write now ([`NodeFile::write_turn`]); a file for this call alone
    /// has no other writer.
    fn write_turn(&self) -> Option<parking_lot::MutexGuard<'_, ()>> {
        match self {
            Self::Cached(file) => Some(file.write_turn()),
            Self::Outside(_) => None,
        }
    }
}
