//! The Finder names of each directory's area by hash, so that finding an id's file
//! and checking that a new name's id is free cost a lookup, not a listing of the area
//! (a Finder copy of a folder of 10,000 clips makes 10,000 `._` files in one area).
//!
//! A listing is read again when the area's mtime is not the one it was read at:
//! another process changed the area. Changes this process makes update it in place,
//! so a change another process makes within the same tick of the file clock as one of
//! ours can go unseen; at worst, a name whose id another file has is then not refused.

use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::SystemTime;

use lru::LruCache;
use parking_lot::Mutex;

use super::{id, is_finder_metadata};
use crate::error::{Result, VfsError};
use crate::node::NodeId;

/// Directories whose listings are kept.
const DIRS: usize = 256;

/// One area's Finder names by hash, and the area's mtime when they were read
/// (`None`: the area did not exist).
struct Listing {
    mtime: Option<SystemTime>,
    by_hash: HashMap<u32, String>,
}

/// The listings of recently used areas.
pub(super) struct Listings(Mutex<LruCache<NodeId, Listing>>);

impl Listings {
    pub fn new() -> Self {
        Self(Mutex::new(LruCache::new(
            NonZeroUsize::new(DIRS).expect("non-zero"),
        )))
    }

    /// The Finder name whose hash is `hash` in `area`, the area of directory `dir`.
    pub fn name(&self, dir: NodeId, area: &Path, hash: u32) -> Result<Option<String>> {
        let mtime = mtime_of(area)?;
        if let Some(listing) = self.0.lock().get(&dir)
            && listing.mtime == mtime
        {
            return Ok(listing.by_hash.get(&hash).cloned());
        }
        // No lock is held while the area is read.
        let listing = read(area, mtime)?;
        let name = listing.by_hash.get(&hash).cloned();
        self.0.lock().put(dir, listing);
        Ok(name)
    }

    /// Records that this process added `added` to, or removed `removed` from, `area`,
    /// the area of directory `dir`.
    pub fn changed(&self, dir: NodeId, area: &Path, added: Option<&str>, removed: Option<&str>) {
        let mtime = mtime_of(area);
        let mut listings = self.0.lock();
        let (Ok(mtime), Some(listing)) = (mtime, listings.get_mut(&dir)) else {
            listings.pop(&dir);
            return;
        };
        if let Some(name) = removed
            && listing
                .by_hash
                .get(&id::hash(name))
                .is_some_and(|had| had == name)
        {
            listing.by_hash.remove(&id::hash(name));
        }
        if let Some(name) = added {
            listing.by_hash.insert(id::hash(name), name.to_owned());
        }
        listing.mtime = mtime;
    }

    /// Forgets the listing of directory `dir`, whose area is gone.
    pub fn forget(&self, dir: NodeId) {
        self.0.lock().pop(&dir);
    }
}

/// The mtime of `area`; `None` if it does not exist.
fn mtime_of(area: &Path) -> Result<Option<SystemTime>> {
    match std::fs::metadata(area).and_then(|meta| meta.modified()) {
        Ok(mtime) => Ok(Some(mtime)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(VfsError::io(
            format!("reading Finder's area {}", area.display()),
            err,
        )),
    }
}

/// The Finder names in `area`, whose mtime is `mtime`.
fn read(area: &Path, mtime: Option<SystemTime>) -> Result<Listing> {
    let mut by_hash = HashMap::new();
    if mtime.is_some() {
        let context = || format!("listing Finder's area {}", area.display());
        let entries = match std::fs::read_dir(area) {
            Ok(entries) => Some(entries),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(VfsError::io(context(), err)),
        };
        for entry in entries.into_iter().flatten() {
            let entry = entry.map_err(|err| VfsError::io(context(), err))?;
            if let Ok(name) = entry.file_name().into_string()
                && is_finder_metadata(&name)
            {
                by_hash.insert(id::hash(&name), name);
            }
        }
    }
    Ok(Listing { mtime, by_hash })
}
