//! Times the catalog has no column for: when this `Vfs` renamed a node or set a
//! directory's times (their ctime),
//! and when another program changed a directory's entries without recording it.
//!
//! The core records a directory's mtime with every change it makes to its entries.
//! Another program writing the catalog may not; to keep such a directory from
//! looking unchanged to clients that cache it by its times (NFS clients above all),
//! the core remembers a fingerprint of the entries (ids and names) of every
//! directory whose attributes it reported. When an outside commit is noticed, each
//! such directory's fingerprint is taken again the next time its attributes are
//! asked for; a different one means its entries changed, and its times become the
//! moment that was seen. The core's own changes update the fingerprints as they
//! commit, so they never count as outside ones. A fingerprint that was forgotten
//! (the table is bounded) or raced with a write can only make a directory look
//! changed when it is not, never the reverse.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::node::NodeId;

/// What is known of a directory's entries.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// The sum of its entries' [`entry_hash`]es.
    fingerprint: u64,
    /// The outside-change count when the fingerprint was last compared.
    epoch: u64,
    /// When a change of its entries by another program was seen (0: never).
    changed_ns: i64,
}

/// The times of renames and of outside directory changes seen by one `Vfs`.
///
/// Both tables are read on every `getattr`, so they are read-locked maps with a
/// lock-free test for the common case (nothing renamed; no outside commit since a
/// directory was last compared), bounded by dropping an arbitrary entry when full.
pub(crate) struct Times {
    /// The ctime of each node renamed, or directory whose times were set, through
    /// this `Vfs`.
    changed: Bounded<i64>,
    /// Whether `changed` has ever held anything.
    any_changed: AtomicBool,
    /// Directories whose attributes were reported.
    seen: Bounded<Seen>,
    /// Outside commits noticed so far.
    epoch: AtomicU64,
}

impl Times {
    /// Remembers at most `capacity` status changes and directories.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            changed: Bounded::new(capacity),
            any_changed: AtomicBool::new(false),
            seen: Bounded::new(capacity),
            epoch: AtomicU64::new(0),
        }
    }

    /// Another program committed to the catalog.
    pub fn outside_change(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// `node` was renamed, or its times set, at `now_ns`: its ctime.
    pub fn status_changed(&self, node: NodeId, now_ns: i64) {
        self.changed.put(node, now_ns);
        self.any_changed.store(true, Ordering::Release);
    }

    /// When that last happened to `node` through this `Vfs`, if it did.
    pub fn status_changed_at(&self, node: NodeId) -> Option<i64> {
        if !self.any_changed.load(Ordering::Acquire) {
            return None;
        }
        self.changed.get(node)
    }

    /// When another program was last seen changing the entries of `dir` (0: never).
    /// `fingerprint` reads the directory's entries from the catalog (the sum of their
    /// [`entry_hash`]es); it is called when nothing is known of `dir` yet and after an
    /// outside commit, at most once per commit. `None` (the catalog could not be read)
    /// leaves what is known as it is.
    pub fn outside_change_of(&self, dir: NodeId, fingerprint: impl FnOnce() -> Option<u64>) -> i64 {
        let epoch = self.epoch.load(Ordering::Acquire);
        let known = self.seen.get(dir);
        if let Some(seen) = known
            && seen.epoch == epoch
        {
            return seen.changed_ns;
        }
        let Some(fingerprint) = fingerprint() else {
            return known.map_or(0, |seen| seen.changed_ns);
        };
        let changed_ns = match known {
            Some(seen) if seen.fingerprint != fingerprint => now_ns(),
            Some(seen) => seen.changed_ns,
            None => 0,
        };
        self.seen.put(
            dir,
            Seen {
                fingerprint,
                epoch,
                changed_ns,
            },
        );
        changed_ns
    }

    /// This `Vfs` added entry `name` (node `id`) to `dir`.
    pub fn added(&self, dir: NodeId, id: NodeId, name: &str) {
        self.seen.update(dir, |seen| {
            seen.fingerprint = seen
                .fingerprint
                .wrapping_add(entry_hash(id.sql(), name.as_bytes()));
        });
    }

    /// This `Vfs` removed entry `name` (node `id`) from `dir`.
    pub fn removed(&self, dir: NodeId, id: NodeId, name: &str) {
        self.seen.update(dir, |seen| {
            seen.fingerprint = seen
                .fingerprint
                .wrapping_sub(entry_hash(id.sql(), name.as_bytes()));
        });
    }
}

/// A map by node of at most `capacity` values, read under a shared lock; when full,
/// an arbitrary entry makes room.
struct Bounded<T> {
    map: RwLock<HashMap<NodeId, T, foldhash::fast::RandomState>>,
    capacity: usize,
}

impl<T: Copy> Bounded<T> {
    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            map: RwLock::new(HashMap::default()),
            capacity: capacity.get(),
        }
    }

    fn get(&self, id: NodeId) -> Option<T> {
        self.map.read().get(&id).copied()
    }

    fn put(&self, id: NodeId, value: T) {
        let mut map = self.map.write();
        if map.len() >= self.capacity
            && !map.contains_key(&id)
            && let Some(&evicted) = map.keys().next()
        {
            map.remove(&evicted);
        }
        map.insert(id, value);
    }

    fn update(&self, id: NodeId, change: impl FnOnce(&mut T)) {
        if let Some(value) = self.map.write().get_mut(&id) {
            change(value);
        }
    }
}

/// The hash of one directory entry, by its row id and name bytes. A directory's
/// fingerprint is the wrapping sum of its entries' hashes, so that one entry more or
/// less changes it by that entry's hash alone.
pub(crate) fn entry_hash(id: i64, name: &[u8]) -> u64 {
    // Fixed keys: the same entry hashes the same in every call of this process.
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    name.hash(&mut hasher);
    hasher.finish()
}

/// Now, in ns since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }

    fn fingerprint(entries: &[(i64, &str)]) -> u64 {
        entries.iter().fold(0, |sum, (id, name)| {
            sum.wrapping_add(entry_hash(*id, name.as_bytes()))
        })
    }

    fn times() -> Times {
        Times::new(NonZeroUsize::new(16).unwrap())
    }

    #[test]
    fn own_changes_keep_the_fingerprint_in_step() {
        let times = times();
        let before = fingerprint(&[(2, "a"), (3, "b")]);
        assert_eq!(times.outside_change_of(id(1), || Some(before)), 0);
        times.added(id(1), id(4), "c");
        times.removed(id(1), id(2), "a");
        times.outside_change();
        let after = fingerprint(&[(3, "b"), (4, "c")]);
        assert_eq!(times.outside_change_of(id(1), || Some(after)), 0);
    }

    #[test]
    fn an_outside_change_is_seen_once_and_kept() {
        let times = times();
        let before = fingerprint(&[(2, "a")]);
        times.outside_change_of(id(1), || Some(before));
        times.outside_change();
        let renamed = fingerprint(&[(2, "b")]);
        let seen = times.outside_change_of(id(1), || Some(renamed));
        assert!(seen > 0);
        // Until the next outside commit the catalog is not asked again.
        assert_eq!(times.outside_change_of(id(1), || unreachable!()), seen);
        times.outside_change();
        assert_eq!(times.outside_change_of(id(1), || Some(renamed)), seen);
    }

    #[test]
    fn status_changes_are_remembered() {
        let times = times();
        assert_eq!(times.status_changed_at(id(5)), None);
        times.status_changed(id(5), 42);
        assert_eq!(times.status_changed_at(id(5)), Some(42));
    }
}
