//! [`MarkbaseFs`]: the fuse-backend-rs filesystem, one `Vfs` call per request.

use std::ffi::CStr;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuse_backend_rs::abi::fuse_abi::{CreateIn, stat64, statvfs64};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, OpenOptions, SetattrValid, ZeroCopyReader,
    ZeroCopyWriter,
};
use lru::LruCache;
use markbase_vfs::{
    FileAttr, NodeId, NodeKind, OpenFlags, Vfs, VfsError,
    handles::FileHandle,
    namespace::{NewFile, RenameMode},
    node::Owner,
    write::{OwnerChange, SetAttr},
};
use parking_lot::Mutex;

use crate::attr::{stat_of, statvfs_of};
use crate::io::{ReplySink, RequestSource};
#[cfg(target_os = "linux")]
use crate::passthrough::{Passthrough, Served};

/// Files whose last-opened (size, mtime) is remembered to keep their page cache.
const OPENED_VERSIONS: usize = 65_536;

/// Kernel-cache policy of a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long the kernel may trust a name lookup or attributes (also a negative lookup).
    pub ttl: Duration,
    /// Let the kernel gather writes in its page cache and send them later (Linux).
    pub writeback: bool,
}

/// A markbase catalog as a fuse-backend-rs [`FileSystem`].
///
/// Inodes are node ids and file handles are core handles, so the adapter keeps no
/// per-inode state beyond what decides whether the kernel may keep a file's pages.
pub struct MarkbaseFs {
    vfs: Arc<Vfs>,
    cache: CachePolicy,
    /// (size, mtime) of each file when it was last opened: unchanged means its
    /// cached pages are still right.
    opened: Mutex<LruCache<u64, (u64, i64)>>,
    /// Attribute requests about the root answered so far (proof that a mount is ours).
    root_getattrs: AtomicU64,
    /// Files handed to the kernel to read and write itself (Linux).
    #[cfg(target_os = "linux")]
    passthrough: Option<Arc<Passthrough>>,
}

impl MarkbaseFs {
    /// A filesystem serving `vfs`.
    pub fn new(vfs: Arc<Vfs>, cache: CachePolicy) -> Self {
        Self {
            vfs,
            cache,
            opened: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPENED_VERSIONS).expect("non-zero"),
            )),
            root_getattrs: AtomicU64::new(0),
            #[cfg(target_os = "linux")]
            passthrough: None,
        }
    }

    /// This filesystem, passing files through to the kernel as `passthrough` decides.
    #[cfg(target_os = "linux")]
    pub(crate) fn passing_through(mut self, passthrough: Arc<Passthrough>) -> Self {
        self.passthrough = Some(passthrough);
        self
    }

    /// How the open `handle` of node `ino` is served; `options` are those of a cached
    /// open. The kernel's backing id, when it reads and writes the file itself. An
    /// open that cannot be served is released and fails.
    fn served(
        &self,
        ino: u64,
        handle: FileHandle,
        options: OpenOptions,
    ) -> io::Result<(OpenOptions, Option<u32>)> {
        #[cfg(target_os = "linux")]
        if let Some(passthrough) = &self.passthrough {
            return match passthrough.open(&self.vfs, ino, handle) {
                Served::Kernel(id) => Ok((OpenOptions::PASSTHROUGH, Some(id))),
                Served::Cached => Ok((options, None)),
                Served::Stale => {
                    self.vfs.release(handle).map_err(errno)?;
                    Err(io::Error::from_raw_os_error(libc::EBUSY))
                }
            };
        }
        let _ = (ino, handle);
        Ok((options, None))
    }

    /// How many attribute requests about the root this filesystem has answered.
    pub fn root_getattrs(&self) -> u64 {
        self.root_getattrs.load(Ordering::Relaxed)
    }

    fn entry(&self, attr: &FileAttr) -> Entry {
        Entry {
            inode: attr.id.get(),
            generation: 0,
            attr: stat_of(attr),
            attr_flags: 0,
            attr_timeout: self.cache.ttl,
            entry_timeout: self.cache.ttl,
        }
    }

    /// A negative entry: the kernel remembers the name is absent for the ttl.
    fn absent(&self) -> Entry {
        Entry {
            entry_timeout: self.cache.ttl,
            ..Entry::default()
        }
    }

    /// Whether the kernel may keep `ino`'s cached pages on this open: its size and
    /// mtime are what they were at the previous open.
    fn unchanged_since_last_open(&self, attr: &FileAttr) -> bool {
        let version = (attr.size, attr.mtime_ns);
        self.opened.lock().put(attr.id.get(), version) == Some(version)
    }
}

