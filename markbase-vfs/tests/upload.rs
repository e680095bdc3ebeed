//! Uploads: bytes that take their name only when complete.

mod common;

use markbase_vfs::{NodeId, Vfs};

fn store_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir.join("warren-store")) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn an_upload_is_invisible_until_committed_and_leaves_nothing_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let upload = vfs.begin_upload(NodeId::ROOT, "clip.mov").unwrap();
    upload.write_at(0, &[1u8; 1000]).unwrap();
    upload.write_at(4096, b"tail").unwrap();
    assert_eq!(upload.len().unwrap(), 4100);
    assert!(
        vfs.lookup_path("/clip.mov").is_err(),
        "visible before commit"
    );
    drop(upload);
    assert!(vfs.lookup_path("/clip.mov").is_err());
    assert!(
        store_files(dir.path()).is_empty(),
        "{:?}",
        store_files(dir.path())
    );

    let upload = vfs.begin_upload(NodeId::ROOT, "clip.mov").unwrap();
    upload.write_at(0, b"frames").unwrap();
    let attr = vfs.commit_upload(upload).unwrap();
    assert_eq!(attr.size, 6);
    assert_eq!(vfs.lookup_path("/clip.mov").unwrap().id, attr.id);
    assert_eq!(common::read_all(&vfs, attr.id), b"frames");
    assert_eq!(vfs.node(attr.id).unwrap().recorded_size, 6);
    assert!(vfs.check().unwrap().is_clean());
}

#[test]
fn committing_over_a_file_keeps_its_node_and_replaces_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let (old, handle) = vfs.create(NodeId::ROOT, "clip.mov", true).unwrap();
    vfs.write_at(handle, 0, b"old content").unwrap();
    vfs.release(handle).unwrap();
    let old_store = store_files(dir.path());
    assert_eq!(old_store.len(), 1);

    // A reader holding the old content keeps reading it.
    let reader = vfs.open_file(old.id).unwrap();
    let upload = vfs.begin_upload(NodeId::ROOT, "clip.mov").unwrap();
    upload.write_at(0, b"new").unwrap();
    let new = vfs.commit_upload(upload).unwrap();
    assert_eq!(new.id, old.id, "the node keeps its id");
    assert_eq!(common::read_all(&vfs, new.id), b"new");
    let mut buf = [0u8; 11];
    assert_eq!(vfs.read_at(reader, 0, &mut buf).unwrap(), 11);
    assert_eq!(&buf, b"old content");
    vfs.release(reader).unwrap();
    // The old store file is gone; only the new one is left.
    let now = store_files(dir.path());
    assert_eq!(now.len(), 1);
    assert_ne!(now, old_store);
    assert!(vfs.check().unwrap().is_clean());
}

#[test]
fn committing_over_an_original_leaves_the_original_alone() {
    let dir = tempfile::tempdir().unwrap();
    let raw = common::raw_catalog(dir.path());
    let original = dir.path().join("original.mov");
    std::fs::write(&original, b"camera original").unwrap();
    raw.file(2, 1, "clip.mov", &[original.to_str().unwrap()])
        .unwrap();
    let vfs = common::open(&raw.path);

    let upload = vfs.begin_upload(NodeId::ROOT, "clip.mov").unwrap();
    upload.write_at(0, b"edited").unwrap();
    let attr = vfs.commit_upload(upload).unwrap();
    assert_eq!(attr.id.get(), 2);
    assert_eq!(common::read_all(&vfs, attr.id), b"edited");
    assert_eq!(std::fs::read(&original).unwrap(), b"camera original");
}

#[test]
fn bad_uploads_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let folder = vfs.mkdir(NodeId::ROOT, "folder").unwrap().id;
    let (file, handle) = vfs.create(NodeId::ROOT, "file", true).unwrap();
    vfs.release(handle).unwrap();
    let before = store_files(dir.path());

    // Over a directory: EISDIR at commit, and the upload's bytes are removed.
    let upload = vfs.begin_upload(NodeId::ROOT, "folder").unwrap();
    upload.write_at(0, b"x").unwrap();
    let err = vfs.commit_upload(upload).unwrap_err();
    assert_eq!(err.errno(), libc::EISDIR, "{err}");
    assert_eq!(vfs.lookup_path("/folder").unwrap().id, folder);
    // Into a file, with a bad name: refused at once.
    let err = vfs.begin_upload(file.id, "x").unwrap_err();
    assert_eq!(err.errno(), libc::ENOTDIR, "{err}");
    let err = vfs.begin_upload(NodeId::ROOT, "a/b").unwrap_err();
    assert_eq!(err.errno(), libc::EINVAL, "{err}");
    assert_eq!(store_files(dir.path()), before);

    drop(vfs);
    let mut config = common::config(&dir.path().join(common::CATALOG));
    config.read_only = true;
    let read_only = Vfs::open(config).unwrap();
    let err = read_only.begin_upload(NodeId::ROOT, "new").unwrap_err();
    assert_eq!(err.errno(), libc::EROFS, "{err}");
}
