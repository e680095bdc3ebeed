//! The files that the by-node calls keep open between calls: one per node, at most
//! [`VfsConfig::node_file_cache`], each closed once unused for
//! [`VfsConfig::node_file_idle`].
//!
//! A protocol without open and close (NFSv3: every READ and WRITE names a file and an
//! offset) would otherwise open the alias file on every call, and lose with it the
//! kernel's and the core's read-ahead: rclone's NFS server, which did that, read at
//! less than 2 MB/s. A cached file keeps both, and its reader's sequential state.
//!
//! A file leaves the cache in one of two ways:
//!
//! - **closed** (unused for too long, pushed out by a newer one, or the `Vfs` dropped):
//!   a writer's size and mtime are recorded, as `release` records them;
//! - **discarded** (its node was removed, or its row or alias path no longer leads to
//!   it): nothing is recorded, for the row no longer describes this file.
//!
//! Closing writes to the catalog, so it is never done under the cache's lock; idle
//! files are closed by a thread of the cache's own, started with its first file.
//! Which file serves a node is decided by the calls (`node_io.rs`).
//!
//! [`VfsConfig::node_file_cache`]: crate::VfsConfig::node_file_cache
//! [`VfsConfig::node_file_idle`]: crate::VfsConfig::node_file_idle

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::{Condvar, Mutex};

use crate::alias::AliasList;
use crate::handles::OpenFile;
use crate::node::NodeId;
use crate::recorder::Recorder;

/// The closer never looks for idle files more often than this.
const MIN_CLOSER_PERIOD: Duration = Duration::from_millis(10);

/// What the by-node file cache holds, for diagnosis ([`Vfs::node_file_stats`]).
///
/// [`Vfs::node_file_stats`]: crate::Vfs::node_file_stats
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeFileStats {
    /// Files open in the cache now.
    pub open: usize,
    /// Files the cache has opened since the `Vfs` was: each is used by every call on
    /// its node until it is closed or discarded.
    pub opened: u64,
}

/// What a by-node call does with a node's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads: any file serving the node will do.
    Read,
    /// Writes: only a file opened for writing.
    Write,
}

/// A file kept open for the by-node calls.
#[derive(Debug)]
pub(crate) struct NodeFile {
    /// The open file: node, alias, write state, read-ahead.
    pub open: OpenFile,
    /// The aliases of the row it was opened for.
    aliases: AliasList,
    /// When it was opened: the origin of `verified_ns`.
    opened: Instant,
    /// When its alias path was last seen to lead to it, in ns after `opened`.
    verified_ns: AtomicU64,
    /// Held by each write: see [`NodeFile::write_turn`].
    writing: Mutex<()>,
}

impl NodeFile {
    /// `open`, which the resolution of a row with `aliases` just chose (its alias path
    /// seen to lead to it now).
    pub fn new(open: OpenFile, aliases: AliasList) -> Self {
        Self {
            open,
            aliases,
            opened: Instant::now(),
            verified_ns: AtomicU64::new(0),
            writing: Mutex::new(()),
        }
    }

    /// The right to write the file now, one write at a time. The kernel runs the writes
    /// of one file one after the other anyway (on its inode lock), but a writer
    /// waiting there spins on the CPU, and waiting here sleeps: with 8 NFS WRITEs in
    /// flight, the spinning took a quarter of the server's CPU on 2 cores.
    pub fn write_turn(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.writing.lock()
    }

    /// Whether it was opened for a row with these aliases.
    pub fn opened_for(&self, aliases: &AliasList) -> bool {
        self.aliases == *aliases
    }

    /// Whether it may serve `access`.
    pub fn allows(&self, access: Access) -> bool {
        access == Access::Read || self.open.write.is_some()
    }

    /// Whether its alias path was seen to lead to it less than `ttl` ago.
    pub fn verified_within(&self, ttl: Duration) -> bool {
        let verified = Duration::from_nanos(self.verified_ns.load(Ordering::Acquire));
        self.opened.elapsed().saturating_sub(verified) < ttl
    }

    /// Notes that its alias path was just seen to lead to it.
    pub fn verified(&self) {
        let now = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.verified_ns.fetch_max(now, Ordering::AcqRel);
    }
}

/// The cache of node files, and the thread that closes idle ones.
pub(crate) struct NodeFiles {
    shared: Arc<Shared>,
    /// The closer thread, started with the first file (`None`: it could not be).
    closer: OnceLock<Option<JoinHandle<()>>>,
}

/// What the cache and its closer thread share.
struct Shared {
    files: Mutex<LruCache<NodeId, Entry>>,
    /// How long a file may go unused before it is closed.
    idle: Duration,
    recorder: Recorder,
    opened: AtomicU64,
    /// Set when the cache is dropped: the closer thread ends.
    stopping: Mutex<bool>,
    wake: Condvar,
}

/// A cached file and when a call last used it.
struct Entry {
    file: Arc<NodeFile>,
    used: Instant,
}

