//! The write path's basic operations against a real catalog and store.

mod common;

use markbase_vfs::{NodeId, NodeKind, Vfs, VfsError, namespace::RenameMode, write::SetAttr};

#[test]
fn create_write_read_back_and_the_catalog_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let folder = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap().id;
    let (attr, handle) = vfs.create(folder, "clip.mov", true).unwrap();
    assert_eq!(attr.size, 0);
    let frame = vec![7u8; 4 << 20];
    for i in 0..3u64 {
        assert_eq!(
            vfs.write_at(handle, i * frame.len() as u64, &frame)
                .unwrap(),
            frame.len()
        );
    }
    vfs.release(handle).unwrap();

    let again = Vfs::open(common::config(&dir.path().join(common::CATALOG))).unwrap();
    let attr = again.lookup_path("/Day 1/clip.mov").unwrap();
    assert_eq!(attr.size, 12 << 20);
    assert_eq!(again.node(attr.id).unwrap().recorded_size, 12 << 20);
    let bytes = common::read_all(&again, attr.id);
    assert!(bytes.iter().all(|b| *b == 7) && bytes.len() == 12 << 20);

    // The bytes live in the store beside the catalog, named by a relative alias.
    let resolution = again.resolve(attr.id).unwrap();
    let backing = resolution.outcome.unwrap();
    assert!(
        backing
            .path
            .starts_with(dir.path().canonicalize().unwrap().join("warren-store"))
    );
    assert!(again.check().unwrap().is_clean());
}

#[test]
fn exclusive_create_unlink_rmdir_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let (_, h) = vfs.create(NodeId::ROOT, "a.txt", true).unwrap();
    vfs.write_at(h, 0, b"hello").unwrap();
    vfs.release(h).unwrap();
    let err = vfs.create(NodeId::ROOT, "a.txt", true).unwrap_err();
    assert_eq!(err.errno(), libc::EEXIST, "{err}");
    // Not exclusive: opens the existing file.
    let (attr, h) = vfs.create(NodeId::ROOT, "a.txt", false).unwrap();
    assert_eq!(attr.size, 5);
    vfs.release(h).unwrap();

    let sub = vfs.mkdir(NodeId::ROOT, "sub").unwrap().id;
    assert_eq!(
        vfs.mkdir(NodeId::ROOT, "sub").unwrap_err().errno(),
        libc::EEXIST
    );
    let (_, h) = vfs.create(sub, "inner", true).unwrap();
    vfs.release(h).unwrap();
    assert_eq!(
        vfs.rmdir(NodeId::ROOT, "sub").unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        vfs.unlink(NodeId::ROOT, "sub").unwrap_err().errno(),
        libc::EISDIR
    );
    assert_eq!(
        vfs.rmdir(NodeId::ROOT, "a.txt").unwrap_err().errno(),
        libc::ENOTDIR
    );
    vfs.unlink(sub, "inner").unwrap();
    vfs.rmdir(NodeId::ROOT, "sub").unwrap();
    vfs.unlink(NodeId::ROOT, "a.txt").unwrap();
    assert_eq!(
        vfs.unlink(NodeId::ROOT, "a.txt").unwrap_err().errno(),
        libc::ENOENT
    );
    assert!(common::names(&vfs, NodeId::ROOT).is_empty());
    // Unlinked store bytes are gone; nothing is left over.
    let store = dir.path().join("warren-store");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
    assert!(vfs.check().unwrap().is_clean());
}

#[test]
fn unlink_never_deletes_bytes_outside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.mov");
    std::fs::write(&original, b"the user's own file").unwrap();
    let raw = common::raw_catalog(dir.path());
    raw.file(2, 1, "clip.mov", &["original.mov"]).unwrap();
    let vfs = common::open(&raw.path);
    vfs.unlink(NodeId::ROOT, "clip.mov").unwrap();
    assert_eq!(std::fs::read(&original).unwrap(), b"the user's own file");
}

#[test]
fn writes_to_an_existing_file_go_to_its_alias() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.wav");
    std::fs::write(&original, b"0123456789").unwrap();
    let raw = common::raw_catalog(dir.path());
    raw.file(2, 1, "take.wav", &["missing.wav", "original.wav"])
        .unwrap();
    let vfs = common::open(&raw.path);
    let h = vfs.open_file_rw(NodeId::new(2).unwrap()).unwrap();
    vfs.write_at(h, 2, b"ab").unwrap();
    vfs.release(h).unwrap();
    assert_eq!(std::fs::read(&original).unwrap(), b"01ab456789");

    let attr = vfs
        .setattr(NodeId::new(2).unwrap(), SetAttr::size(4), None)
        .unwrap();
    assert_eq!(attr.size, 4);
    assert_eq!(std::fs::read(&original).unwrap(), b"01ab");
    let attr = vfs
        .setattr(
            NodeId::new(2).unwrap(),
            SetAttr::mtime_ns(1_000_000_000),
            None,
        )
        .unwrap();
    assert_eq!(attr.mtime_ns, 1_000_000_000);
    assert_eq!(
        vfs.node(NodeId::new(2).unwrap()).unwrap().mtime_ns,
        1_000_000_000
    );
}

