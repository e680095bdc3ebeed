//! readdir offsets: listings resumed from the last offset handed out, across
//! entries added and removed between calls, and across big directories.

mod common;

use std::collections::BTreeSet;

use common::{assert_msg, expect_err, list, raw_catalog};
use markbase_testkit::RawCatalog;
use markbase_vfs::{NodeId, NodeKind, Vfs, VfsError, readdir::DirEntry};

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

/// One readdir call from `offset` that takes at most `k` entries.
fn page(vfs: &Vfs, dir: NodeId, offset: u64, k: usize) -> Vec<DirEntry> {
    let mut got = Vec::new();
    vfs.readdir(dir, offset, |entry| {
        if got.len() == k {
            return false;
        }
        got.push(entry.clone());
        true
    })
    .unwrap_or_else(|err| panic!("readdir {dir} from {offset}: {err}"));
    got
}

/// The whole listing of `dir` in calls of at most `k` entries, each resumed from
/// the offset of the last entry of the previous call.
fn paged(vfs: &Vfs, dir: NodeId, k: usize) -> Vec<DirEntry> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let got = page(vfs, dir, offset, k);
        let Some(last) = got.last() else { return all };
        offset = last.offset;
        all.extend(got);
    }
}

/// Compares long listings with a short message: the first difference.
#[track_caller]
fn assert_names(got: &[String], expected: &[String], what: &str) {
    if let Some(at) = markbase_testkit::first_difference(got, expected) {
        panic!(
            "{what}: {} names listed, {} expected; first difference at {at}: {:?} instead of {:?}",
            got.len(),
            expected.len(),
            got.get(at),
            expected.get(at)
        );
    }
}

fn names_of(entries: &[DirEntry]) -> Vec<String> {
    entries.iter().map(|e| e.name.to_string()).collect()
}

/// A directory (id 2, "/d") with `n` files named `n000`, `n001`, ... (ids from 100).
fn numbered_dir(raw: &RawCatalog, n: usize) {
    raw.conn.execute_batch("BEGIN").unwrap();
    raw.dir(2, 1, "d").unwrap();
    for i in 0..n {
        raw.file(100 + i as i64, 2, &format!("n{i:03}"), &[])
            .unwrap();
    }
    raw.conn.execute_batch("COMMIT").unwrap();
}

#[test]
fn paged_listings_resume_from_the_last_offset() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.conn.execute_batch("BEGIN").unwrap();
    let names = [
        "Ärger",
        "zebra",
        "Zebra",
        "日本語",
        "café ☕",
        "a b",
        "a",
        "ab",
        "A",
        "…",
        "-dash",
        "0",
    ];
    for (i, name) in names.iter().enumerate() {
        if i % 3 == 0 {
            raw.dir(10 + i as i64, 1, name).unwrap();
        } else {
            raw.file(10 + i as i64, 1, name, &[]).unwrap();
        }
    }
    for i in 0..40 {
        raw.file(100 + i, 1, &format!("clip {i:02}.mov"), &[])
            .unwrap();
    }
    raw.conn.execute_batch("COMMIT").unwrap();
    let vfs = common::open(&raw.path);

    let full = list(&vfs, NodeId::ROOT);
    assert_eq!(full.len(), names.len() + 40);
    // Byte order of the names, each listed once, with its kind.
    let mut sorted = names_of(&full);
    sorted.sort();
    assert_eq!(names_of(&full), sorted);
    let mut unique = sorted.clone();
    unique.dedup();
    assert_eq!(unique.len(), full.len());
    for entry in &full {
        assert!(entry.offset >= 3, "offsets 0-2 are the start: {entry:?}");
        assert_eq!(entry.offset, entry.id.get() + 2);
        let expected = if (10..22).contains(&entry.id.get()) && (entry.id.get() - 10) % 3 == 0 {
            NodeKind::Dir
        } else {
            NodeKind::File
        };
        assert_eq!(entry.kind, expected, "{entry:?}");
        assert_eq!(vfs.lookup(NodeId::ROOT, &entry.name).unwrap().id, entry.id);
    }

    for k in [1, 2, 3, 7, 51, 52, 100] {
        assert_eq!(paged(&vfs, NodeId::ROOT, k), full, "pages of {k}");
    }
    // A callback that refuses the first entry takes nothing and loses nothing.
    assert!(page(&vfs, NodeId::ROOT, 0, 0).is_empty());
    assert_eq!(page(&vfs, NodeId::ROOT, 0, 1)[0], full[0]);
    // Resuming from any entry's offset continues right after it.
    for (i, entry) in full.iter().enumerate() {
        assert_eq!(
            page(&vfs, NodeId::ROOT, entry.offset, usize::MAX),
            full[i + 1..],
            "after {i}"
        );
    }
}

