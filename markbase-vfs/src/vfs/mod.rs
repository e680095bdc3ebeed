//! The front: [`Vfs`], the filesystem over one catalog, and its calls, a module for
//! each kind (this one holds the metadata calls). Only these modules see `Vfs`; the
//! parts they use (catalog, caches, handles, store, aliases, Finder files, times,
//! read-ahead) live beside this module and never import it.

pub mod check;
mod copy;
mod file;
mod files;
mod finder;
pub mod namespace;
mod node_io;
pub mod open;
pub mod passthrough;
pub mod properties;
pub mod readdir;
pub mod upload;
pub mod write;

pub use file::VfsFile;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::alias::FileStat;
use crate::cache::{CacheSizes, Caches};
use crate::catalog::properties::PropertyFile;
use crate::catalog::writer::CatalogWriter;
use crate::catalog::{Catalog, ConnectOptions, InvalidRow};
use crate::config::VfsConfig;
use crate::cursors::Cursors;
use crate::error::{Result, VfsError};
use crate::finder::FinderArea;
use crate::handles::HandleTable;
use crate::node::Node;
use crate::node::{Content, FileAttr, NodeId, NodeKind, validate_name};
use crate::node_files::NodeFiles;
use crate::primary::PrimaryConnection;
use crate::reach::Reach;
use crate::recorder::{Recorder, drop_caches};
use crate::store::Store;
use crate::times::Times;

/// The deepest a node may sit below the root; deeper parent chains are taken as cycles.
const MAX_DEPTH: usize = 4096;

/// Distinct warnings remembered so that each is logged once.
const WARNED_CAPACITY: usize = 65_536;

/// A filesystem view of one catalog: `Send + Sync`, shared behind an `Arc` by adapters.
///
/// Inode numbers are node ids; the root is [`NodeId::ROOT`]. Every call first
/// notices commits made to the catalog by other processes, so caches never
/// serve a node the catalog no longer has.
pub struct Vfs {
    pub(crate) catalog: Catalog,
    pub(crate) primary: Arc<PrimaryConnection>,
    pub(crate) store: Store,
    pub(crate) caches: Arc<Caches>,
    pub(crate) handles: HandleTable,
    /// The files the by-node calls keep open between calls.
    pub(crate) node_files: NodeFiles,
    pub(crate) cursors: Cursors,
    pub(crate) config: VfsConfig,
    pub(crate) properties: PropertyFile,
    pub(crate) times: Arc<Times>,
    pub(crate) reach: Reach,
    /// Records written files' sizes and mtimes (shared with `node_files`).
    pub(crate) recorder: Recorder,
    pub(crate) finder: FinderArea,
    /// Nodes written by handles passed through to the kernel.
    pub(crate) unseen_writers: passthrough::UnseenWriters,
    warned: Mutex<HashSet<String>>,
}

/// Space and node counts, as `statfs` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatFs {
    /// Block size in bytes.
    pub block_size: u64,
    /// Blocks in the filesystem that holds the catalog.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Nodes in the catalog (an upper bound: the highest id).
    pub files: u64,
    /// Free inodes of the filesystem that holds the catalog.
    pub files_free: u64,
    /// Longest name, in bytes.
    pub name_max: u64,
}

