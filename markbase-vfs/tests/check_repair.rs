//! `Vfs::check` and `Vfs::repair`: orphan store files are listed and kept, adopted
//! or removed; dangling nodes are listed, and dropped only when their bytes were
//! in the store; a user's original outside the store is never deleted; a repair
//! acts only on what is still wrong when it runs; read-only refuses to repair.

mod common;

use std::path::PathBuf;

use common::{expect_err, read_all};
use markbase_vfs::{
    CheckReport, DanglingNode, NodeId, OrphanAction, Repair, RepairReport, Vfs, VfsError,
};

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
        let path = vfs.resolve(attr.ino).unwrap().outcome.unwrap().path.clone();
        assert_eq!(path.parent(), Some(self.store.as_path()));
        (attr.ino, path)
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
            dangling: vec![],
            orphans: vec![orphan.clone()],
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
    assert_eq!(adopted.ino, done.adopted[0].1);
    assert_eq!(read_all(&vfs, adopted.ino), b"lost bytes");
    assert_eq!(vfs.node(adopted.ino).unwrap().recorded_size, 10);
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
    vfs.lookup(NodeId::ROOT, "lost+found").unwrap().ino
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
    let adopted = vfs.lookup_path("/lost+found/orphan.bin").unwrap().ino;
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
    let sub = vfs.mkdir(NodeId::ROOT, "sub").unwrap().ino;
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
                aliases: vec![alias],
                in_store: true,
            }],
            orphans: vec![],
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
        mixed.aliases,
        ["warren-store/gone.bin", "originals/gone.mov"]
    );

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
    assert_eq!(read_all(&vfs, attr.ino), b"back from the drive");
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
                aliases: vec!["originals/clip.mov".to_owned()],
                in_store: true,
            },
            DanglingNode {
                id: named,
                path: "/named.mov".to_owned(),
                aliases: vec![],
                in_store: true,
            },
        ],
        orphans: vec![original.clone(), named_path.clone()],
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
    assert_eq!(vfs.getattr(gone).unwrap().ino, gone);
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
