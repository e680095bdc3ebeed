//! Open file handles and the sink interface of the zero-copy read path.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::alias::Backing;
use crate::direct::DirectIo;
use crate::node::NodeId;
use crate::readahead::ReadAhead;

/// An open file, as returned by [`Vfs::open_file`](crate::Vfs::open_file).
///
/// The raw value is what a FUSE adapter hands to the kernel as `fh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle(u64);

impl std::fmt::Display for FileHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FileHandle {
    /// The handle as a plain number.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// A handle from a number previously given out by [`FileHandle::raw`].
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// Where [`Vfs::read`](crate::Vfs::read) puts bytes: the adapter's own buffer.
///
/// The core hands over the open alias file and an offset; the sink reads
/// straight from the file into its buffer (a FUSE reply, an HTTP body), so
/// that no byte is copied through an intermediate buffer.
pub trait ReadSink {
    /// Reads at most `len` bytes of `file` at `offset` into the sink and returns how
    /// many it read; 0 means end of file.
    fn read_from(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize>;

    /// Takes `bytes` the core read itself (a direct read goes through an aligned
    /// buffer of its own) and returns how many it took.
    fn take(&mut self, bytes: &[u8]) -> io::Result<usize>;
}

/// A byte slice is a sink: bytes land at its start, one `pread` per call.
impl ReadSink for [u8] {
    fn read_from(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let len = len.min(self.len());
        file.read_at(&mut self[..len], offset)
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len().min(self.len());
        self[..len].copy_from_slice(&bytes[..len]);
        Ok(len)
    }
}

/// Where [`Vfs::write`](crate::Vfs::write) takes bytes from: the adapter's own buffer.
///
/// The core hands over the open file and an offset; the source writes its bytes
/// straight into the file (from a FUSE request, an HTTP body), with no
/// intermediate copy.
pub trait WriteSource {
    /// Writes at most `len` bytes into `file` at `offset` and returns how many it wrote.
    fn write_to(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize>;

    /// Copies its bytes into `buf`, at most `buf.len()`, and returns how many: for a
    /// direct write, which goes through an aligned buffer of the core's.
    fn copy_to(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A byte slice is a source: its bytes from the start, one `pwrite` per call.
impl WriteSource for [u8] {
    fn write_to(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let len = len.min(self.len());
        file.write_at(&self[..len], offset)
    }

    fn copy_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.len());
        buf[..len].copy_from_slice(&self[..len]);
        Ok(len)
    }
}

/// What an open handle (or a cached node file) holds: the node, the file serving it,
/// whether it writes, and where its reader has been reading.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub node: NodeId,
    pub backing: Arc<Backing>,
    /// `Some` for a file opened for writing.
    pub write: Option<WriteState>,
    /// Sequential detection and the prefetch window of its reads.
    pub read_ahead: Mutex<ReadAhead>,
    /// Its `O_DIRECT` descriptor, for a handle opened `O_DIRECT`.
    pub direct: std::sync::OnceLock<DirectIo>,
}

impl OpenFile {
    /// `backing` open for reading, serving `node`.
    pub fn reading(node: NodeId, backing: Arc<Backing>) -> Self {
        Self {
            node,
            backing,
            write: None,
            read_ahead: Mutex::default(),
            direct: std::sync::OnceLock::new(),
        }
    }

    /// `backing`, opened for writing, serving `node`.
    pub fn writing(node: NodeId, backing: Arc<Backing>) -> Self {
        Self {
            write: Some(WriteState::default()),
            ..Self::reading(node, backing)
        }
    }
}

/// The write side of an open handle.
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    /// Bytes or size changed since the catalog last recorded them.
    pub dirty: std::sync::atomic::AtomicBool,
    /// Its writes are done by the kernel, unseen ([`Vfs::pass_through`](crate::Vfs::pass_through)):
    /// every flush records the file's size and mtime.
    pub unseen: std::sync::atomic::AtomicBool,
}

/// The table of open handles.
pub(crate) struct HandleTable {
    next: AtomicU64,
    open: RwLock<HashMap<u64, Arc<OpenFile>>>,
}

impl HandleTable {
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            open: RwLock::new(HashMap::new()),
        }
    }

    /// Registers an open file and returns its handle.
    pub fn insert(&self, file: OpenFile) -> FileHandle {
        let raw = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.write().insert(raw, Arc::new(file));
        FileHandle(raw)
    }

    /// The open file behind `handle`; the lock is released before the caller does I/O.
    pub fn get(&self, handle: FileHandle) -> Option<Arc<OpenFile>> {
        self.open.read().get(&handle.0).cloned()
    }

    /// Some handle open on `node`, if any (a scan: only asked about removed nodes).
    pub fn any_open_on(&self, node: NodeId) -> Option<Arc<OpenFile>> {
        self.open
            .read()
            .values()
            .find(|open| open.node == node)
            .cloned()
    }

    /// Forgets `handle`; `None` if it was not open.
    pub fn remove(&self, handle: FileHandle) -> Option<Arc<OpenFile>> {
        self.open.write().remove(&handle.0)
    }

    /// How many handles are open.
    pub fn len(&self) -> usize {
        self.open.read().len()
    }
}
