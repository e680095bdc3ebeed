//! The store: the directory that holds the bytes of files created through the
//! filesystem.
//!
//! Each new file gets a name no other file can have (created with `O_EXCL`), so
//! two creates never collide. Bytes are deleted only inside the store: a
//! user's original file elsewhere is never removed.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest file extension kept in a store name, so that the store stays browsable.
const MAX_EXTENSION: usize = 16;

/// The store directory of one catalog.
#[derive(Debug)]
pub(crate) struct Store {
    /// The store directory, absolute.
    dir: PathBuf,
    /// How aliases name the store: relative to the catalog's directory when the store
    /// is inside it (so the library can move as a whole), absolute otherwise.
    alias_prefix: PathBuf,
    counter: AtomicU64,
}

/// A file just created in the store.
pub(crate) struct NewStoreFile {
    /// Open for reading and writing.
    pub file: File,
    /// Its absolute path.
    pub path: PathBuf,
    /// The alias that names it in the catalog.
    pub alias: String,
}

impl Store {
    /// The store at `dir` (default: `warren-store/` in `catalog_dir`); nothing is
    /// created until the first file is.
    pub fn new(dir: Option<&Path>, catalog_dir: &Path) -> Self {
        let dir = match dir {
            Some(dir) if dir.is_absolute() => dir.to_owned(),
            Some(dir) => catalog_dir.join(dir),
            None => catalog_dir.join("warren-store"),
        };
        let alias_prefix = dir
            .strip_prefix(catalog_dir)
            .map(Path::to_owned)
            .unwrap_or_else(|_| dir.clone());
        Self {
            dir,
            alias_prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new, empty file for a node named `name`.
    pub fn create(&self, name: &str) -> io::Result<NewStoreFile> {
        let extension = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= MAX_EXTENSION && e.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut made_dir = false;
        loop {
            let count = self.counter.fetch_add(1, Ordering::Relaxed);
            let file_name = format!("{nanos:x}-{:x}-{count:x}{extension}", std::process::id());
            let path = self.dir.join(&file_name);
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path);
            match opened {
                Ok(file) => {
                    let alias = self.alias_of(&file_name).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("store path {} is not valid UTF-8", self.dir.display()),
                        )
                    })?;
                    return Ok(NewStoreFile { file, path, alias });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                // The store is made on first use, and again if someone removed it.
                Err(err) if err.kind() == io::ErrorKind::NotFound && !made_dir => {
                    std::fs::create_dir_all(&self.dir)?;
                    made_dir = true;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The alias that names the store file `file_name`.
    pub fn alias_of(&self, file_name: &str) -> Option<String> {
        self.alias_prefix
            .join(file_name)
            .to_str()
            .map(str::to_owned)
    }

    /// Whether `path` (absolute) lies inside the store.
    pub fn contains(&self, path: &Path) -> bool {
        let canonical = |p: &Path| std::fs::canonicalize(p).ok();
        match (canonical(&self.dir), path.parent().and_then(canonical)) {
            (Some(store), Some(parent)) => parent.starts_with(&store),
            _ => false,
        }
    }

    /// Deletes `path` if it lies inside the store; a missing file is not an error.
    pub fn remove(&self, path: &Path) -> io::Result<bool> {
        if !self.contains(path) {
            return Ok(false);
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Every regular file in the store (for the consistency check).
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }
}
