//! Rows that break the schema's rules: parent cycles, duplicate siblings, bad
//! names, kinds and sizes. A bad row is skipped by readdir and named (by id) in
//! the error of a call that reaches it; nothing panics or hangs.

mod common;

use std::time::Duration;

use common::{CATALOG, assert_msg, expect_err, list, names, raw_catalog, read_all, within};
use markbase_testkit::RawCatalog;
use markbase_vfs::{NodeId, NodeKind, VfsError, schema::SCHEMA_SQL};

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

/// Walks the whole tree below the root with readdir and returns every path.
fn walk(vfs: &markbase_vfs::Vfs) -> Vec<String> {
    let mut paths = Vec::new();
    let mut dirs = vec![(NodeId::ROOT, String::new())];
    while let Some((dir, path)) = dirs.pop() {
        for entry in list(vfs, dir) {
            let child = format!("{path}/{}", entry.name);
            paths.push(child.clone());
            if entry.kind == NodeKind::Dir {
                dirs.push((entry.id, child));
            }
        }
    }
    paths.sort();
    paths
}

#[test]
fn parent_cycles_do_not_hang_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "photos").unwrap();
    raw.file(3, 2, "a.jpg", &["/nonexistent/a.jpg"]).unwrap();
    // 10 -> 11 -> 12 -> 10: a loop that does not reach the root.
    raw.conn
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (10, 12, 'x', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (11, 10, 'y', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (12, 11, 'z', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind, aliases_json)
                 VALUES (13, 12, 'in-loop.mov', 'file', '[\"/nonexistent/loop.mov\"]');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (20, 20, 'self', 'dir');",
        )
        .unwrap();
    let vfs = std::sync::Arc::new(common::open(&raw.path));

    // Walking from the root terminates and never meets the loop.
    let v = std::sync::Arc::clone(&vfs);
    let paths = within(
        Duration::from_secs(10),
        "walking a catalog with a cycle",
        move || walk(&v),
    );
    assert_eq!(paths, ["/photos", "/photos/a.jpg"]);

    // path_of on a node in the loop names the ids walked.
    let v = std::sync::Arc::clone(&vfs);
    let err = within(Duration::from_secs(10), "path_of in a cycle", move || {
        v.path_of(id(13))
    });
    let err = expect_err(err);
    assert!(
        matches!(&err, VfsError::ParentCycle { chain } if chain.first() == Some(&id(13))),
        "{err:?}"
    );
    assert_eq!(err.errno(), libc::ELOOP);
    assert_msg(&err, &["parent_id cycle", "13 -> 12 -> 11 -> 10 -> 12"]);

    let err = expect_err(vfs.path_of(id(20)));
    assert_msg(&err, &["parent_id cycle", "20 -> 20"]);
    assert_eq!(err.errno(), libc::ELOOP);

    // A file inside the loop: opening it fails and says why, naming the node.
    let err = expect_err(vfs.open_file(id(13)));
    assert!(matches!(err, VfsError::NoUsableAlias { .. }), "{err:?}");
    assert_msg(&err, &["#13", "node 13", "not found"]);

    // Nodes in the loop are still directories to readdir, which ends.
    let v = std::sync::Arc::clone(&vfs);
    let listed = within(Duration::from_secs(10), "readdir in a cycle", move || {
        names(&v, id(10))
    });
    assert_eq!(listed, ["y"]);
}

