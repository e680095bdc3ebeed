//! Building a catalog from a folder tree.
//!
//! Directories become dir nodes; regular files (and links to them) become file
//! nodes whose alias is the file's absolute path. Importing again updates the
//! catalog: new entries are added, a file already present gains the path as
//! an extra alias (existing aliases keep their preference), and nothing is
//! removed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alias::{AliasList, FileStat};
use crate::catalog::ConnectOptions;
use crate::catalog::writer::{CatalogWriter, ExistingChild};
use crate::error::{Result, VfsError};
use crate::node::{NodeId, NodeKind, validate_name};
use crate::times::now_ns;

/// Entries written per transaction.
const BATCH: u64 = 10_000;

/// Where and how [`import`] writes.
#[derive(Default)]
#[non_exhaustive]
pub struct ImportOptions<'a> {
    /// The catalog directory that receives the source's contents, created when
    /// missing (`/` when empty).
    pub into: String,
    /// Called after every entry with the running totals (for progress bars).
    pub progress: Option<&'a dyn Fn(&ImportStats)>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportStats {
    /// Directory nodes created.
    pub dirs_added: u64,
    /// File nodes created.
    pub files_added: u64,
    /// File nodes that gained this source's path as an alias, or new size and mtime.
    pub files_updated: u64,
    /// Entries already in the catalog as they are.
    pub unchanged: u64,
    /// Bytes in the files seen.
    pub bytes: u64,
    /// Entries that could not be imported, and why.
    pub skipped: Vec<ImportSkip>,
}

impl ImportStats {
    /// Entries looked at so far.
    pub fn entries(&self) -> u64 {
        self.dirs_added
            + self.files_added
            + self.files_updated
            + self.unchanged
            + self.skipped.len() as u64
    }
}

/// An entry of the source tree that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSkip {
    /// The entry in the source tree.
    pub path: PathBuf,
    /// Why it was left out.
    pub reason: String,
}

/// Imports the tree below `source` into the catalog at `catalog`, creating the catalog
/// (schema v1) when it does not exist.
pub fn import(source: &Path, catalog: &Path, options: &ImportOptions<'_>) -> Result<ImportStats> {
    let source = std::fs::canonicalize(source)
        .map_err(|err| VfsError::io(format!("import source {}", source.display()), err))?;
    if !source.is_dir() {
        return Err(VfsError::NotADirectory(source.display().to_string()));
    }
    let writer = CatalogWriter::open_or_create(
        catalog,
        &ConnectOptions {
            busy_timeout: Duration::from_secs(30),
        },
    )?;
    let source_mtime = std::fs::metadata(&source)
        .map(|meta| FileStat::of(&meta).mtime_ns)
        .map_err(|err| VfsError::io(format!("import source {}", source.display()), err))?;
    let mut run = Run {
        writer,
        stats: ImportStats::default(),
        dirs: HashMap::new(),
        created: HashSet::new(),
        grown: HashSet::new(),
        progress: options.progress,
    };
    run.writer.begin()?;
    let into = run.ensure_into(&options.into, source_mtime)?;
    run.dirs.insert(source.clone(), into);

    let mut walk = walkdir::WalkDir::new(&source)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().unwrap_or(&source).to_owned();
                run.skip(path, format!("cannot be read: {err}"));
                continue;
            }
        };
        let is_dir = entry.file_type().is_dir();
        if let Err(reason) = run.entry(&entry)? {
            if is_dir {
                walk.skip_current_dir();
            }
            run.skip(entry.into_path(), reason);
        }
        if run.stats.entries().is_multiple_of(BATCH) {
            run.writer.commit()?;
            run.writer.begin()?;
        }
        if let Some(progress) = run.progress {
            progress(&run.stats);
        }
    }
    // Directories that were there before and gained entries changed now; those made
    // by this import keep their source folder's mtime.
    let now = now_ns();
    for dir in &run.grown {
        run.writer.entries_changed(*dir, now)?;
    }
    run.writer.commit()?;
    Ok(run.stats)
}

struct Run<'a> {
    writer: CatalogWriter,
    stats: ImportStats,
    /// Source directories already in the catalog, and their node ids.
    dirs: HashMap<PathBuf, NodeId>,
    /// Directories this import made (or whose unknown mtime it gave): they carry their
    /// source folder's mtime.
    created: HashSet<NodeId>,
    /// Directories that were there before and gained entries.
    grown: HashSet<NodeId>,
    progress: Option<&'a dyn Fn(&ImportStats)>,
}

/// `Err(reason)` when one entry was not imported; catalog errors abort the import instead.
type Skippable = std::result::Result<(), String>;