/// A core error as the errno the kernel gets, logged at the error's own level.
fn errno(err: VfsError) -> io::Error {
    err.log();
    io::Error::from_raw_os_error(err.errno())
}

fn node(ino: u64) -> io::Result<NodeId> {
    NodeId::new(ino).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A name from the kernel; the catalog holds UTF-8 names only, so any other name
/// gets `invalid` (ENOENT to look up, EINVAL to create).
fn name(raw: &CStr, invalid: i32) -> io::Result<&str> {
    raw.to_str()
        .map_err(|_| io::Error::from_raw_os_error(invalid))
}

fn dirent_type(kind: NodeKind) -> u32 {
    u32::from(match kind {
        NodeKind::Dir => libc::DT_DIR,
        NodeKind::File => libc::DT_REG,
    })
}

/// The changes a `setattr` request asks for (the core decides which it keeps); atime
/// is accepted and ignored, as the catalog keeps none.
fn changes(attr: &stat64, valid: SetattrValid) -> SetAttr {
    let mut changes = SetAttr::default();
    if valid.contains(SetattrValid::SIZE) {
        changes.size = Some(attr.st_size as u64);
    }
    if valid.contains(SetattrValid::MTIME_NOW) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        changes.mtime_ns = Some(i64::try_from(now.as_nanos()).unwrap_or(i64::MAX));
    } else if valid.contains(SetattrValid::MTIME) {
        changes.mtime_ns = Some(
            attr.st_mtime
                .saturating_mul(1_000_000_000)
                .saturating_add(attr.st_mtime_nsec),
        );
    }
    if valid.contains(SetattrValid::MODE) {
        #[allow(clippy::useless_conversion, reason = "st_mode is u16 on macOS")]
        let mode = u32::from(attr.st_mode);
        changes.mode = Some(mode);
    }
    if valid.intersects(SetattrValid::UID | SetattrValid::GID) {
        changes.owner = Some(OwnerChange {
            uid: valid.contains(SetattrValid::UID).then_some(attr.st_uid),
            gid: valid.contains(SetattrValid::GID).then_some(attr.st_gid),
        });
    }
    changes
}

