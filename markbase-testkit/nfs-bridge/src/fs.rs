//! [`BridgeFs`]: the fuse-backend-rs filesystem, one NFS call (or a few) per request.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuse_backend_rs::abi::fuse_abi::{CreateIn, stat64, statvfs64};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, OpenOptions, SetattrValid, ZeroCopyReader,
    ZeroCopyWriter,
};
use nfs3_client::nfs3_types::nfs3::{
    Nfs3Option, cookieverf3, createhow3, entryplus3, post_op_attr, post_op_fh3, writeverf3,
};

use crate::attr::{changes, file_type, new_mode, stat_of, statvfs_of};
use crate::inodes::Inodes;
use crate::remote::{Node, Remote};

/// How long the kernel may trust a name or attributes: not at all, so that every
/// request sees the server's present state (correct rather than fast).
const TTL: Duration = Duration::ZERO;

/// The most one READ or WRITE carries (the kernel sends at most this much too).
const MAX_IO: u32 = 1 << 20;

/// An NFS export as a FUSE filesystem.
///
/// Inodes are NFS file ids ([`Inodes`]). Files need no open state: `open` and
/// `release` are the trait's no-ops, and reads and writes go by inode. Writes are
/// UNSTABLE and committed on `flush` and `fsync`.
pub struct BridgeFs {
    remote: Arc<Remote>,
    inodes: Inodes,
    /// The write verifier of each file with writes not committed yet.
    uncommitted: Mutex<HashMap<u64, writeverf3>>,
    /// The cookie verifier of each open directory listing.
    listings: Mutex<HashMap<u64, cookieverf3>>,
    next_listing: AtomicU64,
}

impl BridgeFs {
    /// The filesystem of `remote`'s export, whose root has file id `root_fileid`.
    pub fn new(remote: Arc<Remote>, root_fileid: u64) -> Self {
        let inodes = Inodes::new(remote.root().clone(), root_fileid);
        Self {
            remote,
            inodes,
            uncommitted: Mutex::default(),
            listings: Mutex::default(),
            next_listing: AtomicU64::new(1),
        }
    }

    /// The kernel's entry for `node`, whose handle is remembered for its inode.
    fn entry(&self, node: &Node) -> Entry {
        let inode = self.inodes.insert(node.attr.fileid, &node.fh);
        Entry {
            inode,
            generation: 0,
            attr: stat_of(&node.attr, inode),
            attr_flags: 0,
            attr_timeout: TTL,
            entry_timeout: TTL,
        }
    }

    /// Notes an UNSTABLE write to `inode` answered with `verifier`: a verifier unlike
    /// the one of earlier uncommitted writes means the server restarted and may have
    /// lost them.
    fn note_uncommitted(&self, inode: u64, verifier: writeverf3) -> io::Result<()> {
        match lock(&self.uncommitted).entry(inode) {
            Slot::Vacant(slot) => {
                slot.insert(verifier);
                Ok(())
            }
            Slot::Occupied(slot) if *slot.get() == verifier => Ok(()),
            Slot::Occupied(_) => Err(restarted(inode)),
        }
    }

    /// COMMITs `inode`'s uncommitted writes, if it has any.
    fn commit(&self, inode: u64) -> io::Result<()> {
        let Some(written) = lock(&self.uncommitted).remove(&inode) else {
            return Ok(());
        };
        let verifier = self.remote.commit(&self.inodes.handle(inode)?)?;
        if verifier == written {
            Ok(())
        } else {
            Err(restarted(inode))
        }
    }

