//! Finder's own files: `._*` and `.DS_Store` kept aside, probe files answered, all
//! through the core's ordinary calls.

mod common;

use std::path::{Path, PathBuf};

use markbase_vfs::{
    NodeId, OpenFlags, Vfs, VfsError, finder::FinderFiles, namespace::RenameMode, open::OpenedPath,
    write::SetAttr,
};

/// Writes `bytes` as the whole content of the file at `path`, made if missing.
fn write(vfs: &Vfs, path: &str, bytes: &[u8]) -> Result<NodeId, VfsError> {
    let OpenedPath::File(opened) = vfs.open_path(path, OpenFlags::write().create().truncate())?
    else {
        panic!("{path} opened as an upload");
    };
    vfs.write_at(opened.handle, 0, bytes)?;
    vfs.release(opened.handle)?;
    Ok(opened.attr.id)
}

/// The content of the file at `path`.
fn read(vfs: &Vfs, path: &str) -> Vec<u8> {
    common::read_all(vfs, vfs.lookup_path(path).unwrap().id)
}

fn is_missing(vfs: &Vfs, path: &str) -> bool {
    matches!(vfs.lookup_path(path), Err(VfsError::NotFound(_)))
}

/// The catalog rows named `name`, read from the catalog file itself.
fn rows_named(dir: &Path, name: &str) -> i64 {
    rusqlite::Connection::open(dir.join(common::CATALOG))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM nodes WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .unwrap()
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
        assert!(is_missing(&vfs, path), "{path}");
        let id = write(&vfs, path, path.as_bytes()).unwrap();
        assert!(!id.in_catalog(), "{path} has catalog id {id}");
        assert_eq!(read(&vfs, path), path.as_bytes());
        assert_eq!(vfs.lookup_path(path).unwrap().size, path.len() as u64);
        // The same name finds the same file again.
        assert_eq!(vfs.lookup_path(path).unwrap().id, id);
    }
    assert_eq!(common::names(&vfs, day.id), ["clip.mov"]);
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["Day 1"]);
    assert_eq!(rows_named(dir.path(), "._clip.mov"), 0);
    assert_eq!(rows_named(dir.path(), ".DS_Store"), 0);
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
        assert!(write(&vfs, path, b"x").unwrap().in_catalog(), "{path}");
    }
    assert_eq!(common::names(&vfs, day.id).len(), 5);
}

#[test]
fn ids_outside_the_catalog_are_stable_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    let fork = write(&vfs, "/Day 1/._clip.mov", b"fork").unwrap();
    let view = write(&vfs, "/Day 1/.DS_Store", b"view").unwrap();
    let probe = vfs.lookup_path("/.metadata_never_index").unwrap().id;
    assert_ne!(fork, view);
    assert!(![fork, view, probe].iter().any(|id| id.in_catalog()));
    drop(vfs);

    let vfs = common::reopen(dir.path(), |_| {});
    // By id, before any lookup (as an NFS file handle would ask after a restart).
    assert_eq!(vfs.getattr(fork).unwrap().size, 4);
    assert_eq!(common::read_all(&vfs, view), b"view");
    assert_eq!(vfs.getattr(probe).unwrap().size, 0);
    assert_eq!(vfs.lookup(day.id, "._clip.mov").unwrap().id, fork);
    assert_eq!(vfs.lookup(day.id, ".DS_Store").unwrap().id, view);
    // An id that names nothing is ENOENT; one that is no id at all is refused.
    let gone = vfs.lookup(day.id, "._clip.mov").unwrap().id;
    vfs.unlink(day.id, "._clip.mov").unwrap();
    assert!(matches!(vfs.getattr(gone), Err(VfsError::NotFound(_))));
    assert_eq!(NodeId::new(u64::MAX), None);
}

