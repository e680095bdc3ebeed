//! The consistency check between the catalog and the files (`markbase fsck`).
//!
//! A crash can leave two kinds of inconsistency, and no other: a store file that
//! no node names (the process died between creating the bytes and committing
//! the row, or between deleting the row and deleting the bytes), and a node
//! whose alias is gone (bytes deleted or lost outside our control). The check
//! lists both; the repair drops dangling nodes whose bytes were in the store,
//! and adopts or removes orphan store files, as the user chooses.
//!
//! The check also lists what other writers of the catalog can leave and no repair
//! touches: file nodes whose alias list is unusable or whose aliases name no
//! readable regular file (a FIFO, a directory, an unreadable file), and rows that
//! no chain of directories leads to from the root (a `parent_id` cycle, a missing
//! parent, a parent that is a file).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::alias::{self, AliasEntry, AliasList, SkipReason, SkippedAlias};
use crate::catalog::DetachedRow;
use crate::error::{Result, VfsError};
use crate::node::{NodeId, NodeKind};
use crate::times::now_ns;
use crate::vfs::Vfs;

/// Where adopted orphan store files are put.
const LOST_AND_FOUND: &str = "lost+found";

/// What [`Vfs::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// File nodes that no alias can serve.
    pub dangling: Vec<DanglingNode>,
    /// Store files that no node names.
    pub orphans: Vec<PathBuf>,
    /// Rows that no chain of directories leads to from the root, so that no lookup or
    /// listing ever shows them: where each chain breaks.
    pub unreachable: Vec<UnreachableNode>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }

    /// How many things are wrong (a cycle, with whatever hangs below it, is one).
    pub fn problems(&self) -> usize {
        self.dangling.len() + self.orphans.len() + self.unreachable.len()
    }
}

/// A file node that no alias can serve: its bytes are gone, or its alias list is
/// unusable, or what each alias names is no readable regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DanglingNode {
    /// The node.
    pub id: NodeId,
    /// Its path in the catalog, or `#id` when it cannot be named.
    pub path: String,
    /// Each alias and why it cannot serve the file, in the order of the list (one
    /// entry without an index when the whole `aliases_json` is unusable; none when
    /// the list is empty).
    pub skipped: Vec<SkippedAlias>,
    /// Whether every alias pointed into the store (the node was created through the
    /// filesystem, so nothing outside can bring its bytes back).
    pub in_store: bool,
}

impl DanglingNode {
    /// Whether the node has aliases and nothing exists at any of them: its bytes are
    /// gone, rather than unreadable or not a regular file.
    pub fn bytes_gone(&self) -> bool {
        !self.skipped.is_empty()
            && self
                .skipped
                .iter()
                .all(|skipped| skipped.reason == SkipReason::NotFound)
    }
}

/// Where a chain of parents that does not reach the root breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreachableNode {
    /// The row where the chain breaks; for a cycle, its lowest id.
    pub id: NodeId,
    /// Why the chain breaks there.
    pub cause: Unreachability,
    /// Rows below it (or below the cycle), unreachable with it.
    pub below: usize,
}

/// Why a row is not reachable from the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreachability {
    /// Its `parent_id` names no row: the id it holds, or `None` when it is NULL or not
    /// an integer.
    MissingParent(Option<i64>),
    /// Its `parent_id` names this node, which is not a directory.
    ParentNotADirectory(NodeId),
    /// Its parent chain comes back to it: the nodes of the cycle, from the row's own id,
    /// each one's parent being the next (and the last one's, the first).
    Cycle(Vec<NodeId>),
}

impl fmt::Display for UnreachableNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Unreachability::MissingParent(Some(parent)) => {
                write!(f, "node {}: its parent_id {parent} names no node", self.id)?;
            }
            Unreachability::MissingParent(None) => write!(
                f,
                "node {}: its parent_id names no node (NULL or not an integer)",
                self.id
            )?,
            Unreachability::ParentNotADirectory(parent) => write!(
                f,
                "node {}: its parent_id {parent} names a node that is not a directory",
                self.id
            )?,
            Unreachability::Cycle(chain) => {
                let ids: Vec<String> = chain
                    .iter()
                    .chain(chain.first())
                    .map(ToString::to_string)
                    .collect();
                write!(
                    f,
                    "nodes {}: a parent_id cycle (each node's parent is the next)",
                    ids.join(" -> ")
                )?;
            }
        }
        match self.below {
            0 => Ok(()),
            1 => write!(f, "; 1 node below it is unreachable too"),
            n => write!(f, "; {n} nodes below it are unreachable too"),
        }
    }
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
    /// Remove dangling nodes whose bytes were in the store and are gone (nothing at
    /// any alias).
    pub drop_dangling_store_nodes: bool,
    /// What to do with orphan store files.
    pub orphans: OrphanAction,
}

/// What [`Vfs::repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Nodes removed.
    pub dropped: Vec<NodeId>,
    /// Orphan files given a node, and the node.
    pub adopted: Vec<(PathBuf, NodeId)>,
    /// Orphan files deleted.
    pub removed: Vec<PathBuf>,
}

