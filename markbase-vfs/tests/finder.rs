//! Finder's own files: `._*` and `.DS_Store` kept aside, probe files answered.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use markbase_vfs::{AsideFile, AsideOpen, FinderFiles, NodeId, Place, Vfs, VfsError};

fn aside(vfs: &Vfs, path: &str) -> AsideFile {
    match vfs.place(path).unwrap() {
        Place::Aside(file) => file,
        other => panic!("{path} is {other:?}, not aside"),
    }
}

const CREATE: AsideOpen = AsideOpen {
    write: true,
    append: false,
    truncate: true,
    create: true,
    create_new: false,
};

fn write(file: &AsideFile, bytes: &[u8]) {
    file.open(CREATE).unwrap().write_all(bytes).unwrap();
}

fn read(file: &AsideFile) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.open(AsideOpen::default())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn finder_files_live_aside_out_of_the_catalog_and_are_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    vfs.create(day.id, "clip.mov", true).unwrap();

    for path in ["/Day 1/._clip.mov", "/Day 1/.DS_Store", "/.DS_Store"] {
        let file = aside(&vfs, path);
        assert!(matches!(file.metadata(), Err(VfsError::NotFound(_))));
        write(&file, path.as_bytes());
        assert_eq!(read(&file), path.as_bytes());
        assert_eq!(file.metadata().unwrap().len(), path.len() as u64);
        // The same name finds the same file again.
        assert_eq!(aside(&vfs, path), file);
    }
    assert_eq!(common::names(&vfs, day.id), ["clip.mov"]);
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["Day 1"]);
    assert!(vfs.lookup_path("/Day 1/._clip.mov").is_err());
    assert_eq!(
        files_under(&dir.path().join("warren-store/finder")),
        [
            PathBuf::from(format!("{}/.DS_Store", NodeId::ROOT)),
            PathBuf::from(format!("{}/.DS_Store", day.id)),
            PathBuf::from(format!("{}/._clip.mov", day.id)),
        ]
    );
    // The consistency check does not take them for orphan store files.
    assert!(vfs.check().unwrap().is_clean());

    // Names that only look alike stay in the catalog.
    for path in [
        "/Day 1/._",
        "/Day 1/.DS_Store.bak",
        "/Day 1/x._y",
        "/Day 1/.ds_store",
    ] {
        assert!(matches!(vfs.place(path).unwrap(), Place::Catalog), "{path}");
    }
}

#[test]
fn aside_files_move_copy_and_go_with_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    let other = vfs.mkdir(NodeId::ROOT, "Day 2").unwrap();
    let first = aside(&vfs, "/Day 1/._a.mov");
    write(&first, b"resource fork");

    let moved = aside(&vfs, "/Day 2/._b.mov");
    first.rename(&moved).unwrap();
    assert!(matches!(first.metadata(), Err(VfsError::NotFound(_))));
    assert_eq!(read(&moved), b"resource fork");
    let copy = aside(&vfs, "/Day 1/._c.mov");
    moved.copy(&copy).unwrap();
    assert_eq!(read(&copy), b"resource fork");
    assert_eq!(read(&moved), b"resource fork");
    assert!(matches!(first.remove(), Err(VfsError::NotFound(_))));

    // Renaming a directory keeps its Finder files (they follow the node id).
    vfs.rename(
        NodeId::ROOT,
        "Day 2",
        NodeId::ROOT,
        "Day Two",
        markbase_vfs::RenameMode::Replace,
    )
    .unwrap();
    assert_eq!(read(&aside(&vfs, "/Day Two/._b.mov")), b"resource fork");

    // A directory that goes takes its Finder files along; its catalog children
    // decide whether it is empty, not they.
    vfs.rmdir(NodeId::ROOT, "Day Two").unwrap();
    let area = dir.path().join("warren-store/finder");
    assert!(!area.join(other.id.to_string()).exists());
    // So does a directory replaced by a rename.
    let empty = vfs.mkdir(NodeId::ROOT, "Empty").unwrap();
    vfs.rename(
        NodeId::ROOT,
        "Empty",
        NodeId::ROOT,
        "Day 1",
        markbase_vfs::RenameMode::Replace,
    )
    .unwrap();
    assert!(!area.join(day.id.to_string()).exists());
    assert!(vfs.place("/Day 1/._c.mov").is_ok());
    assert!(matches!(
        aside(&vfs, "/Day 1/._c.mov").metadata(),
        Err(VfsError::NotFound(_))
    ));
    assert_eq!(vfs.lookup_path("/Day 1").unwrap().id, empty.id);
}

