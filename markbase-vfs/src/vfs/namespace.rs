//! Changing the tree: create, mkdir, unlink, rmdir, rename.
//!
//! Each change is one catalog transaction on the primary connection, deciding
//! on what the catalog holds at that moment. A new file's bytes are created in
//! the store before its row, and removed again if the row cannot be written;
//! bytes of removed files are deleted after the commit, and only inside the
//! store. A crash in between leaves a store file no node names, which
//! [`Vfs::check`] reports — never a node without its file.

use std::fs::{File, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use crate::alias::{AliasEntry, AliasList, Backing, FileStat};
use crate::catalog::writer::CatalogWriter;
use crate::error::{Result, VfsError};
use crate::handles::FileHandle;
use crate::node::{Content, FileAttr, Node, NodeId, NodeKind, Owner, validate_name};
use crate::times::now_ns;
use crate::vfs::Vfs;

/// How a file made by [`Vfs::create_with`] starts out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewFile {
    /// Permission bits, `0o777` at most (`create(2)`'s mode less the caller's umask);
    /// `None`: `0o644` less this process's umask.
    pub perm: Option<u16>,
    /// Who owns it (the user creating it); `None`, or when this process may not give
    /// files away (it does not run as root): the user running this process.
    pub owner: Option<Owner>,
}

impl NewFile {
    /// A file with permission bits `perm`, owned by `owner`.
    pub fn new(perm: u16, owner: Owner) -> Self {
        Self {
            perm: Some(perm),
            owner: Some(owner),
        }
    }

    /// Gives the new store file `file` its mode and owner.
    pub(crate) fn apply(self, file: &File) -> std::io::Result<()> {
        if let Some(perm) = self.perm {
            file.set_permissions(Permissions::from_mode(u32::from(perm & 0o777)))?;
        }
        if let Some(owner) = self.owner
            && owner != Owner::current()
        {
            match std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid)) {
                Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                    tracing::debug!("a new file stays this process's: {err}");
                }
                other => other?,
            }
        }
        Ok(())
    }
}

/// What [`Vfs::rename`] does when the new name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace it, as `rename(2)` does (a directory only if it is empty).
    Replace,
    /// Fail with `EEXIST` (`RENAME_NOREPLACE`).
    NoReplace,
}

/// Deepest parent chain walked when checking that a directory is not moved into itself.
const MAX_DEPTH: usize = 4096;

impl Vfs {
    /// Creates file `name` in `parent` and opens it for reading and writing. Its bytes
    /// live in the store (`0o644` less this process's umask). An existing file is
    /// opened instead, unless `exclusive`.
    pub fn create(
        &self,
        parent: NodeId,
        name: &str,
        exclusive: bool,
    ) -> Result<(FileAttr, FileHandle)> {
        self.create_file(parent, name, exclusive, None)
            .map(|(attr, handle, _)| (attr, handle))
    }

    /// [`Vfs::create`], the new file's bytes made as `new` asks. An existing file is
    /// opened as it is.
    pub fn create_with(
        &self,
        parent: NodeId,
        name: &str,
        exclusive: bool,
        new: NewFile,
    ) -> Result<(FileAttr, FileHandle)> {
        self.create_file(parent, name, exclusive, Some(new))
            .map(|(attr, handle, _)| (attr, handle))
    }

