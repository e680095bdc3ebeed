//! How a [`Vfs`](crate::Vfs) is opened: the catalog and the tuning knobs.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::node::Owner;

/// Options for [`Vfs::open`](crate::Vfs::open). Start from [`VfsConfig::new`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VfsConfig {
    /// The catalog file, `warren.sqlite`.
    pub catalog: PathBuf,
    /// Connections in the SQLite pool (default 4).
    pub pool_size: u32,
    /// How long a catalog query waits for another process's lock (default 5 s).
    pub busy_timeout: Duration,
    /// Nodes kept in memory (default 100,000).
    pub node_cache: NonZeroUsize,
    /// Name lookups kept in memory, misses included (default 100,000).
    pub lookup_cache: NonZeroUsize,
    /// Directories whose entries are fingerprinted, to notice changes other programs
    /// make to them, and renamed nodes whose ctime is remembered (default 100,000 of
    /// each; past that, a directory may look changed when it is not).
    pub tracked_times: NonZeroUsize,
    /// Resolved alias files kept open for reuse (default 256).
    pub open_file_cache: NonZeroUsize,
    /// How long a file's size and mtime, read from its alias, are trusted (default 1 s).
    /// A file kept open (by a node file, see [`VfsConfig::node_file_cache`]) is checked
    /// against its alias path as often.
    pub attr_ttl: Duration,
    /// Files kept open between the by-node calls ([`Vfs::read_node`](crate::Vfs::read_node)
    /// and the rest), one per node, least recently used closed first (default 64).
    pub node_file_cache: NonZeroUsize,
    /// How long a file kept open for the by-node calls may go unused before it is
    /// closed, recording a written file's size and mtime (default 10 s).
    pub node_file_idle: Duration,
    /// Ask the kernel to read ahead of readers that read in sequence, 16 MiB ahead in
    /// 4 MiB steps (default `true`): handles and by-node calls alike.
    pub read_ahead: bool,
    /// How often, at most, the catalog is asked whether another process changed it
    /// (default 1 ms; zero asks on every call).
    pub change_check_interval: Duration,
    /// Where files created through the filesystem keep their bytes
    /// (default: `warren-store/` beside the catalog).
    pub store: Option<PathBuf>,
    /// Refuse every write with `EROFS`, touching nothing (default `false`).
    pub read_only: bool,
    /// Where Finder's `._*` and `.DS_Store` files go, whichever call makes them
    /// (default: aside, out of the catalog).
    pub finder_files: FinderFiles,
    /// The owner of directories and of files no alias serves (a served file has its
    /// alias file's owner). Default: the user running this process.
    pub owner: Owner,
}

impl VfsConfig {
    /// The defaults for the catalog at `catalog`.
    pub fn new(catalog: impl Into<PathBuf>) -> Self {
        Self {
            catalog: catalog.into(),
            pool_size: 4,
            busy_timeout: Duration::from_secs(5),
            node_cache: NonZeroUsize::new(100_000).expect("non-zero"),
            lookup_cache: NonZeroUsize::new(100_000).expect("non-zero"),
            tracked_times: NonZeroUsize::new(100_000).expect("non-zero"),
            open_file_cache: NonZeroUsize::new(256).expect("non-zero"),
            attr_ttl: Duration::from_secs(1),
            node_file_cache: NonZeroUsize::new(64).expect("non-zero"),
            node_file_idle: Duration::from_secs(10),
            read_ahead: true,
            change_check_interval: Duration::from_millis(1),
            store: None,
            read_only: false,
            finder_files: FinderFiles::default(),
            owner: Owner::current(),
        }
    }
}

/// Where Finder's metadata files (`._*` and `.DS_Store`) go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinderFiles {
    /// Beside the catalog, in the store's Finder area (the default).
    #[default]
    Aside,
    /// Into the catalog, like any other file.
    InCatalog,
}
