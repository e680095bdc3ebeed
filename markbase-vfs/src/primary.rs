//! The `Vfs`'s own catalog connection: it notices commits made by other
//! connections and processes, and it makes every write.
//!
//! `PRAGMA data_version` changes whenever another connection commits, never for
//! this connection's own commits. Asking costs a few microseconds, so it is asked
//! at most once per check interval (1 ms by default): a change is seen by the
//! first call after that. A zero interval asks on every call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::catalog::writer::CatalogWriter;
use crate::error::{Result, VfsError};

/// The connection that watches the catalog and writes to it, one user at a time.
pub(crate) struct PrimaryConnection {
    state: Mutex<State>,
    epoch: Instant,
    interval_ns: u64,
    /// Nanoseconds after `epoch` before which no new check is made.
    next_check_ns: AtomicU64,
}

struct State {
    writer: CatalogWriter,
    version: Option<i64>,
}

impl PrimaryConnection {
    /// Watches (and writes) through `writer`, checking at most once per `interval`.
    pub fn new(writer: CatalogWriter, interval: Duration) -> Result<Self> {
        writer.use_normal_sync()?;
        let mut state = State {
            writer,
            version: None,
        };
        state.poll();
        Ok(Self {
            state: Mutex::new(state),
            epoch: Instant::now(),
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            next_check_ns: AtomicU64::new(0),
        })
    }

    /// Calls `on_change` if the catalog changed since the last check. Cheap when no
    /// check is due; when one is, calls that arrive meanwhile wait until it is done,
    /// `on_change` included, so none of them can see what it drops.
    pub fn check(&self, on_change: impl FnOnce()) {
        if self.now_ns() < self.next_check_ns.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        // Another thread may have checked while this one waited for the lock.
        if self.now_ns() < self.next_check_ns.load(Ordering::Acquire) {
            return;
        }
        if state.poll() {
            on_change();
        }
        self.next_check_ns.store(
            self.now_ns().saturating_add(self.interval_ns),
            Ordering::Release,
        );
    }

    /// Runs `body` in one write transaction (see [`CatalogWriter::transaction`]).
    /// Outside changes are looked for first, inside the transaction (where asking
    /// costs no locking of its own), so that `body` decides on what the catalog holds
    /// now.
    pub fn write<T>(
        &self,
        durable: bool,
        on_change: impl FnOnce(),
        body: impl FnOnce(&CatalogWriter) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.state.lock();
        let State { writer, version } = &mut *state;
        let result = writer.transaction(durable, |w| {
            if poll(w, version) {
                on_change();
            }
            body(w)
        });
        if let Err(err @ VfsError::CatalogBusy { .. }) = &result {
            tracing::warn!(
                "a write was refused with EBUSY: {err}; another program holds the catalog's write lock"
            );
        }
        result
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl State {
    /// Reads `data_version`; a change, or a failure to read it, counts as a change.
    fn poll(&mut self) -> bool {
        poll(&self.writer, &mut self.version)
    }
}

/// Reads `data_version` into `version`; a change, or a failure to read it, counts as a
/// change.
fn poll(writer: &CatalogWriter, version: &mut Option<i64>) -> bool {
    match writer.data_version() {
        Ok(now) => version.replace(now).is_some_and(|old| old != now),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the catalog's data_version; dropping caches");
            *version = None;
            true
        }
    }
}
