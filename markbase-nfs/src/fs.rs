//! The NFS calls as core calls: `nfs3_server`'s filesystem traits over a [`Vfs`].
//!
//! Every call runs the (blocking) core on the thread that took the request, given up
//! to blocking work ([`tokio::task::block_in_place`]): no hop to another thread, and
//! the bytes the server crate lends a WRITE are written where they are. Reads and
//! writes go by node, through the core's node-file cache: there is no open or close
//! per request, and sequential streams keep the core's read-ahead.

use std::sync::Arc;

use markbase_vfs::handles::ReadSink;
use markbase_vfs::namespace::{NewFile, RenameMode};
use markbase_vfs::write::SetAttr;
use markbase_vfs::{FileAttr, NodeId, NodeKind, Vfs, VfsError};
use nfs3_server::nfs3_types::nfs3::{
    ACCESS3_DELETE, ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ,
    FSF3_CANSETTIME, FSF3_HOMOGENEOUS, FSINFO3resok, FSSTAT3resok, PATHCONF3resok, createverf3,
    fattr3, filename3, nfspath3, nfsstat3, nfstime3, post_op_attr, sattr3, set_mode3, stable_how,
};
use nfs3_server::vfs::{NfsFileSystem, NfsReadFileSystem, ReadDirPlusIterator, VFSCapabilities};

use crate::attr::{fattr, set_attr};
use crate::buffers::ReadBuffers;
use crate::error::{node_status, status};
use crate::handle::NodeHandle;
use crate::listing::Listing;

/// The largest READ and WRITE: what macOS's client accepts as rsize and wsize.
pub const MAX_IO: u32 = 1 << 20;

/// The catalog as an NFS filesystem.
pub struct CatalogFs {
    vfs: Arc<Vfs>,
    /// The filesystem id clients see in every attribute: the catalog's.
    fsid: u64,
    /// Buffers of full-size READs, given back once sent.
    buffers: ReadBuffers,
}

impl CatalogFs {
    /// The filesystem of `vfs`.
    pub fn new(vfs: Arc<Vfs>) -> Self {
        let fsid = vfs.catalog_id();
        Self {
            vfs,
            fsid,
            buffers: ReadBuffers::default(),
        }
    }

    /// Runs `call` on the core, on this thread, given up to blocking work (the server
    /// runs on a multi-threaded runtime, which moves this thread's other tasks away):
    /// a hop to tokio's blocking pool and back would add its latency to every request,
    /// and a client with one request in flight (a GETATTR, a LOOKUP, `nfs-cp`'s READs)
    /// waits for each.
    async fn core<T>(&self, call: impl FnOnce(&Vfs) -> Result<T, nfsstat3>) -> Result<T, nfsstat3> {
        tokio::task::block_in_place(|| call(&self.vfs))
    }

    fn fattr(&self, attr: &FileAttr) -> fattr3 {
        fattr(attr, self.fsid)
    }

    /// The attributes of `id` as NFS reports them.
    async fn attr_of(&self, id: NodeId) -> Result<fattr3, nfsstat3> {
        let attr = self
            .core(move |vfs| vfs.getattr(id).map_err(node_status))
            .await?;
        Ok(self.fattr(&attr))
    }

    /// Makes file `name` in `dir` (failing on an existing one if `exclusive`, opening
    /// it otherwise), with the attributes of `sattr`.
    async fn create_file(
        &self,
        dir: &NodeHandle,
        name: &filename3<'_>,
        sattr: sattr3,
        exclusive: bool,
    ) -> Result<(NodeHandle, fattr3), nfsstat3> {
        let (dir, name) = (dir.node(), file_name(name)?);
        let mut new = NewFile::default();
        if let set_mode3::Some(mode) = sattr.mode {
            new.perm = Some((mode & 0o777) as u16);
        }
        let mut changes = set_attr(&sattr);
        changes.mode = None;
        let attr = self
            .core(move |vfs| {
                let (attr, handle) = vfs
                    .create_with(dir, name, exclusive, new)
                    .map_err(|err| in_dir(vfs, dir, err))?;
                let changed = if changes == SetAttr::default() {
                    Ok(attr)
                } else {
                    vfs.setattr(attr.id, changes, Some(handle))
                };
                let released = vfs.release(handle);
                let attr = changed.map_err(status)?;
                released.map_err(status)?;
                Ok(attr)
            })
            .await?;
        Ok((NodeHandle::new(attr.id), self.fattr(&attr)))
    }
}

