//! `Vfs::check` and `Vfs::repair`: orphan store files are listed and kept, adopted
//! or removed; dangling nodes are listed, and dropped only when their bytes were
//! in the store; a user's original outside the store is never deleted; a repair
//! acts only on what is still wrong when it runs; read-only refuses to repair.

mod common;

use std::path::PathBuf;

use common::{expect_err, read_all};
use markbase_vfs::{
    NodeId, Vfs, VfsError,
    alias::{SkipReason, SkippedAlias},
    check::{
        CheckReport, DanglingNode, OrphanAction, Repair, RepairReport, Unreachability,
        UnreachableNode,
    },
};

/// Alias `index` (from 0), `alias` as written, skipped because nothing is there.
fn not_found(index: usize, alias: &str) -> SkippedAlias {
    SkippedAlias {
        index: Some(index),
        alias: alias.to_owned(),
        reason: SkipReason::NotFound,
    }
}

fn repair(drop_dangling: bool, orphans: OrphanAction) -> Repair {
    let mut repair = Repair::default();
    repair.drop_dangling_store_nodes = drop_dangling;
    repair.orphans = orphans;
    repair
}

/// A library in a temp dir: the catalog, and the (canonical) store directory.
struct Library {
    dir: tempfile::TempDir,
    catalog: PathBuf,
    store: PathBuf,
}