#[test]
fn duplicate_siblings_serve_the_lowest_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::write(media.join("low"), b"lowest id").unwrap();
    std::fs::write(media.join("high"), b"highest id").unwrap();
    // Schema v1 without the UNIQUE (parent_id, name) constraint.
    let sql = SCHEMA_SQL.replace(",\n  UNIQUE (parent_id, name)", "");
    assert_ne!(sql, SCHEMA_SQL, "the UNIQUE constraint was removed");
    let raw = RawCatalog::create(&dir.path().join(CATALOG), &sql).unwrap();
    // Inserted highest id first, so that neither rowid nor insertion order decides.
    raw.file(9, 1, "clip.mov", &["media/high"]).unwrap();
    raw.file(4, 1, "clip.mov", &["media/low"]).unwrap();
    raw.file(7, 1, "b.mov", &["media/low"]).unwrap();
    raw.dir(5, 1, "dup-dir").unwrap();
    raw.dir(3, 1, "dup-dir").unwrap();
    raw.file(6, 3, "inside.mov", &["media/low"]).unwrap();

    let vfs = common::open(&raw.path);
    let attr = vfs.lookup(NodeId::ROOT, "clip.mov").unwrap();
    assert_eq!(attr.id, id(4));
    assert_eq!(read_all(&vfs, attr.id), b"lowest id");
    assert_eq!(vfs.lookup_path("/clip.mov").unwrap().id, id(4));
    assert_eq!(vfs.lookup(NodeId::ROOT, "dup-dir").unwrap().id, id(3));
    assert_eq!(vfs.lookup_path("/dup-dir/inside.mov").unwrap().id, id(6));

    let entries = list(&vfs, NodeId::ROOT);
    let listed: Vec<(String, u64)> = entries
        .iter()
        .map(|e| (e.name.to_string(), e.id.get()))
        .collect();
    assert_eq!(
        listed,
        [
            ("b.mov".to_owned(), 7),
            ("clip.mov".to_owned(), 4),
            ("dup-dir".to_owned(), 3)
        ]
    );

    // Resuming right after the first of a duplicate pair does not list the second.
    let mut first = Vec::new();
    vfs.readdir(NodeId::ROOT, 0, |e| {
        first.push(e.clone());
        first.len() < 2
    })
    .unwrap();
    assert_eq!(first.len(), 2);
    let mut rest = Vec::new();
    vfs.readdir(NodeId::ROOT, first[1].offset, |e| {
        rest.push(e.name.to_string());
        true
    })
    .unwrap();
    assert_eq!(rest, ["dup-dir"]);
}

/// One bad row of each kind, among good ones.
struct BadRow {
    id: u64,
    /// The name to look the row up by, when it has one a request can carry.
    lookup: Option<&'static str>,
    /// What the InvalidNode message must say.
    reason: &'static str,
}