    /// Lists `inode` from `offset` (an NFS cookie; 0 from the start) through
    /// READDIRPLUS, page after page, handing each entry to `add` until it returns
    /// false (the kernel's buffer is full) or the listing ends.
    fn list(
        &self,
        inode: u64,
        listing: u64,
        offset: u64,
        add: &mut dyn FnMut(&entryplus3<'static>) -> io::Result<bool>,
    ) -> io::Result<()> {
        let dir = self.inodes.handle(inode)?;
        let mut cookie = offset;
        loop {
            let verifier = match cookie {
                0 => cookieverf3::default(),
                _ => lock(&self.listings)
                    .get(&listing)
                    .copied()
                    .unwrap_or_default(),
            };
            let page = self.remote.readdirplus(&dir, cookie, verifier)?;
            lock(&self.listings).insert(listing, page.cookieverf);
            for entry in &page.reply.entries.0 {
                if !add(entry)? {
                    return Ok(());
                }
                cookie = entry.cookie;
            }
            if page.reply.eof || page.reply.entries.0.is_empty() {
                return Ok(());
            }
        }
    }

    /// The node an entry of a listing names, remembered, if the server sent its handle
    /// and attributes (the dot entries are left to the kernel).
    fn listed_node(&self, entry: &entryplus3<'static>) -> Option<Node> {
        let name = entry.name.as_ref();
        if name == b"." || name == b".." {
            return None;
        }
        match (&entry.name_handle, &entry.name_attributes) {
            (post_op_fh3::Some(fh), post_op_attr::Some(attr)) => Some(Node {
                fh: fh.clone(),
                attr: attr.clone(),
            }),
            _ => None,
        }
    }
}

/// The error of a COMMIT or WRITE that found the server's write verifier changed.
fn restarted(inode: u64) -> io::Error {
    tracing::error!("inode {inode}: the server's write verifier changed, writes may be lost");
    io::Error::from_raw_os_error(libc::EIO)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `DT_*` type of a listed entry, unknown without attributes.
fn dirent_type(attr: &post_op_attr) -> u32 {
    match attr {
        post_op_attr::Some(attr) => file_type(attr.type_) >> 12,
        post_op_attr::None => u32::from(libc::DT_UNKNOWN),
    }
}

/// The kernel's listing entry for `entry`, numbered `ino`; its offset is the cookie
/// to go on from after it.
fn dirent<'a>(entry: &'a entryplus3<'static>, ino: u64) -> DirEntry<'a> {
    DirEntry {
        ino,
        offset: entry.cookie,
        type_: dirent_type(&entry.name_attributes),
        name: entry.name.as_ref(),
    }
}

/// Whether a listing goes on after the kernel's buffer took an entry (`added` bytes).
fn taken(added: usize) -> bool {
    added > 0
}

impl FileSystem for BridgeFs {
    type Inode = u64;
    type Handle = u64;

    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        let wanted = FsOptions::ASYNC_READ
            | FsOptions::BIG_WRITES
            | FsOptions::MAX_PAGES
            | FsOptions::DO_READDIRPLUS;
        Ok(capable & wanted)
    }

    fn lookup(&self, _: &Context, parent: u64, name: &CStr) -> io::Result<Entry> {
        let dir = self.inodes.handle(parent)?;
        let node = self.remote.lookup(&dir, name.to_bytes())?;
        Ok(self.entry(&node))
    }

    fn getattr(&self, _: &Context, inode: u64, _: Option<u64>) -> io::Result<(stat64, Duration)> {
        let attr = self.remote.getattr(&self.inodes.handle(inode)?)?;
        Ok((stat_of(&attr, inode), TTL))
    }

    fn setattr(
        &self,
        _: &Context,
        inode: u64,
        attr: stat64,
        _: Option<u64>,
        valid: SetattrValid,
    ) -> io::Result<(stat64, Duration)> {
        let fh = self.inodes.handle(inode)?;
        let attr = self.remote.setattr(&fh, changes(&attr, valid))?;
        Ok((stat_of(&attr, inode), TTL))
    }

    fn mkdir(
        &self,
        _: &Context,
        parent: u64,
        name: &CStr,
        mode: u32,
        umask: u32,
    ) -> io::Result<Entry> {
        let dir = self.inodes.handle(parent)?;
        let node = self
            .remote
            .mkdir(&dir, name.to_bytes(), new_mode(mode, umask))?;
        Ok(self.entry(&node))
    }

    fn unlink(&self, _: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        let dir = self.inodes.handle(parent)?;
        Ok(self.remote.remove(&dir, name.to_bytes())?)
    }

    fn rmdir(&self, _: &Context, parent: u64, name: &CStr) -> io::Result<()> {
        let dir = self.inodes.handle(parent)?;
        Ok(self.remote.rmdir(&dir, name.to_bytes())?)
    }

    /// RENAME; `RENAME_NOREPLACE` is a LOOKUP of the target first (not atomic), other
    /// flags are refused.
    fn rename(
        &self,
        _: &Context,
        olddir: u64,
        oldname: &CStr,
        newdir: u64,
        newname: &CStr,
        flags: u32,
    ) -> io::Result<()> {
        let (from_dir, to_dir) = (self.inodes.handle(olddir)?, self.inodes.handle(newdir)?);
        match flags {
            0 => {}
            libc::RENAME_NOREPLACE => match self.remote.lookup(&to_dir, newname.to_bytes()) {
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
                Err(err) if err.errno() == libc::ENOENT => {}
                Err(err) => return Err(err.into()),
            },
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
        Ok(self
            .remote
            .rename(&from_dir, oldname.to_bytes(), &to_dir, newname.to_bytes())?)
    }

    /// CREATE: GUARDED for `O_EXCL`, UNCHECKED otherwise (truncating for `O_TRUNC`).
    fn create(
        &self,
        _: &Context,
        parent: u64,
        name: &CStr,
        args: CreateIn,
    ) -> io::Result<(Entry, Option<u64>, OpenOptions, Option<u32>)> {
        let dir = self.inodes.handle(parent)?;
        let flags = args.flags as i32;
        let mut attr = new_mode(args.mode, args.umask);
        let how = if flags & libc::O_EXCL != 0 {
            createhow3::GUARDED(attr)
        } else {
            if flags & libc::O_TRUNC != 0 {
                attr.size = Nfs3Option::Some(0);
            }
            createhow3::UNCHECKED(attr)
        };
        let node = self.remote.create(&dir, name.to_bytes(), how)?;
        Ok((self.entry(&node), None, OpenOptions::empty(), None))
    }

    /// READs until `size` bytes or the end of the file.
    fn read(
        &self,
        _: &Context,
        inode: u64,
        _: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        _: Option<u64>,
        _: u32,
    ) -> io::Result<usize> {
        let fh = self.inodes.handle(inode)?;
        let mut done = 0;
        while done < size {
            let (data, eof) =
                self.remote
                    .read(&fh, offset + u64::from(done), (size - done).min(MAX_IO))?;
            w.write_all(&data)?;
            done += data.len() as u32;
            if eof || data.is_empty() {
                break;
            }
        }
        Ok(done as usize)
    }

    /// WRITEs (UNSTABLE) all of `size` bytes, in as many calls as the server needs.
    fn write(
        &self,
        _: &Context,
        inode: u64,
        _: u64,
        r: &mut dyn ZeroCopyReader,
        size: u32,
        offset: u64,
        _: Option<u64>,
        _: bool,
        _: u32,
        _: u32,
    ) -> io::Result<usize> {
        let fh = self.inodes.handle(inode)?;
        let mut data = vec![0; size as usize];
        r.read_exact(&mut data)?;
        let mut done = 0;
        while done < data.len() {
            let (count, verifier) = self
                .remote
                .write(&fh, offset + done as u64, &data[done..])?;
            self.note_uncommitted(inode, verifier)?;
            // A server that takes nothing (or claims more than it was sent) is broken.
            match count as usize {
                0 => return Err(io::Error::from_raw_os_error(libc::EIO)),
                taken => done += taken.min(data.len() - done),
            }
        }
        Ok(done)
    }

    fn flush(&self, _: &Context, inode: u64, _: u64, _: u64) -> io::Result<()> {
        self.commit(inode)
    }

    fn fsync(&self, _: &Context, inode: u64, _: bool, _: u64) -> io::Result<()> {
        self.commit(inode)
    }

    fn statfs(&self, _: &Context, _: u64) -> io::Result<statvfs64> {
        Ok(statvfs_of(&self.remote.fsstat()?))
    }

    /// A listing handle, under which the cookie verifier is kept between pages.
    fn opendir(&self, _: &Context, _: u64, _: u32) -> io::Result<(Option<u64>, OpenOptions)> {
        let listing = self.next_listing.fetch_add(1, Ordering::Relaxed);
        Ok((Some(listing), OpenOptions::empty()))
    }

    fn releasedir(&self, _: &Context, _: u64, _: u32, listing: u64) -> io::Result<()> {
        lock(&self.listings).remove(&listing);
        Ok(())
    }

    fn readdir(
        &self,
        _: &Context,
        inode: u64,
        listing: u64,
        _: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        self.list(inode, listing, offset, &mut |entry| {
            let ino = match self.listed_node(entry) {
                Some(node) => self.inodes.insert(node.attr.fileid, &node.fh),
                None => self.inodes.inode(entry.fileid),
            };
            add_entry(dirent(entry, ino)).map(taken)
        })
    }

    fn readdirplus(
        &self,
        _: &Context,
        inode: u64,
        listing: u64,
        _: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        self.list(inode, listing, offset, &mut |entry| {
            // Without a handle and attributes the entry goes with inode 0: the kernel
            // then looks the name up itself.
            let full = self
                .listed_node(entry)
                .map_or_else(Entry::default, |node| self.entry(&node));
            let ino = match full.inode {
                0 => self.inodes.inode(entry.fileid),
                inode => inode,
            };
            add_entry(dirent(entry, ino), full).map(taken)
        })
    }
}