/// The rename mode for `rename2` flags: Linux's `RENAME_NOREPLACE` is honoured,
/// exchange and whiteout are not supported.
fn rename_mode(flags: u32) -> io::Result<RenameMode> {
    #[cfg(target_os = "linux")]
    const NOREPLACE: u32 = libc::RENAME_NOREPLACE;
    #[cfg(not(target_os = "linux"))]
    const NOREPLACE: u32 = 0;
    match flags {
        0 => Ok(RenameMode::Replace),
        flags if flags == NOREPLACE => Ok(RenameMode::NoReplace),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// The FUSE features asked for in `init`.
fn wanted_options(cache: CachePolicy) -> FsOptions {
    #[cfg(target_os = "linux")]
    {
        let mut want = FsOptions::ASYNC_READ
            | FsOptions::BIG_WRITES
            | FsOptions::MAX_PAGES
            | FsOptions::ATOMIC_O_TRUNC
            | FsOptions::PARALLEL_DIROPS
            | FsOptions::AUTO_INVAL_DATA
            | FsOptions::DO_READDIRPLUS
            | FsOptions::READDIRPLUS_AUTO
            // An O_DIRECT read or write larger than one request is sent as several
            // requests at once, which the request threads serve together.
            | FsOptions::ASYNC_DIO;
        if cache.writeback {
            want |= FsOptions::WRITEBACK_CACHE;
        }
        want
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cache;
        FsOptions::ASYNC_READ | FsOptions::BIG_WRITES | FsOptions::ATOMIC_O_TRUNC
    }
}

impl FileSystem for MarkbaseFs {
    type Inode = u64;
    type Handle = u64;

    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        #[allow(unused_mut)]
        let mut want = wanted_options(self.cache);
        // Never beside the writeback cache: the mount's options turned that off.
        #[cfg(target_os = "linux")]
        if let Some(passthrough) = &self.passthrough
            && passthrough.wanted()
        {
            want |= FsOptions::PASSTHROUGH;
        }
        let enabled = capable & want;
        #[cfg(target_os = "linux")]
        if let Some(passthrough) = &self.passthrough {
            passthrough.offered(enabled.contains(FsOptions::PASSTHROUGH));
        }
        tracing::debug!("FUSE session started with {enabled:?}");
        Ok(enabled)
    }

    fn lookup(&self, _: &Context, parent: u64, raw: &CStr) -> io::Result<Entry> {
        let name = name(raw, libc::ENOENT)?;
        match self.vfs.lookup(node(parent)?, name) {
            Ok(attr) => Ok(self.entry(&attr)),
            Err(VfsError::NotFound(_)) => Ok(self.absent()),
            Err(err) => Err(errno(err)),
        }
    }

    // Lookups hold no state (inodes are node ids), so forgetting is free.
    fn forget(&self, _: &Context, _: u64, _: u64) {}

    fn batch_forget(&self, _: &Context, _: Vec<(u64, u64)>) {}

    fn getattr(&self, _: &Context, ino: u64, fh: Option<u64>) -> io::Result<(stat64, Duration)> {
        if ino == NodeId::ROOT.get() {
            self.root_getattrs.fetch_add(1, Ordering::Relaxed);
        }
        let attr = self
            .vfs
            .getattr_open(node(ino)?, fh.map(FileHandle::from_raw))
            .map_err(errno)?;
        Ok((stat_of(&attr), self.cache.ttl))
    }

    fn setattr(
        &self,
        _: &Context,
        ino: u64,
        attr: stat64,
        fh: Option<u64>,
        valid: SetattrValid,
    ) -> io::Result<(stat64, Duration)> {
        let attr = self
            .vfs
            .setattr(
                node(ino)?,
                changes(&attr, valid),
                fh.map(FileHandle::from_raw),
            )
            .map_err(errno)?;
        Ok((stat_of(&attr), self.cache.ttl))
    }

    fn mkdir(&self, _: &Context, parent: u64, raw: &CStr, _: u32, _: u32) -> io::Result<Entry> {
        let name = name(raw, libc::EINVAL)?;
        let attr = self.vfs.mkdir(node(parent)?, name).map_err(errno)?;
        Ok(self.entry(&attr))
    }

    // The catalog holds folders and regular files only. EPERM is what link(2),
    // symlink(2) and mknod(2) give on a filesystem that does not support the type (the
    // library's default, ENOSYS, would read as "not implemented").
    fn symlink(&self, _: &Context, _: &CStr, _: u64, _: &CStr) -> io::Result<Entry> {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }

    /// `mknod(2)` of a regular file is a create (the kernel sends it when a program
    /// calls mknod, not open); other types are not supported.
    fn mknod(
        &self,
        ctx: &Context,
        parent: u64,
        raw: &CStr,
        mode: u32,
        _: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        #[allow(clippy::useless_conversion, reason = "mode_t is u16 on macOS")]
        let (format, regular) = (u32::from(libc::S_IFMT), u32::from(libc::S_IFREG));
        if mode & format != regular {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let name = name(raw, libc::EINVAL)?;
        let new = NewFile::new(
            (mode & !umask & 0o777) as u16,
            Owner {
                uid: ctx.uid,
                gid: ctx.gid,
            },
        );
        let opened = self
            .vfs
            .open_at(node(parent)?, name, OpenFlags::read().exclusive(), new)
            .map_err(errno)?;
        if let Err(err) = self.vfs.release(opened.handle) {
            err.log();
        }
        Ok(self.entry(&opened.attr))
    }

    fn link(&self, _: &Context, _: u64, _: u64, _: &CStr) -> io::Result<Entry> {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }

    fn unlink(&self, _: &Context, parent: u64, raw: &CStr) -> io::Result<()> {
        let name = name(raw, libc::ENOENT)?;
        self.vfs.unlink(node(parent)?, name).map_err(errno)
    }

    fn rmdir(&self, _: &Context, parent: u64, raw: &CStr) -> io::Result<()> {
        let name = name(raw, libc::ENOENT)?;
        self.vfs.rmdir(node(parent)?, name).map_err(errno)
    }

    fn rename(
        &self,
        _: &Context,
        olddir: u64,
        oldname: &CStr,
        newdir: u64,
        newname: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        let mode = rename_mode(flags)?;
        let from = name(oldname, libc::ENOENT)?;
        let to = name(newname, libc::EINVAL)?;
        self.vfs
            .rename(node(olddir)?, from, node(newdir)?, to, mode)
            .map_err(errno)
    }

    fn open(
        &self,
        _: &Context,
        ino: u64,
        flags: u32,
        _: u32,
    ) -> io::Result<(Option<u64>, OpenOptions, Option<u32>)> {
        let opened = self
            .vfs
            .open_node(node(ino)?, OpenFlags::from_libc(flags as i32))
            .map_err(errno)?;
        let mut options = OpenOptions::empty();
        if self.unchanged_since_last_open(&opened.attr) {
            options |= OpenOptions::KEEP_CACHE;
        }
        let (options, backing) = self.served(ino, opened.handle, options)?;
        Ok((Some(opened.handle.raw()), options, backing))
    }

    fn create(
        &self,
        ctx: &Context,
        parent: u64,
        raw: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<u64>, OpenOptions, Option<u32>)> {
        let name = name(raw, libc::EINVAL)?;
        let flags = OpenFlags::from_libc(args.flags as i32).create();
        let perm = (args.mode & !args.umask & 0o777) as u16;
        let creator = Owner {
            uid: ctx.uid,
            gid: ctx.gid,
        };
        let opened = self
            .vfs
            .open_at(node(parent)?, name, flags, NewFile::new(perm, creator))
            .map_err(errno)?;
        let attr = opened.attr;
        self.opened
            .lock()
            .put(attr.id.get(), (attr.size, attr.mtime_ns));
        let (options, backing) = self.served(attr.id.get(), opened.handle, OpenOptions::empty())?;
        Ok((
            self.entry(&attr),
            Some(opened.handle.raw()),
            options,
            backing,
        ))
    }

    fn read(
        &self,
        _: &Context,
        _: u64,
        fh: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        _: Option<u64>,
        _: u32,
    ) -> io::Result<usize> {
        self.vfs
            .read(
                FileHandle::from_raw(fh),
                offset,
                size as usize,
                &mut ReplySink(w),
            )
            .map_err(errno)
    }

    fn write(
        &self,
        _: &Context,
        _: u64,
        fh: u64,
        r: &mut dyn ZeroCopyReader,
        size: u32,
        offset: u64,
        _: Option<u64>,
        _: bool,
        _: u32,
        _: u32,
    ) -> io::Result<usize> {
        self.vfs
            .write(
                FileHandle::from_raw(fh),
                offset,
                size as usize,
                &mut RequestSource(r),
            )
            .map_err(errno)
    }

    fn flush(&self, _: &Context, _: u64, fh: u64, _: u64) -> io::Result<()> {
        self.vfs.flush(FileHandle::from_raw(fh)).map_err(errno)
    }

    fn fsync(&self, _: &Context, _: u64, datasync: bool, fh: u64) -> io::Result<()> {
        self.vfs
            .fsync(FileHandle::from_raw(fh), datasync)
            .map_err(errno)
    }

    fn release(
        &self,
        _: &Context,
        _: u64,
        _: u32,
        fh: u64,
        _: bool,
        _: bool,
        _: Option<u64>,
    ) -> io::Result<()> {
        let handle = FileHandle::from_raw(fh);
        #[cfg(target_os = "linux")]
        if let Some(passthrough) = &self.passthrough {
            passthrough.release(handle);
        }
        self.vfs.release(handle).map_err(errno)
    }

    fn statfs(&self, _: &Context, _: u64) -> io::Result<statvfs64> {
        let fs = self.vfs.statfs().map_err(errno)?;
        Ok(statvfs_of(&fs))
    }

    fn releasedir(&self, _: &Context, _: u64, _: u32, _: u64) -> io::Result<()> {
        Ok(())
    }

    fn readdir(
        &self,
        _: &Context,
        ino: u64,
        _: u64,
        _: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let dir = node(ino)?;
        if !self.list_dots(dir, offset, &mut |dot| add_entry(dot))? {
            return Ok(());
        }
        let mut failed = None;
        self.vfs
            .readdir(dir, offset, |entry| {
                fill(add_entry(dirent(entry)), &mut failed)
            })
            .map_err(errno)?;
        failed.map_or(Ok(()), Err)
    }

    fn readdirplus(
        &self,
        _: &Context,
        ino: u64,
        _: u64,
        _: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        let dir = node(ino)?;
        // The dot entries go without attributes: the kernel looks them up itself.
        if !self.list_dots(dir, offset, &mut |dot| add_entry(dot, Entry::default()))? {
            return Ok(());
        }
        let mut failed = None;
        self.vfs
            .readdir_plus(dir, offset, |entry, attr| {
                fill(add_entry(dirent(entry), self.entry(attr)), &mut failed)
            })
            .map_err(errno)?;
        failed.map_or(Ok(()), Err)
    }
}

impl MarkbaseFs {
    /// Lists `.` and `..` of `dir` at offsets 1 and 2 (the kernel does not make them
    /// up), those at or after `offset`; false when `add` said its buffer is full.
    fn list_dots(
        &self,
        dir: NodeId,
        offset: u64,
        add: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<bool> {
        let parent = self.vfs.node(dir).map_err(errno)?.parent.unwrap_or(dir);
        for (dot_offset, name, dot_ino) in [(1, ".", dir), (2, "..", parent)] {
            if offset < dot_offset {
                let dot = DirEntry {
                    ino: dot_ino.get(),
                    offset: dot_offset,
                    type_: dirent_type(NodeKind::Dir),
                    name: name.as_bytes(),
                };
                if add(dot)? == 0 {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// A core entry as the kernel's.
fn dirent(entry: &markbase_vfs::readdir::DirEntry) -> DirEntry<'_> {
    DirEntry {
        ino: entry.id.get(),
        offset: entry.offset,
        type_: dirent_type(entry.kind),
        name: entry.name.as_bytes(),
    }
}

/// Whether a listing goes on after the kernel's buffer took an entry (`added`): not
/// when it is full (0) or failed (the error is kept in `failed`).
fn fill(added: io::Result<usize>, failed: &mut Option<io::Error>) -> bool {
    match added {
        Ok(0) => false,
        Ok(_) => true,
        Err(err) => {
            *failed = Some(err);
            false
        }
    }
}
