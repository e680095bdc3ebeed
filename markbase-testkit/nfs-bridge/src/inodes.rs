//! [`Inodes`]: FUSE inode numbers (the NFS file ids) and the file handles behind them.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, PoisonError};

use fuse_backend_rs::api::filesystem::ROOT_ID;
use nfs3_client::nfs3_types::nfs3::{fileid3, nfs_fh3};

/// The file handle of every inode the kernel has been told about.
///
/// An inode number is the file's NFS file id, except that FUSE wants the root to be
/// [`ROOT_ID`]: the root's file id and `ROOT_ID` trade places, so the mapping stays one
/// to one. Handles are kept for the life of the mount (this bridge serves tests).
pub struct Inodes {
    root_fileid: fileid3,
    handles: Mutex<HashMap<u64, nfs_fh3>>,
}

impl Inodes {
    /// The table of an export whose root is `root` with file id `root_fileid`.
    pub fn new(root: nfs_fh3, root_fileid: fileid3) -> Self {
        Self {
            root_fileid,
            handles: Mutex::new(HashMap::from([(ROOT_ID, root)])),
        }
    }

    /// The inode number of the file with NFS file id `fileid`.
    pub fn inode(&self, fileid: fileid3) -> u64 {
        if fileid == self.root_fileid {
            ROOT_ID
        } else if fileid == ROOT_ID {
            self.root_fileid
        } else {
            fileid
        }
    }

    /// Remembers `fh` as the handle of the file with id `fileid`; its inode number.
    pub fn insert(&self, fileid: fileid3, fh: &nfs_fh3) -> u64 {
        let inode = self.inode(fileid);
        self.lock().insert(inode, fh.clone());
        inode
    }

    /// The handle of `inode`; `ESTALE` for one the kernel was never given.
    pub fn handle(&self, inode: u64) -> io::Result<nfs_fh3> {
        self.lock()
            .get(&inode)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, nfs_fh3>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fh(byte: u8) -> nfs_fh3 {
        nfs_fh3 {
            data: vec![byte].into(),
        }
    }

    #[test]
    fn the_root_and_root_id_trade_places_and_other_ids_stay() {
        let inodes = Inodes::new(fh(0), 7);
        assert_eq!(inodes.inode(7), ROOT_ID);
        assert_eq!(inodes.inode(ROOT_ID), 7);
        assert_eq!(inodes.inode(8), 8);
        assert_eq!(inodes.handle(ROOT_ID).unwrap(), fh(0));
        assert_eq!(inodes.insert(ROOT_ID, &fh(1)), 7);
        assert_eq!(inodes.handle(7).unwrap(), fh(1));
        assert_eq!(
            inodes.handle(9).unwrap_err().raw_os_error(),
            Some(libc::ESTALE)
        );
    }
}
