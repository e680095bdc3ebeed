//! The consistency check between the catalog and the files (`markbase fsck`).
//!
//! A crash can leave two kinds of inconsistency, and no other: a store file that
//! no node names (the process died between creating the bytes and committing
//! the row, or between deleting the row and deleting the bytes), and a node
//! whose alias is gone (bytes deleted or lost outside our control). The check
//! lists both; the repair drops dangling nodes whose bytes were in the store,
//! and adopts or removes orphan store files, as the user chooses.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::alias::{AliasEntry, AliasList};
use crate::error::{Result, VfsError};
use crate::node::{NodeId, NodeKind};
use crate::times::now_ns;
use crate::vfs::Vfs;

/// Where adopted orphan store files are put.
const LOST_AND_FOUND: &str = "lost+found";

/// What [`Vfs::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// File nodes none of whose aliases exists as a regular file.
    pub dangling: Vec<DanglingNode>,
    /// Store files that no node names.
    pub orphans: Vec<PathBuf>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.dangling.is_empty() && self.orphans.is_empty()
    }
}

/// A file node whose bytes cannot be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DanglingNode {
    /// The node.
    pub id: NodeId,
    /// Its path in the catalog, or `#id` when it cannot be named.
    pub path: String,
    /// Its aliases, as written.
    pub aliases: Vec<String>,
    /// Whether every alias pointed into the store (the node was created through the
    /// filesystem, so nothing outside can bring its bytes back).
    pub in_store: bool,
}

/// What to do with store files that no node names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OrphanAction {
    /// Leave them.
    #[default]
    Keep,
    /// Give each a node in `/lost+found`.
    Adopt,
    /// Delete them.
    Remove,
}

/// What [`Vfs::repair`] should do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Repair {
    /// Remove dangling nodes whose bytes were in the store.
    pub drop_dangling_store_nodes: bool,
    /// What to do with orphan store files.
    pub orphans: OrphanAction,
}

/// What [`Vfs::repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Nodes removed.
    pub dropped: Vec<NodeId>,
    /// Orphan files given a node, and the node.
    pub adopted: Vec<(PathBuf, NodeId)>,
    /// Orphan files deleted.
    pub removed: Vec<PathBuf>,
}

impl Vfs {
    /// Compares the catalog with the files: every file node's aliases, and every file
    /// in the store. Reads the whole catalog.
    pub fn check(&self) -> Result<CheckReport> {
        let base = self.catalog.base_dir().to_owned();
        let mut rows = Vec::new();
        self.catalog
            .for_each_file(|id, json| rows.push((id, json.to_owned())))?;
        let mut referenced = HashSet::new();
        let mut dangling = Vec::new();
        for (id, json) in rows {
            let Some(id) = NodeId::from_sql(id) else {
                continue;
            };
            let AliasList::Entries(entries) = AliasList::parse(&json) else {
                continue;
            };
            let aliases: Vec<String> = entries
                .iter()
                .filter_map(|entry| match entry {
                    AliasEntry::Path(alias) => Some(alias.to_string()),
                    AliasEntry::Invalid(_) => None,
                })
                .collect();
            let paths: Vec<PathBuf> = aliases.iter().map(|alias| base.join(alias)).collect();
            let in_store: Vec<bool> = paths.iter().map(|path| self.store.contains(path)).collect();
            for (path, inside) in paths.iter().zip(&in_store) {
                if *inside && let Some(name) = path.file_name() {
                    referenced.insert(name.to_owned());
                }
            }
            if !paths.iter().any(|path| path.is_file()) {
                dangling.push(DanglingNode {
                    id,
                    path: self.path_of(id).unwrap_or_else(|_| format!("#{id}")),
                    in_store: !in_store.is_empty() && in_store.iter().all(|inside| *inside),
                    aliases,
                });
            }
        }
        let orphans = self
            .store
            .files()
            .map_err(|err| {
                VfsError::io(
                    format!("listing the store {}", self.store.dir().display()),
                    err,
                )
            })?
            .into_iter()
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| !referenced.contains(name))
            })
            .collect();
        Ok(CheckReport { dangling, orphans })
    }

    /// Repairs what `report` found, as `repair` asks. Run it while no other program
    /// writes the library: a create in progress elsewhere has its store file before its
    /// row, and would look like an orphan.
    /// Each item is checked again first
    /// (by a fresh check), so that nothing that came back or changed meanwhile is
    /// touched: a node whose bytes returned or whose id now names another node, a
    /// store file that a node names by now (adopted, say), or a path outside the store.
    pub fn repair(&self, report: &CheckReport, repair: Repair) -> Result<RepairReport> {
        self.ensure_writable()?;
        let now = self.check()?;
        let mut done = RepairReport::default();
        if repair.drop_dangling_store_nodes {
            let still_dangling = |node: &DanglingNode| {
                now.dangling
                    .iter()
                    .any(|now| now.id == node.id && now.in_store && now.aliases == node.aliases)
            };
            for node in report.dangling.iter().filter(|node| still_dangling(node)) {
                let parent = self.primary.write(
                    false,
                    || self.drop_caches(),
                    |w| {
                        let parent = w.node(node.id)?.and_then(|row| row.ok()?.parent);
                        w.delete(node.id)?;
                        if let Some(parent) = parent {
                            w.entries_changed(parent, now_ns())?;
                        }
                        Ok(parent)
                    },
                )?;
                self.caches.forget(&[node.id], &[]);
                if let Some(parent) = parent {
                    self.caches.forget(&[parent], &[]);
                }
                done.dropped.push(node.id);
            }
        }
        let orphans = report
            .orphans
            .iter()
            .filter(|path| now.orphans.contains(path));
        match repair.orphans {
            OrphanAction::Keep => {}
            OrphanAction::Adopt => {
                for path in orphans.filter(|path| path.is_file()) {
                    done.adopted.push((path.clone(), self.adopt(path)?));
                }
            }
            OrphanAction::Remove => {
                for path in orphans {
                    if self
                        .store
                        .remove(path)
                        .map_err(|err| VfsError::io(format!("removing {}", path.display()), err))?
                    {
                        done.removed.push(path.clone());
                    }
                }
            }
        }
        Ok(done)
    }

    /// Gives an orphan store file a node in `/lost+found`, named after the file.
    fn adopt(&self, path: &Path) -> Result<NodeId> {
        let lost = match self.lookup(NodeId::ROOT, LOST_AND_FOUND) {
            Ok(attr) if attr.kind == NodeKind::Dir => attr.ino,
            Ok(_) => return Err(VfsError::NotADirectory(format!("/{LOST_AND_FOUND}"))),
            Err(VfsError::NotFound(_)) => self.mkdir(NodeId::ROOT, LOST_AND_FOUND)?.ino,
            Err(err) => return Err(err),
        };
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                VfsError::io(
                    format!("adopting {}", path.display()),
                    std::io::ErrorKind::InvalidData.into(),
                )
            })?;
        let alias = self.store.alias_of(name).ok_or_else(|| {
            VfsError::io(
                format!("adopting {}", path.display()),
                std::io::ErrorKind::InvalidData.into(),
            )
        })?;
        let meta = std::fs::metadata(path)
            .map_err(|err| VfsError::io(format!("adopting {}", path.display()), err))?;
        let stat = crate::alias::FileStat::of(&meta);
        let json = AliasList::to_json(&[alias]);
        let id = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                let id = w.insert(lost, name, NodeKind::File, stat.size, stat.mtime_ns, &json)?;
                w.entries_changed(lost, now_ns())?;
                Ok(id)
            },
        )?;
        self.added(lost, id, name);
        Ok(id)
    }
}
