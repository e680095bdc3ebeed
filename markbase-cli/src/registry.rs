//! The record of this user's markbase mounts: one small JSON file per serving process
//! in the data directory's `mounts/`, written once a mount is verified and removed when
//! it ends. `markbase mounts` lists them and `markbase umount` finds the process to stop.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One live mount, as its serving process recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Where it is mounted (canonical).
    pub mountpoint: PathBuf,
    /// The catalog it serves.
    pub catalog: PathBuf,
    /// The way it was mounted (`fuse`, `fuse-t`, `nfs`).
    pub backend: String,
    /// The process serving it.
    pub pid: u32,
    /// When it was mounted, in seconds since the Unix epoch.
    pub since: u64,
    /// The file the serving process logs to, for a background mount.
    pub log: Option<PathBuf>,
    /// The filesystem type the mount table showed once it was mounted.
    pub fstype: String,
    /// The source the mount table showed once it was mounted.
    pub source: String,
}

impl Record {
    /// When it was mounted.
    pub fn since(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.since)
    }

    /// Whether its serving process still runs (or runs as another user).
    pub fn process_alive(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        unsafe {
            libc::kill(pid, 0) == 0
                || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        }
    }
}

/// The directory of records.
pub fn dir() -> Result<PathBuf> {
    Ok(crate::data_dir::data_dir()?.join("mounts"))
}

/// A record kept while its mount lives: removed when dropped.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
}

impl Registration {
    /// Records `record` (as `<pid>.json`, written whole or not at all).
    pub fn new(record: &Record) -> Result<Self> {
        let dir = dir()?;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.json", record.pid));
        let partial = dir.join(format!(".{}.json.partial", record.pid));
        let text = serde_json::to_string_pretty(record).expect("a record serializes");
        fs::write(&partial, text + "\n")
            .and_then(|()| fs::rename(&partial, &path))
            .with_context(|| format!("recording the mount in {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(
                "cannot remove the mount record {}: {err}",
                self.path.display()
            );
        }
    }
}

/// A record read back, with the file that holds it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The record's file.
    pub file: PathBuf,
    /// What it says.
    pub record: Record,
}

impl Entry {
    /// Removes the record of a mount that has ended without removing it itself.
    pub fn forget(&self) {
        if let Err(err) = fs::remove_file(&self.file)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(
                "cannot remove the stale mount record {}: {err}",
                self.file.display()
            );
        }
    }
}

/// Every record, in mount point order. A file that cannot be read as a record is
/// skipped with a warning naming it; one removed since the directory was listed (its
/// mount ended meanwhile) is simply gone.
pub fn entries() -> Result<Vec<Entry>> {
    let dir = dir()?;
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    let mut entries = Vec::new();
    for item in listing {
        let file = item
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if file.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        match read(&file) {
            Ok(Some(record)) => entries.push(Entry { file, record }),
            Ok(None) => {}
            Err(err) => tracing::warn!("skipping {}: {err:#}", file.display()),
        }
    }
    entries.sort_by(|a, b| a.record.mountpoint.cmp(&b.record.mountpoint));
    Ok(entries)
}

/// The record of the mount on `mountpoint` (canonical), if any.
pub fn find(mountpoint: &Path) -> Result<Option<Entry>> {
    Ok(entries()?
        .into_iter()
        .find(|entry| entry.record.mountpoint == mountpoint))
}

/// The record in `file`; `None` once the file is gone.
fn read(file: &Path) -> Result<Option<Record>> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    serde_json::from_str(&text)
        .map(Some)
        .context("not a mount record")
}

/// `path` made absolute with its directory's symlinks resolved, as a mount point is
/// recorded. The last component is not resolved: on a dead mount it cannot be.
pub fn canonical(path: &Path) -> Result<PathBuf> {
    let path =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok(parent
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display()))?
            .join(name)),
        _ => Ok(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_removed_after_the_listing_is_gone_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("1.json")).unwrap().is_none());
        let broken = dir.path().join("2.json");
        fs::write(&broken, "{").unwrap();
        let err = read(&broken).unwrap_err();
        assert!(format!("{err:#}").contains("not a mount record"), "{err:#}");
    }
}
