//! Listing directories with offsets that survive changes between calls.
//!
//! Entries come in (name, id) order. The offset of an entry is its node id
//! plus 2, so offsets 0, 1 and 2 are free for an adapter's `.` and `..` and all
//! mean "from the start". To resume, the core needs the name of the entry the
//! caller stopped at: it remembers the name of every entry a call handed out
//! (a caller such as NFS may resume after any of them, not only the last), and
//! otherwise reads it from the entry's row. Entries added or
//! removed between calls therefore never make a surviving entry appear twice
//! or go missing.

use std::sync::Arc;

use crate::catalog::{After, Position};
use crate::error::{Result, VfsError};
use crate::node::{FileAttr, Node, NodeId, NodeKind};
use crate::vfs::Vfs;

/// Rows fetched per catalog query while listing.
const PAGE: usize = 512;

/// Offsets below this are the start of the listing.
const FIRST_ENTRY_OFFSET: u64 = 3;

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirEntry {
    /// The child's id (its inode number).
    pub id: NodeId,
    /// The child's name.
    pub name: Arc<str>,
    /// Directory or file.
    pub kind: NodeKind,
    /// Pass this to [`Vfs::readdir`] to continue after this entry.
    pub offset: u64,
}

fn offset_of(id: NodeId) -> u64 {
    id.get() + 2
}

impl Vfs {
    /// Lists directory `dir` from `offset` (0 for the start), calling `add` for each
    /// entry until it returns `false` (its buffer is full) or the listing ends.
    ///
    /// `.` and `..` are not listed; offsets 1 and 2 are never used for entries.
    pub fn readdir(
        &self,
        dir: NodeId,
        offset: u64,
        mut add: impl FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        self.list(dir, offset, |entry, _| add(entry))
    }

    /// [`Vfs::readdir`], each entry with its attributes (as [`Vfs::getattr`] gives them,
    /// from the row the listing read): for FUSE's readdirplus, WebDAV's PROPFIND,
    /// NFS's READDIRPLUS and `ls -l`.
    pub fn readdir_plus(
        &self,
        dir: NodeId,
        offset: u64,
        mut add: impl FnMut(&DirEntry, &FileAttr) -> bool,
    ) -> Result<()> {
        self.list(dir, offset, |entry, node| add(entry, &self.attr_of(node)))
    }

    /// Lists `dir` from `offset`, handing `add` each entry and the row it came from.
    fn list(
        &self,
        dir: NodeId,
        offset: u64,
        mut add: impl FnMut(&DirEntry, &Node) -> bool,
    ) -> Result<()> {
        self.refresh();
        let node = self.node_fresh(dir)?;
        if node.kind() != NodeKind::Dir {
            return Err(VfsError::NotADirectory(format!("node {dir}")));
        }
        let resume = self.resume_position(dir, offset)?;
        // The last row read, where the next page starts: by (name, id), so that a
        // page ending on an invalid row still meets its valid same-named sibling,
        // which lookup serves.
        let mut last_row: Option<(Position, Position)> = None;
        let mut last_taken: Option<(NodeId, Arc<str>)> = None;
        loop {
            let generation = self.caches.generation();
            let after = match (&last_row, &resume) {
                (Some((name, id)), _) => Some(After::Row(name, id)),
                (None, Some(name)) => Some(After::Name(name)),
                (None, None) => None,
            };
            let rows = self.catalog.children_after(dir, after, PAGE)?;
            let complete = rows.len() < PAGE;
            for row in rows {
                last_row = Some((row.position, row.raw_id));
                let child = match row.node {
                    Ok(child) => child,
                    Err(invalid) => {
                        self.skip_invalid(&invalid);
                        continue;
                    }
                };
                let name: Arc<str> = Arc::from(&*child.name);
                // Rows of one name come lowest id first: the first valid one is
                // listed, as lookup serves it, and the others are hidden.
                if let Some((served, _)) = last_taken.as_ref().filter(|(_, last)| *last == name) {
                    self.warn_duplicate(dir, &name, *served, child.id);
                    continue;
                }
                let entry = DirEntry {
                    id: child.id,
                    name: Arc::clone(&name),
                    kind: child.kind(),
                    offset: offset_of(child.id),
                };
                let child = Arc::new(child);
                self.caches.insert_node(generation, Arc::clone(&child));
                if !add(&entry, &child) {
                    return Ok(());
                }
                // Remembered as soon as handed out: the caller may stop after any
                // entry it took (an NFS reply holds fewer than a page of the core's),
                // and that entry may be removed before the listing resumes.
                self.cursors.remember(dir, entry.offset, Arc::clone(&name));
                last_taken = Some((entry.id, name));
            }
            if complete {
                return Ok(());
            }
        }
    }

    /// The name to list after, for a listing of `dir` resumed at `offset`.
    fn resume_position(&self, dir: NodeId, offset: u64) -> Result<Option<Position>> {
        if offset < FIRST_ENTRY_OFFSET {
            return Ok(None);
        }
        if let Some(name) = self.cursors.recall(dir, offset) {
            return Ok(Some(Position::from(name.to_string())));
        }
        let stale = || VfsError::StaleOffset { dir, offset };
        let id = NodeId::new(offset - 2).ok_or_else(stale)?;
        match self.node_fresh(id) {
            Ok(node) if node.parent == Some(dir) => Ok(Some(Position::from(node.name.to_string()))),
            Ok(_) | Err(VfsError::NotFound(_)) => Err(stale()),
            Err(other) => Err(other),
        }
    }
}
