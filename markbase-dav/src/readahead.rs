//! [`ReadAhead`]: the chunks a sequential GET will ask for next, read while the
//! last ones are sent.
//!
//! dav-server reads a file chunk after chunk, waiting for each to be sent before it
//! asks for the next, so without reading ahead the disk idles while the network
//! sends. The next chunks are read into buffers while the last ones are sent (at most
//! [`MAX_DEPTH`]: their memory is the server's, per GET). Further ahead, the core
//! has the kernel read into its page cache for a handle read in sequence
//! ([`VfsConfig::read_ahead`](markbase_vfs::VfsConfig::read_ahead)), these chunk
//! reads included.
//!
//! The buffers start small: one chunk ahead after the first full chunk, the rest once
//! a second one follows in sequence, so a short Range request costs at most one chunk
//! more than it asked for.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dav_server::fs::{FsError, FsResult};
use markbase_vfs::{Vfs, handles::FileHandle};
use tokio::task::JoinHandle;

use crate::errors::fs_error;

/// Most chunks read ahead of a reader into buffers.
const MAX_DEPTH: usize = 2;

/// Chunks being read ahead of one open file's reader.
#[derive(Default)]
pub(crate) struct ReadAhead {
    queue: VecDeque<Chunk>,
    /// Chunks read in sequence so far.
    streak: usize,
}

/// A chunk being read on the blocking pool: where, how much, and the read.
struct Chunk {
    at: u64,
    count: usize,
    task: JoinHandle<FsResult<Bytes>>,
}

impl ReadAhead {
    /// Reads `count` bytes at `at` of `handle`, from the chunk read ahead for it if
    /// there is one, and reads further ahead when the chunk is full.
    pub async fn read(
        &mut self,
        vfs: &Arc<Vfs>,
        handle: FileHandle,
        at: u64,
        count: usize,
    ) -> FsResult<Bytes> {
        // The last piece of a range is shorter than the chunks read ahead for it.
        let task = match self.queue.pop_front() {
            Some(chunk) if chunk.at == at && chunk.count >= count => chunk.task,
            _ => {
                // Out of sequence (a seek, another chunk size): start again.
                self.queue.clear();
                self.streak = 0;
                read_chunk(Arc::clone(vfs), handle, at, count)
            }
        };
        let mut bytes = task.await.map_err(|_| FsError::GeneralFailure)??;
        bytes.truncate(count);
        if bytes.len() < count {
            // The end of the file.
            self.queue.clear();
            return Ok(bytes);
        }
        self.streak += 1;
        let next = at + count as u64;
        while self.queue.len() < self.streak.min(MAX_DEPTH) {
            let ahead = next + (self.queue.len() * count) as u64;
            self.queue.push_back(Chunk {
                at: ahead,
                count,
                task: read_chunk(Arc::clone(vfs), handle, ahead, count),
            });
        }
        Ok(bytes)
    }
}

/// Reads `count` bytes at `at` of `handle` on the blocking pool.
fn read_chunk(
    vfs: Arc<Vfs>,
    handle: FileHandle,
    at: u64,
    count: usize,
) -> JoinHandle<FsResult<Bytes>> {
    tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(count);
        let n = vfs.read_at(handle, at, &mut buf).map_err(fs_error)?;
        buf.truncate(n);
        Ok(buf.freeze())
    })
}
