//! [`Reach`]: which permission bits of a file the folders above it let each class of
//! user use, so that a file is never reported more open than it is.
//!
//! A user who may not search every folder on the way to a file cannot open it,
//! whatever the file's own bits say: a `0644` clip in a `0700` folder is `0600` to
//! everyone but the folder's owner. Files of one folder share the folders above them,
//! so their owners and modes are kept per folder for a short time (the attribute TTL:
//! a folder's permission change shows within it).

use std::fs::File;
use std::num::NonZeroUsize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

use crate::node::Owner;

/// Folders whose ancestors are remembered at once.
const FOLDERS: usize = 4096;

const OWNER: u16 = 0o700;
const GROUP: u16 = 0o070;
const OTHERS: u16 = 0o007;

/// One folder on the way to a file: who owns it and its mode; `None` when it cannot
/// be read.
type Ancestor = Option<(Owner, u32)>;

/// A folder and every folder above it, and when they were read.
type Ancestors = (Arc<[Ancestor]>, Instant);

/// The folders above recently resolved files, by the folder that holds them.
pub(crate) struct Reach {
    known: Mutex<LruCache<PathBuf, Ancestors>>,
    ttl: Duration,
}

impl Reach {
    /// Remembers each folder's ancestors for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            known: Mutex::new(LruCache::new(NonZeroUsize::new(FOLDERS).expect("non-zero"))),
            ttl,
        }
    }

    /// The permission bits that the folders above `file`, opened at `path` (through a
    /// symbolic link if `linked`) and owned by `owner`, let each class of user use.
    pub fn of(&self, file: &File, path: &Path, linked: bool, owner: Owner) -> u16 {
        // A link's own folder and its target's both stand on the way to the bytes.
        let mut reach = self.through(path.parent(), owner);
        if linked {
            let real = real_path(file, path);
            reach &= self.through(real.parent(), owner);
        }
        reach
    }

    fn through(&self, folder: Option<&Path>, owner: Owner) -> u16 {
        let Some(folder) = folder.filter(|folder| !folder.as_os_str().is_empty()) else {
            return OWNER | GROUP | OTHERS;
        };
        let cached = self
            .known
            .lock()
            .get(folder)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(ancestors, _)| Arc::clone(ancestors));
        let ancestors = cached.unwrap_or_else(|| {
            let ancestors = ancestors_of(folder);
            let entry = (Arc::clone(&ancestors), Instant::now());
            self.known.lock().put(folder.to_owned(), entry);
            ancestors
        });
        reach_for(&ancestors, owner)
    }
}

/// Where `file` really is (every link resolved), asked of its descriptor; `path`
/// made canonical when the system cannot say.
fn real_path(file: &File, path: &Path) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            && real.is_absolute()
        {
            return real;
        }
    }
    #[cfg(target_os = "macos")]
    {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(real) = rustix::fs::getpath(file) {
            return PathBuf::from(std::ffi::OsStr::from_bytes(real.as_bytes()));
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    let _ = file;
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `folder` (links resolved) and every folder above it.
fn ancestors_of(folder: &Path) -> Arc<[Ancestor]> {
    let real = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_owned());
    real.ancestors()
        .map(|dir| {
            std::fs::metadata(dir).ok().map(|meta| {
                let owner = Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                };
                (owner, meta.mode())
            })
        })
        .collect()
}

/// The bits `ancestors` let a file owned by `owner` be used with: each folder is
/// judged for the file's owner, a member of its group and anyone else; a folder that
/// cannot be read keeps everyone but the owner out.
fn reach_for(ancestors: &[Ancestor], owner: Owner) -> u16 {
    let mut reach = OWNER | GROUP | OTHERS;
    for ancestor in ancestors {
        let Some((dir, mode)) = *ancestor else {
            reach &= OWNER;
            continue;
        };
        let searchable = |bit: u32| mode & bit != 0;
        let for_group = if dir.gid == owner.gid {
            searchable(0o010)
        } else {
            searchable(0o001)
        };
        let for_owner = if dir.uid == owner.uid {
            searchable(0o100)
        } else {
            for_group
        };
        if !searchable(0o001) {
            reach &= !OTHERS;
        }
        if !for_group {
            reach &= !GROUP;
        }
        if !for_owner {
            reach &= !OWNER;
        }
    }
    reach
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Owner = Owner { uid: 10, gid: 20 };

    fn dir(uid: u32, gid: u32, mode: u32) -> Ancestor {
        Some((Owner { uid, gid }, mode))
    }

    #[test]
    fn each_class_needs_search_permission_on_every_folder() {
        let open = dir(0, 0, 0o755);
        assert_eq!(reach_for(&[open, open], ME), 0o777);
        // A folder of someone else's, closed to others: the file's owner is "others".
        assert_eq!(reach_for(&[dir(1, 1, 0o700), open], ME), 0o000);
        // The file owner's own closed folder: only the owner.
        assert_eq!(reach_for(&[dir(10, 1, 0o700), open], ME), 0o700);
        // A folder of the file's group, closed to others.
        assert_eq!(reach_for(&[dir(1, 20, 0o750), open], ME), 0o770);
        assert_eq!(reach_for(&[None, open], ME), 0o700);
    }
}