#[test]
fn bad_rows_are_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("ok.bin");
    std::fs::write(&media, b"fine").unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "a-good-dir").unwrap();
    raw.file(3, 1, "z-good-file", &[media.to_str().unwrap()])
        .unwrap();
    raw.insert(10, Some(1), "with/slash", "file", 0, "[]")
        .unwrap();
    raw.insert(11, Some(1), "with\0nul", "file", 0, "[]")
        .unwrap();
    raw.insert(12, Some(1), ".", "dir", 0, "[]").unwrap();
    raw.insert(13, Some(1), "..", "dir", 0, "[]").unwrap();
    raw.insert(14, Some(1), "", "file", 0, "[]").unwrap();
    raw.insert(19, Some(1), &"x".repeat(300), "file", 0, "[]")
        .unwrap();
    raw.insert(20, Some(1), "negative", "file", -5, "[]")
        .unwrap();
    raw.conn
        .execute_batch(
            "INSERT INTO nodes (id, parent_id, name, kind) VALUES (15, 1, x'626c6f62', 'file');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (16, 1, CAST(x'6261642dff' AS TEXT), 'file');
             PRAGMA ignore_check_constraints = ON;
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (17, 1, 'symlink-kind', 'symlink');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (18, 1, 'blob-kind', x'07');
             INSERT INTO nodes (id, parent_id, name, kind, size) VALUES (21, 1, 'text-size', 'file', 'big');
             PRAGMA ignore_check_constraints = OFF;
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (22, 17, 'under-bad-dir', 'file');",
        )
        .unwrap();
    let bad = [
        BadRow {
            id: 10,
            lookup: None,
            reason: "contains '/'",
        },
        BadRow {
            id: 11,
            lookup: None,
            reason: "NUL",
        },
        BadRow {
            id: 12,
            lookup: None,
            reason: "'.' and '..' are not names",
        },
        BadRow {
            id: 13,
            lookup: None,
            reason: "'.' and '..' are not names",
        },
        BadRow {
            id: 14,
            lookup: None,
            reason: "the name is empty",
        },
        BadRow {
            id: 15,
            lookup: None,
            reason: "name is a 4-byte blob, not text",
        },
        BadRow {
            id: 16,
            lookup: None,
            reason: "name is not valid UTF-8",
        },
        BadRow {
            id: 17,
            lookup: Some("symlink-kind"),
            reason: "kind \"symlink\" is neither 'dir' nor 'file'",
        },
        BadRow {
            id: 18,
            lookup: Some("blob-kind"),
            reason: "kind is a 1-byte blob, not text",
        },
        BadRow {
            id: 19,
            lookup: None,
            reason: "300 bytes long",
        },
        BadRow {
            id: 20,
            lookup: Some("negative"),
            reason: "size -5 is negative",
        },
        BadRow {
            id: 21,
            lookup: Some("text-size"),
            reason: "size is the text \"big\", not an integer",
        },
    ];
    let vfs = common::open(&raw.path);

    // readdir lists only the good rows, in one call and entry by entry.
    assert_eq!(names(&vfs, NodeId::ROOT), ["a-good-dir", "z-good-file"]);
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let mut got = None;
        vfs.readdir(NodeId::ROOT, offset, |e| {
            got = Some(e.clone());
            false
        })
        .unwrap();
        let Some(entry) = got else { break };
        offset = entry.offset;
        paged.push(entry.name.to_string());
    }
    assert_eq!(paged, ["a-good-dir", "z-good-file"]);

    for row in &bad {
        let check = |err: VfsError, call: &str| {
            assert!(
                matches!(err, VfsError::InvalidNode { id, .. } if id == row.id as i64),
                "{call} of node {}: {err:?}",
                row.id
            );
            assert_eq!(err.errno(), libc::EIO);
            assert_msg(&err, &[&format!("node {} is invalid", row.id), row.reason]);
        };
        check(expect_err(vfs.getattr(id(row.id))), "getattr");
        check(expect_err(vfs.node(id(row.id))), "node");
        check(expect_err(vfs.open_file(id(row.id))), "open_file");
        check(expect_err(vfs.path_of(id(row.id))), "path_of");
        if let Some(name) = row.lookup {
            check(expect_err(vfs.lookup(NodeId::ROOT, name)), "lookup");
            check(
                expect_err(vfs.lookup_path(&format!("/{name}"))),
                "lookup_path",
            );
        }
    }

    // Names a request can never carry are refused as names, before the catalog.
    for name in ["with/slash", "with\0nul", ".", "..", ""] {
        let err = expect_err(vfs.lookup(NodeId::ROOT, name));
        assert!(
            matches!(err, VfsError::InvalidName { .. }),
            "{name:?}: {err:?}"
        );
        assert_eq!(err.errno(), libc::EINVAL);
    }
    let err = expect_err(vfs.lookup(NodeId::ROOT, &"x".repeat(300)));
    assert_eq!(err.errno(), libc::ENAMETOOLONG);
    // A blob name is not the text it spells.
    let err = expect_err(vfs.lookup(NodeId::ROOT, "blob"));
    assert!(matches!(err, VfsError::NotFound(_)), "{err:?}");

    // A child of an invalid directory: reachable by id, but its path names the bad parent.
    let err = expect_err(vfs.path_of(id(22)));
    assert!(
        matches!(err, VfsError::InvalidNode { id: 17, .. }),
        "{err:?}"
    );
    let err = expect_err(vfs.readdir(id(17), 0, |_| true));
    assert!(
        matches!(err, VfsError::InvalidNode { id: 17, .. }),
        "{err:?}"
    );

    // The good rows still work.
    assert_eq!(
        read_all(&vfs, vfs.lookup(NodeId::ROOT, "z-good-file").unwrap().id),
        b"fine"
    );
    assert_eq!(vfs.getattr(id(2)).unwrap().kind, NodeKind::Dir);
}

