//! Noticing commits made to the catalog by other connections and processes.
//!
//! `PRAGMA data_version` changes whenever another connection commits. Asking
//! costs a few microseconds, so it is asked at most once per check interval
//! (1 ms by default): a change is seen by the first call after that. A zero
//! interval asks on every call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::Connection;

/// Watches one catalog for outside commits through a connection of its own.
pub(crate) struct CatalogWatch {
    state: Mutex<WatchState>,
    epoch: Instant,
    interval_ns: u64,
    /// Nanoseconds after `epoch` before which no new check is made.
    next_check_ns: AtomicU64,
}

struct WatchState {
    conn: Connection,
    version: Option<i64>,
}

impl CatalogWatch {
    /// Starts watching through `conn`, checking at most once per `interval`.
    pub fn new(conn: Connection, interval: Duration) -> Self {
        let watch = Self {
            state: Mutex::new(WatchState {
                conn,
                version: None,
            }),
            epoch: Instant::now(),
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            next_check_ns: AtomicU64::new(0),
        };
        watch.state.lock().poll();
        watch
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

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl WatchState {
    /// Reads `data_version`; a change, or a failure to read it, counts as a change.
    fn poll(&mut self) -> bool {
        let version = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0));
        match version {
            Ok(version) => self
                .version
                .replace(version)
                .is_some_and(|old| old != version),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the catalog's data_version; dropping caches");
                self.version = None;
                true
            }
        }
    }
}
