//! Handing an open file's reads and writes to the kernel, which then does them on the
//! file that serves it without asking the adapter (Linux FUSE passthrough), and what
//! the core does in turn: it no longer sees those writes, so it stops trusting what it
//! cached of the file and records its size and mtime at every flush, fsync and close.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::alias::Backing;
use crate::error::Result;
use crate::handles::FileHandle;
use crate::node::NodeId;
use crate::vfs::Vfs;

/// The file serving one open handle, for the kernel to read and write itself.
#[derive(Debug)]
pub struct PassedThrough {
    backing: Arc<Backing>,
}

impl PassedThrough {
    /// The open file; an adapter registers it with the kernel.
    pub fn file(&self) -> &File {
        &self.backing.file
    }

    /// Which file it is (device, inode): handles of one node share the kernel's
    /// backing only while they are served by the same file.
    pub fn identity(&self) -> (u64, u64) {
        (self.backing.stat.dev, self.backing.stat.ino)
    }
}

/// The nodes with a writable handle whose writes the core does not see, each with
/// how many such handles are open.
#[derive(Debug, Default)]
pub(crate) struct UnseenWriters(Mutex<HashMap<NodeId, usize>>);

impl UnseenWriters {
    /// Whether `node` may be written behind the core's back now.
    pub fn has(&self, node: NodeId) -> bool {
        self.0.lock().contains_key(&node)
    }

    fn add(&self, node: NodeId) {
        *self.0.lock().entry(node).or_default() += 1;
    }

    /// One such handle of `node` was closed.
    pub fn remove(&self, node: NodeId) {
        let mut writers = self.0.lock();
        if let Some(count) = writers.get_mut(&node) {
            *count -= 1;
            if *count == 0 {
                writers.remove(&node);
            }
        }
    }
}

impl Vfs {
    /// The file behind `handle`, for an adapter that lets the kernel do the handle's
    /// reads and writes on it directly. From then on, if the handle writes, the core
    /// takes the file's stat from the file itself rather than from its caches, and
    /// records its size and mtime in the catalog at each flush, fsync and release,
    /// whether or not it saw a write.
    pub fn pass_through(&self, handle: FileHandle) -> Result<PassedThrough> {
        let open = self.handle(handle)?;
        if let Some(write) = &open.write
            && !write.unseen.swap(true, Ordering::AcqRel)
        {
            self.unseen_writers.add(open.node);
            self.caches.forget_attr(open.node);
        }
        Ok(PassedThrough {
            backing: Arc::clone(&open.backing),
        })
    }
}