#[test]
fn the_catalog_wins_and_can_be_asked_to_keep_finder_files() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    // A library that already holds a .DS_Store node serves it as it is.
    vfs.create(NodeId::ROOT, ".DS_Store", true).unwrap();
    assert!(matches!(vfs.place("/.DS_Store").unwrap(), Place::Catalog));
    assert!(matches!(vfs.place("/._new").unwrap(), Place::Aside(_)));
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| {
        config.finder_files = FinderFiles::InCatalog;
    });
    for path in ["/._new", "/.DS_Store", "/.Trashes"] {
        assert!(matches!(vfs.place(path).unwrap(), Place::Catalog), "{path}");
    }
    // Probe files are answered either way.
    assert!(matches!(
        vfs.place("/.metadata_never_index").unwrap(),
        Place::Probe
    ));
}

#[test]
fn probe_files_exist_only_at_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    for name in markbase_vfs::PROBE_FILES {
        assert!(matches!(
            vfs.place(&format!("/{name}")).unwrap(),
            Place::Probe
        ));
        assert!(matches!(
            vfs.place(&format!("/Day 1/{name}")).unwrap(),
            Place::Catalog
        ));
    }
    assert!(matches!(vfs.place("/.localized").unwrap(), Place::Catalog));
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["Day 1"]);
}

#[test]
fn bad_paths_and_read_only_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    vfs.create(NodeId::ROOT, "clip.mov", true).unwrap();
    assert!(matches!(
        vfs.place("/missing/._clip.mov"),
        Err(VfsError::NotFound(_))
    ));
    assert!(matches!(
        vfs.place("/clip.mov/._x"),
        Err(VfsError::NotADirectory(_))
    ));
    assert!(matches!(
        vfs.place(&format!("/._{}", "x".repeat(300))),
        Err(VfsError::InvalidPath { .. })
    ));
    assert!(matches!(
        vfs.place("/._x\0y"),
        Err(VfsError::InvalidPath { .. })
    ));
    write(&aside(&vfs, "/._clip.mov"), b"fork");
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| config.read_only = true);
    let file = aside(&vfs, "/._clip.mov");
    assert_eq!(read(&file), b"fork");
    assert!(matches!(file.open(CREATE), Err(VfsError::ReadOnly)));
    assert!(matches!(file.remove(), Err(VfsError::ReadOnly)));
    assert!(matches!(
        file.rename(&aside(&vfs, "/._other")),
        Err(VfsError::ReadOnly)
    ));
    assert_eq!(read(&file), b"fork");
}

#[test]
fn a_new_directory_never_inherits_finder_files() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    write(&aside(&vfs, "/Day 1/.DS_Store"), b"old view");
    drop(vfs);
    // Another program removes the directory; the next one made gets its id again.
    rusqlite::Connection::open(dir.path().join(common::CATALOG))
        .unwrap()
        .execute("DELETE FROM nodes WHERE id = ?1", [day.id.get() as i64])
        .unwrap();
    let vfs = common::reopen(dir.path(), |_| {});
    let again = vfs.mkdir(NodeId::ROOT, "Day 2").unwrap();
    assert_eq!(again.id, day.id, "the id is given again");
    assert!(matches!(
        aside(&vfs, "/Day 2/.DS_Store").metadata(),
        Err(VfsError::NotFound(_))
    ));
}

#[test]
fn a_new_content_replaces_an_aside_file_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let file = aside(&vfs, "/._clip.mov");
    write(&file, b"old fork");
    let area = dir
        .path()
        .join(format!("warren-store/finder/{}", NodeId::ROOT));

    // Dropped before its commit: the old content stays, and nothing else is left.
    let upload = file.begin_replace().unwrap();
    upload.write_at(0, b"half").unwrap();
    assert_eq!(read(&file), b"old fork");
    drop(upload);
    assert_eq!(read(&file), b"old fork");
    assert_eq!(files_under(&area), [PathBuf::from("._clip.mov")]);

    let upload = file.begin_replace().unwrap();
    upload.write_at(0, b"new fork, longer").unwrap();
    assert_eq!(upload.len().unwrap(), 16);
    assert_eq!(upload.commit().unwrap(), file);
    assert_eq!(read(&file), b"new fork, longer");
    assert_eq!(files_under(&area), [PathBuf::from("._clip.mov")]);

    // A file that did not exist yet, in a directory whose area does not exist yet.
    vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    let fresh = aside(&vfs, "/Day 1/.DS_Store");
    let upload = fresh.begin_replace().unwrap();
    upload.write_at(0, b"view").unwrap();
    upload.commit().unwrap();
    assert_eq!(read(&fresh), b"view");
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| config.read_only = true);
    assert!(matches!(
        aside(&vfs, "/._clip.mov").begin_replace(),
        Err(VfsError::ReadOnly)
    ));
}
