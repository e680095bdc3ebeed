//! [`Cursors`]: the names of the entries where directory listings stopped, so that a
//! listing resumed at an offset continues after that name whatever changed meanwhile.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::node::NodeId;

/// Resume positions remembered at once.
const CURSORS: usize = 4096;

/// Names of the entries where listings stopped, keyed by (directory, offset).
pub(crate) struct Cursors(Mutex<LruCache<(NodeId, u64), Arc<str>>>);

impl Cursors {
    /// None remembered yet.
    pub fn new() -> Self {
        Self(Mutex::new(LruCache::new(
            NonZeroUsize::new(CURSORS).expect("non-zero"),
        )))
    }

    /// Remembers that a listing of `dir` stopped at `offset`, an entry named `name`.
    pub fn remember(&self, dir: NodeId, offset: u64, name: Arc<str>) {
        self.0.lock().put((dir, offset), name);
    }

    /// The name of the entry of `dir` at `offset`, if a listing stopped there.
    pub fn recall(&self, dir: NodeId, offset: u64) -> Option<Arc<str>> {
        self.0.lock().get(&(dir, offset)).cloned()
    }
}
