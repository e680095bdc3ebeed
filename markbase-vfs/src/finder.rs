//! The files macOS Finder makes and asks for, kept out of the catalog.
//!
//! Finder writes an AppleDouble file (`._name`) beside every file it copies and a
//! `.DS_Store` into every folder it opens. They hold Finder's view state, not media,
//! so by default ([`FinderFiles::Aside`]) they live in an area of the store beside
//! the catalog, `<store>/finder/<directory node id>/<name>`: reachable by name,
//! never listed, never a node. The area of a directory goes when the directory does.
//!
//! Finder also asks the volume root for `.metadata_never_index` (Spotlight) and
//! `.ql_disablethumbnails` (Quick Look); that they exist keeps macOS from indexing
//! and thumbnailing the whole library, so both are answered as empty, read-only files.
//!
//! A catalog node always wins: a library that already holds a `.DS_Store` node
//! serves it as it is.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, VfsError};
use crate::node::NodeId;
use crate::vfs::Vfs;

/// Where Finder's metadata files (`._*` and `.DS_Store`) go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinderFiles {
    /// Beside the catalog, in the store's Finder area (the default).
    #[default]
    Aside,
    /// Into the catalog, like any other file.
    InCatalog,
}

/// The root files whose presence tells macOS not to index or thumbnail the volume.
pub const PROBE_FILES: [&str; 2] = [".metadata_never_index", ".ql_disablethumbnails"];

/// Whether Finder makes `name` for its own metadata.
pub fn is_finder_metadata(name: &str) -> bool {
    name == ".DS_Store" || (name.starts_with("._") && name.len() > 2)
}

/// What a path names, for path-based adapters: see [`Vfs::place`].
#[derive(Debug)]
pub enum Place {
    /// The catalog: a node, or where one would be made.
    Catalog,
    /// A Finder metadata file kept aside; it may not exist yet.
    Aside(AsideFile),
    /// A probe file at the root: always there, empty and read-only.
    Probe,
}

/// A Finder metadata file in the store's Finder area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsideFile {
    path: PathBuf,
    read_only: bool,
}

/// How [`AsideFile::open`] opens a file, as `open(2)` flags would.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsideOpen {
    /// Open for writing.
    pub write: bool,
    /// Write at the end.
    pub append: bool,
    /// Empty it first.
    pub truncate: bool,
    /// Create it if missing.
    pub create: bool,
    /// Create it, failing if it exists.
    pub create_new: bool,
}

impl AsideOpen {
    /// Whether the open changes anything.
    fn writes(&self) -> bool {
        self.write || self.append || self.truncate || self.create || self.create_new
    }
}

impl AsideFile {
    /// Where its bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its metadata; `NotFound` if it does not exist.
    pub fn metadata(&self) -> Result<Metadata> {
        std::fs::metadata(&self.path).map_err(|err| self.error("reading", err))
    }