/// `name` as the core takes it: UTF-8 (the core checks the rest: `/`, NUL, length).
fn file_name<'a>(name: &'a filename3<'_>) -> Result<&'a str, nfsstat3> {
    match std::str::from_utf8(name.as_ref()) {
        Ok(name) => Ok(name),
        Err(_) => {
            tracing::debug!("refusing a name that is not UTF-8: {:?}", name.as_ref());
            Err(nfsstat3::NFS3ERR_INVAL)
        }
    }
}

/// The status of `err`, which a call on name in directory `dir` failed with: `STALE`
/// when the directory itself is gone, so that a client does not take it for a
/// missing name.
fn in_dir(vfs: &Vfs, dir: NodeId, err: VfsError) -> nfsstat3 {
    if matches!(err, VfsError::NotFound(_))
        && let Err(gone @ VfsError::NotFound(_)) = vfs.getattr(dir)
    {
        return node_status(gone);
    }
    status(err)
}

/// The `ACCESS3_*` bits the server grants on a node with `attr`: what its mode lets
/// this process do, for every client is served as this process's user.
fn access_bits(attr: &FileAttr) -> u32 {
    let permits = attr.permits_this_process();
    let dir = attr.kind == NodeKind::Dir;
    let mut bits = 0;
    if permits.read {
        bits |= ACCESS3_READ;
    }
    if permits.write {
        bits |= ACCESS3_MODIFY | ACCESS3_EXTEND | if dir { ACCESS3_DELETE } else { 0 };
    }
    if permits.execute {
        bits |= if dir { ACCESS3_LOOKUP } else { ACCESS3_EXECUTE };
    }
    bits
}

/// What the EXCLUSIVE create verifier is kept as until the client sets the file's
/// times (RFC 1813 suggests a time attribute): the mtime, in ns, of the new file.
fn verifier_mtime(verifier: createverf3) -> i64 {
    // Kept positive and below i64::MAX so that every filesystem can store it.
    (u64::from_be_bytes(verifier.0) >> 2) as i64
}

impl NfsReadFileSystem for CatalogFs {
    type Handle = NodeHandle;

    fn root_dir(&self) -> NodeHandle {
        NodeHandle::new(NodeId::ROOT)
    }

    async fn lookup(
        &self,
        dirid: &NodeHandle,
        filename: &filename3<'_>,
    ) -> Result<NodeHandle, nfsstat3> {
        let dir = dirid.node();
        let name = file_name(filename)?;
        let id = self
            .core(move |vfs| match name {
                "." | ".." => {
                    let node = vfs.node(dir).map_err(node_status)?;
                    if node.kind() != NodeKind::Dir {
                        return Err(nfsstat3::NFS3ERR_NOTDIR);
                    }
                    Ok(if name == "." {
                        dir
                    } else {
                        node.parent.unwrap_or(dir)
                    })
                }
                _ => vfs
                    .lookup(dir, name)
                    .map(|attr| attr.id)
                    .map_err(|err| in_dir(vfs, dir, err)),
            })
            .await?;
        Ok(NodeHandle::new(id))
    }

    async fn lookup_by_path(&self, path: &str) -> Result<NodeHandle, nfsstat3> {
        let path = format!("/{}", path.trim_matches('/'));
        let id = self
            .core(move |vfs| {
                let attr = vfs.lookup_path(&path).map_err(status)?;
                if attr.kind != NodeKind::Dir {
                    tracing::debug!("refusing to mount {path}: not a directory");
                    return Err(nfsstat3::NFS3ERR_NOTDIR);
                }
                Ok(attr.id)
            })
            .await?;
        Ok(NodeHandle::new(id))
    }

    async fn getattr(&self, id: &NodeHandle) -> Result<fattr3, nfsstat3> {
        self.attr_of(id.node()).await
    }

    async fn read(
        &self,
        id: &NodeHandle,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        let node = id.node();
        let count = count.min(MAX_IO) as usize;
        self.core(|vfs| {
            let (buffer, read) = if count == MAX_IO as usize {
                let mut buffer = self.buffers.full();
                let read = vfs.read_node(node, offset, count, buffer.as_mut_slice());
                (buffer, read)
            } else {
                let mut buffer = Reply(Vec::with_capacity(count));
                let read = vfs.read_node(node, offset, count, &mut buffer);
                (buffer.0, read)
            };
            let (mut buffer, read) = (buffer, read.map_err(node_status)?);
            buffer.truncate(read);
            let eof = read < count
                || offset.saturating_add(read as u64)
                    >= vfs.getattr(node).map_err(node_status)?.size;
            Ok((buffer, eof))
        })
        .await
    }

