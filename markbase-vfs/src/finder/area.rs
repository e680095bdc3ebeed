//! The store's Finder area, `<store>/finder/<directory id>/<name>`: where Finder's own
//! files live, and how an id is found back to its name.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lru::LruCache;
use parking_lot::Mutex;

use super::id;
use super::listing::Listings;
use crate::error::{Result, VfsError};
use crate::node::NodeId;

/// Places of outside ids recently looked up, resolved or moved, so that a `getattr`
/// by id does not list the directory's area.
const PLACES: usize = 4096;

/// Uploads to aside files started by this process, for unique temporary names.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// The store's Finder area.
pub(crate) struct FinderArea {
    dir: PathBuf,
    /// Where the file of an id is: its directory and name. A moved file stays here
    /// under the id of its old name, which kernels and NFS clients keep using after
    /// a rename, as long as no new file takes the old name.
    places: Mutex<LruCache<NodeId, (NodeId, String)>>,
    /// Each area's names by hash.
    listings: Listings,
}

/// A Finder file of a directory's area, by name; it may not exist yet.
#[derive(Clone, Debug)]
pub(crate) struct AsideFile {
    /// Its id ([`id::outside_id`] of `dir` and `name`).
    pub id: NodeId,
    /// The catalog directory it belongs to.
    pub dir: NodeId,
    /// Its name.
    pub name: String,
    /// Where its bytes are.
    pub path: PathBuf,
}

impl FinderArea {
    /// The area of the store at `store_dir`.
    pub fn new(store_dir: &Path) -> Self {
        Self {
            dir: store_dir.join("finder"),
            places: Mutex::new(LruCache::new(NonZeroUsize::new(PLACES).expect("non-zero"))),
            listings: Listings::new(),
        }
    }

    /// The area of directory `dir`.
    fn of(&self, dir: NodeId) -> PathBuf {
        self.dir.join(dir.to_string())
    }

    /// File `name` of directory `dir`; fails when `dir` can have no files aside.
    pub fn file(&self, dir: NodeId, name: &str) -> Result<AsideFile> {
        let id = id::outside_id(dir, name).ok_or_else(|| VfsError::OutsideCatalog {
            what: format!("{name:?} in directory {dir}"),
            refused: "directories with ids of 2^31 - 1 and above keep no Finder files aside",
        })?;
        Ok(AsideFile {
            id,
            dir,
            name: name.to_owned(),
            path: self.of(dir).join(name),
        })
    }

    /// The file of `id`, made from `dir` and a name whose hash is `hash`: where it was
    /// last seen, or else the name in `dir`'s area with that hash (`None`: no such
    /// file).
    pub fn file_of(&self, id: NodeId, dir: NodeId, hash: u32) -> Result<Option<AsideFile>> {
        let known = self.places.lock().get(&id).cloned();
        let (dir, name) = match known {
            Some(place) => place,
            None => match self.listings.name(dir, &self.of(dir), hash)? {
                Some(name) => (dir, name),
                None => return Ok(None),
            },
        };
        self.places.lock().put(id, (dir, name.clone()));
        Ok(Some(AsideFile {
            id,
            dir,
            path: self.of(dir).join(&name),
            name,
        }))
    }

    /// Records that `file` was just made: its id is its own again.
    pub fn made(&self, file: &AsideFile) {
        self.places
            .lock()
            .put(file.id, (file.dir, file.name.clone()));
        self.listings
            .changed(file.dir, &self.of(file.dir), Some(&file.name), None);
    }

    /// Records that `file` was just removed.
    pub fn removed(&self, file: &AsideFile) {
        self.listings
            .changed(file.dir, &self.of(file.dir), None, Some(&file.name));
    }

    /// Records that the file of `from` is now `to`, for those who still know it by
    /// `from`'s id.
    pub fn moved(&self, from: &AsideFile, to: &AsideFile) {
        {
            let mut places = self.places.lock();
            places.put(from.id, (to.dir, to.name.clone()));
            places.put(to.id, (to.dir, to.name.clone()));
        }
        self.listings
            .changed(from.dir, &self.of(from.dir), None, Some(&from.name));
        self.listings
            .changed(to.dir, &self.of(to.dir), Some(&to.name), None);
    }

    /// Another file of `file`'s area whose name has `file`'s hash, and so its id.
    pub fn id_taken(&self, file: &AsideFile) -> Result<Option<String>> {
        let name = self
            .listings
            .name(file.dir, &self.of(file.dir), id::hash(&file.name))?;
        Ok(name.filter(|name| *name != file.name))
    }

    /// Removes the Finder files of directory `dir`, which the catalog no longer has.
    pub fn discard(&self, dir: NodeId) {
        self.listings.forget(dir);
        let area = self.of(dir);
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

impl AsideFile {
    /// Its metadata; `NotFound` if it does not exist.
    pub fn metadata(&self) -> Result<Metadata> {
        std::fs::metadata(&self.path).map_err(|err| self.error("reading", err))
    }

    /// Opens it, for writing too if `write`.
    pub fn open(&self, write: bool) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&self.path)
            .map_err(|err| self.error("opening", err))
    }

    /// Creates it for reading and writing; `None` if it exists.
    pub fn create_new(&self) -> Result<Option<File>> {
        self.make_dir()?;
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(self.error("creating", err)),
        }
    }

    /// A new empty file beside it, under a name no request can reach, for a whole new
    /// content that [`AsideFile::replace_with`] puts in its place.
    pub fn temporary(&self) -> Result<(File, PathBuf)> {
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
                Ok(file) => return Ok((file, temp)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(self.error("starting a new content of", err)),
            }
        }
    }

    /// Puts the file at `temp` in its place, in one rename.
    pub fn replace_with(&self, temp: &Path) -> Result<()> {
        std::fs::rename(temp, &self.path).map_err(|err| self.error("replacing", err))
    }

    /// Deletes it.
    pub fn remove(&self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(|err| self.error("removing", err))
    }

    /// Moves it to `to`, replacing what is there.
    pub fn rename(&self, to: &AsideFile) -> Result<()> {
        self.metadata()?;
        to.make_dir()?;
        std::fs::rename(&self.path, &to.path).map_err(|err| self.error("moving", err))
    }

    fn make_dir(&self) -> Result<()> {
        let dir = self.path.parent().expect("an aside file has a directory");
        std::fs::create_dir_all(dir)
            .map_err(|err| VfsError::io(format!("making Finder's area {}", dir.display()), err))
    }

    /// `err` of `doing` something to it; a missing file is `NotFound`.
    pub fn error(&self, doing: &str, err: io::Error) -> VfsError {
        if err.kind() == io::ErrorKind::NotFound {
            VfsError::NotFound(format!("{:?} in directory {}", self.name, self.dir))
        } else {
            VfsError::io(format!("{doing} Finder file {}", self.path.display()), err)
        }
    }
}
