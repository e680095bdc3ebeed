//! Noticing commits made to the catalog by other connections and processes.
//!
//! `PRAGMA data_version` changes whenever another connection commits. Asking
//! costs a few microseconds, so it is asked at most once per check interval
//! (1 ms by default): a change is seen by the first call after that.

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

    /// Whether the catalog changed since the last check. Cheap when a check is not due;
    /// when another thread is already checking, returns `false` without waiting.
    pub fn changed(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now < self.next_check_ns.load(Ordering::Relaxed) {
            return false;
        }
        let Some(mut state) = self.state.try_lock() else {
            return false;
        };
        self.next_check_ns
            .store(now.saturating_add(self.interval_ns), Ordering::Relaxed);
        state.poll()
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
