//! READDIR and READDIRPLUS: a directory's entries from a cookie on, fetched from the
//! core a page at a time as the server crate fills its reply.
//!
//! A cookie is the core's resumable offset ([`DirEntry::offset`]): 1 and 2 are `.`
//! and `..`, every other the offset after an entry. It stays valid whatever is added
//! or removed in between, so no listing ever needs `BAD_COOKIE`.
//!
//! [`DirEntry::offset`]: markbase_vfs::readdir::DirEntry::offset

use std::collections::VecDeque;
use std::sync::Arc;

use markbase_vfs::{NodeId, NodeKind, Vfs};
use nfs3_server::nfs3_types::nfs3::{fattr3, nfsstat3};
use nfs3_server::vfs::{DirEntryPlus, NextResult, ReadDirPlusIterator};

use crate::attr::fattr;
use crate::error::node_status;
use crate::handle::NodeHandle;

/// Entries fetched from the core at a time: more than a 32 KiB reply holds.
const PAGE: usize = 256;

/// The cookies of `.` and `..`.
const DOTS: [(u64, &str); 2] = [(1, "."), (2, "..")];

/// One listing of a directory, from a cookie on.
pub struct Listing {
    vfs: Arc<Vfs>,
    dir: NodeId,
    fsid: u64,
    /// Fetched and not yet handed over.
    entries: VecDeque<DirEntryPlus<NodeHandle>>,
    /// Where the next page starts; `None` once the core listed the last entry.
    next: Option<u64>,
}

impl Listing {
    /// The listing of `dir` after `cookie` (0: from the start), its first page fetched:
    /// a directory that is gone or is a file fails here.
    pub async fn start(
        vfs: Arc<Vfs>,
        dir: NodeId,
        cookie: u64,
        fsid: u64,
    ) -> Result<Self, nfsstat3> {
        let mut listing = Self {
            vfs,
            dir,
            fsid,
            entries: VecDeque::new(),
            next: Some(cookie),
        };
        listing.fetch().await?;
        Ok(listing)
    }

    /// Fetches the page at `self.next`.
    async fn fetch(&mut self) -> Result<(), nfsstat3> {
        let Some(from) = self.next else {
            return Ok(());
        };
        // In place, as every core call of the adapter runs (see `fs.rs`).
        let (page, next) =
            tokio::task::block_in_place(|| page(&self.vfs, self.dir, from, self.fsid))?;
        self.entries.extend(page);
        self.next = next;
        Ok(())
    }
}

/// Up to [`PAGE`] entries of `dir` after cookie `from`, and where the next page starts
/// (`None` at the end).
fn page(
    vfs: &Vfs,
    dir: NodeId,
    from: u64,
    fsid: u64,
) -> Result<(Vec<DirEntryPlus<NodeHandle>>, Option<u64>), nfsstat3> {
    let node = vfs.node(dir).map_err(node_status)?;
    if node.kind() != NodeKind::Dir {
        return Err(nfsstat3::NFS3ERR_NOTDIR);
    }
    let mut entries = Vec::with_capacity(PAGE);
    for (cookie, name) in DOTS.into_iter().filter(|(cookie, _)| from < *cookie) {
        let id = if name == "." {
            dir
        } else {
            node.parent.unwrap_or(dir)
        };
        let attr = vfs.getattr(id).map_err(node_status)?;
        entries.push(entry(id, name, cookie, fattr(&attr, fsid)));
    }
    let mut more = false;
    vfs.readdir_plus(dir, from, |found, attr| {
        if entries.len() == PAGE {
            more = true;
            return false;
        }
        entries.push(entry(
            found.id,
            &found.name,
            found.offset,
            fattr(attr, fsid),
        ));
        true
    })
    .map_err(node_status)?;
    let next = more.then(|| entries.last().map_or(from, |last| last.cookie));
    Ok((entries, next))
}

fn entry(id: NodeId, name: &str, cookie: u64, attr: fattr3) -> DirEntryPlus<NodeHandle> {
    DirEntryPlus {
        fileid: id.get(),
        name: name.as_bytes().to_vec().into(),
        cookie,
        name_attributes: Some(attr),
        name_handle: Some(NodeHandle::new(id)),
    }
}

impl ReadDirPlusIterator<NodeHandle> for Listing {
    async fn next(&mut self) -> NextResult<DirEntryPlus<NodeHandle>> {
        if self.entries.is_empty()
            && let Err(stat) = self.fetch().await
        {
            return NextResult::Err(stat);
        }
        match self.entries.pop_front() {
            Some(entry) => NextResult::Ok(entry),
            None => NextResult::Eof,
        }
    }
}
