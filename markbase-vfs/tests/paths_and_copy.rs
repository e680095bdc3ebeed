//! Path rules for path-based adapters (`lookup_parent`) and `copy_file`.

mod common;

use markbase_vfs::{NodeId, NodeKind, Vfs, VfsError};

#[test]
fn lookup_parent_splits_paths_and_refuses_the_root_and_dots() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap().id;
    common::write_file(&vfs, day, "clip.mov", b"frames");

    let (parent, name) = vfs.lookup_parent("/Day 1/clip.mov").unwrap();
    assert_eq!((parent.id, name), (day, "clip.mov"));
    let (parent, name) = vfs.lookup_parent("/Day 1/new folder/").unwrap();
    assert_eq!((parent.id, name), (day, "new folder"));
    let (parent, name) = vfs.lookup_parent("/top.txt").unwrap();
    assert_eq!((parent.id, name), (NodeId::ROOT, "top.txt"));
    assert_eq!(parent.kind, NodeKind::Dir);

    for root in ["/", "", "//"] {
        let err = vfs.lookup_parent(root).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{root:?}: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid path {root:?}: it names the root, which has no name \
                 (the root cannot be removed, moved or replaced)"
            )
        );
    }
    // The whole path is named as a path, and the component that breaks it as such.
    for (dots, component) in [
        ("/Day 1/..", ".."),
        ("/Day 1/.", "."),
        ("/../etc/passwd", ".."),
        ("/Day 1/../../x", ".."),
    ] {
        let err = vfs.lookup_parent(dots).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{dots:?}: {err}");
        assert!(
            matches!(&err, VfsError::InvalidPath { path, component: c, .. }
                if path == dots && c == component),
            "{dots:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("invalid path {dots:?}: component {component:?}: '.' and '..' are not names")
        );
    }
    for dots in ["//Day 1/../", "/Day 1/../clip.mov"] {
        let err = vfs.lookup_path(dots).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL, "{dots:?}: {err}");
        assert_eq!(
            err.to_string(),
            format!("invalid path {dots:?}: component \"..\": '.' and '..' are not names")
        );
    }
    let err = vfs.lookup_parent("/missing/x").unwrap_err();
    assert!(
        matches!(&err, VfsError::NotFound(what) if what == "/missing"),
        "{err}"
    );
    let err = vfs.lookup_parent("/Day 1/clip.mov/x").unwrap_err();
    assert_eq!(err.errno(), libc::ENOTDIR, "{err}");
    assert!(err.to_string().contains("/Day 1/clip.mov"), "{err}");
}

#[test]
fn copy_file_copies_every_byte_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let bytes: Vec<u8> = (0..(3 << 20) + 12_345).map(|i| (i % 251) as u8).collect();
    let src = common::write_file(&vfs, NodeId::ROOT, "clip.mov", &bytes);
    let folder = vfs.mkdir(NodeId::ROOT, "Copies").unwrap().id;

    let copy = vfs.copy_file(src, folder, "clip copy.mov").unwrap();
    assert_eq!(copy.size, bytes.len() as u64);
    assert_ne!(copy.id, src);
    assert_eq!(common::read_all(&vfs, copy.id), bytes);
    assert_eq!(vfs.node(copy.id).unwrap().recorded_size, bytes.len() as u64);
    let resolution = vfs.resolve(copy.id).unwrap();
    let served_by = &resolution.outcome.as_ref().unwrap().path;
    assert!(
        served_by.starts_with(dir.path().join("warren-store")),
        "{served_by:?}"
    );

    // The original is untouched; an empty file copies too.
    assert_eq!(common::read_all(&vfs, src), bytes);
    let empty = common::write_file(&vfs, NodeId::ROOT, "empty", b"");
    assert_eq!(vfs.copy_file(empty, folder, "empty").unwrap().size, 0);
    assert!(vfs.check().unwrap().is_clean());
}

#[test]
fn copy_file_refuses_existing_names_directories_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let src = common::write_file(&vfs, NodeId::ROOT, "a", b"aaa");
    common::write_file(&vfs, NodeId::ROOT, "b", b"bbb");
    let folder = vfs.mkdir(NodeId::ROOT, "dir").unwrap().id;

    let err = vfs.copy_file(src, NodeId::ROOT, "b").unwrap_err();
    assert_eq!(err.errno(), libc::EEXIST, "{err}");
    let b = vfs.lookup_path("/b").unwrap();
    assert_eq!(common::read_all(&vfs, b.id), b"bbb");
    let err = vfs.copy_file(folder, NodeId::ROOT, "dir copy").unwrap_err();
    assert_eq!(err.errno(), libc::EISDIR, "{err}");
    let err = vfs.copy_file(src, src, "x").unwrap_err();
    assert_eq!(err.errno(), libc::ENOTDIR, "{err}");
    assert_eq!(vfs.open_handles(), 0);

    drop(vfs);
    let mut config = common::config(&dir.path().join(common::CATALOG));
    config.read_only = true;
    let read_only = Vfs::open(config).unwrap();
    let err = read_only.copy_file(src, NodeId::ROOT, "c").unwrap_err();
    assert_eq!(err.errno(), libc::EROFS, "{err}");
    assert!(read_only.lookup_path("/c").is_err());
    assert_eq!(read_only.open_handles(), 0);
}

#[test]
fn request_paths_are_checked_name_by_name_and_as_a_whole() {
    use markbase_vfs::node::{NameError, PATH_MAX, PathError, validate_path};
    for fine in ["/", "/Day 1/clip.mov", "/a//b/./c/", "/ü/e\u{301}"] {
        assert_eq!(validate_path(fine), Ok(()), "{fine}");
    }
    assert_eq!(
        validate_path("/a/../b"),
        Err(PathError::Name(NameError::Dots))
    );
    assert_eq!(validate_path("/a\0b"), Err(PathError::Name(NameError::Nul)));
    assert_eq!(validate_path("/..\\..\\etc"), Err(PathError::Backslash));
    assert_eq!(validate_path("/a\\b/c"), Err(PathError::Backslash));
    let long_name = format!("/d/{}", "n".repeat(256));
    let err = validate_path(&long_name).unwrap_err();
    assert_eq!(err, PathError::Name(NameError::TooLong(256)));
    assert!(err.is_too_long());
    let deepest = format!("/{}", "a/".repeat(PATH_MAX / 2 - 1));
    assert_eq!(validate_path(&deepest), Ok(()));
    let deeper = format!("/{}", "a/".repeat(PATH_MAX / 2));
    let err = validate_path(&deeper).unwrap_err();
    assert_eq!(err, PathError::TooLong(PATH_MAX + 1));
    assert!(err.is_too_long());
    assert!(!PathError::Backslash.is_too_long());
}
