//! The one error type every adapter maps to an errno.
//!
//! Each message is complete on its own (it includes its cause), so a log line or
//! a command's one-line error says everything.

use std::io;
use std::path::PathBuf;

use crate::alias::SkippedAlias;
use crate::handles::FileHandle;
use crate::node::NodeId;

/// Result alias used throughout the crate.
pub type Result<T, E = VfsError> = std::result::Result<T, E>;

/// Everything that can go wrong in the core, with enough context to say why.
///
/// [`VfsError::errno`] gives the errno a filesystem adapter should answer with, and
/// [`VfsError::level`] how loudly it should be logged, so that every adapter agrees
/// on what each failure means.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VfsError {
    /// The catalog file does not exist.
    #[error("catalog {} does not exist", .0.display())]
    CatalogMissing(PathBuf),

    /// The catalog file exists but cannot be read.
    #[error("catalog {} cannot be read: {cause}", path.display())]
    CatalogUnreadable {
        /// The catalog file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },

    /// The file is not a usable SQLite database (empty, foreign, truncated, damaged).
    #[error("catalog {} is not a usable SQLite database: {reason}", path.display())]
    NotACatalog {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The database is SQLite, but its schema is not MarkBase schema v1.
    #[error("catalog {}: {problem}", path.display())]
    Schema {
        /// The catalog file.
        path: PathBuf,
        /// What is missing or wrong, naming the table, column or node.
        problem: String,
    },

    /// Another process holds a lock on the catalog for longer than the busy timeout.
    #[error("catalog {} is locked by another process (still busy when the busy timeout ran out)", path.display())]
    CatalogBusy {
        /// The catalog file.
        path: PathBuf,
    },

    /// A SQLite call failed for another reason.
    #[error("catalog query failed while {context}: {cause}")]
    Sqlite {
        /// What the core was doing.
        context: &'static str,
        /// What the database engine said.
        cause: EngineError,
    },

    /// No connection could be taken from the pool in time.
    #[error("no catalog connection available: {0}")]
    Pool(EngineError),

    /// A name or path that does not exist.
    #[error("no such file or directory: {0}")]
    NotFound(String),

    /// A directory operation on something that is not a directory.
    #[error("not a directory: {0}")]
    NotADirectory(String),

    /// A file operation on a directory.
    #[error("is a directory: {0}")]
    IsADirectory(String),

    /// A name or path that can never name a node.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name or path component.
        name: String,
        /// Why it is invalid.
        reason: crate::node::NameError,
    },

    /// A path with a component that can never name a node (`..`, say), or the root
    /// where a path must end in a name.
    #[error("invalid path {path:?}: {}", format_component(.component, .reason))]
    InvalidPath {
        /// The whole path, as given.
        path: String,
        /// The offending component; empty for the root, which has no name.
        component: String,
        /// Why it cannot be a name.
        reason: crate::node::NameError,
    },

    /// A catalog row that breaks the schema's rules; it is skipped.
    #[error("node {id} is invalid: {reason}")]
    InvalidNode {
        /// The row's id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },

    /// The catalog's `parent_id` links form a loop.
    #[error("parent_id cycle in the catalog: {}", format_chain(.chain))]
    ParentCycle {
        /// The ids walked, ending with the first one seen twice.
        chain: Vec<NodeId>,
    },

    /// A file node none of whose aliases could be opened as a regular file.
    #[error("{path}: no alias of node {id} can be read ({})", format_skipped(.skipped))]
    NoUsableAlias {
        /// The file node.
        id: NodeId,
        /// Its path in the catalog (or `#id` when it cannot be named).
        path: String,
        /// Every alias tried, and why it was skipped.
        skipped: Vec<SkippedAlias>,
    },

    /// A write to a catalog file this process may not write (permissions, read-only mount).
    #[error("catalog {} cannot be written ({reason}); open it read-only instead", path.display())]
    CatalogReadOnly {
        /// The catalog file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },

    /// A catalog in WAL mode, in a directory this process may not write: SQLite must
    /// create the catalog's shared-memory file (`-shm`) beside it before it can read it.
    #[error(
        "catalog {} cannot be opened by this user: it is in WAL mode, and SQLite must create {}-shm beside it, in {}, which this user may not write; let this user write that directory, or move the catalog to one they may write",
        path.display(),
        path.display(),
        path.parent().unwrap_or(path).display()
    )]
    CatalogDirectoryReadOnly {
        /// The catalog file.
        path: PathBuf,
    },

    /// A write to a filesystem opened read-only.
    #[error("the filesystem is read-only")]
    ReadOnly,

    /// A create, mkdir or rename onto a name that exists.
    #[error("already exists: {0}")]
    Exists(String),

    /// Removing or replacing a directory that has children.
    #[error("directory not empty: {0}")]
    NotEmpty(String),

    /// A rename that cannot be done, such as a directory into itself.
    #[error("invalid rename: {0}")]
    InvalidRename(String),

    /// A move or copy between the catalog and a file the Finder rule keeps out of it
    /// (`EXDEV`, as between two filesystems).
    #[error("cannot move or copy between the catalog and Finder's files kept out of it: {0}")]
    CrossesCatalog(String),

    /// Something a file the Finder rule keeps out of the catalog cannot do (`EPERM`).
    #[error("{what} is kept out of the catalog: {refused}")]
    OutsideCatalog {
        /// The file.
        what: String,
        /// What it cannot do, and why.
        refused: &'static str,
    },

    /// Open flags that ask for something this call cannot do.
    #[error("invalid open: {0}")]
    InvalidOpen(&'static str),

    /// A write through a handle opened only for reading.
    #[error("file handle {0} is not open for writing")]
    NotWritable(FileHandle),

    /// An unknown or already released file handle.
    #[error("bad file handle {0}")]
    BadHandle(FileHandle),

    /// A `readdir` offset that does not name a position in the directory.
    #[error("stale readdir offset {offset} for directory {dir}")]
    StaleOffset {
        /// The directory being listed.
        dir: NodeId,
        /// The offset that could not be resumed from.
        offset: u64,
    },

    /// An I/O error on an alias file or the store.
    #[error("{context}: {cause}")]
    Io {
        /// What the core was doing, naming the path.
        context: String,
        /// The operating system error.
        cause: io::Error,
    },
}

impl VfsError {
    /// The errno a filesystem adapter should report for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Self::CatalogMissing(_) | Self::NotFound(_) => libc::ENOENT,
            Self::CatalogUnreadable { cause, .. } => cause.raw_os_error().unwrap_or(libc::EIO),
            Self::CatalogBusy { .. } => libc::EBUSY,
            Self::CatalogDirectoryReadOnly { .. } => libc::EACCES,
            Self::NotADirectory(_) => libc::ENOTDIR,
            Self::IsADirectory(_) => libc::EISDIR,
            Self::InvalidName { reason, .. } | Self::InvalidPath { reason, .. } => reason.errno(),
            Self::BadHandle(_) | Self::NotWritable(_) => libc::EBADF,
            Self::ReadOnly | Self::CatalogReadOnly { .. } => libc::EROFS,
            Self::Exists(_) => libc::EEXIST,
            Self::NotEmpty(_) => libc::ENOTEMPTY,
            Self::InvalidRename(_) | Self::InvalidOpen(_) => libc::EINVAL,
            Self::CrossesCatalog(_) => libc::EXDEV,
            Self::OutsideCatalog { .. } => libc::EPERM,
            Self::StaleOffset { .. } => libc::EINVAL,
            Self::ParentCycle { .. } => libc::ELOOP,
            Self::Io { cause, .. } => cause.raw_os_error().unwrap_or(libc::EIO),
            Self::NotACatalog { .. }
            | Self::Schema { .. }
            | Self::Sqlite { .. }
            | Self::Pool(_)
            | Self::InvalidNode { .. }
            | Self::NoUsableAlias { .. } => libc::EIO,
        }
    }

    /// How loudly an adapter should log this error when it answers a request with it:
    /// `WARN` for what an operator must look at (the catalog or a file cannot be read
    /// or written, a handle the adapter should not have sent), `DEBUG` for answers a
    /// client's own request explains (a missing name, a full directory, a read-only
    /// filesystem).
    pub fn level(&self) -> tracing::Level {
        match self {
            Self::CatalogMissing(_)
            | Self::CatalogUnreadable { .. }
            | Self::NotACatalog { .. }
            | Self::Schema { .. }
            | Self::CatalogBusy { .. }
            | Self::Sqlite { .. }
            | Self::Pool(_)
            | Self::InvalidNode { .. }
            | Self::ParentCycle { .. }
            | Self::NoUsableAlias { .. }
            | Self::CatalogReadOnly { .. }
            | Self::CatalogDirectoryReadOnly { .. }
            | Self::BadHandle(_) => tracing::Level::WARN,
            Self::Io { cause, .. } => match cause.raw_os_error() {
                Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EACCES | libc::EPERM) => {
                    tracing::Level::DEBUG
                }
                _ => tracing::Level::WARN,
            },
            Self::NotFound(_)
            | Self::NotADirectory(_)
            | Self::IsADirectory(_)
            | Self::InvalidName { .. }
            | Self::InvalidPath { .. }
            | Self::ReadOnly
            | Self::Exists(_)
            | Self::NotEmpty(_)
            | Self::InvalidRename(_)
            | Self::CrossesCatalog(_)
            | Self::OutsideCatalog { .. }
            | Self::InvalidOpen(_)
            | Self::NotWritable(_)
            | Self::StaleOffset { .. } => tracing::Level::DEBUG,
        }
    }

    /// Logs this error at its [`level`](Self::level), as an adapter does before it
    /// answers a request with it.
    pub fn log(&self) {
        if self.level() == tracing::Level::WARN {
            tracing::warn!("{self}");
        } else {
            tracing::debug!("{self}");
        }
    }

    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>, cause: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            cause,
        }
    }
}

impl From<r2d2::Error> for VfsError {
    fn from(err: r2d2::Error) -> Self {
        Self::Pool(EngineError::new(err))
    }
}

/// An error of the catalog's database engine or its connection pool: its message and
/// source, without tying this crate's API to the engine's types.
#[derive(Debug)]
pub struct EngineError(Box<dyn std::error::Error + Send + Sync>);

impl EngineError {
    pub(crate) fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<VfsError> for io::Error {
    fn from(err: VfsError) -> Self {
        io::Error::new(io::Error::from_raw_os_error(err.errno()).kind(), err)
    }
}

fn format_chain(chain: &[NodeId]) -> String {
    let ids: Vec<String> = chain.iter().map(|id| id.to_string()).collect();
    ids.join(" -> ")
}

fn format_component(component: &str, reason: &crate::node::NameError) -> String {
    if component.is_empty() {
        "it names the root, which has no name (the root cannot be removed, moved or replaced)"
            .to_owned()
    } else {
        format!("component {component:?}: {reason}")
    }
}

fn format_skipped(skipped: &[SkippedAlias]) -> String {
    if skipped.is_empty() {
        return "the node has no aliases".to_owned();
    }
    let parts: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
    parts.join("; ")
}
