//! The Finder rule's side of the `Vfs` calls: lookup, getattr, open, create, setattr,
//! unlink, rename and copies of the files kept out of the catalog ([`crate::finder`]).

use std::fs::{File, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::alias::{Backing, FileStat};
use crate::error::{Result, VfsError};
use crate::finder::{
    AsideFile, FinderFiles, Outside, PROBE_FILES, id, is_finder_metadata, read_only_probe,
};
use crate::handles::{FileHandle, OpenFile};
use crate::node::{FileAttr, NodeId, NodeKind};
use crate::vfs::Vfs;
use crate::vfs::namespace::{NewFile, RenameMode};
use crate::vfs::write::{SetAttr, apply_to_file};

impl Vfs {
    /// Whether the Finder rule may answer for `name` (no I/O: a name test).
    pub(crate) fn finder_covers(&self, name: &str) -> bool {
        PROBE_FILES.contains(&name) || self.keeps_aside(name)
    }

    fn keeps_aside(&self, name: &str) -> bool {
        self.config.finder_files == FinderFiles::Aside && is_finder_metadata(name)
    }

    /// What `name` in `parent` is when the Finder rule answers for it; `None` for a
    /// catalog name (a node, which always wins, or where one would be made). Asks the
    /// catalog only about names the rule covers.
    pub(crate) fn outside(&self, parent: NodeId, name: &str) -> Result<Option<Outside>> {
        if !self.finder_covers(name) {
            return Ok(None);
        }
        self.refresh();
        match self.child(parent, name) {
            Ok(_) => Ok(None),
            Err(VfsError::NotFound(_)) => self.outside_of(parent, name),
            Err(err) => Err(err),
        }
    }

    /// [`Vfs::outside`] for a name the catalog is known not to hold.
    fn outside_of(&self, parent: NodeId, name: &str) -> Result<Option<Outside>> {
        if let Some(probe) = PROBE_FILES.into_iter().find(|probe| *probe == name) {
            return Ok((parent == NodeId::ROOT).then(|| Outside::Probe {
                id: id::outside_id(parent, probe).expect("the root has outside ids"),
                name: probe,
            }));
        }
        if !self.keeps_aside(name) {
            return Ok(None);
        }
        let dir = self.node_fresh(parent)?;
        if dir.kind() != NodeKind::Dir {
            return Err(VfsError::NotADirectory(format!("node {parent}")));
        }
        self.finder.file(parent, name).map(Outside::Aside).map(Some)
    }

    /// The file an id outside the catalog names.
    fn outside_by_id(&self, id: NodeId) -> Result<Outside> {
        let missing = || VfsError::NotFound(format!("node {id}"));
        let (dir, hash) = id::split(id.get()).ok_or_else(missing)?;
        if dir == NodeId::ROOT
            && let Some(name) = PROBE_FILES.into_iter().find(|name| id::hash(name) == hash)
        {
            return Ok(Outside::Probe { id, name });
        }
        if self.config.finder_files != FinderFiles::Aside {
            return Err(missing());
        }
        self.finder
            .file_of(id, dir, hash)?
            .map(Outside::Aside)
            .ok_or_else(missing)
    }

    /// `name` in `parent` when the catalog has no such child (`missing` says so): a
    /// file the Finder rule answers for, or `missing`.
    pub(crate) fn lookup_outside(
        &self,
        parent: NodeId,
        name: &str,
        missing: VfsError,
    ) -> Result<FileAttr> {
        match self.outside_of(parent, name) {
            Ok(Some(outside)) => self.outside_attr(&outside),
            // A directory that can keep no Finder files aside has none.
            Ok(None) | Err(VfsError::OutsideCatalog { .. }) => Err(missing),
            Err(err) => Err(err),
        }
    }

    /// The attributes of file `id`, outside the catalog.
    pub(crate) fn getattr_outside(&self, id: NodeId) -> Result<FileAttr> {
        self.outside_attr(&self.outside_by_id(id)?)
    }

    fn outside_attr(&self, outside: &Outside) -> Result<FileAttr> {
        match outside {
            Outside::Aside(file) => {
                let meta = file.metadata()?;
                Ok(self.served_attr(file.id, &FileStat::of(&meta), 1))
            }
            Outside::Probe { id, .. } => Ok(FileAttr {
                id: *id,
                kind: NodeKind::File,
                size: 0,
                blocks: 0,
                mtime_ns: 0,
                ctime_ns: 0,
                perm: 0o444,
                owner: self.config.owner,
                nlink: 1,
            }),
        }
    }

    /// Opens file `id`, outside the catalog, for writing too if `write`.
    pub(crate) fn open_outside(&self, id: NodeId, write: bool) -> Result<FileHandle> {
        self.outside_file(id, write)
            .map(|open| self.handles.insert(open))
    }

    /// File `id`, outside the catalog, opened for writing too if `write`; writing it
    /// records nothing.
    pub(crate) fn outside_file(&self, id: NodeId, write: bool) -> Result<OpenFile> {
        if write {
            self.ensure_writable()?;
        }
        match self.outside_by_id(id)? {
            Outside::Aside(file) => {
                let opened = file.open(write)?;
                self.outside_open(id, opened, file.path, write)
            }
            Outside::Probe { name, .. } if write => Err(read_only_probe(name)),
            // Empty, and it stays empty.
            Outside::Probe { .. } => {
                let null = PathBuf::from("/dev/null");
                let opened =
                    File::open(&null).map_err(|err| VfsError::io("opening /dev/null", err))?;
                self.outside_open(id, opened, null, false)
            }
        }
    }

    /// The open file of `file`, opened at `path`.
    fn outside_open(&self, id: NodeId, file: File, path: PathBuf, write: bool) -> Result<OpenFile> {
        let meta = file
            .metadata()
            .map_err(|err| VfsError::io(format!("reading {}", path.display()), err))?;
        let stat = FileStat::of(&meta);
        let reach = self.reach.of(&file, &path, false, stat.owner);
        let backing = Arc::new(Backing {
            file,
            path,
            index: 0,
            skipped: Vec::new(),
            reach,
            stat: stat.within(reach),
        });
        Ok(if write {
            OpenFile::writing(id, backing)
        } else {
            OpenFile::reading(id, backing)
        })
    }

    /// Creates (or, unless `exclusive`, opens) a file outside the catalog, for reading
    /// and writing; whether it made the file.
    pub(crate) fn create_outside(
        &self,
        outside: Outside,
        exclusive: bool,
        made: Option<NewFile>,
    ) -> Result<(FileAttr, FileHandle, bool)> {
        let file = match outside {
            Outside::Probe { name, .. } if exclusive => {
                return Err(VfsError::Exists(format!("{name:?} at the root")));
            }
            Outside::Probe { name, .. } => return Err(read_only_probe(name)),
            Outside::Aside(file) => file,
        };
        let (opened, created) = match file.metadata() {
            Ok(_) if exclusive => return Err(VfsError::Exists(format!("{:?}", file.name))),
            Ok(_) => (file.open(true)?, false),
            Err(VfsError::NotFound(_)) => {
                self.ensure_id_free(&file)?;
                match file.create_new()? {
                    Some(new) => {
                        self.finder.made(&file);
                        (new, true)
                    }
                    None if exclusive => {
                        return Err(VfsError::Exists(format!("{:?}", file.name)));
                    }
                    None => (file.open(true)?, false),
                }
            }
            Err(err) => return Err(err),
        };
        if created
            && let Some(made) = made
            && let Err(err) = made.apply(&opened)
        {
            return Err(file.error("setting the mode or owner of", err));
        }
        let handle =
            self.handles
                .insert(self.outside_open(file.id, opened, file.path.clone(), true)?);
        let attr = self.outside_attr(&Outside::Aside(file))?;
        Ok((attr, handle, created))
    }

    /// Fails when another file of `file`'s directory has its id: two names with one
    /// id would serve one file for the other.
    pub(crate) fn ensure_id_free(&self, file: &AsideFile) -> Result<()> {
        let hash = id::hash(&file.name);
        let probe =
            file.dir == NodeId::ROOT && PROBE_FILES.into_iter().any(|name| id::hash(name) == hash);
        let other = if probe {
            Some(String::from("a probe file"))
        } else {
            self.finder.id_taken(file)?
        };
        match other {
            Some(other) => {
                self.warn_once(format!(
                    "Finder file {:?} in directory {} is refused: {other:?} has its id",
                    file.name, file.dir
                ));
                Err(VfsError::OutsideCatalog {
                    what: format!("{:?} in directory {}", file.name, file.dir),
                    refused: "another Finder file of its directory has the same id",
                })
            }
            None => Ok(()),
        }
    }

    /// Removes a file outside the catalog.
    pub(crate) fn unlink_outside(&self, outside: Outside) -> Result<()> {
        match outside {
            Outside::Aside(file) => {
                file.remove()?;
                self.finder.removed(&file);
                Ok(())
            }
            Outside::Probe { name, .. } => Err(read_only_probe(name)),
        }
    }

    /// Renames when the Finder rule answers for either name, between two Finder files
    /// kept aside, or refuses with `EXDEV`; `false` when both are catalog names.
    pub(crate) fn rename_outside(
        &self,
        (parent, name): (NodeId, &str),
        (new_parent, new_name): (NodeId, &str),
        mode: RenameMode,
    ) -> Result<bool> {
        let from = self.outside(parent, name)?;
        let to = self.outside(new_parent, new_name)?;
        match (from, to) {
            (None, None) => Ok(false),
            (Some(Outside::Aside(from)), Some(Outside::Aside(to))) => {
                from.metadata()?;
                if from.path == to.path {
                    return Ok(true);
                }
                match to.metadata() {
                    Ok(_) if mode == RenameMode::NoReplace => {
                        return Err(VfsError::Exists(format!(
                            "{new_name:?} in directory {new_parent}"
                        )));
                    }
                    Ok(_) => {}
                    // The one file with its id may be the one that moves.
                    Err(VfsError::NotFound(_)) if from.dir == to.dir && from.id == to.id => {}
                    Err(VfsError::NotFound(_)) => self.ensure_id_free(&to)?,
                    Err(err) => return Err(err),
                }
                from.rename(&to)?;
                self.finder.moved(&from, &to);
                Ok(true)
            }
            (Some(Outside::Probe { name, .. }), _) | (_, Some(Outside::Probe { name, .. })) => {
                Err(read_only_probe(name))
            }
            (from, _) => {
                // A missing source is ENOENT, whatever the target.
                match from {
                    Some(Outside::Aside(file)) => file.metadata().map(drop)?,
                    _ => self.lookup(parent, name).map(drop)?,
                }
                Err(VfsError::CrossesCatalog(format!(
                    "{name:?} in directory {parent} to {new_name:?} in directory {new_parent}"
                )))
            }
        }
    }

    /// [`Vfs::setattr`] of file `id`, outside the catalog: the file changes, the
    /// catalog does not. `handle` is the open file to use, as in `setattr`.
    pub(crate) fn setattr_outside(
        &self,
        id: NodeId,
        changes: SetAttr,
        handle: Option<FileHandle>,
    ) -> Result<FileAttr> {
        let resizes = changes.size.is_some() || changes.mtime_ns.is_some();
        let open = match handle {
            Some(handle) if resizes => Some(self.writable(handle)?),
            _ => None,
        };
        let file = match (self.outside_by_id(id), &open) {
            (Ok(Outside::Aside(file)), _) => file,
            (Ok(Outside::Probe { name, .. }), _) => return Err(read_only_probe(name)),
            // Moved or removed, but still open: the open file changes.
            (Err(VfsError::NotFound(_)), Some(open)) => return self.set_unlinked(open, changes),
            (Err(VfsError::NotFound(_)), None) if handle.is_some() => {
                return self.getattr_open(id, handle);
            }
            (Err(err), _) => return Err(err),
        };
        if let Some(mode) = changes.mode {
            std::fs::set_permissions(&file.path, Permissions::from_mode(mode & 0o777))
                .map_err(|err| file.error("setting the mode of", err))?;
        }
        if let Some(owner) = changes.owner {
            std::os::unix::fs::chown(&file.path, owner.uid, owner.gid)
                .map_err(|err| file.error("changing the owner of", err))?;
        }
        if resizes {
            let owned;
            let target = match &open {
                Some(open) => &open.backing.file,
                None => {
                    owned = file.open(true)?;
                    &owned
                }
            };
            apply_to_file(target, || file.path.display().to_string(), changes)?;
        }
        self.getattr_open(id, handle)
    }

    /// Refuses a copy from `src` to `name` in `parent` that crosses between the catalog
    /// and the files outside it.
    pub(crate) fn ensure_same_side(&self, src: NodeId, parent: NodeId, name: &str) -> Result<()> {
        let into_outside = self.outside(parent, name)?.is_some();
        if src.in_catalog() == into_outside {
            return Err(VfsError::CrossesCatalog(format!(
                "node {src} to {name:?} in directory {parent}"
            )));
        }
        Ok(())
    }

    /// Removes the Finder files of directory `dir`, which the catalog no longer has.
    pub(crate) fn discard_finder_area(&self, dir: NodeId) {
        self.finder.discard(dir);
    }
}