#[test]
fn aside_files_are_written_and_truncated_without_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let (attr, handle) = vfs.create(NodeId::ROOT, "._clip.mov", true).unwrap();
    assert!(!attr.id.in_catalog());
    vfs.write_at(handle, 0, b"resource fork").unwrap();
    vfs.fsync(handle, false).unwrap();
    vfs.release(handle).unwrap();
    assert!(matches!(
        vfs.create(NodeId::ROOT, "._clip.mov", true),
        Err(VfsError::Exists(_))
    ));
    let attr = vfs.setattr(attr.id, SetAttr::size(8), None).unwrap();
    assert_eq!(attr.size, 8);
    assert_eq!(read(&vfs, "/._clip.mov"), b"resource");
    let attr = vfs
        .setattr(attr.id, SetAttr::mtime_ns(1_000_000_000), None)
        .unwrap();
    assert_eq!(attr.mtime_ns, 1_000_000_000);
    assert_eq!(rows_named(dir.path(), "._clip.mov"), 0);
    // Finder files take no properties.
    assert!(vfs.properties(attr.id).unwrap().is_empty());
    assert!(matches!(
        vfs.change_properties(attr.id, &[]),
        Err(VfsError::OutsideCatalog { .. })
    ));
}

#[test]
fn aside_files_move_copy_and_go_with_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    let other = vfs.mkdir(NodeId::ROOT, "Day 2").unwrap();
    let first = write(&vfs, "/Day 1/._a.mov", b"resource fork").unwrap();

    vfs.rename(day.id, "._a.mov", other.id, "._b.mov", RenameMode::Replace)
        .unwrap();
    assert!(is_missing(&vfs, "/Day 1/._a.mov"));
    assert_eq!(read(&vfs, "/Day 2/._b.mov"), b"resource fork");
    // The old id still reaches the moved file, as a kernel that keeps it expects.
    assert_eq!(common::read_all(&vfs, first), b"resource fork");
    let moved = vfs.lookup_path("/Day 2/._b.mov").unwrap().id;
    vfs.copy_file(moved, day.id, "._c.mov").unwrap();
    assert_eq!(read(&vfs, "/Day 1/._c.mov"), b"resource fork");
    assert_eq!(read(&vfs, "/Day 2/._b.mov"), b"resource fork");
    assert!(matches!(
        vfs.unlink(day.id, "._a.mov"),
        Err(VfsError::NotFound(_))
    ));
    assert!(matches!(
        vfs.rename(
            day.id,
            "._c.mov",
            other.id,
            "._b.mov",
            RenameMode::NoReplace
        ),
        Err(VfsError::Exists(_))
    ));

    // Renaming a directory keeps its Finder files (they follow the node id).
    vfs.rename(
        NodeId::ROOT,
        "Day 2",
        NodeId::ROOT,
        "Day Two",
        RenameMode::Replace,
    )
    .unwrap();
    assert_eq!(read(&vfs, "/Day Two/._b.mov"), b"resource fork");

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
        RenameMode::Replace,
    )
    .unwrap();
    assert!(!area.join(day.id.to_string()).exists());
    assert!(is_missing(&vfs, "/Day 1/._c.mov"));
    assert_eq!(vfs.lookup_path("/Day 1").unwrap().id, empty.id);
}

#[test]
fn nothing_moves_between_the_catalog_and_the_files_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let clip = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"frames");
    let fork = write(&vfs, "/._clip.mov", b"fork").unwrap();
    let crosses = |result: Result<_, VfsError>| {
        let err = result.unwrap_err();
        assert!(matches!(err, VfsError::CrossesCatalog(_)), "{err}");
        assert_eq!(err.errno(), libc::EXDEV);
    };
    let root = NodeId::ROOT;
    crosses(vfs.rename(root, "._clip.mov", root, "moved.mov", RenameMode::Replace));
    crosses(vfs.rename(root, "clip.mov", root, "._moved.mov", RenameMode::Replace));
    crosses(vfs.copy_file(fork, root, "copy.mov").map(drop));
    crosses(vfs.copy_file(clip, root, "._copy.mov").map(drop));
    // A missing source is missing, wherever it was to go.
    assert!(matches!(
        vfs.rename(root, "._none", root, "x", RenameMode::Replace),
        Err(VfsError::NotFound(_))
    ));
    assert!(matches!(
        vfs.rename(root, "none", root, "._x", RenameMode::Replace),
        Err(VfsError::NotFound(_))
    ));
    assert_eq!(common::read_all(&vfs, clip), b"frames");
    assert_eq!(read(&vfs, "/._clip.mov"), b"fork");
    assert_eq!(common::names(&vfs, root), ["clip.mov"]);
}

