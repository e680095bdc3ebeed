//! The one error type every adapter maps to an errno.
//!
//! Each message is complete on its own (it includes its cause), so a log line or
//! a command's one-line error says everything.

use std::io;
use std::path::PathBuf;

use crate::alias::SkippedAlias;
use crate::node::NodeId;

/// Result alias used throughout the crate.
pub type Result<T, E = VfsError> = std::result::Result<T, E>;

/// Everything that can go wrong in the core, with enough context to say why.
///
/// [`VfsError::errno`] gives the errno a filesystem adapter should answer with,
/// so that FUSE and WebDAV agree on what each failure means.
#[derive(Debug, thiserror::Error)]
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
        /// The SQLite error.
        cause: rusqlite::Error,
    },

    /// No connection could be taken from the pool in time.
    #[error("no catalog connection available: {0}")]
    Pool(r2d2::Error),

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

    /// A write through a handle opened only for reading.
    #[error("file handle {0} is not open for writing")]
    NotWritable(u64),

    /// An unknown or already released file handle.
    #[error("bad file handle {0}")]
    BadHandle(u64),

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
            Self::NotADirectory(_) => libc::ENOTDIR,
            Self::IsADirectory(_) => libc::EISDIR,
            Self::InvalidName { reason, .. } | Self::InvalidPath { reason, .. } => reason.errno(),
            Self::BadHandle(_) | Self::NotWritable(_) => libc::EBADF,
            Self::ReadOnly | Self::CatalogReadOnly { .. } => libc::EROFS,
            Self::Exists(_) => libc::EEXIST,
            Self::NotEmpty(_) => libc::ENOTEMPTY,
            Self::InvalidRename(_) => libc::EINVAL,
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
        Self::Pool(err)
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