#[test]
fn offsets_0_1_and_2_all_mean_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    numbered_dir(&raw, 20);
    let vfs = common::open(&raw.path);
    let full = list(&vfs, id(2));
    assert_eq!(full.len(), 20);
    for offset in [0, 1, 2] {
        assert_eq!(
            page(&vfs, id(2), offset, usize::MAX),
            full,
            "offset {offset}"
        );
        assert_eq!(page(&vfs, id(2), offset, 5), full[..5], "offset {offset}");
    }
}

#[test]
fn offsets_that_name_no_position_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    numbered_dir(&raw, 5);
    raw.dir(3, 1, "other").unwrap();
    raw.file(50, 3, "elsewhere", &[]).unwrap();
    let vfs = common::open(&raw.path);
    let foreign = list(&vfs, id(3))[0].offset;
    for offset in [foreign, 9_999, u64::MAX, i64::MAX as u64 + 2] {
        let err = expect_err(vfs.readdir(id(2), offset, |_| true));
        assert!(
            matches!(err, VfsError::StaleOffset { .. }),
            "offset {offset}: {err:?}"
        );
        assert_eq!(err.errno(), libc::EINVAL);
        assert_msg(&err, &[&format!("offset {offset}"), "directory 2"]);
    }
    // Not a directory, or no such node.
    let err = expect_err(vfs.readdir(id(100), 0, |_| true));
    assert_eq!(err.errno(), libc::ENOTDIR);
    let err = expect_err(vfs.readdir(id(12_345), 0, |_| true));
    assert_eq!(err.errno(), libc::ENOENT);
}

/// Entries added and removed between calls, including the entry the caller
/// stopped at: every entry that survives appears exactly once, in order.
#[test]
fn entries_added_and_removed_between_calls() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    numbered_dir(&raw, 100);
    let vfs = common::open(&raw.path);
    let before: BTreeSet<String> = names_of(&list(&vfs, id(2))).into_iter().collect();

    let mut seen: Vec<String> = Vec::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut added_after_cursor: BTreeSet<String> = BTreeSet::new();
    let mut next_id = 1000;
    let mut offset = 0;
    for round in 0.. {
        let got = page(&vfs, id(2), offset, 17);
        let Some(last) = got.last().cloned() else {
            break;
        };
        seen.extend(names_of(&got));
        offset = last.offset;

        // Between calls, another connection (SQLite sees it as an outside change):
        // remove the entry we stopped at, one listed before it and one not yet listed;
        // add one before the position and two after it.
        let cursor = last.name.to_string();
        let listed_earlier = seen[seen.len() / 2].clone();
        let ahead = before
            .iter()
            .filter(|n| **n > cursor && !removed.contains(*n))
            .nth(4)
            .cloned();
        let conn = &raw.conn;
        for name in [Some(&cursor), Some(&listed_earlier), ahead.as_ref()]
            .into_iter()
            .flatten()
        {
            conn.execute(
                "DELETE FROM nodes WHERE parent_id = 2 AND name = ?1",
                [name],
            )
            .unwrap();
            removed.insert(name.clone());
        }
        for name in [
            format!("a-early-{round}"),
            format!("{cursor}-after"),
            format!("z-late-{round}"),
        ] {
            if name > cursor {
                added_after_cursor.insert(name.clone());
            }
            raw.file(next_id, 2, &name, &[]).unwrap();
            next_id += 1;
        }
    }

    // No entry twice, and the order never goes back.
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "the listing repeats or goes back");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    // Every entry that was there before and was never removed was listed.
    for name in before.iter().filter(|n| !removed.contains(*n)) {
        assert!(seen.contains(name), "{name} survived but was not listed");
    }
    // An entry removed before the listing reached it is not listed.
    let final_names: BTreeSet<String> = names_of(&list(&vfs, id(2))).into_iter().collect();
    for name in &seen {
        assert!(
            final_names.contains(name) || removed.contains(name),
            "{name} was listed but never existed"
        );
    }
    // The z-late entries, added beyond the position each time, are all listed except the
    // ones added after the listing ended.
    assert!(
        added_after_cursor
            .iter()
            .filter(|n| seen.contains(*n))
            .count()
            > 2
    );
}

