//! Nodes of the catalog: ids (inode numbers), names, kinds and attributes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alias::AliasList;

/// The id of a node, which is also its inode number: a catalog row's id (1 to
/// `i64::MAX`), or, with bit 63 set, a file kept out of the catalog by the Finder rule
/// ([`FinderFiles`](crate::finder::FinderFiles)), made from its directory and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u64);

impl NodeId {
    /// The root directory: node 1.
    pub const ROOT: NodeId = NodeId(1);

    /// Wraps an inode number; `None` for one that can name nothing (0, or above
    /// `i64::MAX` but not made for a file kept out of the catalog).
    pub fn new(ino: u64) -> Option<Self> {
        let valid = ino != 0 && (ino <= i64::MAX as u64 || crate::finder::id::split(ino).is_some());
        valid.then_some(Self(ino))
    }

    /// An id made by the Finder rule's id scheme, which checks it.
    pub(crate) fn from_raw_outside(raw: u64) -> Self {
        Self(raw)
    }

    /// Whether the id is a catalog row's; `false` for a file kept out of the catalog.
    pub fn in_catalog(self) -> bool {
        self.0 <= i64::MAX as u64
    }

    /// The inode number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id as stored in SQLite; ids are checked to fit when made.
    pub(crate) fn sql(self) -> i64 {
        self.0 as i64
    }

    /// The node id of a row id, when it is a valid one.
    pub(crate) fn from_sql(id: i64) -> Option<Self> {
        u64::try_from(id).ok().and_then(Self::new)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a node is a directory or a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file whose bytes live in an alias file.
    File,
}

impl NodeKind {
    /// The value of the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::File => "file",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest name a node may have, in bytes (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Why a string cannot be a node name (one path component).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The empty string.
    #[error("the name is empty")]
    Empty,
    /// `.` or `..`.
    #[error("'.' and '..' are not names")]
    Dots,
    /// Contains `/`.
    #[error("the name contains '/'")]
    Slash,
    /// Contains a NUL byte.
    #[error("the name contains a NUL byte")]
    Nul,
    /// Longer than [`NAME_MAX`] bytes.
    #[error("the name is {0} bytes long; at most 255 are allowed")]
    TooLong(usize),
}

impl NameError {
    /// The errno for a request that used such a name.
    pub fn errno(self) -> i32 {
        match self {
            Self::TooLong(_) => libc::ENAMETOOLONG,
            _ => libc::EINVAL,
        }
    }
}

/// Checks that `name` is a valid single path component.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    match name {
        "" => Err(NameError::Empty),
        "." | ".." => Err(NameError::Dots),
        _ if name.len() > NAME_MAX => Err(NameError::TooLong(name.len())),
        _ if name.contains('/') => Err(NameError::Slash),
        _ if name.contains('\0') => Err(NameError::Nul),
        _ => Ok(()),
    }
}

/// The longest path [`validate_path`] accepts, in bytes (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Why a path sent over a path-based protocol (WebDAV) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A component that is no node name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A component holding a backslash.
    #[error("a name contains '\\'")]
    Backslash,
    /// Longer than [`PATH_MAX`] bytes.
    #[error("the path is {0} bytes long; at most 4096 are allowed")]
    TooLong(usize),
}

impl PathError {
    /// Whether the path or one of its names is too long.
    pub fn is_too_long(self) -> bool {
        matches!(self, Self::TooLong(_) | Self::Name(NameError::TooLong(_)))
    }
}

/// Checks an absolute path that arrived over a path-based protocol, decoded, before
/// it is looked up: at most [`PATH_MAX`] bytes, every component a valid name
/// ([`validate_name`]; empty and `.` components are skipped, as
/// [`Vfs::lookup_path`](crate::Vfs::lookup_path) skips them) without a backslash.
///
/// A backslash is a valid byte of a Unix name, but Windows clients read it as a
/// separator, for whom `a\..\..\b` would climb out of the library; the catalog keeps
/// such names, and no request may make or reach one.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.len() > PATH_MAX {
        return Err(PathError::TooLong(path.len()));
    }
    for name in path
        .split('/')
        .filter(|name| !name.is_empty() && *name != ".")
    {
        validate_name(name)?;
        if name.contains('\\') {
            return Err(PathError::Backslash);
        }
    }
    Ok(())
}

