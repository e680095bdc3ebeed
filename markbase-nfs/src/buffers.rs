//! READ reply buffers, reused. A full-size read into a fresh 1 MiB allocation pays
//! for its pages every time (the allocator hands such blocks back to the system when
//! they are freed): about a tenth of a warm stream's speed here. The server crate
//! gives each buffer back once its bytes are sent.

use parking_lot::Mutex;

use crate::fs::MAX_IO;

/// Buffers kept for reuse at most: the ones in flight are the clients' to bound.
const KEPT: usize = 32;

/// Full-size read buffers, each `MAX_IO` bytes long when kept.
#[derive(Default)]
pub struct ReadBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl ReadBuffers {
    /// A buffer of `MAX_IO` bytes for a full-size read: a kept one (what an earlier
    /// read left in it is overwritten or cut off), or a new one.
    pub fn full(&self) -> Vec<u8> {
        self.free
            .lock()
            .pop()
            .unwrap_or_else(|| vec![0; MAX_IO as usize])
    }

    /// Keeps `buffer` for the next full-size read, if it was one and room is left.
    pub fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() < MAX_IO as usize {
            return;
        }
        let mut free = self.free.lock();
        if free.len() < KEPT {
            // Only what a short read cut off is zeroed again (nothing, streaming).
            buffer.resize(MAX_IO as usize, 0);
            free.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_buffers_come_back_whole_and_at_most_kept_are_kept() {
        let buffers = ReadBuffers::default();
        let mut buffer = buffers.full();
        assert_eq!(buffer.len(), MAX_IO as usize);
        buffer.truncate(10);
        buffers.give_back(buffer);
        assert_eq!(buffers.full().len(), MAX_IO as usize);
        buffers.give_back(vec![1; 100]);
        assert!(buffers.free.lock().is_empty(), "a small buffer is not kept");
        for _ in 0..KEPT + 5 {
            buffers.give_back(vec![0; MAX_IO as usize]);
        }
        assert_eq!(buffers.free.lock().len(), KEPT);
    }
}