impl Run<'_> {
    fn skip(&mut self, path: PathBuf, reason: String) {
        tracing::warn!(path = %path.display(), "not imported: {reason}");
        self.stats.skipped.push(ImportSkip { path, reason });
    }

    /// Finds or creates the catalog directory `into`, which receives a source folder
    /// last modified at `source_mtime`: it gets that mtime when this import makes it
    /// or its own is unknown (0, as in a new catalog's root). Folders made on the way
    /// there are new now.
    fn ensure_into(&mut self, into: &str, source_mtime: i64) -> Result<NodeId> {
        let names: Vec<&str> = into.split('/').filter(|c| !c.is_empty()).collect();
        let mut dir = NodeId::ROOT;
        for (index, name) in names.iter().enumerate() {
            validate_name(name).map_err(|reason| VfsError::InvalidPath {
                path: into.to_owned(),
                component: (*name).to_owned(),
                reason,
            })?;
            dir = match self.writer.child(dir, name)? {
                Some(child) if child.kind == "dir" => {
                    NodeId::from_sql(child.id).ok_or_else(|| VfsError::InvalidNode {
                        id: child.id,
                        reason: "id is not positive".to_owned(),
                    })?
                }
                Some(_) => return Err(VfsError::NotADirectory(into.to_owned())),
                None => {
                    self.stats.dirs_added += 1;
                    let mtime = if index + 1 == names.len() {
                        source_mtime
                    } else {
                        now_ns()
                    };
                    let id = self
                        .writer
                        .insert(dir, name, NodeKind::Dir, 0, mtime, "[]")?;
                    self.grew(dir);
                    self.created.insert(id);
                    id
                }
            };
        }
        let unknown = matches!(self.writer.node(dir)?, Some(Ok(node)) if node.mtime_ns == 0);
        if unknown {
            self.writer.set_mtime(dir, source_mtime)?;
            self.created.insert(dir);
        }
        Ok(dir)
    }

    /// Directory `dir` gained an entry.
    fn grew(&mut self, dir: NodeId) {
        if !self.created.contains(&dir) {
            self.grown.insert(dir);
        }
    }

    /// Imports one entry: `Ok(Err(reason))` skips it, `Err` aborts the import.
    fn entry(&mut self, entry: &walkdir::DirEntry) -> Result<Skippable> {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str() else {
            return Ok(Err("the name is not valid UTF-8".into()));
        };
        if let Err(err) = validate_name(name) {
            return Ok(Err(err.to_string()));
        }
        let Some(&parent) = path.parent().and_then(|p| self.dirs.get(p)) else {
            return Ok(Err("its directory was not imported".into()));
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) if entry.path_is_symlink() => {
                return Ok(Err(format!("dangling symbolic link ({err})")));
            }
            Err(err) => return Ok(Err(err.to_string())),
        };
        if meta.is_dir() {
            if entry.path_is_symlink() {
                return Ok(Err("symbolic links to directories are not followed".into()));
            }
            let id = match self.dir(parent, name, FileStat::of(&meta).mtime_ns)? {
                Ok(id) => id,
                Err(reason) => return Ok(Err(reason)),
            };
            self.dirs.insert(path.to_owned(), id);
            Ok(Ok(()))
        } else if meta.is_file() {
            let Some(alias) = path.to_str() else {
                return Ok(Err("the path is not valid UTF-8".into()));
            };
            self.file(parent, name, alias, FileStat::of(&meta))
        } else {
            Ok(Err("not a regular file or directory".into()))
        }
    }

    fn dir(&mut self, parent: NodeId, name: &str, mtime_ns: i64) -> Result<Result<NodeId, String>> {
        match self.writer.child(parent, name)? {
            Some(existing) if existing.kind == "dir" => {
                self.stats.unchanged += 1;
                Ok(NodeId::from_sql(existing.id)
                    .ok_or_else(|| format!("node {} has an invalid id", existing.id)))
            }
            Some(existing) => Ok(Err(occupied(name, &existing))),
            None => {
                self.stats.dirs_added += 1;
                let id = self
                    .writer
                    .insert(parent, name, NodeKind::Dir, 0, mtime_ns, "[]")?;
                self.grew(parent);
                self.created.insert(id);
                Ok(Ok(id))
            }
        }
    }

    fn file(
        &mut self,
        parent: NodeId,
        name: &str,
        alias: &str,
        stat: FileStat,
    ) -> Result<Skippable> {
        self.stats.bytes += stat.size;
        let Some(existing) = self.writer.child(parent, name)? else {
            let json = AliasList::to_json(&[alias]);
            self.writer.insert(
                parent,
                name,
                NodeKind::File,
                stat.size,
                stat.mtime_ns,
                &json,
            )?;
            self.grew(parent);
            self.stats.files_added += 1;
            return Ok(Ok(()));
        };
        if existing.kind != "file" {
            return Ok(Err(occupied(name, &existing)));
        }
        // Append the path to the existing JSON array, keeping every element as it was.
        let Ok(serde_json::Value::Array(mut aliases)) =
            serde_json::from_str::<serde_json::Value>(&existing.aliases_json)
        else {
            return Ok(Err(format!(
                "node {} has an aliases_json that is not a JSON array; left as it is",
                existing.id
            )));
        };
        let listed = aliases.iter().any(|a| a.as_str() == Some(alias));
        let preferred = aliases
            .first()
            .is_none_or(|first| first.as_str() == Some(alias));
        let fresh = existing.size == stat.size && existing.mtime_ns == stat.mtime_ns;
        if listed && (!preferred || fresh) {
            self.stats.unchanged += 1;
            return Ok(Ok(()));
        }
        if !listed {
            aliases.push(serde_json::Value::String(alias.to_owned()));
        }
        let json = serde_json::Value::Array(aliases).to_string();
        // The catalog records the size and mtime of the preferred alias.
        let (size, mtime_ns) = if preferred {
            (stat.size, stat.mtime_ns)
        } else {
            (existing.size, existing.mtime_ns)
        };
        self.writer
            .update_file(existing.id, size, mtime_ns, &json)?;
        self.stats.files_updated += 1;
        Ok(Ok(()))
    }
}

/// The reason an entry cannot be imported where a node of another kind stands.
fn occupied(name: &str, existing: &ExistingChild) -> String {
    format!(
        "the catalog already has a node of kind {:?} named {name:?} here (node {})",
        existing.kind, existing.id
    )
}