#[test]
fn the_catalog_wins_and_can_be_asked_to_keep_finder_files() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::empty_vfs(dir.path()));
    // A library that already holds a .DS_Store node (made by a program that keeps
    // Finder files in the catalog) serves it as it is.
    let vfs = common::reopen(dir.path(), |config| {
        config.finder_files = FinderFiles::InCatalog;
    });
    let (node, handle) = vfs.create(NodeId::ROOT, ".DS_Store", true).unwrap();
    vfs.release(handle).unwrap();
    assert!(node.id.in_catalog());
    drop(vfs);
    let vfs = common::reopen(dir.path(), |_| {});
    assert_eq!(vfs.lookup_path("/.DS_Store").unwrap().id, node.id);
    assert_eq!(write(&vfs, "/.DS_Store", b"view").unwrap(), node.id);
    assert!(!write(&vfs, "/._new", b"fork").unwrap().in_catalog());
    // A probe file takes no content.
    let probe = write(&vfs, "/.ql_disablethumbnails", b"").unwrap_err();
    assert!(matches!(probe, VfsError::OutsideCatalog { .. }), "{probe}");
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| {
        config.finder_files = FinderFiles::InCatalog;
    });
    for path in ["/._new", "/.DS_Store", "/.Trashes"] {
        assert!(write(&vfs, path, b"x").unwrap().in_catalog(), "{path}");
    }
    assert_eq!(rows_named(dir.path(), "._new"), 1);
    // Probe files are answered either way.
    let probe = vfs.lookup_path("/.metadata_never_index").unwrap();
    assert!(!probe.id.in_catalog());
    assert_eq!(probe.size, 0);
}

#[test]
fn probe_files_exist_only_at_the_root_and_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    for name in markbase_vfs::finder::PROBE_FILES {
        let path = format!("/{name}");
        let attr = vfs.lookup_path(&path).unwrap();
        assert_eq!((attr.size, attr.perm), (0, 0o444));
        assert_eq!(read(&vfs, &path), b"");
        for refused in [
            vfs.open_node(attr.id, OpenFlags::write()).map(drop),
            vfs.unlink(NodeId::ROOT, name),
            vfs.setattr(attr.id, SetAttr::size(1), None).map(drop),
            vfs.rename(NodeId::ROOT, name, NodeId::ROOT, "x", RenameMode::Replace),
            vfs.create(NodeId::ROOT, name, false).map(drop),
        ] {
            assert_eq!(refused.unwrap_err().errno(), libc::EPERM, "{name}");
        }
        assert!(matches!(
            vfs.open_path(&path, OpenFlags::write().truncate().replace()),
            Err(VfsError::OutsideCatalog { .. })
        ));
        assert!(is_missing(&vfs, &format!("/Day 1/{name}")));
        assert!(
            write(&vfs, &format!("/Day 1/{name}"), b"")
                .unwrap()
                .in_catalog()
        );
    }
    assert!(is_missing(&vfs, "/.localized"));
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["Day 1"]);
    assert_eq!(common::names(&vfs, day.id).len(), 2);
}