impl NodeFiles {
    /// An empty cache of at most `capacity` files, each closed after `idle` unused,
    /// writers recorded by `recorder`.
    pub fn new(capacity: NonZeroUsize, idle: Duration, recorder: Recorder) -> Self {
        Self {
            shared: Arc::new(Shared {
                files: Mutex::new(LruCache::new(capacity)),
                idle,
                recorder,
                opened: AtomicU64::new(0),
                stopping: Mutex::new(false),
                wake: Condvar::new(),
            }),
            closer: OnceLock::new(),
        }
    }

    /// The cached file of `node`, marked as used now.
    pub fn get(&self, node: NodeId) -> Option<Arc<NodeFile>> {
        let mut files = self.shared.files.lock();
        let entry = files.get_mut(&node)?;
        entry.used = Instant::now();
        Some(Arc::clone(&entry.file))
    }

    /// Caches `file` for its node, unless another call cached one meanwhile that `keep`
    /// accepts, which is returned instead. Closes the file it replaces, or the least
    /// recently used one when the cache is full.
    pub fn insert(&self, file: NodeFile, keep: impl FnOnce(&NodeFile) -> bool) -> Arc<NodeFile> {
        self.start_closer();
        let node = file.open.node;
        let file = Arc::new(file);
        let pushed_out = {
            let mut files = self.shared.files.lock();
            if let Some(existing) = files.get_mut(&node)
                && keep(&existing.file)
            {
                existing.used = Instant::now();
                return Arc::clone(&existing.file);
            }
            self.shared.opened.fetch_add(1, Ordering::Relaxed);
            let entry = Entry {
                file: Arc::clone(&file),
                used: Instant::now(),
            };
            files.push(node, entry)
        };
        if let Some((_, entry)) = pushed_out {
            self.shared.close(&entry.file);
        }
        file
    }

    /// Drops `file` from the cache, if it is still there, without recording anything:
    /// its node's row or alias path no longer leads to it.
    pub fn discard(&self, file: &Arc<NodeFile>) {
        let node = file.open.node;
        let mut files = self.shared.files.lock();
        if files
            .peek(&node)
            .is_some_and(|entry| Arc::ptr_eq(&entry.file, file))
        {
            files.pop(&node);
        }
    }

    /// Drops the file of `node`, which the catalog no longer has, without recording
    /// anything.
    pub fn forget(&self, node: NodeId) {
        self.shared.files.lock().pop(&node);
    }

    /// How many files are open, and how many were opened.
    pub fn stats(&self) -> NodeFileStats {
        NodeFileStats {
            open: self.shared.files.lock().len(),
            opened: self.shared.opened.load(Ordering::Relaxed),
        }
    }

    fn start_closer(&self) {
        self.closer.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name("markbase-node-files".into())
                .spawn(move || shared.run_closer())
                .inspect_err(|err| {
                    tracing::warn!(
                        "no thread to close idle node files ({err}); they close when pushed \
                         out of the cache"
                    );
                })
                .ok()
        });
    }
}

/// Stops the closer thread, then closes every file left, recording writers.
impl Drop for NodeFiles {
    fn drop(&mut self) {
        *self.shared.stopping.lock() = true;
        self.shared.wake.notify_all();
        if let Some(Some(closer)) = self.closer.take()
            && closer.join().is_err()
        {
            tracing::warn!("the thread closing idle node files panicked");
        }
        let left: Vec<_> = {
            let mut files = self.shared.files.lock();
            std::iter::from_fn(|| files.pop_lru()).collect()
        };
        for (_, entry) in left {
            self.shared.close(&entry.file);
        }
    }
}

impl Shared {
    /// The closer thread: closes idle files, looking a quarter of the idle time apart,
    /// until the cache is dropped.
    fn run_closer(&self) {
        let period = (self.idle / 4).max(MIN_CLOSER_PERIOD);
        loop {
            {
                let mut stopping = self.stopping.lock();
                if !*stopping {
                    self.wake.wait_for(&mut stopping, period);
                }
                if *stopping {
                    return;
                }
            }
            self.close_idle();
        }
    }

    /// Closes every file unused for the idle time.
    fn close_idle(&self) {
        let idle = {
            let mut files = self.files.lock();
            let mut idle = Vec::new();
            // Least recently used first: each call moves its file to the front.
            while files
                .peek_lru()
                .is_some_and(|(_, oldest)| oldest.used.elapsed() >= self.idle)
            {
                idle.extend(files.pop_lru().map(|(_, entry)| entry));
            }
            idle
        };
        for entry in idle {
            self.close(&entry.file);
        }
    }

    /// Closes a file that left the cache: a writer's size and mtime are recorded (its
    /// descriptor closes when the last call using it is done).
    fn close(&self, file: &NodeFile) {
        if let Err(err) = self.recorder.record_written(&file.open, false) {
            let node = file.open.node;
            if err.level() == tracing::Level::WARN {
                tracing::warn!("closing the node file of node {node}: {err}");
            } else {
                tracing::debug!("closing the node file of node {node}: {err}");
            }
        }
    }
}
