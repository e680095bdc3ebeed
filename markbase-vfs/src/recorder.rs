//! [`Recorder`]: how written files' sizes and mtimes reach the catalog, shared by the
//! `Vfs` and the thread that closes idle node files (which has no `Vfs` to call).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::alias::FileStat;
use crate::cache::Caches;
use crate::error::{Result, VfsError};
use crate::handles::OpenFile;
use crate::primary::PrimaryConnection;
use crate::times::Times;

/// Records in the catalog the size and mtime that writes gave a file: for `release`,
/// `flush` and `fsync`, and for the thread that closes idle node files, which has no
/// `Vfs` to call.
#[derive(Clone)]
pub(crate) struct Recorder {
    pub primary: Arc<PrimaryConnection>,
    pub caches: Arc<Caches>,
    pub times: Arc<Times>,
}

impl Recorder {
    /// Records a writer's size and mtime if writes changed them since they were last
    /// recorded (synced to disk with `durable`).
    pub fn record_written(&self, open: &OpenFile, durable: bool) -> Result<()> {
        // A file kept out of the catalog has nothing to record.
        let (Some(write), true) = (&open.write, open.node.in_catalog()) else {
            return Ok(());
        };
        if !write.dirty.swap(false, Ordering::AcqRel) && !write.unseen.load(Ordering::Acquire) {
            return Ok(());
        }
        let recorded = self.record(open, durable);
        if recorded.is_err() {
            write.dirty.store(true, Ordering::Release);
        }
        recorded
    }

    /// Records the current size and mtime of `open`'s file in its node's row (synced to
    /// disk with `durable`, and with it every commit before).
    pub fn record(&self, open: &OpenFile, durable: bool) -> Result<()> {
        let recorded = open
            .backing
            .file
            .metadata()
            .map(|meta| FileStat::of(&meta))
            .map_err(|err| {
                VfsError::io(
                    format!("reading the size of {}", open.backing.path.display()),
                    err,
                )
            })
            .and_then(|stat| {
                self.primary.write(
                    durable,
                    || drop_caches(&self.caches, &self.times),
                    |w| w.set_size_mtime(open.node, stat.size, stat.mtime_ns),
                )
            });
        self.caches.forget(&[open.node], &[]);
        recorded
    }
}

/// Drops every cache of a `Vfs`: the catalog changed underneath. Node files stay:
/// each call that uses one checks it against the node's row read afresh.
pub(crate) fn drop_caches(caches: &Caches, times: &Times) {
    tracing::debug!("catalog changed underneath; caches dropped");
    times.outside_change();
    // readdir cursors stay: each is the name a listing stopped at, a position
    // in name order that stays right whatever changed, even when that entry is
    // gone (its row could then no longer say where the listing was).
    caches.invalidate();
}