    /// Opens it as `options` say, making the directory's area when it creates.
    pub fn open(&self, options: AsideOpen) -> Result<File> {
        if options.writes() {
            self.ensure_writable()?;
        }
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(options.writes() && !options.append)
                .append(options.append)
                .truncate(options.truncate)
                .create(options.create)
                .create_new(options.create_new)
                .open(&self.path)
        };
        let opened = match open() {
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    && (options.create || options.create_new) =>
            {
                self.make_dir()?;
                open()
            }
            opened => opened,
        };
        opened.map_err(|err| self.error("opening", err))
    }

    /// Starts a whole new content for it, which replaces the old one only when
    /// [committed](AsideUpload::commit): a PUT cut short leaves the file as it was.
    pub fn begin_replace(&self) -> Result<AsideUpload> {
        self.ensure_writable()?;
        self.make_dir()?;
        let dir = self.path.parent().expect("an aside file has a directory");
        loop {
            let count = UPLOADS.fetch_add(1, Ordering::Relaxed);
            // Not a Finder file name, so no request can reach it.
            let temp = dir.join(format!(".upload-{}-{count}", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(AsideUpload {
                        file,
                        temp,
                        target: self.clone(),
                        committed: false,
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(self.error("starting a new content of", err)),
            }
        }
    }

    /// Deletes it.
    pub fn remove(&self) -> Result<()> {
        self.ensure_writable()?;
        std::fs::remove_file(&self.path).map_err(|err| self.error("removing", err))
    }

    /// Moves it to `to`, replacing what is there.
    pub fn rename(&self, to: &AsideFile) -> Result<()> {
        self.ensure_writable()?;
        self.metadata()?;
        to.make_dir()?;
        std::fs::rename(&self.path, &to.path).map_err(|err| self.error("moving", err))
    }

    /// Copies its bytes to `to`, replacing what is there.
    pub fn copy(&self, to: &AsideFile) -> Result<()> {
        self.ensure_writable()?;
        self.metadata()?;
        to.make_dir()?;
        std::fs::copy(&self.path, &to.path)
            .map(drop)
            .map_err(|err| self.error("copying", err))
    }

    fn make_dir(&self) -> Result<()> {
        let dir = self.path.parent().expect("an aside file has a directory");
        std::fs::create_dir_all(dir)
            .map_err(|err| VfsError::io(format!("making Finder's area {}", dir.display()), err))
    }

    fn ensure_writable(&self) -> Result<()> {
        if self.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn error(&self, doing: &str, err: io::Error) -> VfsError {
        if err.kind() == io::ErrorKind::NotFound {
            VfsError::NotFound(self.path.display().to_string())
        } else {
            VfsError::io(format!("{doing} Finder file {}", self.path.display()), err)
        }
    }
}

/// Uploads to aside files started by this process, for unique temporary names.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// A new content for an [`AsideFile`], written beside it under a temporary name.
#[derive(Debug)]
pub struct AsideUpload {
    file: File,
    temp: PathBuf,
    target: AsideFile,
    committed: bool,
}

impl AsideUpload {
    /// Writes all of `data` at `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.file
            .write_all_at(data, offset)
            .map_err(|err| self.target.error("writing a new content of", err))
    }

    /// Bytes written so far.
    pub fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|meta| meta.len())
            .map_err(|err| self.target.error("reading a new content of", err))
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|len| len == 0)
    }

    /// Puts the new content in place of the old, in one rename; the file it became.
    pub fn commit(mut self) -> Result<AsideFile> {
        std::fs::rename(&self.temp, &self.target.path)
            .map_err(|err| self.target.error("replacing", err))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

/// An upload dropped before its commit leaves nothing behind.
impl Drop for AsideUpload {
    fn drop(&mut self) {
        if !self.committed
            && let Err(err) = std::fs::remove_file(&self.temp)
        {
            tracing::warn!(path = %self.temp.display(), "cannot remove an unfinished Finder file: {err}");
        }
    }
}

impl Vfs {
    /// What the absolute `path` names: a catalog node (or where one would be made), a
    /// Finder metadata file kept aside, or a probe file.
    ///
    /// Fails as [`Vfs::lookup_parent`] does for a path whose parent is missing or
    /// not a directory, or whose last name is invalid.
    pub fn place(&self, path: &str) -> Result<Place> {
        let trimmed = path.trim_end_matches('/');
        let name = trimmed.rsplit_once('/').map_or(trimmed, |(_, name)| name);
        let probe = PROBE_FILES.contains(&name);
        let aside = self.config.finder_files == FinderFiles::Aside && is_finder_metadata(name);
        if !probe && !aside {
            return Ok(Place::Catalog);
        }
        let (parent, name) = self.lookup_parent(path)?;
        match self.lookup(parent.id, name) {
            Ok(_) => return Ok(Place::Catalog),
            Err(VfsError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        if probe {
            return Ok(if parent.id == NodeId::ROOT {
                Place::Probe
            } else {
                Place::Catalog
            });
        }
        Ok(Place::Aside(AsideFile {
            path: self.finder_area(parent.id).join(name),
            read_only: self.config.read_only,
        }))
    }

    /// The Finder area of directory `dir`.
    fn finder_area(&self, dir: NodeId) -> PathBuf {
        self.store.dir().join("finder").join(dir.to_string())
    }

    /// Removes the Finder files of directory `dir`, which the catalog no longer has.
    pub(crate) fn discard_finder_area(&self, dir: NodeId) {
        let area = self.finder_area(dir);
        match std::fs::remove_dir_all(&area) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                path = %area.display(),
                error = %err,
                "cannot remove the Finder files of a removed directory"
            ),
        }
    }
}
