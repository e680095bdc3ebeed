//! The request threads of a session, and waiting for them to end with a deadline.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::MountError;

/// Request threads serving one mount.
pub(crate) struct Workers {
    running: Arc<(Mutex<usize>, Condvar)>,
    handles: Vec<JoinHandle<()>>,
}

/// Decrements the running count when a worker ends, even by panic.
struct Running(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Running {
    fn drop(&mut self) {
        let (count, ended) = &*self.0;
        *count.lock() -= 1;
        ended.notify_all();
    }
}

impl Workers {
    /// No threads yet.
    pub fn new() -> Self {
        Self {
            running: Arc::new((Mutex::new(0), Condvar::new())),
            handles: Vec::new(),
        }
    }

    /// Starts a thread named `name` running `serve` until it returns.
    pub fn spawn(
        &mut self,
        name: String,
        serve: impl FnOnce() + Send + 'static,
    ) -> Result<(), MountError> {
        *self.running.0.lock() += 1;
        let running = Running(Arc::clone(&self.running));
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _running = running;
                serve();
            })
            .map_err(MountError::Thread)?;
        self.handles.push(handle);
        Ok(())
    }

    /// Waits until every thread has ended or `limit` passed; true if they all ended.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (count, ended) = &*self.running;
        let mut count = count.lock();
        while *count > 0 {
            if ended.wait_until(&mut count, deadline).timed_out() {
                return *count == 0;
            }
        }
        true
    }

    /// Waits at most `limit` for every thread to end (the caller has told them to)
    /// and joins those that did; the mount at `path` is named if some did not.
    pub fn finish(self, path: &Path, limit: Duration) -> Result<(), MountError> {
        let ended = self.wait(limit);
        let busy = *self.running.0.lock();
        for handle in self.handles {
            if handle.is_finished() && handle.join().is_err() {
                tracing::error!("a FUSE request thread panicked");
            }
        }
        if ended {
            Ok(())
        } else {
            Err(MountError::ThreadsStuck {
                path: path.to_path_buf(),
                busy,
                limit,
            })
        }
    }
}