    fn recycle_read_buffer(&self, buffer: Vec<u8>) {
        self.buffers.give_back(buffer);
    }

    async fn readdirplus(
        &self,
        dirid: &NodeHandle,
        cookie: u64,
    ) -> Result<impl ReadDirPlusIterator<NodeHandle>, nfsstat3> {
        Listing::start(Arc::clone(&self.vfs), dirid.node(), cookie, self.fsid).await
    }

    async fn access(&self, id: &NodeHandle, requested: u32) -> Result<u32, nfsstat3> {
        let node = id.node();
        let attr = self
            .core(move |vfs| vfs.getattr(node).map_err(node_status))
            .await?;
        Ok(requested & access_bits(&attr))
    }

    async fn readlink(&self, _: &NodeHandle) -> Result<nfspath3<'_>, nfsstat3> {
        Err(nfsstat3::NFS3ERR_NOTSUPP)
    }

    async fn fsinfo(&self, root: &NodeHandle) -> Result<FSINFO3resok, nfsstat3> {
        let attr = self.attr_of(root.node()).await;
        Ok(FSINFO3resok {
            obj_attributes: attr.map_or(post_op_attr::None, post_op_attr::Some),
            rtmax: MAX_IO,
            rtpref: MAX_IO,
            rtmult: 4096,
            wtmax: MAX_IO,
            wtpref: MAX_IO,
            wtmult: 4096,
            dtpref: 64 * 1024,
            // The core's offsets are u64, files are as large as their disk allows.
            maxfilesize: i64::MAX as u64,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            // No SYMLINK and no LINK: the catalog has neither.
            properties: FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        })
    }

    async fn fsstat(&self, root: &NodeHandle) -> Result<FSSTAT3resok, nfsstat3> {
        let obj_attributes = self
            .attr_of(root.node())
            .await
            .map_or(post_op_attr::None, post_op_attr::Some);
        let fs = self.core(|vfs| vfs.statfs().map_err(status)).await?;
        Ok(FSSTAT3resok {
            obj_attributes,
            tbytes: fs.blocks.saturating_mul(fs.block_size),
            fbytes: fs.blocks_free.saturating_mul(fs.block_size),
            abytes: fs.blocks_available.saturating_mul(fs.block_size),
            tfiles: fs.files.saturating_add(fs.files_free),
            ffiles: fs.files_free,
            afiles: fs.files_free,
            invarsec: 0,
        })
    }

    async fn pathconf(&self, id: &NodeHandle) -> Result<PATHCONF3resok, nfsstat3> {
        let obj_attributes = self.attr_of(id.node()).await?;
        let name_max = self
            .core(|vfs| vfs.statfs().map_err(status))
            .await?
            .name_max;
        Ok(PATHCONF3resok {
            obj_attributes: post_op_attr::Some(obj_attributes),
            linkmax: 1,
            name_max: u32::try_from(name_max).unwrap_or(u32::MAX),
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
        })
    }
}

impl NfsFileSystem for CatalogFs {
    fn capabilities(&self) -> VFSCapabilities {
        if self.vfs.config().read_only {
            VFSCapabilities::ReadOnly
        } else {
            VFSCapabilities::ReadWrite
        }
    }

    async fn setattr(&self, id: &NodeHandle, setattr: sattr3) -> Result<fattr3, nfsstat3> {
        let node = id.node();
        let changes = set_attr(&setattr);
        let attr = self
            .core(move |vfs| vfs.setattr(node, changes, None).map_err(node_status))
            .await?;
        Ok(self.fattr(&attr))
    }