#[test]
fn rename_moves_replaces_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let a = vfs.mkdir(NodeId::ROOT, "a").unwrap().id;
    let b = vfs.mkdir(a, "b").unwrap().id;
    for (name, body) in [("x", &b"xx"[..]), ("y", &b"yyy"[..])] {
        let (_, h) = vfs.create(NodeId::ROOT, name, true).unwrap();
        vfs.write_at(h, 0, body).unwrap();
        vfs.release(h).unwrap();
    }
    // A directory into itself or below itself.
    for target in [a, b] {
        let err = vfs
            .rename(NodeId::ROOT, "a", target, "a2", RenameMode::Replace)
            .unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{err}");
    }
    // Replacing a file; the replaced bytes leave the store.
    vfs.rename(NodeId::ROOT, "x", NodeId::ROOT, "y", RenameMode::Replace)
        .unwrap();
    let y = vfs.lookup(NodeId::ROOT, "y").unwrap();
    assert_eq!(common::read_all(&vfs, y.id), b"xx");
    assert_eq!(
        std::fs::read_dir(dir.path().join("warren-store"))
            .unwrap()
            .count(),
        1
    );
    // No-replace, file onto dir, dir onto file, non-empty dir.
    let (_, h) = vfs.create(NodeId::ROOT, "z", true).unwrap();
    vfs.release(h).unwrap();
    let errno = |r: Result<(), VfsError>| r.unwrap_err().errno();
    assert_eq!(
        errno(vfs.rename(NodeId::ROOT, "z", NodeId::ROOT, "y", RenameMode::NoReplace)),
        libc::EEXIST
    );
    assert_eq!(
        errno(vfs.rename(NodeId::ROOT, "z", NodeId::ROOT, "a", RenameMode::Replace)),
        libc::EISDIR
    );
    assert_eq!(
        errno(vfs.rename(a, "b", NodeId::ROOT, "z", RenameMode::Replace)),
        libc::ENOTDIR
    );
    let c = vfs.mkdir(NodeId::ROOT, "c").unwrap().id;
    vfs.mkdir(c, "full").unwrap();
    assert_eq!(
        errno(vfs.rename(a, "b", NodeId::ROOT, "c", RenameMode::Replace)),
        libc::ENOTEMPTY
    );
    // Across directories, replacing an empty directory.
    vfs.rmdir(c, "full").unwrap();
    vfs.rename(a, "b", NodeId::ROOT, "c", RenameMode::Replace)
        .unwrap();
    assert_eq!(vfs.lookup(NodeId::ROOT, "c").unwrap().id, b);
    assert_eq!(vfs.path_of(b).unwrap(), "/c");
    assert_eq!(vfs.lookup(a, "b").unwrap_err().errno(), libc::ENOENT);
    assert_eq!(vfs.getattr(b).unwrap().kind, NodeKind::Dir);
}

#[test]
fn read_only_refuses_every_write_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = common::raw_catalog(dir.path());
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    raw.file(2, 1, "f", &["f"]).unwrap();
    let mut config = common::config(&raw.path);
    config.read_only = true;
    let vfs = Vfs::open(config).unwrap();
    let f = NodeId::new(2).unwrap();
    let errnos = [
        vfs.create(NodeId::ROOT, "new", true)
            .map(drop)
            .unwrap_err()
            .errno(),
        vfs.mkdir(NodeId::ROOT, "d").map(drop).unwrap_err().errno(),
        vfs.unlink(NodeId::ROOT, "f").unwrap_err().errno(),
        vfs.rmdir(NodeId::ROOT, "f").unwrap_err().errno(),
        vfs.rename(NodeId::ROOT, "f", NodeId::ROOT, "g", RenameMode::Replace)
            .unwrap_err()
            .errno(),
        vfs.open_file_rw(f).map(drop).unwrap_err().errno(),
        vfs.setattr(f, SetAttr::size(0), None)
            .map(drop)
            .unwrap_err()
            .errno(),
    ];
    assert!(errnos.iter().all(|e| *e == libc::EROFS), "{errnos:?}");
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
    assert!(!dir.path().join("warren-store").exists());
    assert_eq!(vfs.getattr(f).unwrap().perm, 0o444);
    // A read handle cannot write either.
    let h = vfs.open_file(f).unwrap();
    assert_eq!(vfs.write_at(h, 0, b"x").unwrap_err().errno(), libc::EBADF);
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let (attr, w) = vfs.create(NodeId::ROOT, "shared", true).unwrap();
    let w2 = vfs.open_file_rw(attr.id).unwrap();
    let r = vfs.open_file(attr.id).unwrap();
    vfs.write_at(w, 0, b"first").unwrap();
    vfs.write_at(w2, 5, b"+second").unwrap();
    let mut buf = [0u8; 32];
    let n = vfs.read_at(r, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"first+second");
    for h in [w, w2, r] {
        vfs.release(h).unwrap();
    }
    assert_eq!(vfs.getattr(attr.id).unwrap().size, 12);
}