#[test]
fn duplicate_name_whose_lower_row_is_invalid_serves_the_valid_sibling() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good"), b"valid sibling").unwrap();
    let sql = SCHEMA_SQL.replace(",\n  UNIQUE (parent_id, name)", "");
    let raw = RawCatalog::create(&dir.path().join(CATALOG), &sql).unwrap();
    raw.insert(4, Some(1), "clip.mov", "file", -1, "[\"good\"]")
        .unwrap();
    raw.file(9, 1, "clip.mov", &["good"]).unwrap();

    let vfs = common::open(&raw.path);
    // readdir passes over the invalid row 4 and lists node 9; lookup agrees.
    let listed: Vec<u64> = list(&vfs, NodeId::ROOT)
        .iter()
        .map(|e| e.id.get())
        .collect();
    assert_eq!(listed, [9]);
    let attr = vfs.lookup(NodeId::ROOT, "clip.mov").unwrap();
    assert_eq!(attr.id, id(9));
    assert_eq!(read_all(&vfs, attr.id), b"valid sibling");

    // With no valid sibling left, the lookup names the invalid row.
    raw.conn
        .execute("DELETE FROM nodes WHERE id = 9", [])
        .unwrap();
    let err = expect_err(vfs.lookup(NodeId::ROOT, "clip.mov"));
    assert!(matches!(err, VfsError::InvalidNode { id: 4, .. }), "{err}");
    assert_msg(&err, &["node 4", "size -1 is negative"]);
}

/// Lookup and readdir serve the same one of two same-named siblings wherever the
/// pair falls: here the invalid lower row ends readdir's first page of 512 rows, and
/// its valid sibling starts the next.
#[test]
fn duplicate_name_split_across_listing_pages_serves_what_lookup_serves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good"), b"valid sibling").unwrap();
    let sql = SCHEMA_SQL.replace(",\n  UNIQUE (parent_id, name)", "");
    let raw = RawCatalog::create(&dir.path().join(CATALOG), &sql).unwrap();
    raw.conn.execute_batch("BEGIN").unwrap();
    for i in 0..511 {
        raw.file(100 + i, 1, &format!("a{i:03}"), &["good"])
            .unwrap();
    }
    raw.conn.execute_batch("COMMIT").unwrap();
    // Rows 512 and 513 in (name, id) order.
    raw.insert(2, Some(1), "b", "file", -1, "[\"good\"]")
        .unwrap();
    raw.file(3000, 1, "b", &["good"]).unwrap();
    raw.file(3001, 1, "b", &["good"]).unwrap();
    raw.file(3002, 1, "c", &["good"]).unwrap();

    let vfs = common::open(&raw.path);
    let entries = list(&vfs, NodeId::ROOT);
    let tail: Vec<(String, u64)> = entries[511..]
        .iter()
        .map(|e| (e.name.to_string(), e.id.get()))
        .collect();
    assert_eq!(
        tail,
        [("b".to_owned(), 3000), ("c".to_owned(), 3002)],
        "{} entries",
        entries.len()
    );
    assert_eq!(entries.len(), 513);
    assert_eq!(vfs.lookup(NodeId::ROOT, "b").unwrap().id, id(3000));
    assert_eq!(vfs.lookup_path("/b").unwrap().id, id(3000));
    // Resumed after the listed "b", the listing goes on with "c", never the hidden 3001.
    let mut rest = Vec::new();
    vfs.readdir(NodeId::ROOT, entries[511].offset, |e| {
        rest.push(e.id.get());
        true
    })
    .unwrap();
    assert_eq!(rest, [3002]);
}

/// A node whose parent chain breaks before the root has no path: the error names the
/// row where it breaks and why, and walking from the root never meets it.
#[test]
fn path_of_names_where_a_parent_chain_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.file(2, 1, "clip.mov", &["/nonexistent/clip.mov"])
        .unwrap();
    raw.conn
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (30, 99, 'orphaned', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (31, 30, 'child', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (40, 2, 'in-a-file', 'dir');",
        )
        .unwrap();
    let vfs = common::open(&raw.path);
    assert_eq!(walk(&vfs), ["/clip.mov"]);

    let err = expect_err(vfs.path_of(id(31)));
    assert!(
        matches!(err, VfsError::InvalidNode { id: 30, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "node 30 is invalid: its parent_id 99 names no node"
    );
    let err = expect_err(vfs.path_of(id(40)));
    assert_eq!(
        err.to_string(),
        "node 40 is invalid: its parent_id 2 names a node that is not a directory"
    );
    assert_eq!(vfs.path_of(id(2)).unwrap(), "/clip.mov");
}
