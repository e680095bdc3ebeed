//! NFS file handles: a node id and a check of it.
//!
//! The server crate puts its generation before these bytes; the adapter makes it the
//! catalog's id ([`markbase_vfs::Vfs::catalog_id`]), so a handle stays valid across a
//! restart of the server and one of another catalog is refused. The check (a hash of
//! the id) turns a handle whose bytes were made up or damaged into `BADHANDLE`,
//! where a valid id of a removed node is `STALE`.

use markbase_vfs::NodeId;
use nfs3_server::vfs::FileHandle;

/// The handle of one node: its id and the id's check, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHandle {
    bytes: [u8; 16],
}

impl NodeHandle {
    /// The handle of `node`.
    pub fn new(node: NodeId) -> Self {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&node.get().to_be_bytes());
        bytes[8..].copy_from_slice(&check(node.get()).to_be_bytes());
        Self { bytes }
    }

    /// The node it names.
    pub fn node(&self) -> NodeId {
        let raw = u64::from_be_bytes(self.bytes[..8].try_into().expect("8 bytes"));
        NodeId::new(raw).expect("checked when made")
    }
}

impl FileHandle for NodeHandle {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let raw = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let sum = u64::from_be_bytes(bytes[8..].try_into().ok()?);
        (sum == check(raw) && NodeId::new(raw).is_some()).then_some(Self { bytes })
    }
}

/// A check of node id `raw` (SplitMix64's finalizer: fixed by its definition, so
/// handles outlive a new build of the server).
fn check(raw: u64) -> u64 {
    let mut z = raw.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_names_its_node_and_refuses_other_bytes() {
        let node = NodeId::new(42).unwrap();
        let handle = NodeHandle::new(node);
        assert_eq!(NodeHandle::from_bytes(handle.as_bytes()), Some(handle));
        assert_eq!(handle.node(), node);

        let mut damaged = handle.as_bytes().to_vec();
        damaged[7] ^= 1;
        assert_eq!(
            NodeHandle::from_bytes(&damaged),
            None,
            "another id, same check"
        );
        assert_eq!(
            NodeHandle::from_bytes(&handle.as_bytes()[..8]),
            None,
            "short"
        );
        assert_eq!(NodeHandle::from_bytes(&[0; 16]), None, "id 0");
        let mut long = handle.as_bytes().to_vec();
        long.push(0);
        assert_eq!(NodeHandle::from_bytes(&long), None, "long");
    }
}