    /// Creates (or, unless `exclusive`, opens) file `name` in `parent`; whether it
    /// made the file.
    pub(crate) fn create_file(
        &self,
        parent: NodeId,
        name: &str,
        exclusive: bool,
        made: Option<NewFile>,
    ) -> Result<(FileAttr, FileHandle, bool)> {
        self.ensure_writable()?;
        check_name(name)?;
        if let Some(outside) = self.outside(parent, name)? {
            return self.create_outside(outside, exclusive, made);
        }
        // Only a name the caches know to exist is opened without a store file: asking
        // the catalog here would cost a query per create, and the transaction below
        // decides anyway (a store file made for a name that turns out to exist is
        // removed again).
        self.refresh();
        if let Some(Some(id)) = self.caches.lookup(parent, name)
            && let Some(existing) = self.caches.node(id)
        {
            return self.open_existing(&existing, exclusive);
        }
        let new = match self.store.create(name) {
            Ok(new) => new,
            Err(err) => {
                // An existing name needs no store file (the store may be full or
                // unwritable): it is opened as it is.
                if let Some(existing) = self.existing_child(parent, name)? {
                    return self.open_existing(&existing, exclusive);
                }
                return Err(VfsError::io(
                    format!("creating a store file in {}", self.store.dir().display()),
                    err,
                ));
            }
        };
        if let Some(made) = made
            && let Err(err) = made.apply(&new.file)
        {
            discard_store_file(&new.path);
            return Err(VfsError::io(
                format!("setting the mode or owner of {}", new.path.display()),
                err,
            ));
        }
        let aliases = AliasList::to_json(&[&new.alias]);
        let mtime_ns = now_ns();
        let outcome = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                dir_in(w, parent)?;
                if let Some(existing) = child_in(w, parent, name)? {
                    return Ok(Err(existing));
                }
                let id = w.insert(parent, name, NodeKind::File, 0, mtime_ns, &aliases)?;
                w.entries_changed(parent, mtime_ns)?;
                Ok(Ok(id))
            },
        );
        let id = match outcome {
            Ok(Ok(id)) => id,
            Ok(Err(existing)) => {
                discard_store_file(&new.path);
                return self.open_existing(&existing, exclusive);
            }
            Err(err) => {
                discard_store_file(&new.path);
                return Err(err);
            }
        };
        self.added(parent, id, name);
        self.clear_properties(id);
        let meta = new
            .file
            .metadata()
            .map_err(|err| VfsError::io(format!("reading {}", new.path.display()), err))?;
        let stat = FileStat::of(&meta);
        let reach = self.reach.of(&new.file, &new.path, false, stat.owner);
        let backing = Backing {
            file: new.file,
            path: new.path,
            index: 0,
            skipped: Vec::new(),
            reach,
            stat: stat.within(reach),
        };
        // What `getattr` would say of the new node, without reading back the row just
        // written and opening its store file a second time.
        let attr = self.served_attr(id, &backing.stat, 1);
        let handle = self
            .handles
            .insert(crate::handles::OpenFile::writing(id, Arc::new(backing)));
        Ok((attr, handle, true))
    }

    fn open_existing(
        &self,
        existing: &Node,
        exclusive: bool,
    ) -> Result<(FileAttr, FileHandle, bool)> {
        if exclusive {
            return Err(VfsError::Exists(self.describe(existing)));
        }
        if existing.kind() == NodeKind::Dir {
            return Err(VfsError::IsADirectory(self.describe(existing)));
        }
        let handle = self.open_file_rw(existing.id)?;
        Ok((self.getattr(existing.id)?, handle, false))
    }

    /// Creates directory `name` in `parent`.
    pub fn mkdir(&self, parent: NodeId, name: &str) -> Result<FileAttr> {
        self.ensure_writable()?;
        check_name(name)?;
        let mtime_ns = now_ns();
        let id = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                dir_in(w, parent)?;
                if let Some(existing) = child_in(w, parent, name)? {
                    return Err(VfsError::Exists(format!(
                        "{name:?} in directory {} (node {})",
                        parent, existing.id
                    )));
                }
                let id = w.insert(parent, name, NodeKind::Dir, 0, mtime_ns, "[]")?;
                w.entries_changed(parent, mtime_ns)?;
                Ok(id)
            },
        )?;
        self.added(parent, id, name);
        // Its id may have been a removed directory's (see `clear_properties`).
        self.clear_properties(id);
        self.discard_finder_area(id);
        self.getattr(id)
    }

    /// Removes file `name` from `parent`. Its bytes are deleted only if they live in the
    /// store; open handles keep reading and writing them until released.
    pub fn unlink(&self, parent: NodeId, name: &str) -> Result<()> {
        self.ensure_writable()?;
        check_name(name)?;
        if let Some(outside) = self.outside(parent, name)? {
            return self.unlink_outside(outside);
        }
        self.remove_entry(parent, name, |_, node| match node.kind() {
            NodeKind::Dir => Err(VfsError::IsADirectory(format!(
                "{name:?} in directory {parent}"
            ))),
            NodeKind::File => Ok(()),
        })
    }

    /// Removes the empty directory `name` from `parent`.
    pub fn rmdir(&self, parent: NodeId, name: &str) -> Result<()> {
        self.ensure_writable()?;
        check_name(name)?;
        self.remove_entry(parent, name, |w, node| {
            let at = || format!("{name:?} in directory {parent}");
            match node.kind() {
                NodeKind::File => Err(VfsError::NotADirectory(at())),
                NodeKind::Dir if w.has_children(node.id)? => Err(VfsError::NotEmpty(at())),
                NodeKind::Dir => Ok(()),
            }
        })
    }

    /// Removes entry `name` of `parent` in one transaction, once `allowed` (asked
    /// inside it) accepts the node found there; then what the store held for it goes.
    fn remove_entry(
        &self,
        parent: NodeId,
        name: &str,
        allowed: impl FnOnce(&CatalogWriter, &Node) -> Result<()>,
    ) -> Result<()> {
        let node = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                dir_in(w, parent)?;
                let node = child_in(w, parent, name)?.ok_or_else(|| missing(parent, name))?;
                allowed(w, &node)?;
                w.delete(node.id)?;
                w.entries_changed(parent, now_ns())?;
                Ok(node)
            },
        )?;
        self.removed(parent, node.id, name);
        self.discard_removed(&node);
        Ok(())
    }

    /// Moves `name` in `parent` to `new_name` in `new_parent`, replacing what is there
    /// as `rename(2)` does, unless `mode` forbids it.
    pub fn rename(
        &self,
        parent: NodeId,
        name: &str,
        new_parent: NodeId,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<()> {
        self.ensure_writable()?;
        check_name(name)?;
        check_name(new_name)?;
        if self.rename_outside((parent, name), (new_parent, new_name), mode)? {
            return Ok(());
        }
        let now = now_ns();
        let (moved, replaced) = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                // The checks come in the order rename(2) makes them, so that each
                // failure gets the errno a local filesystem would give.
                dir_in(w, parent)?;
                dir_in(w, new_parent)?;
                let node = child_in(w, parent, name)?.ok_or_else(|| missing(parent, name))?;
                let target = child_in(w, new_parent, new_name)?;
                let at = || format!("{new_name:?} in directory {new_parent}");
                if mode == RenameMode::NoReplace && target.is_some() {
                    return Err(VfsError::Exists(at()));
                }
                if node.kind() == NodeKind::Dir {
                    refuse_move_into_itself(w, &node, new_parent)?;
                }
                let replaced = match target {
                    Some(target) if target.id == node.id => return Ok((None, None)),
                    Some(target) => {
                        match (node.kind(), target.kind()) {
                            // A directory that holds the node being moved is not empty.
                            (_, NodeKind::Dir) if lies_within(w, parent, target.id)? => {
                                return Err(VfsError::NotEmpty(at()));
                            }
                            (NodeKind::File, NodeKind::Dir) => {
                                return Err(VfsError::IsADirectory(at()));
                            }
                            (NodeKind::Dir, NodeKind::File) => {
                                return Err(VfsError::NotADirectory(at()));
                            }
                            (NodeKind::Dir, NodeKind::Dir) if w.has_children(target.id)? => {
                                return Err(VfsError::NotEmpty(at()));
                            }
                            _ => {}
                        }
                        w.delete(target.id)?;
                        Some(target)
                    }
                    None => None,
                };
                w.move_to(node.id, new_parent, new_name)?;
                w.entries_changed(parent, now)?;
                w.entries_changed(new_parent, now)?;
                Ok((Some(node.id), replaced))
            },
        )?;
        // A rename onto itself changes nothing.
        let Some(moved) = moved else {
            return Ok(());
        };
        if let Some(replaced) = &replaced {
            self.removed(new_parent, replaced.id, new_name);
        }
        self.removed(parent, moved, name);
        self.added(new_parent, moved, new_name);
        self.times.status_changed(moved, now);
        if let Some(replaced) = replaced {
            self.discard_removed(&replaced);
        }
        Ok(())
    }

    /// What this `Vfs` committed: entry `name` (node `id`) is new in `dir`, whose
    /// times changed.
    pub(crate) fn added(&self, dir: NodeId, id: NodeId, name: &str) {
        self.caches.forget(&[dir, id], &[(dir, name)]);
        self.times.added(dir, id, name);
    }

    /// What this `Vfs` committed: entry `name` (node `id`) left `dir`, whose times
    /// changed.
    pub(crate) fn removed(&self, dir: NodeId, id: NodeId, name: &str) {
        self.caches.forget(&[dir, id], &[(dir, name)]);
        self.times.removed(dir, id, name);
    }

    /// The child `name` of `parent` if it exists, from the caches when they know.
    fn existing_child(&self, parent: NodeId, name: &str) -> Result<Option<Arc<Node>>> {
        match self.lookup(parent, name) {
            Ok(attr) => self.node(attr.id).map(Some),
            Err(VfsError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Deletes what the store holds for a node the catalog no longer has: its
    /// properties, and its content ([`Vfs::delete_store_bytes`]); closes its node file.
    fn discard_removed(&self, node: &Node) {
        self.node_files.forget(node.id);
        if let Err(err) = self.properties.forget(node.id) {
            tracing::warn!(node = %node.id, "cannot remove the properties of a removed node: {err}");
        }
        self.delete_store_bytes(node);
    }

    /// Deletes the content the store holds for `node`: a file's bytes (those of a
    /// removed node, or the old bytes of a replaced content), a removed directory's
    /// Finder files.
    pub(crate) fn delete_store_bytes(&self, node: &Node) {
        let entries = match &node.content {
            Content::Dir => return self.discard_finder_area(node.id),
            Content::File(AliasList::Entries(entries)) => entries,
            Content::File(_) => return,
        };
        for entry in entries.iter() {
            let AliasEntry::Path(alias) = entry else {
                continue;
            };
            let path = self.catalog.base_dir().join(&**alias);
            if let Err(err) = self.store.remove(&path) {
                tracing::warn!(
                    node = %node.id,
                    path = %path.display(),
                    error = %err,
                    "cannot delete the bytes of a removed file; `markbase fsck` will list them"
                );
            }
        }
    }
}

/// Removes a store file made for a create that did not happen.
pub(crate) fn discard_store_file(path: &std::path::Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove an unused store file");
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    validate_name(name).map_err(|reason| VfsError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn missing(parent: NodeId, name: &str) -> VfsError {
    VfsError::NotFound(format!("{name:?} in directory {parent}"))
}

/// The first valid child `name` of `parent`, as the writer sees it now; an invalid row
/// alone under that name is an error that names it.
pub(crate) fn child_in(w: &CatalogWriter, parent: NodeId, name: &str) -> Result<Option<Node>> {
    let rows = w.children_named(parent, name)?;
    let mut invalid = None;
    for row in rows {
        match row {
            Ok(node) => return Ok(Some(node)),
            Err(row) => {
                invalid.get_or_insert(row);
            }
        }
    }
    match invalid {
        Some(row) => Err(VfsError::InvalidNode {
            id: row.id,
            reason: row.reason,
        }),
        None => Ok(None),
    }
}

/// The directory `id`, as the writer sees it now.
pub(crate) fn dir_in(w: &CatalogWriter, id: NodeId) -> Result<Node> {
    match w.node(id)? {
        Some(Ok(node)) if node.kind() == NodeKind::Dir => Ok(node),
        Some(Ok(_)) => Err(VfsError::NotADirectory(format!("node {id}"))),
        Some(Err(row)) => Err(VfsError::InvalidNode {
            id: row.id,
            reason: row.reason,
        }),
        None => Err(VfsError::NotFound(format!("node {id}"))),
    }
}

/// Fails when `new_parent` is `dir` or lies below it.
fn refuse_move_into_itself(w: &CatalogWriter, dir: &Node, new_parent: NodeId) -> Result<()> {
    if lies_within(w, new_parent, dir.id)? {
        return Err(VfsError::InvalidRename(format!(
            "cannot move directory {:?} (node {}) into itself",
            dir.name, dir.id
        )));
    }
    Ok(())
}

/// Whether the directory `id` is `ancestor` or lies below it.
fn lies_within(w: &CatalogWriter, id: NodeId, ancestor: NodeId) -> Result<bool> {
    let mut chain = vec![id];
    let mut current = id;
    loop {
        if current == ancestor {
            return Ok(true);
        }
        let node = dir_in(w, current)?;
        match node.parent {
            None => return Ok(false),
            Some(parent) if chain.contains(&parent) || chain.len() > MAX_DEPTH => {
                chain.push(parent);
                return Err(VfsError::ParentCycle { chain });
            }
            Some(parent) => {
                chain.push(parent);
                current = parent;
            }
        }
    }
}
