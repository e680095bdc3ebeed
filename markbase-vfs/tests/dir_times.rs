//! Directory times: every change of a directory's entries moves its mtime and ctime,
//! made through the core (in the same transaction) or by another program (seen
//! through the core's change detection); a rename moves the renamed node's ctime;
//! import keeps its source folders' mtimes.

mod common;

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use common::{empty_vfs, open, raw_catalog, write_file};
use markbase_vfs::{
    FileAttr, NodeId, Vfs, VfsConfig,
    import::{ImportOptions, import},
    namespace::RenameMode,
    write::SetAttr,
};

/// Long enough for the clock to move between two steps of a test.
fn tick() {
    sleep(Duration::from_millis(5));
}

fn attr(vfs: &Vfs, id: NodeId) -> FileAttr {
    vfs.getattr(id).unwrap()
}

/// Asserts that both times of `after` are later than those of `before`.
#[track_caller]
fn assert_changed(before: FileAttr, after: FileAttr) {
    assert!(
        after.mtime_ns > before.mtime_ns && after.ctime_ns > before.ctime_ns,
        "times did not move: before {before:?}, after {after:?}"
    );
    assert!(after.ctime_ns >= after.mtime_ns, "{after:?}");
}

#[test]
fn each_change_of_entries_moves_the_directory_times() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    let root = NodeId::ROOT;
    let mut before = attr(&vfs, root);
    let mut step = |what: &str, change: &mut dyn FnMut()| {
        tick();
        change();
        let after = attr(&vfs, root);
        assert!(
            after.mtime_ns > before.mtime_ns && after.ctime_ns > before.ctime_ns,
            "{what} left the root's times: {before:?} -> {after:?}"
        );
        before = after;
    };
    step("create", &mut || {
        let (_, handle) = vfs.create(root, "a", true).unwrap();
        vfs.release(handle).unwrap();
    });
    step("mkdir", &mut || {
        vfs.mkdir(root, "d").unwrap();
    });
    step("rename", &mut || {
        vfs.rename(root, "a", root, "b", RenameMode::Replace)
            .unwrap();
    });
    step("unlink", &mut || vfs.unlink(root, "b").unwrap());
    step("rmdir", &mut || vfs.rmdir(root, "d").unwrap());

    // And they are in the catalog, not only in this process.
    drop(vfs);
    let again = open(&dir.path().join(common::CATALOG));
    assert_eq!(attr(&again, root).mtime_ns, before.mtime_ns);
}

#[test]
fn a_move_changes_both_directories_and_the_moved_node_s_ctime() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    let from = vfs.mkdir(NodeId::ROOT, "from").unwrap().id;
    let to = vfs.mkdir(NodeId::ROOT, "to").unwrap().id;
    let file = write_file(&vfs, from, "clip.mov", b"frames");
    let sub = vfs.mkdir(from, "sub").unwrap().id;
    let (from_before, to_before) = (attr(&vfs, from), attr(&vfs, to));
    let (file_before, sub_before) = (attr(&vfs, file), attr(&vfs, sub));
    tick();
    vfs.rename(from, "clip.mov", to, "clip.mov", RenameMode::NoReplace)
        .unwrap();
    vfs.rename(from, "sub", to, "sub", RenameMode::NoReplace)
        .unwrap();
    assert_changed(from_before, attr(&vfs, from));
    assert_changed(to_before, attr(&vfs, to));
    // A rename changes a node's ctime, as Linux does, and not its mtime.
    for (before, after) in [
        (file_before, attr(&vfs, file)),
        (sub_before, attr(&vfs, sub)),
    ] {
        assert!(after.ctime_ns > before.ctime_ns, "{before:?} -> {after:?}");
        assert_eq!(after.mtime_ns, before.mtime_ns);
    }
}

#[test]
fn a_rename_onto_itself_and_a_failed_change_leave_the_times() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    write_file(&vfs, NodeId::ROOT, "a", b"1");
    let before = attr(&vfs, NodeId::ROOT);
    tick();
    vfs.rename(NodeId::ROOT, "a", NodeId::ROOT, "a", RenameMode::Replace)
        .unwrap();
    vfs.unlink(NodeId::ROOT, "missing").unwrap_err();
    vfs.mkdir(NodeId::ROOT, "a").unwrap_err();
    assert_eq!(attr(&vfs, NodeId::ROOT), before);
}

#[test]
fn setting_a_directory_s_mtime_moves_its_ctime_to_now() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    let sub = vfs.mkdir(NodeId::ROOT, "sub").unwrap().id;
    let before = attr(&vfs, sub);
    tick();
    let after = vfs
        .setattr(sub, SetAttr::mtime_ns(1_000_000_000), None)
        .unwrap();
    assert_eq!(after.mtime_ns, 1_000_000_000);
    assert!(after.ctime_ns > before.ctime_ns, "{before:?} -> {after:?}");
}

