//! The request threads of a session, and waiting for them to end with a deadline.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::countdown::Countdown;
use crate::error::MountError;

/// Request threads serving one mount.
pub(crate) struct Workers {
    running: Countdown,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// No threads yet.
    pub fn new() -> Self {
        Self {
            running: Countdown::default(),
            handles: Vec::new(),
        }
    }

    /// Starts a thread named `name` running `serve` until it returns.
    pub fn spawn(
        &mut self,
        name: String,
        serve: impl FnOnce() + Send + 'static,
    ) -> Result<(), MountError> {
        let counted = self.running.enter();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _counted = counted;
                serve();
            })
            .map_err(MountError::Thread)?;
        self.handles.push(handle);
        Ok(())
    }

    /// Waits until every thread has ended or `limit` passed; true if they all ended.
    pub fn wait(&self, limit: Duration) -> bool {
        self.running.wait(limit)
    }

    /// Waits at most `limit` for every thread to end (the caller has told them to)
    /// and joins those that did; the mount at `path` is named if some did not.
    pub fn finish(self, path: &Path, limit: Duration) -> Result<(), MountError> {
        let ended = self.running.wait(limit);
        let busy = self.running.running();
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