    async fn write(
        &self,
        id: &NodeHandle,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> Result<(fattr3, stable_how), nfsstat3> {
        let node = id.node();
        let (attr, committed) = self
            .core(|vfs| {
                vfs.write_node_at(node, offset, data).map_err(node_status)?;
                let committed = match stable {
                    stable_how::UNSTABLE => stable_how::UNSTABLE,
                    stable_how::DATA_SYNC | stable_how::FILE_SYNC => {
                        vfs.commit_node(node).map_err(node_status)?;
                        stable_how::FILE_SYNC
                    }
                };
                Ok((vfs.getattr(node).map_err(node_status)?, committed))
            })
            .await?;
        Ok((self.fattr(&attr), committed))
    }

    async fn create(
        &self,
        dirid: &NodeHandle,
        filename: &filename3<'_>,
        attr: sattr3,
    ) -> Result<(NodeHandle, fattr3), nfsstat3> {
        self.create_file(dirid, filename, attr, false).await
    }

    async fn create_guarded(
        &self,
        dirid: &NodeHandle,
        filename: &filename3<'_>,
        attr: sattr3,
    ) -> Result<(NodeHandle, fattr3), nfsstat3> {
        self.create_file(dirid, filename, attr, true).await
    }

    async fn create_exclusive(
        &self,
        dirid: &NodeHandle,
        filename: &filename3<'_>,
        createverf: createverf3,
    ) -> Result<NodeHandle, nfsstat3> {
        let (dir, name) = (dirid.node(), file_name(filename)?);
        let mtime_ns = verifier_mtime(createverf);
        let id = self
            .core(move |vfs| match vfs.create(dir, name, true) {
                Ok((attr, handle)) => {
                    let kept = vfs.setattr(attr.id, SetAttr::mtime_ns(mtime_ns), Some(handle));
                    let released = vfs.release(handle);
                    kept.map_err(status)?;
                    released.map_err(status)?;
                    Ok(attr.id)
                }
                // A retry of a create that succeeded: the file still has its verifier.
                Err(VfsError::Exists(what)) => match vfs.lookup(dir, name) {
                    Ok(attr) if attr.kind == NodeKind::File && attr.mtime_ns == mtime_ns => {
                        Ok(attr.id)
                    }
                    _ => Err(status(VfsError::Exists(what))),
                },
                Err(err) => Err(in_dir(vfs, dir, err)),
            })
            .await?;
        Ok(NodeHandle::new(id))
    }

    async fn mkdir(
        &self,
        dirid: &NodeHandle,
        dirname: &filename3<'_>,
    ) -> Result<(NodeHandle, fattr3), nfsstat3> {
        let (dir, name) = (dirid.node(), file_name(dirname)?);
        let attr = self
            .core(move |vfs| vfs.mkdir(dir, name).map_err(|err| in_dir(vfs, dir, err)))
            .await?;
        Ok((NodeHandle::new(attr.id), self.fattr(&attr)))
    }

    async fn remove(&self, dirid: &NodeHandle, filename: &filename3<'_>) -> Result<(), nfsstat3> {
        let (dir, name) = (dirid.node(), file_name(filename)?);
        self.core(move |vfs| vfs.unlink(dir, name).map_err(|err| in_dir(vfs, dir, err)))
            .await
    }

    async fn rmdir(&self, dirid: &NodeHandle, dirname: &filename3<'_>) -> Result<(), nfsstat3> {
        let (dir, name) = (dirid.node(), file_name(dirname)?);
        self.core(move |vfs| vfs.rmdir(dir, name).map_err(|err| in_dir(vfs, dir, err)))
            .await
    }

    async fn rename<'a>(
        &self,
        from_dirid: &NodeHandle,
        from_filename: &filename3<'a>,
        to_dirid: &NodeHandle,
        to_filename: &filename3<'a>,
    ) -> Result<(), nfsstat3> {
        let (from, from_name) = (from_dirid.node(), file_name(from_filename)?);
        let (to, to_name) = (to_dirid.node(), file_name(to_filename)?);
        self.core(move |vfs| {
            vfs.rename(from, from_name, to, to_name, RenameMode::Replace)
                .map_err(|err| match err {
                    VfsError::NotFound(_) if vfs.getattr(to).is_err() => nfsstat3::NFS3ERR_STALE,
                    err => in_dir(vfs, from, err),
                })
        })
        .await
    }

    async fn symlink<'a>(
        &self,
        _: &NodeHandle,
        _: &filename3<'a>,
        _: &nfspath3<'a>,
        _: &sattr3,
    ) -> Result<(NodeHandle, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_NOTSUPP)
    }

    async fn commit(&self, id: &NodeHandle, _offset: u64, _count: u32) -> Result<(), nfsstat3> {
        // The whole file is committed whatever the range: one fsync covers it.
        let node = id.node();
        self.core(move |vfs| vfs.commit_node(node).map_err(node_status))
            .await
    }
}

/// A READ reply's bytes: read straight into the vector's reserved, unfilled room, so
/// that nothing is zeroed or copied before the server crate sends it.
struct Reply(Vec<u8>);

impl ReadSink for Reply {
    fn read_from(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        // `Vec::with_capacity(len)` has exactly that room, so at most `len` is read.
        debug_assert!(self.0.capacity() - self.0.len() <= len);
        Ok(rustix::io::pread(
            file,
            rustix::buffer::spare_capacity(&mut self.0),
            offset,
        )?)
    }

    fn take(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let len = bytes.len().min(self.0.capacity() - self.0.len());
        self.0.extend_from_slice(&bytes[..len]);
        Ok(len)
    }
}