#[test]
fn bad_paths_and_read_only_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    vfs.create(NodeId::ROOT, "clip.mov", true).unwrap();
    assert!(matches!(
        vfs.lookup_path("/missing/._clip.mov"),
        Err(VfsError::NotFound(_))
    ));
    assert!(matches!(
        vfs.lookup_path("/clip.mov/._x"),
        Err(VfsError::NotADirectory(_))
    ));
    assert!(matches!(
        vfs.lookup_path(&format!("/._{}", "x".repeat(300))),
        Err(VfsError::InvalidPath { .. })
    ));
    assert!(matches!(
        vfs.lookup_path("/._x\0y"),
        Err(VfsError::InvalidPath { .. })
    ));
    write(&vfs, "/._clip.mov", b"fork").unwrap();
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| config.read_only = true);
    let file = vfs.lookup_path("/._clip.mov").unwrap();
    assert_eq!(read(&vfs, "/._clip.mov"), b"fork");
    assert!(matches!(
        write(&vfs, "/._clip.mov", b"x"),
        Err(VfsError::ReadOnly)
    ));
    assert!(matches!(
        vfs.unlink(NodeId::ROOT, "._clip.mov"),
        Err(VfsError::ReadOnly)
    ));
    assert!(matches!(
        vfs.rename(
            NodeId::ROOT,
            "._clip.mov",
            NodeId::ROOT,
            "._other",
            RenameMode::Replace
        ),
        Err(VfsError::ReadOnly)
    ));
    assert!(matches!(
        vfs.setattr(file.id, SetAttr::size(0), None),
        Err(VfsError::ReadOnly)
    ));
    assert_eq!(read(&vfs, "/._clip.mov"), b"fork");
}

#[test]
fn a_new_directory_never_inherits_finder_files() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    write(&vfs, "/Day 1/.DS_Store", b"old view").unwrap();
    drop(vfs);
    // Another program removes the directory; the next one made gets its id again.
    rusqlite::Connection::open(dir.path().join(common::CATALOG))
        .unwrap()
        .execute("DELETE FROM nodes WHERE id = ?1", [day.id.get() as i64])
        .unwrap();
    let vfs = common::reopen(dir.path(), |_| {});
    let again = vfs.mkdir(NodeId::ROOT, "Day 2").unwrap();
    assert_eq!(again.id, day.id, "the id is given again");
    assert!(is_missing(&vfs, "/Day 2/.DS_Store"));
}

#[test]
fn a_new_content_replaces_an_aside_file_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    write(&vfs, "/._clip.mov", b"old fork").unwrap();
    let area = dir
        .path()
        .join(format!("warren-store/finder/{}", NodeId::ROOT));
    let upload = |vfs: &Vfs, path: &str| match vfs
        .open_path(path, OpenFlags::write().create().truncate().replace())
        .unwrap()
    {
        OpenedPath::Upload(upload) => upload,
        OpenedPath::File(_) => panic!("{path} opened in place"),
    };

    // Dropped before its commit: the old content stays, and nothing else is left.
    let new = upload(&vfs, "/._clip.mov");
    new.write_at(0, b"half").unwrap();
    assert_eq!(read(&vfs, "/._clip.mov"), b"old fork");
    drop(new);
    assert_eq!(read(&vfs, "/._clip.mov"), b"old fork");
    assert_eq!(files_under(&area), [PathBuf::from("._clip.mov")]);

    let new = upload(&vfs, "/._clip.mov");
    new.write_at(0, b"new fork, longer").unwrap();
    assert_eq!(new.len().unwrap(), 16);
    let attr = vfs.commit_upload(new).unwrap();
    assert_eq!(attr.id, vfs.lookup_path("/._clip.mov").unwrap().id);
    assert_eq!(read(&vfs, "/._clip.mov"), b"new fork, longer");
    assert_eq!(files_under(&area), [PathBuf::from("._clip.mov")]);

    // A file that did not exist yet, in a directory whose area does not exist yet.
    vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    let new = upload(&vfs, "/Day 1/.DS_Store");
    new.write_at(0, b"view").unwrap();
    vfs.commit_upload(new).unwrap();
    assert_eq!(read(&vfs, "/Day 1/.DS_Store"), b"view");
    assert_eq!(rows_named(dir.path(), ".DS_Store"), 0);
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| config.read_only = true);
    assert!(matches!(
        vfs.open_path("/._clip.mov", OpenFlags::write().truncate().replace()),
        Err(VfsError::ReadOnly)
    ));
}

