//! Changes committed to the catalog by another process while a Vfs is open are
//! seen by the next call after the change-check interval, and a node the
//! catalog no longer has is never served from a cache.
//!
//! The other process is this test binary, re-run as a child that applies SQL.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{CHILD_OK, assert_msg, child_arg, config, expect_err, names, raw_catalog, read_all};
use markbase_testkit::{pattern_byte, write_pattern_file};
use markbase_vfs::{NodeId, NodeKind, Vfs, VfsError, alias::AliasList};

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

const WRITER_TEST: &str = "outside_writer_is_another_process";

/// Runs `sql` against `catalog` in another process, in one transaction.
fn outside(catalog: &Path, sql: &str) {
    let scratch = catalog.parent().unwrap();
    let arg = format!("{}\n{sql}", catalog.display());
    let output = common::run_child(WRITER_TEST, &arg, false, scratch).expect("no setpriv needed");
    common::assert_child_ok(&output);
}

/// The child's side of [`outside`]: apply the SQL and report the pid that did it.
fn apply_sql(arg: &str) {
    let (path, sql) = arg.split_once('\n').unwrap();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(sql).unwrap();
    tx.commit().unwrap();
    println!("\npid={}\n{CHILD_OK}", std::process::id());
}

#[test]
fn outside_writer_is_another_process() {
    if let Some(arg) = child_arg() {
        apply_sql(&arg);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = raw_catalog(dir.path()).path;
    let output = common::run_child(
        WRITER_TEST,
        &format!(
            "{}\nINSERT INTO nodes (parent_id, name, kind) VALUES (1, 'x', 'dir');",
            path.display()
        ),
        false,
        dir.path(),
    )
    .unwrap();
    common::assert_child_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(pid, std::process::id());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM nodes WHERE name = 'x'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
}

/// Calls every metadata operation on `ino` (named `name` in `parent`) so that
/// it sits in every cache.
fn prime(vfs: &Vfs, parent: NodeId, name: &str, ino: NodeId) {
    assert_eq!(vfs.lookup(parent, name).unwrap().id, ino);
    vfs.getattr(ino).unwrap();
    vfs.path_of(ino).unwrap();
    names(vfs, parent);
}

#[track_caller]
fn assert_not_found<T>(result: Result<T, VfsError>, what: &str) {
    let err = expect_err(result);
    assert!(matches!(err, VfsError::NotFound(_)), "{what}: {err:?}");
    assert_eq!(err.errno(), libc::ENOENT, "{what}");
}

#[test]
fn rows_added_renamed_moved_and_removed_outside_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("a.bin");
    std::fs::write(&media, b"aaaa").unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "Day 1").unwrap();
    raw.file(3, 2, "a.mov", &["a.bin"]).unwrap();
    raw.file(4, 2, "b.mov", &["a.bin"]).unwrap();
    let path = raw.path.clone();
    drop(raw);
    let vfs = common::open(&path);
    prime(&vfs, id(2), "a.mov", id(3));
    prime(&vfs, id(2), "b.mov", id(4));
    assert_not_found(vfs.lookup(id(2), "c.mov"), "c.mov before it exists");

    // Added: the cached miss is forgotten.
    outside(
        &path,
        "INSERT INTO nodes (id, parent_id, name, kind, aliases_json) VALUES (5, 2, 'c.mov', 'file', '[\"a.bin\"]');",
    );
    assert_eq!(vfs.lookup(id(2), "c.mov").unwrap().id, id(5));
    assert_eq!(names(&vfs, id(2)), ["a.mov", "b.mov", "c.mov"]);

    // Renamed.
    outside(
        &path,
        "UPDATE nodes SET name = 'b renamed.mov' WHERE id = 4;",
    );
    assert_not_found(vfs.lookup(id(2), "b.mov"), "the old name");
    assert_eq!(vfs.lookup(id(2), "b renamed.mov").unwrap().id, id(4));
    assert_eq!(vfs.path_of(id(4)).unwrap(), "/Day 1/b renamed.mov");
    assert_eq!(vfs.node(id(4)).unwrap().name.as_ref(), "b renamed.mov");
    assert_eq!(names(&vfs, id(2)), ["a.mov", "b renamed.mov", "c.mov"]);

    // Moved to another directory.
    outside(&path, "UPDATE nodes SET parent_id = 1 WHERE id = 5;");
    assert_eq!(vfs.path_of(id(5)).unwrap(), "/c.mov");
    assert_eq!(names(&vfs, NodeId::ROOT), ["Day 1", "c.mov"]);
    assert_eq!(vfs.lookup_path("/c.mov").unwrap().id, id(5));
    assert_not_found(vfs.lookup_path("/Day 1/c.mov"), "the old place");

    // Removed: never served again, by name or by inode.
    prime(&vfs, id(2), "a.mov", id(3));
    let handle = vfs.open_file(id(3)).unwrap();
    outside(&path, "DELETE FROM nodes WHERE id = 3;");
    assert_not_found(vfs.lookup(id(2), "a.mov"), "lookup of a removed node");
    assert_not_found(vfs.getattr(id(3)), "getattr of a removed node");
    assert_not_found(vfs.node(id(3)), "node of a removed node");
    assert_not_found(vfs.path_of(id(3)), "path_of of a removed node");
    assert_not_found(vfs.open_file(id(3)), "open_file of a removed node");
    assert_not_found(
        vfs.lookup_path("/Day 1/a.mov"),
        "lookup_path of a removed node",
    );
    assert_eq!(names(&vfs, id(2)), ["b renamed.mov"]);
    // A handle opened before the removal still reads what it opened.
    assert_eq!(common::read_handle(&vfs, handle), b"aaaa");
    vfs.release(handle).unwrap();

    // A removed directory, with its children.
    prime(&vfs, NodeId::ROOT, "Day 1", id(2));
    outside(
        &path,
        "DELETE FROM nodes WHERE parent_id = 2; DELETE FROM nodes WHERE id = 2;",
    );
    assert_not_found(vfs.getattr(id(2)), "getattr of a removed directory");
    assert_not_found(
        vfs.readdir(id(2), 0, |_| true),
        "readdir of a removed directory",
    );
    assert_not_found(vfs.getattr(id(4)), "getattr of a removed child");
    let err = expect_err(vfs.lookup_path("/Day 1/b renamed.mov"));
    assert!(matches!(err, VfsError::NotFound(_)), "{err:?}");
    assert_msg(&err, &["/Day 1"]);
    assert_eq!(names(&vfs, NodeId::ROOT), ["c.mov"]);
}