/// Another program's connection, as MarkBase itself would write the catalog: rows
/// changed without any directory's mtime.
fn outside(catalog: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(catalog).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn a_directory_changed_by_another_program_looks_changed() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = raw_catalog(dir.path()).path;
    outside(
        &catalog,
        "INSERT INTO nodes (id, parent_id, name, kind, mtime_ns) VALUES (2, 1, 'a', 'dir', 5);
         INSERT INTO nodes (id, parent_id, name, kind, mtime_ns) VALUES (3, 1, 'b', 'dir', 7);",
    );
    let vfs = open(&catalog);
    let (a, b) = (NodeId::new(2).unwrap(), NodeId::new(3).unwrap());
    let (a_before, b_before) = (attr(&vfs, a), attr(&vfs, b));
    assert_eq!(
        a_before.mtime_ns, 5,
        "an unchanged directory keeps its own times"
    );

    // A file appears in a, and b's entries do not change (a row of b changes size).
    outside(
        &catalog,
        "INSERT INTO nodes (id, parent_id, name, kind) VALUES (4, 2, 'new.mov', 'file');
         INSERT INTO nodes (id, parent_id, name, kind) VALUES (5, 3, 'old.mov', 'file');",
    );
    let (a_added, b_added) = (attr(&vfs, a), attr(&vfs, b));
    assert_changed(a_before, a_added);
    assert_changed(b_before, b_added);
    outside(&catalog, "UPDATE nodes SET size = 99 WHERE id = 5;");
    assert_eq!(
        attr(&vfs, b),
        b_added,
        "a changed file is no change of its directory"
    );
    assert_eq!(attr(&vfs, a), a_added, "the time seen stays");

    // A rename by another program, then a removal.
    tick();
    outside(
        &catalog,
        "UPDATE nodes SET name = 'renamed.mov' WHERE id = 4;",
    );
    let a_renamed = attr(&vfs, a);
    assert_changed(a_added, a_renamed);
    tick();
    outside(&catalog, "DELETE FROM nodes WHERE id = 4;");
    assert_changed(a_renamed, attr(&vfs, a));

    // The core's own changes are recorded in the row, not taken for outside ones.
    let own_before = attr(&vfs, b);
    tick();
    vfs.unlink(b, "old.mov").unwrap();
    let own_after = attr(&vfs, b);
    assert_changed(own_before, own_after);
    outside(&catalog, "UPDATE nodes SET size = 1 WHERE id = 2;");
    assert_eq!(attr(&vfs, b), own_after);
}

#[test]
fn import_keeps_the_source_folders_mtimes_and_moves_those_it_adds_to() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("Day 1")).unwrap();
    std::fs::write(media.join("Day 1/clip.mov"), b"frames").unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let older = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    std::fs::File::open(media.join("Day 1"))
        .unwrap()
        .set_modified(older)
        .unwrap();
    std::fs::File::open(&media)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let catalog = dir.path().join("warren.sqlite");
    import(&media, &catalog, &ImportOptions::default()).unwrap();
    let vfs = Vfs::open(VfsConfig::new(&catalog)).unwrap();
    let ns = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
    };
    assert_eq!(attr(&vfs, NodeId::ROOT).mtime_ns, ns(old), "the root");
    let day = vfs.lookup_path("/Day 1").unwrap();
    assert_eq!(day.mtime_ns, ns(older));
    drop(vfs);

    // Importing again adds a file to an existing folder: that folder changed now.
    std::fs::write(media.join("Day 1/clip2.mov"), b"more").unwrap();
    std::fs::File::open(media.join("Day 1"))
        .unwrap()
        .set_modified(older)
        .unwrap();
    let started = ns(std::time::SystemTime::now());
    import(&media, &catalog, &ImportOptions::default()).unwrap();
    let vfs = Vfs::open(VfsConfig::new(&catalog)).unwrap();
    assert!(vfs.lookup_path("/Day 1").unwrap().mtime_ns >= started);
    assert_eq!(
        attr(&vfs, NodeId::ROOT).mtime_ns,
        ns(old),
        "no entry was added"
    );
}

#[test]
fn blocks_are_what_the_bytes_use() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    let (attr, handle) = vfs.create(NodeId::ROOT, "sparse", true).unwrap();
    // 64 MiB long, one 4 KiB block written at the end.
    vfs.write_at(handle, (64 << 20) - 4096, &[7; 4096]).unwrap();
    vfs.release(handle).unwrap();
    let sparse = vfs.getattr(attr.id).unwrap();
    assert_eq!(sparse.size, 64 << 20);
    assert!(
        sparse.blocks < (1 << 20) / 512,
        "a sparse file reports the blocks it uses: {sparse:?}"
    );
    assert!(sparse.blocks >= 8, "{sparse:?}");
}
