//! Aliases: the paths where a file node's bytes live, and how one is chosen.
//!
//! The first alias that opens as a regular file wins. Every alias passed over
//! is kept with its reason, so that callers can say exactly why a file cannot
//! be read.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::node::{Node, Owner};
use crate::reach::Reach;

/// A file node's aliases, parsed from its `aliases_json` column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasList {
    /// A JSON array; each element is a path or the reason it is unusable.
    Entries(Box<[AliasEntry]>),
    /// The column is not a JSON array of strings at all.
    Unparsable(String),
}

/// One element of an `aliases_json` array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasEntry {
    /// A path, absolute or relative to the catalog's directory.
    Path(Box<str>),
    /// An element that cannot be a path.
    Invalid(InvalidAlias),
}

/// Why an element of `aliases_json` cannot be a path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlias {
    /// The element is not a JSON string.
    #[error("not a string but {0}")]
    NotAString(String),
    /// The empty string.
    #[error("an empty path")]
    Empty,
    /// A string with a NUL byte.
    #[error("a path containing a NUL byte")]
    Nul,
}

impl AliasList {
    /// Parses an `aliases_json` value. Never fails: problems are recorded in the result.
    pub fn parse(json: &str) -> Self {
        let value: serde_json::Value = match serde_json::from_str(json) {
            Ok(value) => value,
            Err(err) => return Self::Unparsable(format!("aliases_json is not valid JSON ({err})")),
        };
        let serde_json::Value::Array(items) = value else {
            return Self::Unparsable(format!(
                "aliases_json is not a JSON array but {}",
                json_kind(&value)
            ));
        };
        let entries = items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) if s.is_empty() => {
                    AliasEntry::Invalid(InvalidAlias::Empty)
                }
                serde_json::Value::String(s) if s.contains('\0') => {
                    AliasEntry::Invalid(InvalidAlias::Nul)
                }
                serde_json::Value::String(s) => AliasEntry::Path(s.into_boxed_str()),
                other => AliasEntry::Invalid(InvalidAlias::NotAString(json_kind(&other))),
            })
            .collect();
        Self::Entries(entries)
    }

    /// Serialises a list of paths as an `aliases_json` value.
    pub fn to_json<S: AsRef<str>>(paths: &[S]) -> String {
        let values: Vec<&str> = paths.iter().map(AsRef::as_ref).collect();
        serde_json::to_string(&values).expect("a list of strings always serialises")
    }
}

fn json_kind(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Bool(b) => format!("the boolean {b}"),
        serde_json::Value::Number(n) => format!("the number {n}"),
        serde_json::Value::String(_) => "a string".to_owned(),
        serde_json::Value::Array(_) => "an array".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
    }
}

/// Why an alias was passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The whole `aliases_json` column is unusable.
    Unparsable(String),
    /// The array element is not a usable path.
    Invalid(InvalidAlias),
    /// Nothing exists at the path.
    NotFound,
    /// The path exists but may not be opened.
    PermissionDenied,
    /// The path is a directory.
    IsDirectory,
    /// The path is something other than a regular file or directory.
    NotRegular(&'static str),
    /// Opening failed for another reason.
    Io(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparsable(reason) => f.write_str(reason),
            Self::Invalid(reason) => write!(f, "unusable alias: {reason}"),
            Self::NotFound => f.write_str("not found"),
            Self::PermissionDenied => f.write_str("permission denied"),
            Self::IsDirectory => f.write_str("is a directory"),
            Self::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
            Self::Io(msg) => f.write_str(msg),
        }
    }
}

impl SkipReason {
    fn from_open_error(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::NotFound => Self::NotFound,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::IsADirectory => Self::IsDirectory,
            _ if err.raw_os_error() == Some(libc::ENOTDIR) => Self::NotFound,
            _ => Self::Io(err.to_string()),
        }
    }
}