#[test]
fn ten_thousand_entries_list_completely_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.conn.execute_batch("BEGIN").unwrap();
    raw.dir(2, 1, "big").unwrap();
    let mut stmt = raw
        .conn
        .prepare("INSERT INTO nodes (id, parent_id, name, kind) VALUES (?1, 2, ?2, 'file')")
        .unwrap();
    // Ids in a different order from names, so that neither decides alone.
    for i in 0..10_000i64 {
        let id = 10 + (i * 7_919) % 10_000;
        stmt.execute(rusqlite::params![id, format!("clip-{i:05}.mov")])
            .unwrap();
    }
    drop(stmt);
    raw.conn.execute_batch("COMMIT").unwrap();
    let vfs = common::open(&raw.path);

    let full = list(&vfs, id(2));
    assert_eq!(full.len(), 10_000);
    for (i, entry) in full.iter().enumerate() {
        assert_eq!(*entry.name, format!("clip-{i:05}.mov"));
    }
    assert_eq!(paged(&vfs, id(2), 97), full);
    assert_eq!(paged(&vfs, id(2), 512), full);

    // Resumed by a Vfs that never handed out the offsets (a restarted server):
    // positions come from the rows themselves.
    let other = common::open(&raw.path);
    let mut all = Vec::new();
    let mut offset = 0;
    let mut turn = 0;
    loop {
        let vfs = if turn % 2 == 0 { &vfs } else { &other };
        turn += 1;
        let got = page(vfs, id(2), offset, 333);
        let Some(last) = got.last() else { break };
        offset = last.offset;
        all.extend(got);
    }
    assert_eq!(all, full);
    let stat = vfs.statfs().unwrap();
    assert_eq!(stat.files, 10_009);
}

/// Rows that are skipped (bad names of every type) at the end of a catalog page,
/// and at the resume position: the listing moves past them.
#[test]
fn bad_rows_at_page_boundaries_do_not_end_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.conn.execute_batch("BEGIN").unwrap();
    raw.dir(2, 1, "d").unwrap();
    let mut expected = Vec::new();
    for i in 0..1200i64 {
        let name = format!("n{i:04}");
        raw.file(100 + i, 2, &name, &[]).unwrap();
        expected.push(name);
    }
    // Text that is not UTF-8, sorting right after n0510 (the 512th row), after
    // n1020, and a blob name (blobs sort after all text).
    raw.conn
        .execute_batch(
            "INSERT INTO nodes (id, parent_id, name, kind) VALUES (5000, 2, CAST(x'6e30353130ff' AS TEXT), 'file');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (5001, 2, CAST(x'6e31303230ff' AS TEXT), 'file');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (5002, 2, x'00', 'file');
             COMMIT;",
        )
        .unwrap();
    let vfs = common::open(&raw.path);
    assert_names(&names_of(&list(&vfs, id(2))), &expected, "one call");
    for k in [1, 511, 512, 513] {
        assert_names(
            &names_of(&paged(&vfs, id(2), k)),
            &expected,
            &format!("pages of {k}"),
        );
    }
    let err = expect_err(vfs.getattr(id(5000)));
    assert_msg(&err, &["node 5000 is invalid", "not valid UTF-8"]);
    let err = expect_err(vfs.getattr(id(5002)));
    assert_msg(&err, &["node 5002 is invalid", "name is a 1-byte blob"]);
}