#[test]
fn aliases_changed_outside_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.bin");
    let second = dir.path().join("second.bin");
    write_pattern_file(&first, 10_000, 1).unwrap();
    write_pattern_file(&second, 25_000, 2).unwrap();
    let raw = raw_catalog(dir.path());
    raw.file(2, 1, "clip.mov", &["first.bin"]).unwrap();
    let path = raw.path.clone();
    drop(raw);
    let vfs = common::open(&path);
    let expected = |seed, len| (0..len).map(|i| pattern_byte(seed, i)).collect::<Vec<u8>>();

    assert_eq!(read_all(&vfs, id(2)), expected(1, 10_000));
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 10_000);

    let json = AliasList::to_json(&["second.bin", "first.bin"]);
    outside(
        &path,
        &format!("UPDATE nodes SET aliases_json = '{json}' WHERE id = 2;"),
    );
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 25_000);
    assert_eq!(read_all(&vfs, id(2)), expected(2, 25_000));
    assert_eq!(vfs.resolve(id(2)).unwrap().outcome.unwrap().index, 0);

    outside(
        &path,
        "UPDATE nodes SET aliases_json = '[]', size = 99 WHERE id = 2;",
    );
    let err = expect_err(vfs.open_file(id(2)));
    assert!(matches!(err, VfsError::NoUsableAlias { .. }), "{err:?}");
    assert_msg(&err, &["/clip.mov", "node 2", "no aliases"]);
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 99);

    // The kind changes: a file becomes a directory.
    outside(&path, "UPDATE nodes SET kind = 'dir' WHERE id = 2;");
    assert_eq!(vfs.getattr(id(2)).unwrap().kind, NodeKind::Dir);
    let err = expect_err(vfs.open_file(id(2)));
    assert_eq!(err.errno(), libc::EISDIR);
}

/// With a non-zero interval, a change is seen by the first call once the interval has passed.
#[test]
fn changes_are_seen_after_the_check_interval() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "old").unwrap();
    let path = raw.path.clone();
    drop(raw);
    let mut cfg = config(&path);
    let interval = Duration::from_millis(100);
    cfg.change_check_interval = interval;
    let vfs = Vfs::open(cfg).unwrap();
    prime(&vfs, NodeId::ROOT, "old", id(2));

    outside(&path, "UPDATE nodes SET name = 'new' WHERE id = 2;");
    // The interval is what is being tested: waiting it out is the point.
    std::thread::sleep(interval + Duration::from_millis(20));
    assert_not_found(
        vfs.lookup(NodeId::ROOT, "old"),
        "the old name after the interval",
    );
    assert_eq!(vfs.lookup(NodeId::ROOT, "new").unwrap().id, id(2));
    assert_eq!(names(&vfs, NodeId::ROOT), ["new"]);
}
