//! Ids of the files kept out of the catalog.
//!
//! Catalog ids are SQLite rowids, at most `i64::MAX`, so every id with bit 63 set is
//! free for files the catalog does not hold. Such an id is made from the directory
//! and the name alone, so that it is the same after a restart (an NFS file handle
//! carries it): bit 63, the directory's id in bits 32 to 62, and a 32-bit FNV-1a
//! hash of the name below. Directories whose id does not fit (2³¹ − 1 and above)
//! keep no files aside.

use crate::node::NodeId;

/// The bit no catalog id has.
const OUTSIDE: u64 = 1 << 63;

/// The largest directory id an outside id can hold, exclusive: the all-ones field is
/// left unused, so that `u64::MAX` names nothing.
const DIR_LIMIT: u64 = (1 << 31) - 1;

/// The id of `name` in directory `dir`; `None` when `dir` is too large to be part of one.
pub(crate) fn outside_id(dir: NodeId, name: &str) -> Option<NodeId> {
    let dir = dir.get();
    (dir < DIR_LIMIT).then(|| NodeId::from_raw_outside(OUTSIDE | dir << 32 | u64::from(hash(name))))
}

/// The directory and name hash of an outside id; `None` for any other number.
pub(crate) fn split(raw: u64) -> Option<(NodeId, u32)> {
    if raw & OUTSIDE == 0 {
        return None;
    }
    let dir = (raw & !OUTSIDE) >> 32;
    let dir = NodeId::new(dir).filter(|_| dir < DIR_LIMIT)?;
    Some((dir, raw as u32))
}

/// The 32-bit FNV-1a hash of `name`: fixed by its definition, so ids outlive any
/// change of Rust's own hashers.
pub(crate) fn hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_ids_round_trip_and_never_meet_catalog_ids() {
        let dir = NodeId::new(1234).unwrap();
        let id = outside_id(dir, "._clip.mov").unwrap();
        assert!(!id.in_catalog());
        assert_eq!(split(id.get()), Some((dir, hash("._clip.mov"))));
        assert_eq!(NodeId::new(id.get()), Some(id));
        assert_eq!(split(i64::MAX as u64), None);
        assert_eq!(split(u64::MAX), None);
        assert_eq!(split(OUTSIDE | 5), None, "no directory 0");
        assert_eq!(
            outside_id(NodeId::new(DIR_LIMIT).unwrap(), ".DS_Store"),
            None
        );
        // FNV-1a's published test vectors.
        assert_eq!(hash(""), 0x811c_9dc5);
        assert_eq!(hash("a"), 0xe40c_292c);
        assert_eq!(hash("foobar"), 0xbf9c_f968);
    }
}