/// An alias that was passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedAlias {
    /// Position in the alias list, from 0; `None` when the whole list is unusable.
    pub index: Option<usize>,
    /// The alias as written in the catalog (empty when the list is unusable).
    pub alias: String,
    /// Why it was passed over.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) if self.alias.is_empty() => {
                write!(f, "alias #{}: {}", index + 1, self.reason)
            }
            Some(index) => write!(f, "alias #{} {:?}: {}", index + 1, self.alias, self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Identity and size of an alias file at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStat {
    /// Device number.
    pub dev: u64,
    /// Inode number on that device.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated to it.
    pub blocks: u64,
    /// Modification time in ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time in ns since the Unix epoch.
    pub ctime_ns: i64,
    /// Owner and group.
    pub owner: Owner,
    /// Permission bits (`0o777` at most; see [`Backing::reach`]).
    pub perm: u16,
}

impl FileStat {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            blocks: meta.blocks(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            owner: Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            },
            perm: (meta.mode() & 0o777) as u16,
        }
    }

    /// This stat with only the permission bits that `reach` lets through.
    pub(crate) fn within(mut self, reach: u16) -> Self {
        self.perm &= reach;
        self
    }

    /// Whether both stats describe the same file (device and inode).
    pub fn same_file(&self, other: &FileStat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// The open file that serves a node, chosen by alias resolution.
#[derive(Debug)]
#[non_exhaustive]
pub struct Backing {
    /// The open alias file; reads `pread` from it.
    pub file: File,
    /// The path it was opened at (relative aliases made absolute).
    pub path: PathBuf,
    /// Its position in the alias list, from 0.
    pub index: usize,
    /// The aliases before it that were passed over.
    pub skipped: Vec<SkippedAlias>,
    /// The permission bits that the folders above the file let each class of user use
    /// (judged for its owner, its group and everyone else); its stats keep only these.
    pub reach: u16,
    /// Identity, size, owner and permissions when it was opened.
    pub stat: FileStat,
}

/// Which alias serves a file, and why each one before it was passed over.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resolution {
    /// The node that was resolved.
    pub node: Arc<Node>,
    /// The alias file that serves it, or every alias's reason for failing.
    pub outcome: std::result::Result<Arc<Backing>, Vec<SkippedAlias>>,
}

/// Resolves `aliases` to the first one that opens as a regular file.
///
/// `base` is the directory relative aliases are resolved against; `reach` judges the
/// folders above the file. On failure the error lists every alias and why it was
/// passed over.
pub(crate) fn resolve(
    aliases: &AliasList,
    base: &Path,
    reach: &Reach,
) -> Result<Backing, Vec<SkippedAlias>> {
    let entries = match aliases {
        AliasList::Entries(entries) => entries,
        AliasList::Unparsable(reason) => {
            return Err(vec![SkippedAlias {
                index: None,
                alias: String::new(),
                reason: SkipReason::Unparsable(reason.clone()),
            }]);
        }
    };
    let mut skipped = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let alias = match entry {
            AliasEntry::Path(alias) => alias,
            AliasEntry::Invalid(reason) => {
                skipped.push(SkippedAlias {
                    index: Some(index),
                    alias: String::new(),
                    reason: SkipReason::Invalid(reason.clone()),
                });
                continue;
            }
        };
        let path = base.join(&**alias);
        match open_regular(&path) {
            Ok((file, stat, linked)) => {
                let reach = reach.of(&file, &path, linked, stat.owner);
                return Ok(Backing {
                    file,
                    path,
                    index,
                    skipped,
                    reach,
                    stat: stat.within(reach),
                });
            }
            Err(reason) => skipped.push(SkippedAlias {
                index: Some(index),
                alias: alias.to_string(),
                reason,
            }),
        }
    }
    Err(skipped)
}

