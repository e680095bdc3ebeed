//! [`Countdown`]: how many threads are still at work, and waiting for none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A count of running threads that can be awaited with a deadline.
#[derive(Clone, Default)]
pub(crate) struct Countdown(Arc<(Mutex<usize>, Condvar)>);

/// One counted thread; dropping it (even by a panic) counts it out.
pub(crate) struct Counted(Countdown);

impl Drop for Counted {
    fn drop(&mut self) {
        let (count, ended) = &*(self.0).0;
        *count.lock() -= 1;
        ended.notify_all();
    }
}

impl Countdown {
    /// Counts one more thread until the returned guard is dropped.
    pub fn enter(&self) -> Counted {
        *self.0.0.lock() += 1;
        Counted(self.clone())
    }

    /// Threads still counted.
    pub fn running(&self) -> usize {
        *self.0.0.lock()
    }

    /// Waits up to `limit` until no thread is counted; true if none is.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (count, ended) = &*self.0;
        let mut count = count.lock();
        while *count > 0 {
            if ended.wait_until(&mut count, deadline).timed_out() {
                return *count == 0;
            }
        }
        true
    }
}