impl Vfs {
    /// Compares the catalog with the files: every file node's aliases, resolved as
    /// serving would resolve them, and every file in the store; and lists the rows the
    /// root does not reach. Reads the whole catalog.
    pub fn check(&self) -> Result<CheckReport> {
        let base = self.catalog.base_dir().to_owned();
        let detached = self.catalog.unreachable()?;
        let no_path: HashSet<NodeId> = detached.iter().map(|row| row.id).collect();
        let mut rows = Vec::new();
        self.catalog
            .for_each_file(|id, aliases| rows.push((id, aliases)))?;
        let mut referenced = HashSet::new();
        let mut dangling = Vec::new();
        for (id, aliases) in rows {
            let Some(id) = NodeId::from_sql(id) else {
                continue;
            };
            let entries: &[AliasEntry] = match &aliases {
                AliasList::Entries(entries) => entries,
                AliasList::Unparsable(_) => &[],
            };
            let in_store: Vec<bool> = entries
                .iter()
                .map(|entry| match entry {
                    AliasEntry::Path(alias) => {
                        let path = base.join(&**alias);
                        let inside = self.store.contains(&path);
                        if inside && let Some(name) = path.file_name() {
                            referenced.insert(name.to_owned());
                        }
                        inside
                    }
                    AliasEntry::Invalid(_) => false,
                })
                .collect();
            if let Err(skipped) = alias::resolve(&aliases, &base, &self.reach) {
                dangling.push(DanglingNode {
                    id,
                    // A row the root does not reach has no path (and is listed
                    // as unreachable).
                    path: if no_path.contains(&id) {
                        format!("#{id}")
                    } else {
                        self.path_of(id).unwrap_or_else(|_| format!("#{id}"))
                    },
                    skipped,
                    in_store: !in_store.is_empty() && in_store.iter().all(|inside| *inside),
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
        let unreachable = unreachable(detached);
        Ok(CheckReport {
            dangling,
            orphans,
            unreachable,
        })
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
                now.dangling.iter().any(|now| {
                    now.id == node.id
                        && now.in_store
                        && now.bytes_gone()
                        && now.skipped == node.skipped
                })
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
            Ok(attr) if attr.kind == NodeKind::Dir => attr.id,
            Ok(_) => return Err(VfsError::NotADirectory(format!("/{LOST_AND_FOUND}"))),
            Err(VfsError::NotFound(_)) => self.mkdir(NodeId::ROOT, LOST_AND_FOUND)?.id,
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

/// Groups the rows the root does not reach by where their parent chains break.
fn unreachable(rows: Vec<DetachedRow>) -> Vec<UnreachableNode> {
    let detached: HashMap<NodeId, DetachedRow> = rows.iter().map(|row| (row.id, *row)).collect();
    let mut found: Vec<UnreachableNode> = Vec::new();
    // Which entry of `found` each row's chain leads to.
    let mut leads_to: HashMap<NodeId, usize> = HashMap::new();
    let mut ids: Vec<NodeId> = detached.keys().copied().collect();
    ids.sort_unstable();
    for start in ids {
        // Up from `start` until the chain breaks, comes back to itself, or joins a
        // chain already followed.
        let mut chain = vec![start];
        let index = loop {
            let row = detached[chain.last().expect("never empty")];
            let followed = row.parent.and_then(NodeId::from_sql);
            let Some(parent) = followed.filter(|parent| detached.contains_key(parent)) else {
                found.push(UnreachableNode {
                    id: row.id,
                    cause: row.cause(),
                    below: 0,
                });
                break found.len() - 1;
            };
            if let Some(&index) = leads_to.get(&parent) {
                break index;
            }
            if let Some(at) = chain.iter().position(|id| *id == parent) {
                let mut cycle = chain[at..].to_vec();
                let lowest = (0..cycle.len())
                    .min_by_key(|i| cycle[*i])
                    .expect("not empty");
                cycle.rotate_left(lowest);
                found.push(UnreachableNode {
                    id: cycle[0],
                    cause: Unreachability::Cycle(cycle),
                    below: 0,
                });
                break found.len() - 1;
            }
            chain.push(parent);
        };
        for id in chain {
            leads_to.insert(id, index);
        }
    }
    for index in leads_to.into_values() {
        found[index].below += 1;
    }
    for node in &mut found {
        node.below -= match &node.cause {
            Unreachability::Cycle(cycle) => cycle.len(),
            _ => 1,
        };
    }
    found.sort_by_key(|node| node.id);
    found
}

impl DetachedRow {
    /// Why the chain breaks at this row, whose parent is no other detached row.
    fn cause(&self) -> Unreachability {
        match self.parent.and_then(NodeId::from_sql) {
            Some(parent) if self.parent_exists && !self.parent_is_dir => {
                Unreachability::ParentNotADirectory(parent)
            }
            _ => Unreachability::MissingParent(self.parent),
        }
    }
}
