//! In-memory caches of catalog metadata and resolved aliases.
//!
//! Every entry is tied to a generation. When the catalog changes underneath,
//! [`Caches::invalidate`] bumps the generation and empties every cache; an
//! insert that read the catalog under an older generation is dropped, so a
//! stale row can never slip back in after the invalidation.

use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use lru::LruCache;
use parking_lot::Mutex;

use crate::alias::{Backing, FileStat, SkippedAlias};
use crate::node::{Node, NodeId};

/// The result of the last alias resolution of a file node.
#[derive(Clone, Debug)]
pub(crate) enum Resolved {
    /// The alias file that serves the node, and its latest stat.
    Served {
        backing: Arc<Backing>,
        stat: FileStat,
    },
    /// No alias could be opened; every reason.
    Unreadable(Arc<[SkippedAlias]>),
}

/// A resolution, when it was made, and when it was last checked against the filesystem.
#[derive(Clone, Debug)]
pub(crate) struct CachedResolution {
    pub resolved: Resolved,
    /// When the aliases were last tried in order.
    pub resolved_at: Instant,
    /// When the serving file's stat was last read.
    pub checked: Instant,
}

struct ChildEntry {
    parent: NodeId,
    name: Box<str>,
    child: Option<NodeId>,
}

/// Cache sizes, in entries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheSizes {
    pub nodes: NonZeroUsize,
    pub lookups: NonZeroUsize,
    pub open_files: NonZeroUsize,
}

/// The node, lookup and alias caches, sharing one generation.
pub(crate) struct Caches {
    generation: AtomicU64,
    nodes: Mutex<LruCache<NodeId, Arc<Node>>>,
    /// (parent, name) -> child, keyed by a hash so that a lookup allocates nothing;
    /// the entry keeps the name to rule out collisions. `None` caches a miss.
    lookups: Mutex<LruCache<u64, ChildEntry>>,
    lookup_hasher: RandomState,
    resolutions: Mutex<LruCache<NodeId, CachedResolution>>,
    /// The latest alias stat of file nodes, sized like the node cache: a file's
    /// attributes stay cached after its open descriptor leaves `resolutions`.
    attrs: Mutex<LruCache<NodeId, CachedAttr>>,
}

/// A file node's alias stat (`None`: no alias can be read) and when it was read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedAttr {
    pub stat: Option<FileStat>,
    pub checked: Instant,
}

impl Caches {
    /// Empty caches of the given sizes.
    pub fn new(sizes: CacheSizes) -> Self {
        Self {
            generation: AtomicU64::new(0),
            nodes: Mutex::new(LruCache::new(sizes.nodes)),
            lookups: Mutex::new(LruCache::new(sizes.lookups)),
            lookup_hasher: RandomState::new(),
            resolutions: Mutex::new(LruCache::new(sizes.open_files)),
            attrs: Mutex::new(LruCache::new(sizes.nodes)),
        }
    }

    /// The current generation; read it before querying the catalog, pass it to the insert.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops everything: the catalog changed underneath.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.nodes.lock().clear();
        self.lookups.lock().clear();
        self.resolutions.lock().clear();
        self.attrs.lock().clear();
    }

    /// Drops what a write made by this `Vfs` changed: these nodes (with their alias
    /// state) and these names. The generation moves on too, so that a read of the
    /// catalog made before the write cannot put the old state back.
    pub fn forget(&self, nodes: &[NodeId], names: &[(NodeId, &str)]) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        {
            let mut cached = self.nodes.lock();
            for id in nodes {
                cached.pop(id);
            }
        }
        {
            let mut resolutions = self.resolutions.lock();
            for id in nodes {
                resolutions.pop(id);
            }
        }
        {
            let mut attrs = self.attrs.lock();
            for id in nodes {
                attrs.pop(id);
            }
        }
        let mut lookups = self.lookups.lock();
        for (parent, name) in names {
            lookups.pop(&self.lookup_key(*parent, name));
        }
    }

    /// Drops a file's cached size and mtime: its bytes just changed.
    pub fn forget_attr(&self, id: NodeId) {
        self.attrs.lock().pop(&id);
    }

    fn current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }

    /// A cached node.
    pub fn node(&self, id: NodeId) -> Option<Arc<Node>> {
        self.nodes.lock().get(&id).cloned()
    }

    /// Caches a node read under `generation`.
    pub fn insert_node(&self, generation: u64, node: Arc<Node>) {
        let mut nodes = self.nodes.lock();
        if self.current(generation) {
            nodes.put(node.id, node);
        }
    }

    fn lookup_key(&self, parent: NodeId, name: &str) -> u64 {
        self.lookup_hasher.hash_one((parent, name))
    }

    /// A cached lookup: `Some(Some(id))` a child, `Some(None)` a known miss, `None` unknown.
    pub fn lookup(&self, parent: NodeId, name: &str) -> Option<Option<NodeId>> {
        let key = self.lookup_key(parent, name);
        let mut lookups = self.lookups.lock();
        let entry = lookups.get(&key)?;
        (entry.parent == parent && &*entry.name == name).then_some(entry.child)
    }

    /// Caches a lookup of `name` in `parent` read under `generation`.
    pub fn insert_lookup(
        &self,
        generation: u64,
        parent: NodeId,
        name: &str,
        child: Option<NodeId>,
    ) {
        let key = self.lookup_key(parent, name);
        let entry = ChildEntry {
            parent,
            name: name.into(),
            child,
        };
        let mut lookups = self.lookups.lock();
        if self.current(generation) {
            lookups.put(key, entry);
        }
    }

    /// The cached alias resolution of a file node.
    pub fn resolution(&self, id: NodeId) -> Option<CachedResolution> {
        self.resolutions.lock().get(&id).cloned()
    }

    /// Caches an alias resolution made under `generation`, and the stat it read.
    pub fn insert_resolution(&self, generation: u64, id: NodeId, resolution: CachedResolution) {
        let attr = CachedAttr {
            stat: match &resolution.resolved {
                Resolved::Served { stat, .. } => Some(*stat),
                Resolved::Unreadable(_) => None,
            },
            checked: resolution.checked,
        };
        {
            let mut resolutions = self.resolutions.lock();
            if self.current(generation) {
                resolutions.put(id, resolution);
            }
        }
        let mut attrs = self.attrs.lock();
        if self.current(generation) {
            attrs.put(id, attr);
        }
    }

    /// The cached alias stat of a file node.
    pub fn attr(&self, id: NodeId) -> Option<CachedAttr> {
        self.attrs.lock().get(&id).copied()
    }
}
