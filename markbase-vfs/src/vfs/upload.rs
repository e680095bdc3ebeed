//! [`Upload`]: a file written in full before it takes its name (an HTTP PUT).
//!
//! The bytes go to a new store file; only [`Vfs::commit_upload`] makes the catalog
//! name them, in one transaction, replacing what the name held. An upload dropped
//! before that (the client went away, the body was short) leaves the catalog and
//! the old content as they were, and its store file is removed. A Finder file kept
//! out of the catalog is uploaded the same way, beside it in its directory's area,
//! and takes its name with a rename.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::alias::{AliasList, FileStat};
use crate::error::{Result, VfsError};
use crate::finder::{AsideFile, Outside};
use crate::node::{FileAttr, NodeId, NodeKind};
use crate::times::now_ns;
use crate::vfs::Vfs;
use crate::vfs::namespace::{check_name, child_in, dir_in, discard_store_file};

/// A file being uploaded under a name it does not have yet.
#[derive(Debug)]
pub struct Upload {
    name: String,
    file: File,
    path: PathBuf,
    target: Target,
    committed: bool,
}

/// Where an upload goes when committed.
#[derive(Debug)]
enum Target {
    /// A catalog node in `parent`, whose alias will be `alias`.
    Node { parent: NodeId, alias: String },
    /// A Finder file kept out of the catalog.
    Aside(AsideFile),
}

impl Upload {
    /// Writes all of `data` at `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, offset).map_err(|err| {
            VfsError::io(
                format!(
                    "writing the upload of {:?} to {}",
                    self.name,
                    self.path.display()
                ),
                err,
            )
        })
    }

    /// Bytes written so far (the file's size).
    pub fn len(&self) -> Result<u64> {
        self.stat().map(|stat| stat.size)
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|len| len == 0)
    }

    fn stat(&self) -> Result<FileStat> {
        self.file
            .metadata()
            .map(|meta| FileStat::of(&meta))
            .map_err(|err| VfsError::io(format!("reading {}", self.path.display()), err))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            discard_store_file(&self.path);
        }
    }
}

impl Vfs {
    /// Starts an upload of file `name` in directory `parent`. Nothing is visible
    /// until [`Vfs::commit_upload`].
    pub fn begin_upload(&self, parent: NodeId, name: &str) -> Result<Upload> {
        self.ensure_writable()?;
        check_name(name)?;
        let dir = self.node(parent)?;
        if dir.kind() != NodeKind::Dir {
            return Err(VfsError::NotADirectory(self.describe(&dir)));
        }
        if let Some(outside) = self.outside(parent, name)? {
            return self.begin_outside_upload(outside, name);
        }
        let new = self.store.create(name).map_err(|err| {
            VfsError::io(
                format!("creating a store file in {}", self.store.dir().display()),
                err,
            )
        })?;
        Ok(Upload {
            name: name.to_owned(),
            file: new.file,
            path: new.path,
            target: Target::Node {
                parent,
                alias: new.alias,
            },
            committed: false,
        })
    }

    /// [`Vfs::begin_upload`] of a file outside the catalog: beside it, in its area.
    fn begin_outside_upload(&self, outside: Outside, name: &str) -> Result<Upload> {
        let file = match outside {
            Outside::Aside(file) => file,
            Outside::Probe { name, .. } => return Err(crate::finder::read_only_probe(name)),
        };
        if let Err(VfsError::NotFound(_)) = file.metadata() {
            self.ensure_id_free(&file)?;
        }
        let (temp, path) = file.temporary()?;
        Ok(Upload {
            name: name.to_owned(),
            file: temp,
            path,
            target: Target::Aside(file),
            committed: false,
        })
    }

    /// Gives the uploaded bytes their name, in one transaction: a new file node, or,
    /// when the name holds a file, that node (same id) served by the new bytes. The
    /// old bytes are deleted if they were in the store; a file elsewhere that served
    /// the node is left as it was.
    pub fn commit_upload(&self, mut upload: Upload) -> Result<FileAttr> {
        let stat = upload.stat()?;
        let (parent, alias) = match &upload.target {
            Target::Node { parent, alias } => (*parent, alias),
            Target::Aside(file) => {
                file.replace_with(&upload.path)?;
                upload.committed = true;
                self.finder.made(file);
                return self.getattr(file.id);
            }
        };
        let aliases = AliasList::to_json(&[alias]);
        let name = upload.name.as_str();
        let (id, replaced) = self.primary.write(
            false,
            || self.drop_caches(),
            |w| {
                dir_in(w, parent)?;
                match child_in(w, parent, name)? {
                    Some(existing) if existing.kind() == NodeKind::Dir => Err(
                        VfsError::IsADirectory(format!("{name:?} in directory {parent}")),
                    ),
                    Some(existing) => {
                        let id = i64::try_from(existing.id.get()).unwrap_or(i64::MAX);
                        w.update_file(id, stat.size, stat.mtime_ns, &aliases)?;
                        Ok((existing.id, Some(existing)))
                    }
                    None => {
                        let id = w.insert(
                            parent,
                            name,
                            NodeKind::File,
                            stat.size,
                            stat.mtime_ns,
                            &aliases,
                        )?;
                        w.entries_changed(parent, now_ns())?;
                        Ok((id, None))
                    }
                }
            },
        )?;
        upload.committed = true;
        match replaced {
            Some(old) => {
                self.caches.forget(&[id], &[(parent, name)]);
                self.delete_store_bytes(&old);
            }
            None => {
                self.added(parent, id, name);
                self.clear_properties(id);
            }
        }
        self.getattr(id)
    }
}