/// FNV-1a, 32 bits: the hash of a name in the id of a Finder file kept aside.
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[test]
fn a_name_whose_id_another_finder_file_has_is_refused_not_confused() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap();
    // Two AppleDouble names with one hash (a birthday search: some 2^16 names).
    let mut seen = std::collections::HashMap::new();
    let (first, second) = (0u32..)
        .map(|i| format!("._{i}"))
        .find_map(|name| {
            let other = seen.insert(fnv1a(&name), name.clone())?;
            Some((other, name))
        })
        .unwrap();
    write(&vfs, "/Day 1/._other", b"other").unwrap();
    // Another process makes the first; the area's listing is read again.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let area = dir.path().join(format!("warren-store/finder/{}", day.id));
    std::fs::write(area.join(&first), b"first").unwrap();
    let id = vfs.lookup_path(&format!("/Day 1/{first}")).unwrap().id;
    assert_eq!(
        id.get(),
        1 << 63 | day.id.get() << 32 | u64::from(fnv1a(&first))
    );
    let refused = write(&vfs, &format!("/Day 1/{second}"), b"second").unwrap_err();
    assert!(
        matches!(refused, VfsError::OutsideCatalog { .. }),
        "{refused}"
    );
    assert!(is_missing(&vfs, &format!("/Day 1/{second}")));
    // The file that has the id may take the other name, and keeps its id.
    vfs.rename(day.id, &first, day.id, &second, RenameMode::Replace)
        .unwrap();
    assert_eq!(vfs.lookup(day.id, &second).unwrap().id, id);
    vfs.rename(day.id, &second, day.id, &first, RenameMode::Replace)
        .unwrap();
    assert_eq!(read(&vfs, &format!("/Day 1/{first}")), b"first");
    assert_eq!(common::read_all(&vfs, id), b"first");
}

#[test]
fn a_directory_whose_id_is_too_large_keeps_no_finder_files() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::empty_vfs(dir.path()));
    let big: i64 = (1 << 31) - 1;
    rusqlite::Connection::open(dir.path().join(common::CATALOG))
        .unwrap()
        .execute(
            "INSERT INTO nodes (id, parent_id, name, kind) VALUES (?1, 1, 'Big', 'dir')",
            [big],
        )
        .unwrap();
    let vfs = common::reopen(dir.path(), |_| {});
    let id = vfs.lookup_path("/Big").unwrap().id;
    assert!(is_missing(&vfs, "/Big/.DS_Store"));
    let refused = vfs.create(id, ".DS_Store", true).unwrap_err();
    assert!(
        matches!(refused, VfsError::OutsideCatalog { .. }),
        "{refused}"
    );
    assert_eq!(rows_named(dir.path(), ".DS_Store"), 0);
}

#[test]
fn finder_files_are_read_written_and_committed_by_node_with_no_open() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let (attr, handle) = vfs.create(NodeId::ROOT, "._clip.mov", true).unwrap();
    vfs.release(handle).unwrap();
    let fork = attr.id;
    assert!(!fork.in_catalog());

    assert_eq!(vfs.write_node_at(fork, 0, b"resource fork").unwrap(), 13);
    assert_eq!(vfs.write_node_at(fork, 9, b"FORK!").unwrap(), 5);
    vfs.commit_node(fork).unwrap();
    let mut buf = [0u8; 32];
    let n = vfs.read_node_at(fork, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"resource FORK!");
    assert_eq!(vfs.getattr(fork).unwrap().size, 14);
    assert_eq!(read(&vfs, "/._clip.mov"), b"resource FORK!");
    assert_eq!(rows_named(dir.path(), "._clip.mov"), 0);
    // No file stays open for them, and nothing of theirs is in the node-file cache.
    assert_eq!(vfs.open_handles(), 0);
    assert_eq!(vfs.node_file_stats().open, 0);

    // The probe files read empty and refuse writes; a removed file is gone by node.
    let probe = vfs.lookup_path("/.metadata_never_index").unwrap().id;
    assert_eq!(vfs.read_node_at(probe, 0, &mut buf).unwrap(), 0);
    assert!(vfs.write_node_at(probe, 0, b"x").is_err());
    vfs.unlink(NodeId::ROOT, "._clip.mov").unwrap();
    assert!(matches!(
        vfs.read_node_at(fork, 0, &mut buf),
        Err(VfsError::NotFound(_))
    ));
    assert!(matches!(vfs.commit_node(fork), Err(VfsError::NotFound(_))));
}