impl Vfs {
    /// Opens the catalog named by `config`, checking its schema.
    ///
    /// Fails with an error naming the file and what is wrong with it: missing,
    /// unreadable, not SQLite, damaged, locked, a newer schema version, a
    /// missing table, column or root row. Reads no node but the root.
    pub fn open(config: VfsConfig) -> Result<Self> {
        let options = ConnectOptions {
            busy_timeout: config.busy_timeout,
        };
        let catalog = Catalog::open(&config.catalog, config.pool_size, options)?;
        let writer = CatalogWriter::from_connection(catalog.connect()?, catalog.path());
        let primary = Arc::new(PrimaryConnection::new(
            writer,
            config.change_check_interval,
        )?);
        let store = Store::new(config.store.as_deref(), catalog.base_dir());
        let properties = PropertyFile::new(
            store.dir(),
            catalog.path(),
            config.read_only,
            config.busy_timeout,
        );
        let finder = FinderArea::new(store.dir());
        let times = Arc::new(Times::new(config.tracked_times));
        let reach = Reach::new(config.attr_ttl);
        let caches = Arc::new(Caches::new(CacheSizes {
            nodes: config.node_cache,
            lookups: config.lookup_cache,
            open_files: config.open_file_cache,
        }));
        let recorder = Recorder {
            primary: Arc::clone(&primary),
            caches: Arc::clone(&caches),
            times: Arc::clone(&times),
        };
        let node_files = NodeFiles::new(
            config.node_file_cache,
            config.node_file_idle,
            recorder.clone(),
        );
        tracing::debug!(catalog = %catalog.path().display(), "catalog opened");
        Ok(Self {
            catalog,
            primary,
            store,
            caches,
            handles: HandleTable::new(),
            node_files,
            cursors: Cursors::new(),
            config,
            properties,
            times,
            reach,
            recorder,
            finder,
            unseen_writers: passthrough::UnseenWriters::default(),
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// The catalog file (canonical path).
    pub fn catalog_path(&self) -> &Path {
        self.catalog.path()
    }

    /// A number that names this catalog: the same after a restart while the catalog
    /// is the same file at the same path, another for any other catalog (or this one
    /// moved, or replaced by a copy). NFS file handles carry it, so that a handle
    /// outlives a restart and one of another catalog is refused.
    pub fn catalog_id(&self) -> u64 {
        self.catalog.id()
    }

    /// The store directory, where files created through the filesystem keep their
    /// bytes (it may not exist yet: it is made with its first file).
    pub fn store_dir(&self) -> &Path {
        self.store.dir()
    }

    /// How many nodes the catalog holds, the root included.
    pub fn node_count(&self) -> Result<u64> {
        self.catalog.node_count()
    }

    /// The configuration this filesystem was opened with.
    pub fn config(&self) -> &VfsConfig {
        &self.config
    }

    /// Drops the caches if another process committed to the catalog.
    pub(crate) fn refresh(&self) {
        self.primary.check(|| self.drop_caches());
    }

    /// Drops every cache: the catalog changed underneath.
    pub(crate) fn drop_caches(&self) {
        drop_caches(&self.caches, &self.times);
    }

    /// Fails with `EROFS` when the filesystem was opened read-only.
    pub(crate) fn ensure_writable(&self) -> Result<()> {
        if self.config.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// The node with id `id`.
    pub fn node(&self, id: NodeId) -> Result<Arc<Node>> {
        self.refresh();
        self.node_fresh(id)
    }

    /// [`Vfs::node`] without the change check, for calls that made it already.
    pub(crate) fn node_fresh(&self, id: NodeId) -> Result<Arc<Node>> {
        if let Some(node) = self.caches.node(id) {
            return Ok(node);
        }
        let generation = self.caches.generation();
        match self.catalog.node(id)? {
            Some(Ok(node)) => {
                let node = Arc::new(node);
                self.caches.insert_node(generation, Arc::clone(&node));
                Ok(node)
            }
            Some(Err(invalid)) => Err(self.invalid(invalid)),
            None => Err(VfsError::NotFound(format!("node {id}"))),
        }
    }

    /// Looks up `name` in the directory `parent`: a catalog node, or a file the Finder
    /// rule keeps out of the catalog ([`FinderFiles`](crate::finder::FinderFiles)).
    pub fn lookup(&self, parent: NodeId, name: &str) -> Result<FileAttr> {
        self.refresh();
        match self.child(parent, name) {
            Ok(node) => Ok(self.attr_of(&node)),
            Err(missing @ VfsError::NotFound(_)) => self.lookup_outside(parent, name, missing),
            Err(err) => Err(err),
        }
    }

    /// The catalog child `name` of `parent`.
    pub(crate) fn child(&self, parent: NodeId, name: &str) -> Result<Arc<Node>> {
        validate_name(name).map_err(|reason| VfsError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        let missing = || VfsError::NotFound(format!("{name:?} in directory {parent}"));
        match self.caches.lookup(parent, name) {
            Some(Some(id)) => {
                if let Some(node) = self.caches.node(id) {
                    return Ok(node);
                }
            }
            Some(None) => return Err(missing()),
            None => {}
        }
        let generation = self.caches.generation();
        let dir = self.node_fresh(parent)?;
        if dir.kind() != NodeKind::Dir {
            return Err(VfsError::NotADirectory(format!("node {parent}")));
        }
        let rows = self.catalog.children_named(parent, name)?;
        // Like readdir: invalid rows are passed over, and of several valid siblings
        // with one name the lowest id is served.
        let mut valid = rows.iter().filter_map(|row| row.as_ref().ok());
        let chosen = valid.next().cloned();
        if let Some(served) = &chosen {
            for hidden in valid {
                self.warn_duplicate(parent, name, served.id, hidden.id);
            }
        }
        let first = match (chosen, rows.into_iter().next()) {
            (Some(node), _) => Ok(node),
            (None, Some(Err(invalid))) => Err(invalid),
            (None, _) => {
                self.caches.insert_lookup(generation, parent, name, None);
                return Err(missing());
            }
        };
        let node = Arc::new(first.map_err(|invalid| self.invalid(invalid))?);
        self.caches.insert_node(generation, Arc::clone(&node));
        self.caches
            .insert_lookup(generation, parent, name, Some(node.id));
        Ok(node)
    }

    /// The attributes of node `ino`.
    pub fn getattr(&self, ino: NodeId) -> Result<FileAttr> {
        if !ino.in_catalog() {
            return self.getattr_outside(ino);
        }
        let node = self.node(ino)?;
        Ok(self.attr_of(&node))
    }

    /// The attributes of `node`. A file that an alias serves has that file's size,
    /// times, owner and permission bits; one that none serves has the catalog's size and
    /// mtime (opening it then fails, and says why), and the defaults directories have.
    pub(crate) fn attr_of(&self, node: &Node) -> FileAttr {
        match &node.content {
            Content::File(_) => match self.current_stat(node) {
                Some(stat) => self.served_attr(node.id, &stat, 1),
                None => self.unserved_attr(node.id, NodeKind::File, node.recorded_size, {
                    node.mtime_ns
                }),
            },
            Content::Dir => {
                let mtime_ns = node.mtime_ns.max(self.outside_change_of(node.id));
                self.unserved_attr(node.id, NodeKind::Dir, 0, mtime_ns)
            }
        }
    }

    /// The attributes of file `id`, served by a file with `stat` and `nlink` links.
    pub(crate) fn served_attr(&self, id: NodeId, stat: &FileStat, nlink: u32) -> FileAttr {
        FileAttr {
            id,
            kind: NodeKind::File,
            size: stat.size,
            blocks: stat.blocks,
            mtime_ns: stat.mtime_ns,
            ctime_ns: self.ctime(id, stat.ctime_ns.max(stat.mtime_ns)),
            perm: self.without_write_bits_if_read_only(stat.perm),
            owner: stat.owner,
            nlink,
        }
    }

    /// The attributes of a node no file serves (a directory, or a file whose aliases
    /// cannot be read): owned by [`VfsConfig::owner`], `0o755` or `0o644`.
    fn unserved_attr(&self, id: NodeId, kind: NodeKind, size: u64, mtime_ns: i64) -> FileAttr {
        let (blocks, perm) = match kind {
            NodeKind::Dir => (0, 0o755),
            NodeKind::File => (size.div_ceil(512), 0o644),
        };
        FileAttr {
            id,
            kind,
            size,
            blocks,
            mtime_ns,
            ctime_ns: self.ctime(id, mtime_ns),
            perm: self.without_write_bits_if_read_only(perm),
            owner: self.config.owner,
            nlink: 1,
        }
    }

    /// A node's ctime: `changed_ns`, or when it was renamed if that is later.
    fn ctime(&self, id: NodeId, changed_ns: i64) -> i64 {
        self.times
            .status_changed_at(id)
            .map_or(changed_ns, |renamed| renamed.max(changed_ns))
    }

    /// `perm` without its write bits when the filesystem is read-only.
    fn without_write_bits_if_read_only(&self, perm: u16) -> u16 {
        if self.config.read_only {
            perm & !0o222
        } else {
            perm
        }
    }

    /// When another program was seen changing the entries of directory `dir` (0: never).
    fn outside_change_of(&self, dir: NodeId) -> i64 {
        self.times.outside_change_of(dir, || {
            self.catalog
                .entries_fingerprint(dir)
                .inspect_err(|err| tracing::debug!("directory {dir} not fingerprinted: {err}"))
                .ok()
        })
    }

    /// Follows an absolute path (`/a/b/c`) from the root, for path-based adapters.
    ///
    /// Empty and `.` components are ignored; `..` is refused, so that a path can
    /// never climb out of the catalog.
    pub fn lookup_path(&self, path: &str) -> Result<FileAttr> {
        match self.walk(path) {
            Ok(node) => Ok(self.attr_of(&node)),
            Err(missing @ VfsError::NotFound(_)) => self.lookup_path_outside(path, missing),
            Err(err) => Err(err),
        }
    }

    /// A path the catalog does not hold (`missing` says so), if it names a file the
    /// Finder rule answers for.
    fn lookup_path_outside(&self, path: &str, missing: VfsError) -> Result<FileAttr> {
        let trimmed = path.trim_end_matches('/');
        let last = trimmed.rsplit_once('/').map_or(trimmed, |(_, name)| name);
        if !self.finder_covers(last) {
            return Err(missing);
        }
        let (parent, name) = self.lookup_parent(path)?;
        self.lookup_outside(parent.id, name, missing)
    }

    /// The node at an absolute path, found as [`Vfs::lookup_path`] finds it but
    /// without resolving a file's alias: for what needs only its id (properties).
    pub fn lookup_path_node(&self, path: &str) -> Result<NodeId> {
        match self.walk(path) {
            Ok(node) => Ok(node.id),
            Err(missing @ VfsError::NotFound(_)) => {
                self.lookup_path_outside(path, missing).map(|attr| attr.id)
            }
            Err(err) => Err(err),
        }
    }

    fn walk(&self, path: &str) -> Result<Arc<Node>> {
        self.refresh();
        let mut node = self.node_fresh(NodeId::ROOT)?;
        let mut walked = String::new();
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if node.kind() != NodeKind::Dir {
                return Err(VfsError::NotADirectory(display_path(&walked)));
            }
            walked.push('/');
            walked.push_str(component);
            node = self.child(node.id, component).map_err(|err| match err {
                VfsError::NotFound(_) => VfsError::NotFound(walked.clone()),
                VfsError::InvalidName { name, reason } => VfsError::InvalidPath {
                    path: path.to_owned(),
                    component: name,
                    reason,
                },
                other => other,
            })?;
        }
        Ok(node)
    }

    /// Splits an absolute path into its parent directory, looked up as
    /// [`Vfs::lookup_path`] does, and its last name, for path-based adapters that
    /// create, remove or rename `path`.
    ///
    /// The last name must be a valid node name, so the root (which has no parent and
    /// no name) gets `InvalidPath` (EINVAL): no request can remove or replace it.
    pub fn lookup_parent<'p>(&self, path: &'p str) -> Result<(FileAttr, &'p str)> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        validate_name(name).map_err(|reason| VfsError::InvalidPath {
            path: path.to_owned(),
            component: name.to_owned(),
            reason,
        })?;
        let parent = self.lookup_path(dir).map_err(|err| match err {
            VfsError::InvalidPath {
                component, reason, ..
            } => VfsError::InvalidPath {
                path: path.to_owned(),
                component,
                reason,
            },
            other => other,
        })?;
        if parent.kind != NodeKind::Dir {
            return Err(VfsError::NotADirectory(display_path(dir)));
        }
        Ok((parent, name))
    }

    /// The absolute path of node `ino`, walking its parents up to the root.
    ///
    /// A node the root does not reach (its parent chain loops, or leads to a missing
    /// row or to a file) has no path: the error names the row where the chain breaks,
    /// and a warning says so once.
    pub fn path_of(&self, ino: NodeId) -> Result<String> {
        self.refresh();
        let mut names = Vec::new();
        let mut chain = vec![ino];
        let mut node = self.node_fresh(ino)?;
        while let Some(parent) = node.parent {
            if chain.contains(&parent) || chain.len() > MAX_DEPTH {
                chain.push(parent);
                return Err(self.unreachable(ino, VfsError::ParentCycle { chain }));
            }
            chain.push(parent);
            let broken = match self.node_fresh(parent) {
                Ok(next) if next.kind() == NodeKind::Dir => {
                    names.push(std::mem::replace(&mut node, next));
                    continue;
                }
                Ok(_) => format!("its parent_id {parent} names a node that is not a directory"),
                Err(VfsError::NotFound(_)) => format!("its parent_id {parent} names no node"),
                Err(other) => return Err(other),
            };
            let err = VfsError::InvalidNode {
                id: node.id.sql(),
                reason: broken,
            };
            return Err(self.unreachable(ino, err));
        }
        let mut path = String::new();
        for node in names.iter().rev() {
            path.push('/');
            path.push_str(&node.name);
        }
        Ok(display_path(&path))
    }

    /// Space of the filesystem that holds the store (where new files go; the catalog's
    /// directory until the store exists), and the catalog's node count.
    pub fn statfs(&self) -> Result<StatFs> {
        let dir = if self.store.dir().is_dir() {
            self.store.dir()
        } else {
            self.catalog.base_dir()
        };
        let vfs = rustix::fs::statvfs(dir)
            .map_err(|errno| VfsError::io(format!("statfs of {}", dir.display()), errno.into()))?;
        Ok(StatFs {
            block_size: vfs.f_frsize,
            blocks: vfs.f_blocks,
            blocks_free: vfs.f_bfree,
            blocks_available: vfs.f_bavail,
            files: self.catalog.max_id()?,
            files_free: vfs.f_ffree,
            name_max: crate::node::NAME_MAX as u64,
        })
    }

    /// The error that names an invalid row. Errors are returned, not logged: the
    /// caller reports them. Only what the core passes over is logged here.
    pub(crate) fn invalid(&self, invalid: InvalidRow) -> VfsError {
        VfsError::InvalidNode {
            id: invalid.id,
            reason: invalid.reason,
        }
    }

    /// Logs (once) that an invalid row is left out of a listing.
    pub(crate) fn skip_invalid(&self, invalid: &InvalidRow) {
        self.warn_once(format!(
            "skipping catalog node {}: {}",
            invalid.id, invalid.reason
        ));
    }

    /// Logs (once) that `dir` has another child named `name` besides the one served:
    /// lookup and readdir both serve the lowest valid id, and hide the others.
    pub(crate) fn warn_duplicate(&self, dir: NodeId, name: &str, served: NodeId, hidden: NodeId) {
        self.warn_once(format!(
            "directory {dir} has two children named {name:?}: serving node {served}, \
             hiding node {hidden}"
        ));
    }

    /// Logs (once) that node `ino` is not reachable from the root, for the reason
    /// `err` gives, and returns `err`.
    fn unreachable(&self, ino: NodeId, err: VfsError) -> VfsError {
        self.warn_once(format!(
            "node {ino} is not reachable from the root: {err}; a check (`markbase fsck`) \
             lists every such row"
        ));
        err
    }

    /// Logs `message` as a warning unless it was logged before.
    pub(crate) fn warn_once(&self, message: String) {
        let mut warned = self.warned.lock();
        if warned.len() < WARNED_CAPACITY && warned.insert(message.clone()) {
            tracing::warn!("{message}");
        }
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}