/// What a node holds: children, or bytes reached through aliases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A directory; its aliases, if any, are ignored.
    Dir,
    /// A file and its aliases, most preferred first.
    File(AliasList),
}

/// One valid row of the `nodes` table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// The node's id (its inode number).
    pub id: NodeId,
    /// The parent directory; `None` only for the root.
    pub parent: Option<NodeId>,
    /// The node's name within its parent; empty for the root.
    pub name: Box<str>,
    /// The size recorded in the catalog; a file's resolved alias size wins.
    pub recorded_size: u64,
    /// The modification time recorded in the catalog, in ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Directory or file (with its aliases).
    pub content: Content,
}

impl Node {
    /// Directory or file.
    pub fn kind(&self) -> NodeKind {
        match self.content {
            Content::Dir => NodeKind::Dir,
            Content::File(_) => NodeKind::File,
        }
    }
}

/// The user and group that own a node, as permission checks see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Owner {
    /// The real user and group of this process: who serves the catalog.
    pub fn current() -> Self {
        Self {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }
}

/// The attributes of a node as a filesystem reports them.
///
/// A file that an alias serves has that file's owner, permission bits, block count and
/// change time, so that a permission check through a mount matches one made on the file
/// itself; directories, and files no alias serves, belong to [`VfsConfig::owner`]
/// (`0o755` and `0o644`).
///
/// [`VfsConfig::owner`]: crate::VfsConfig::owner
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileAttr {
    /// The node's id (its inode number).
    pub id: NodeId,
    /// Directory or file.
    pub kind: NodeKind,
    /// Size in bytes: for a file, the real size of the alias that serves it.
    pub size: u64,
    /// Space the bytes take on disk, in 512-byte blocks (what a sparse file really
    /// uses); 0 for directories.
    pub blocks: u64,
    /// Modification time in ns since the Unix epoch. A directory's changes whenever an
    /// entry is added, removed or renamed.
    pub mtime_ns: i64,
    /// Status change time in ns since the Unix epoch: never before `mtime_ns`; it also
    /// moves when a node is renamed.
    pub ctime_ns: i64,
    /// Permission bits (at most `0o777`, without the write bits when the filesystem is
    /// read-only): a served file's own, less what the folders above it keep each class
    /// of user from reaching.
    pub perm: u16,
    /// Owner and group.
    pub owner: Owner,
    /// Link count: 1 (for directories, "unknown", as btrfs reports); 0 for a file
    /// changed through a handle after its node was removed.
    pub nlink: u32,
}

impl FileAttr {
    /// The modification time as a [`SystemTime`].
    pub fn mtime(&self) -> SystemTime {
        system_time_from_ns(self.mtime_ns)
    }
}

/// Converts ns since the Unix epoch (possibly negative) into a [`SystemTime`].
pub fn system_time_from_ns(ns: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_schema_rules() {
        assert_eq!(validate_name("clip.mov"), Ok(()));
        assert_eq!(validate_name("café ☕"), Ok(()));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("."), Err(NameError::Dots));
        assert_eq!(validate_name(".."), Err(NameError::Dots));
        assert_eq!(validate_name("..."), Ok(()));
        assert_eq!(validate_name("a/b"), Err(NameError::Slash));
        assert_eq!(validate_name("a\0b"), Err(NameError::Nul));
        assert_eq!(
            validate_name(&"x".repeat(256)),
            Err(NameError::TooLong(256))
        );
        assert_eq!(validate_name(&"x".repeat(255)), Ok(()));
    }

    #[test]
    fn node_ids_are_positive_inode_numbers() {
        assert_eq!(NodeId::new(0), None);
        assert_eq!(NodeId::from_sql(-3), None);
        assert_eq!(NodeId::from_sql(7).map(NodeId::get), Some(7));
        assert_eq!(NodeId::new(u64::MAX), None);
    }

    #[test]
    fn negative_mtimes_are_before_the_epoch() {
        assert!(system_time_from_ns(-1_000) < UNIX_EPOCH);
        assert_eq!(system_time_from_ns(0), UNIX_EPOCH);
    }
}