/// Opens `path` for reading if it is a regular file; whether it was reached through a
/// symbolic link at its last component.
///
/// `O_NONBLOCK` keeps a FIFO from blocking the open; it has no effect on the
/// regular files that are kept. The link is found without a syscall of its own: the
/// path is opened without following one first, and again if it is one.
fn open_regular(path: &Path) -> Result<(File, FileStat, bool), SkipReason> {
    let open = |follow: bool| {
        let no_follow = if follow { 0 } else { libc::O_NOFOLLOW };
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | no_follow)
            .open(path)
    };
    let (file, linked) = match open(false) {
        Ok(file) => (Ok(file), false),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => (open(true), true),
        Err(err) => (Err(err), false),
    };
    let file = file.map_err(|err| SkipReason::from_open_error(&err))?;
    let meta = file
        .metadata()
        .map_err(|err| SkipReason::Io(err.to_string()))?;
    let file_type = meta.file_type();
    if file_type.is_file() {
        Ok((file, FileStat::of(&meta), linked))
    } else if file_type.is_dir() {
        Err(SkipReason::IsDirectory)
    } else if file_type.is_fifo() {
        Err(SkipReason::NotRegular("FIFO"))
    } else if file_type.is_socket() {
        Err(SkipReason::NotRegular("socket"))
    } else if file_type.is_char_device() {
        Err(SkipReason::NotRegular("character device"))
    } else if file_type.is_block_device() {
        Err(SkipReason::NotRegular("block device"))
    } else {
        Err(SkipReason::NotRegular("special file"))
    }
}

/// Stats `path` (following links) for the identity check of a cached backing.
pub(crate) fn stat_path(path: &Path) -> io::Result<FileStat> {
    std::fs::metadata(path).map(|meta| FileStat::of(&meta))
}

impl Backing {
    /// The file's current stat, by its descriptor, as `reach` lets it be seen.
    pub(crate) fn fstat(&self) -> io::Result<FileStat> {
        self.file
            .metadata()
            .map(|meta| FileStat::of(&meta).within(self.reach))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parse_keeps_every_problem() {
        assert!(
            matches!(AliasList::parse("{"), AliasList::Unparsable(m) if m.contains("not valid JSON"))
        );
        assert!(
            matches!(AliasList::parse("{\"a\":1}"), AliasList::Unparsable(m) if m.contains("an object"))
        );
        let AliasList::Entries(entries) = AliasList::parse(r#"["/a", 5, "", null, "b\u0000"]"#)
        else {
            panic!("an array parses");
        };
        assert_eq!(entries[0], AliasEntry::Path("/a".into()));
        assert_eq!(
            entries[1],
            AliasEntry::Invalid(InvalidAlias::NotAString("the number 5".into()))
        );
        assert_eq!(entries[2], AliasEntry::Invalid(InvalidAlias::Empty));
        assert_eq!(
            entries[3],
            AliasEntry::Invalid(InvalidAlias::NotAString("null".into()))
        );
        assert_eq!(entries[4], AliasEntry::Invalid(InvalidAlias::Nul));
    }

    #[test]
    fn json_round_trips() {
        let json = AliasList::to_json(&["/x/\"q\".mov", "rel/ü"]);
        assert_eq!(
            AliasList::parse(&json),
            AliasList::Entries(
                vec![
                    AliasEntry::Path("/x/\"q\".mov".into()),
                    AliasEntry::Path("rel/ü".into())
                ]
                .into()
            )
        );
    }

    #[test]
    fn resolution_skips_until_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        std::fs::write(dir.path().join("real"), b"bytes").unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let aliases = AliasList::parse(&AliasList::to_json(&["missing", "adir", "fifo", "real"]));
        let backing = resolve(&aliases, dir.path(), &Reach::new(Duration::ZERO)).unwrap();
        assert_eq!(backing.index, 3);
        assert_eq!(backing.path, dir.path().join("real"));
        assert_eq!(backing.stat.size, 5);
        let reasons: Vec<_> = backing.skipped.iter().map(|s| s.reason.clone()).collect();
        assert_eq!(
            reasons,
            [
                SkipReason::NotFound,
                SkipReason::IsDirectory,
                SkipReason::NotRegular("FIFO")
            ]
        );
        let failed = resolve(
            &AliasList::parse("[]"),
            dir.path(),
            &Reach::new(Duration::ZERO),
        )
        .unwrap_err();
        assert!(failed.is_empty());
    }
}