impl Library {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = common::raw_catalog(dir.path()).path;
        let store = std::fs::canonicalize(dir.path())
            .unwrap()
            .join("warren-store");
        Self {
            dir,
            catalog,
            store,
        }
    }

    fn open(&self) -> Vfs {
        common::open(&self.catalog)
    }

    /// Creates `name` in `parent` through the Vfs with `bytes`; returns its id and store file.
    fn file(&self, vfs: &Vfs, parent: NodeId, name: &str, bytes: &[u8]) -> (NodeId, PathBuf) {
        let (attr, h) = vfs.create(parent, name, true).unwrap();
        vfs.write_at(h, 0, bytes).unwrap();
        vfs.release(h).unwrap();
        let path = vfs.resolve(attr.id).unwrap().outcome.unwrap().path.clone();
        assert_eq!(path.parent(), Some(self.store.as_path()));
        (attr.id, path)
    }

    /// Puts a file into the store by hand, as a crash between the bytes and the row leaves it.
    fn orphan(&self, name: &str, bytes: &[u8]) -> PathBuf {
        std::fs::create_dir_all(&self.store).unwrap();
        let path = self.store.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

#[track_caller]
fn assert_clean(vfs: &Vfs) {
    let report = vfs.check().unwrap();
    assert!(report.is_clean(), "check() found {report:?}");
}

#[test]
fn orphan_store_files_are_listed_then_kept_adopted_or_removed() {
    let lib = Library::new();
    let vfs = lib.open();
    let (real, real_path) = lib.file(&vfs, NodeId::ROOT, "real.mov", b"real bytes");
    assert_clean(&vfs);
    let orphan = lib.orphan("orphan.bin", b"lost bytes");

    let report = vfs.check().unwrap();
    assert_eq!(
        report,
        CheckReport {
            orphans: vec![orphan.clone()],
            ..CheckReport::default()
        }
    );

    // Keep: nothing changes, and the next check lists it again.
    let done = vfs
        .repair(&report, repair(true, OrphanAction::Keep))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert!(orphan.is_file());
    assert_eq!(vfs.check().unwrap(), report);

    // Adopt: a node in /lost+found serves its bytes, from where they are.
    let done = vfs
        .repair(&report, repair(false, OrphanAction::Adopt))
        .unwrap();
    assert_eq!(done.adopted.len(), 1, "{done:?}");
    assert_eq!(done.adopted[0].0, orphan);
    let adopted = vfs.lookup_path("/lost+found/orphan.bin").unwrap();
    assert_eq!(adopted.id, done.adopted[0].1);
    assert_eq!(read_all(&vfs, adopted.id), b"lost bytes");
    assert_eq!(vfs.node(adopted.id).unwrap().recorded_size, 10);
    assert!(orphan.is_file());
    assert_clean(&vfs);

    // A second orphan goes into the same /lost+found.
    let second = lib.orphan("second.bin", b"2");
    let report2 = vfs.check().unwrap();
    assert_eq!(report2.orphans, std::slice::from_ref(&second));
    vfs.repair(&report2, repair(false, OrphanAction::Adopt))
        .unwrap();
    assert_eq!(
        common::names(&vfs, adopted_dir(&vfs)),
        ["orphan.bin", "second.bin"]
    );

    // Remove: the file goes, nothing else does.
    let third = lib.orphan("third.bin", b"3");
    let report3 = vfs.check().unwrap();
    assert_eq!(report3.orphans, std::slice::from_ref(&third));
    let done = vfs
        .repair(&report3, repair(true, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done.removed, std::slice::from_ref(&third));
    assert!(!third.exists());
    assert_eq!(read_all(&vfs, real), b"real bytes");
    assert!(real_path.is_file() && second.is_file() && orphan.is_file());
    assert_clean(&vfs);
}

fn adopted_dir(vfs: &Vfs) -> NodeId {
    vfs.lookup(NodeId::ROOT, "lost+found").unwrap().id
}

/// A report is only a list of suspects: by the time the repair runs, an orphan may
/// have been adopted (or named by a new node), a node may have been given back its
/// bytes. The repair leaves all of those alone.
#[test]
fn a_stale_report_never_removes_or_adopts_what_is_no_longer_wrong() {
    let lib = Library::new();
    let vfs = lib.open();
    lib.file(&vfs, NodeId::ROOT, "real.mov", b"real");
    let orphan = lib.orphan("orphan.bin", b"lost bytes");
    let stale = vfs.check().unwrap();
    assert_eq!(stale.orphans, std::slice::from_ref(&orphan));

    vfs.repair(&stale, repair(false, OrphanAction::Adopt))
        .unwrap();
    let adopted = vfs.lookup_path("/lost+found/orphan.bin").unwrap().id;
    // The same report again: the file is a node's bytes now.
    let done = vfs
        .repair(&stale, repair(true, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert!(orphan.is_file(), "a stale report deleted an adopted file");
    let done = vfs
        .repair(&stale, repair(true, OrphanAction::Adopt))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert_eq!(common::names(&vfs, adopted_dir(&vfs)), ["orphan.bin"]);
    assert_eq!(read_all(&vfs, adopted), b"lost bytes");
    assert_clean(&vfs);
}

#[test]
fn dangling_store_nodes_are_listed_and_dropped_unless_their_bytes_came_back() {
    let lib = Library::new();
    let vfs = lib.open();
    let sub = vfs.mkdir(NodeId::ROOT, "sub").unwrap().id;
    let (gone, gone_path) = lib.file(&vfs, sub, "gone.mov", b"soon gone");
    let (kept, _) = lib.file(&vfs, NodeId::ROOT, "kept.mov", b"kept");
    std::fs::remove_file(&gone_path).unwrap();

    let report = vfs.check().unwrap();
    let alias = format!(
        "warren-store/{}",
        gone_path.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(
        report,
        CheckReport {
            dangling: vec![DanglingNode {
                id: gone,
                path: "/sub/gone.mov".to_owned(),
                skipped: vec![not_found(0, &alias)],
                in_store: true,
            }],
            ..CheckReport::default()
        }
    );
    // Without the flag, dangling nodes stay.
    let done = vfs
        .repair(&report, repair(false, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert_eq!(vfs.check().unwrap(), report);

    // The bytes come back before the repair runs: the node is left alone.
    std::fs::write(&gone_path, b"back").unwrap();
    let done = vfs
        .repair(&report, repair(true, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert_eq!(read_all(&vfs, gone), b"back");
    assert_clean(&vfs);

    // Gone again: dropped.
    std::fs::remove_file(&gone_path).unwrap();
    let report = vfs.check().unwrap();
    assert_eq!(report.dangling.len(), 1);
    let done = vfs
        .repair(&report, repair(true, OrphanAction::Keep))
        .unwrap();
    assert_eq!(done.dropped, [gone]);
    let err = expect_err(vfs.lookup(sub, "gone.mov"));
    assert_eq!(err.errno(), libc::ENOENT);
    assert_eq!(read_all(&vfs, kept), b"kept");
    assert_clean(&vfs);
    // A fresh Vfs agrees.
    assert_clean(&lib.open());
}

#[test]
fn dangling_nodes_outside_the_store_are_listed_but_never_dropped() {
    let lib = Library::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let absolute_missing = elsewhere.path().join("unplugged.mov");
    let raw = markbase_testkit::RawCatalog {
        path: lib.catalog.clone(),
        conn: rusqlite::Connection::open(&lib.catalog).unwrap(),
    };
    raw.file(2, 1, "relative.mov", &["originals/missing.mov"])
        .unwrap();
    raw.file(3, 1, "absolute.mov", &[absolute_missing.to_str().unwrap()])
        .unwrap();
    // One alias in the store, one outside: the outside one may come back.
    raw.file(
        4,
        1,
        "mixed.mov",
        &["warren-store/gone.bin", "originals/gone.mov"],
    )
    .unwrap();
    drop(raw);
    let vfs = lib.open();

    let report = vfs.check().unwrap();
    let listed: Vec<(u64, &str, bool)> = report
        .dangling
        .iter()
        .map(|d| (d.id.get(), d.path.as_str(), d.in_store))
        .collect();
    let mut listed = listed;
    listed.sort();
    assert_eq!(
        listed,
        [
            (2, "/relative.mov", false),
            (3, "/absolute.mov", false),
            (4, "/mixed.mov", false),
        ]
    );
    let mixed = report.dangling.iter().find(|d| d.id.get() == 4).unwrap();
    assert_eq!(
        mixed.skipped,
        [
            not_found(0, "warren-store/gone.bin"),
            not_found(1, "originals/gone.mov")
        ]
    );
    assert!(mixed.bytes_gone());

    for orphans in [
        OrphanAction::Keep,
        OrphanAction::Adopt,
        OrphanAction::Remove,
    ] {
        let done = vfs.repair(&report, repair(true, orphans)).unwrap();
        assert_eq!(done, RepairReport::default(), "{orphans:?}");
    }
    assert_eq!(common::names(&vfs, NodeId::ROOT).len(), 3);
    assert_eq!(vfs.check().unwrap(), report);
    // A drive that comes back heals the node; nothing was lost.
    std::fs::write(&absolute_missing, b"back from the drive").unwrap();
    let attr = vfs.lookup(NodeId::ROOT, "absolute.mov").unwrap();
    assert_eq!(read_all(&vfs, attr.id), b"back from the drive");
    assert_eq!(vfs.check().unwrap().dangling.len(), 2);
}

/// Whatever a report claims, a repair deletes only store files that no node names.
#[test]
fn no_repair_ever_deletes_an_original_or_a_named_store_file() {
    let lib = Library::new();
    let originals = lib.dir.path().join("originals");
    std::fs::create_dir(&originals).unwrap();
    let original = originals.join("clip.mov");
    std::fs::write(&original, b"the user's own clip").unwrap();
    let raw = markbase_testkit::RawCatalog {
        path: lib.catalog.clone(),
        conn: rusqlite::Connection::open(&lib.catalog).unwrap(),
    };
    raw.file(2, 1, "clip.mov", &["originals/clip.mov"]).unwrap();
    drop(raw);
    let vfs = lib.open();
    let (named, named_path) = lib.file(&vfs, NodeId::ROOT, "named.mov", b"named bytes");
    assert_clean(&vfs);
    let original = std::fs::canonicalize(&original).unwrap();

    // A report that is wrong about everything: the original and a named store file as
    // orphans, both nodes as dangling store nodes.
    let lie = CheckReport {
        dangling: vec![
            DanglingNode {
                id: NodeId::new(2).unwrap(),
                path: "/clip.mov".to_owned(),
                skipped: vec![not_found(0, "originals/clip.mov")],
                in_store: true,
            },
            DanglingNode {
                id: named,
                path: "/named.mov".to_owned(),
                skipped: vec![],
                in_store: true,
            },
        ],
        orphans: vec![original.clone(), named_path.clone()],
        unreachable: vec![],
    };
    for orphans in [
        OrphanAction::Keep,
        OrphanAction::Adopt,
        OrphanAction::Remove,
    ] {
        let done = vfs.repair(&lie, repair(true, orphans)).unwrap();
        assert_eq!(done, RepairReport::default(), "{orphans:?}");
    }
    assert_eq!(std::fs::read(&original).unwrap(), b"the user's own clip");
    assert_eq!(std::fs::read(&named_path).unwrap(), b"named bytes");
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["clip.mov", "named.mov"]);
    assert_clean(&vfs);

    // Unlinking the original's node does not delete it either; a repair afterwards
    // does not see it at all (it is not in the store).
    vfs.unlink(NodeId::ROOT, "clip.mov").unwrap();
    let report = vfs.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    vfs.repair(&report, repair(true, OrphanAction::Remove))
        .unwrap();
    assert!(original.is_file());
}

#[test]
fn repair_on_a_read_only_vfs_is_erofs_and_touches_nothing() {
    let lib = Library::new();
    let writable = lib.open();
    let (gone, gone_path) = lib.file(&writable, NodeId::ROOT, "gone.mov", b"x");
    std::fs::remove_file(&gone_path).unwrap();
    let orphan = lib.orphan("orphan.bin", b"lost");
    drop(writable);

    let mut config = common::config(&lib.catalog);
    config.read_only = true;
    let vfs = Vfs::open(config).unwrap();
    // Checking only reads: it works read-only.
    let report = vfs.check().unwrap();
    assert_eq!(report.dangling.len(), 1);
    assert_eq!(report.orphans, std::slice::from_ref(&orphan));
    for orphans in [
        OrphanAction::Keep,
        OrphanAction::Adopt,
        OrphanAction::Remove,
    ] {
        let err = expect_err(vfs.repair(&report, repair(true, orphans)));
        assert!(matches!(err, VfsError::ReadOnly), "{err:?}");
        assert_eq!(err.errno(), libc::EROFS);
    }
    assert!(orphan.is_file());
    assert_eq!(vfs.getattr(gone).unwrap().id, gone);
    assert_eq!(vfs.check().unwrap(), report);
    assert!(vfs.lookup(NodeId::ROOT, "lost+found").is_err());
}

#[test]
fn adopting_needs_lost_and_found_to_be_a_directory() {
    let lib = Library::new();
    let vfs = lib.open();
    lib.file(&vfs, NodeId::ROOT, "lost+found", b"a file in the way");
    let orphan = lib.orphan("orphan.bin", b"lost");
    let report = vfs.check().unwrap();
    let err = expect_err(vfs.repair(&report, repair(false, OrphanAction::Adopt)));
    assert_eq!(err.errno(), libc::ENOTDIR, "{err}");
    assert!(err.to_string().contains("/lost+found"), "{err}");
    assert!(orphan.is_file());
    assert_eq!(vfs.check().unwrap(), report);
}

/// What the check says about node `id` in `report`: each skipped alias as
/// (index, reason).
fn reasons(report: &CheckReport, id: u64) -> Vec<(Option<usize>, SkipReason)> {
    let node = report
        .dangling
        .iter()
        .find(|node| node.id.get() == id)
        .unwrap_or_else(|| panic!("node {id} is not listed: {report:?}"));
    node.skipped
        .iter()
        .map(|skipped| (skipped.index, skipped.reason.clone()))
        .collect()
}

/// A node whose alias list does not parse, or whose aliases name something other than
/// a regular file, is listed with what each alias is; no repair removes it.
#[test]
fn unusable_alias_lists_are_listed_with_what_each_alias_is() {
    let lib = Library::new();
    let base = lib.dir.path();
    std::fs::create_dir(base.join("a-dir")).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        base.join("a-fifo"),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    std::fs::create_dir_all(&lib.store).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        lib.store.join("store-fifo"),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    std::fs::write(base.join("real.bin"), b"real").unwrap();
    let raw = markbase_testkit::RawCatalog {
        path: lib.catalog.clone(),
        conn: rusqlite::Connection::open(&lib.catalog).unwrap(),
    };
    raw.insert(2, Some(1), "not-json.mov", "file", 0, "[\"a\",")
        .unwrap();
    raw.insert(3, Some(1), "object.mov", "file", 0, "{\"a\": 1}")
        .unwrap();
    raw.insert(4, Some(1), "blob.mov", "file", 0, "[]").unwrap();
    raw.conn
        .execute("UPDATE nodes SET aliases_json = x'5b5d' WHERE id = 4", [])
        .unwrap();
    raw.file(5, 1, "specials.mov", &["a-fifo", "a-dir", "missing.bin"])
        .unwrap();
    raw.file(6, 1, "no-aliases.mov", &[]).unwrap();
    raw.insert(7, Some(1), "unusable.mov", "file", 0, "[5, \"\", null]")
        .unwrap();
    raw.file(8, 1, "in-store-fifo.mov", &["warren-store/store-fifo"])
        .unwrap();
    raw.file(9, 1, "fine.mov", &["a-fifo", "real.bin"]).unwrap();
    drop(raw);
    let vfs = lib.open();

    let report = vfs.check().unwrap();
    let listed: Vec<u64> = report.dangling.iter().map(|node| node.id.get()).collect();
    assert_eq!(listed, [2, 3, 4, 5, 6, 7, 8], "{report:?}");
    assert_eq!(report.problems(), 7);
    let unparsable = |id| match reasons(&report, id).as_slice() {
        [(None, SkipReason::Unparsable(why))] => why.clone(),
        other => panic!("node {id}: {other:?}"),
    };
    assert!(
        unparsable(2).starts_with("aliases_json is not valid JSON"),
        "{}",
        unparsable(2)
    );
    assert_eq!(
        unparsable(3),
        "aliases_json is not a JSON array but an object"
    );
    assert_eq!(unparsable(4), "aliases_json is a 2-byte blob, not text");
    assert_eq!(
        reasons(&report, 5),
        [
            (Some(0), SkipReason::NotRegular("FIFO")),
            (Some(1), SkipReason::IsDirectory),
            (Some(2), SkipReason::NotFound),
        ]
    );
    assert_eq!(reasons(&report, 6), []);
    let unusable: Vec<String> = report.dangling[5]
        .skipped
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        unusable,
        [
            "alias #1: unusable alias: not a string but the number 5",
            "alias #2: unusable alias: an empty path",
            "alias #3: unusable alias: not a string but null",
        ]
    );
    let fifo = &report.dangling[6];
    assert!(fifo.in_store && !fifo.bytes_gone(), "{fifo:?}");
    assert!(!report.dangling.iter().any(DanglingNode::bytes_gone));

    // Their bytes are not known to be gone: no repair removes any of them.
    let done = vfs
        .repair(&report, repair(true, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert_eq!(vfs.check().unwrap(), report);
    assert!(lib.store.join("store-fifo").exists());
}

/// `chmod 000` does not stop root, so the check runs in a child as `nobody`.
#[test]
fn an_unreadable_alias_is_listed_as_unreadable() {
    if let Some(dir) = common::child_arg() {
        let vfs = common::open(&PathBuf::from(dir).join(common::CATALOG));
        let report = vfs.check().unwrap();
        assert_eq!(
            reasons(&report, 2),
            [
                (Some(0), SkipReason::PermissionDenied),
                (Some(1), SkipReason::NotFound)
            ]
        );
        assert_eq!(
            report.dangling[0].skipped[0].to_string(),
            "alias #1 \"secret.bin\": permission denied"
        );
        println!("{}", common::CHILD_OK);
        return;
    }
    let dir = common::open_tempdir();
    let raw = common::raw_catalog(dir.path());
    raw.file(2, 1, "secret.mov", &["secret.bin", "gone.bin"])
        .unwrap();
    drop(raw);
    let secret = dir.path().join("secret.bin");
    std::fs::write(&secret, b"secret").unwrap();
    common::hide_from_nobody(dir.path(), &secret);
    common::assert_passes_as_nobody("an_unreadable_alias_is_listed_as_unreadable", dir.path());
}

/// Rows the root does not reach are listed where their chains break, each with the
/// count of rows hanging below it; the rest of the catalog is checked as usual.
#[test]
fn rows_the_root_does_not_reach_are_listed_where_their_chain_breaks() {
    let lib = Library::new();
    std::fs::write(lib.dir.path().join("a.jpg"), b"jpeg").unwrap();
    let raw = markbase_testkit::RawCatalog {
        path: lib.catalog.clone(),
        conn: rusqlite::Connection::open(&lib.catalog).unwrap(),
    };
    raw.dir(2, 1, "photos").unwrap();
    raw.file(3, 2, "a.jpg", &["a.jpg"]).unwrap();
    raw.conn
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             -- 10 -> 12 -> 11 -> 10, and a file hanging below it.
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (10, 12, 'x', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (11, 10, 'y', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (12, 11, 'z', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind, aliases_json)
                 VALUES (13, 12, 'in-loop.jpg', 'file', '[\"a.jpg\"]');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (20, 20, 'self', 'dir');
             -- A parent that does not exist, with two generations below.
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (30, 99, 'orphaned', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (31, 30, 'child', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind, aliases_json)
                 VALUES (32, 31, 'gone.jpg', 'file', '[\"gone.jpg\"]');
             -- A file as a parent.
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (40, 3, 'inside-a-file', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (50, NULL, 'no-parent', 'dir');",
        )
        .unwrap();
    drop(raw);
    let vfs = lib.open();
    let report = vfs.check().unwrap();
    let id = |raw: u64| NodeId::new(raw).unwrap();
    assert_eq!(
        report.unreachable,
        [
            UnreachableNode {
                id: id(10),
                cause: Unreachability::Cycle(vec![id(10), id(12), id(11)]),
                below: 1,
            },
            UnreachableNode {
                id: id(20),
                cause: Unreachability::Cycle(vec![id(20)]),
                below: 0,
            },
            UnreachableNode {
                id: id(30),
                cause: Unreachability::MissingParent(Some(99)),
                below: 2,
            },
            UnreachableNode {
                id: id(40),
                cause: Unreachability::ParentNotADirectory(id(3)),
                below: 0,
            },
            UnreachableNode {
                id: id(50),
                cause: Unreachability::MissingParent(None),
                below: 0,
            },
        ]
    );
    let said: Vec<String> = report.unreachable.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "nodes 10 -> 12 -> 11 -> 10: a parent_id cycle (each node's parent is the next); \
             1 node below it is unreachable too",
            "nodes 20 -> 20: a parent_id cycle (each node's parent is the next)",
            "node 30: its parent_id 99 names no node; 2 nodes below it are unreachable too",
            "node 40: its parent_id 3 names a node that is not a directory",
            "node 50: its parent_id names no node (NULL or not an integer)",
        ]
    );
    // The unreachable file whose bytes are gone is dangling too, named by id.
    assert_eq!(report.dangling.len(), 1, "{report:?}");
    assert_eq!(report.dangling[0].path, "#32");
    assert_eq!(report.problems(), 6);
    assert!(!report.is_clean());
    // No repair touches a row whose bytes are outside the store.
    let done = vfs
        .repair(&report, repair(true, OrphanAction::Remove))
        .unwrap();
    assert_eq!(done, RepairReport::default());
    assert_eq!(vfs.check().unwrap(), report);
}
