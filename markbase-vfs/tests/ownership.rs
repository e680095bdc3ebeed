//! Who may read: a served file reports the owner, group and permission bits of its
//! alias file, less what the folders above it keep each class of user from; other
//! nodes belong to `VfsConfig::owner`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{CATALOG, config, raw_catalog};
use markbase_vfs::{
    NodeId, Vfs,
    namespace::NewFile,
    node::Owner,
    write::{OwnerChange, SetAttr},
};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A catalog in `dir` with files `/a` .. served by `aliases`, in order (ids 2, 3, ...).
fn catalog_of(dir: &Path, aliases: &[&Path]) -> Vfs {
    let raw = raw_catalog(dir);
    for (index, alias) in aliases.iter().enumerate() {
        let id = index as i64 + 2;
        let name = format!("f{id}");
        raw.file(id, 1, &name, &[alias.to_str().unwrap()]).unwrap();
    }
    Vfs::open(config(&dir.join(CATALOG))).unwrap()
}

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

#[test]
fn a_served_file_has_its_alias_file_s_owner_and_mode() {
    let dir = common::open_tempdir();
    let open = dir.path().join("open.mov");
    let private = dir.path().join("private.mov");
    std::fs::write(&open, b"frames").unwrap();
    std::fs::write(&private, b"secret").unwrap();
    chmod(&open, 0o644);
    chmod(&private, 0o640);
    let root = markbase_testkit::is_root();
    if root {
        std::os::unix::fs::chown(&private, Some(1234), Some(5678)).unwrap();
    }
    let vfs = catalog_of(dir.path(), &[&open, &private, &dir.path().join("gone.mov")]);
    let me = Owner::current();

    let served = vfs.getattr(id(2)).unwrap();
    assert_eq!((served.perm, served.owner), (0o644, me));
    let private_attr = vfs.getattr(id(3)).unwrap();
    assert_eq!(private_attr.perm, 0o640);
    if root {
        let owner = Owner {
            uid: 1234,
            gid: 5678,
        };
        assert_eq!(private_attr.owner, owner);
    }
    // No alias serves it: the defaults, as before.
    let gone = vfs.getattr(id(4)).unwrap();
    assert_eq!((gone.perm, gone.owner), (0o644, me));
    let root_dir = vfs.getattr(NodeId::ROOT).unwrap();
    assert_eq!((root_dir.perm, root_dir.owner), (0o755, me));

    // The configured owner is that of directories and unserved files only.
    drop(vfs);
    let someone = Owner { uid: 42, gid: 43 };
    let vfs = common::reopen(dir.path(), |config| {
        config.owner = someone;
        config.read_only = true;
    });
    assert_eq!(vfs.getattr(NodeId::ROOT).unwrap().owner, someone);
    assert_eq!(vfs.getattr(id(4)).unwrap().owner, someone);
    let served = vfs.getattr(id(2)).unwrap();
    assert_eq!(
        (served.perm, served.owner),
        (0o444, me),
        "read-only: no write bits"
    );
}

#[test]
fn folders_that_keep_users_out_keep_them_out_of_the_file() {
    let dir = common::open_tempdir();
    let closed = dir.path().join("closed");
    let group_only = dir.path().join("group-only");
    for folder in [&closed, &group_only] {
        std::fs::create_dir(folder).unwrap();
        std::fs::write(folder.join("clip.mov"), b"frames").unwrap();
        chmod(&folder.join("clip.mov"), 0o666);
    }
    chmod(&closed, 0o700);
    chmod(&group_only, 0o750);
    let vfs = catalog_of(
        dir.path(),
        &[&closed.join("clip.mov"), &group_only.join("clip.mov")],
    );
    // A 0700 folder: only its owner (the file's too) can reach the file.
    assert_eq!(vfs.getattr(id(2)).unwrap().perm, 0o600);
    // A 0750 folder of the file's group: others are out.
    assert_eq!(vfs.getattr(id(3)).unwrap().perm, 0o660);
}

#[test]
fn an_alias_that_is_a_link_is_judged_by_its_target_s_folders_too() {
    let dir = common::open_tempdir();
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::write(closed.join("clip.mov"), b"frames").unwrap();
    chmod(&closed.join("clip.mov"), 0o644);
    chmod(&closed, 0o700);
    let link = dir.path().join("link.mov");
    std::os::unix::fs::symlink(closed.join("clip.mov"), &link).unwrap();
    let vfs = catalog_of(dir.path(), &[&link]);
    assert_eq!(vfs.getattr(id(2)).unwrap().perm, 0o600);
}

#[test]
fn a_new_file_has_its_store_file_s_owner_and_the_mode_asked_for() {
    let dir = common::open_tempdir();
    let vfs = common::empty_vfs(dir.path());
    let (created, handle) = vfs
        .create_with(
            NodeId::ROOT,
            "new.mov",
            true,
            NewFile::new(0o4640, Owner::current()),
        )
        .unwrap();
    vfs.release(handle).unwrap();
    assert_eq!(created.owner, Owner::current());
    assert_eq!(created.perm, 0o640, "special bits are not kept");
    assert_eq!(vfs.getattr(created.id).unwrap(), created);
}

#[test]
fn chmod_changes_files_the_store_holds_and_nothing_else() {
    let dir = common::open_tempdir();
    let original = dir.path().join("original.mov");
    std::fs::write(&original, b"frames").unwrap();
    chmod(&original, 0o644);
    let vfs = catalog_of(dir.path(), &[&original]);
    let new = common::write_file(&vfs, NodeId::ROOT, "new.mov", b"take 2");
    let before = vfs.getattr(new).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));

    let chmod_to = |ino, mode| vfs.setattr(ino, SetAttr::mode(mode), None).unwrap();
    let changed = chmod_to(new, 0o100600);
    assert_eq!(changed.perm, 0o600);
    assert!(
        changed.ctime_ns > before.ctime_ns,
        "{before:?} -> {changed:?}"
    );
    assert_eq!(vfs.getattr(new).unwrap().perm, 0o600);

    // A user's original and a folder: accepted, and nothing changes.
    assert_eq!(chmod_to(id(2), 0o600).perm, 0o644);
    let meta = std::fs::metadata(&original).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert_eq!(chmod_to(NodeId::ROOT, 0o700).perm, 0o755);
}

#[test]
fn a_new_file_belongs_to_its_creator_and_chown_gives_it_away_as_root_only() {
    let root = markbase_testkit::is_root();
    let dir = common::open_tempdir();
    let original = dir.path().join("original.mov");
    std::fs::write(&original, b"frames").unwrap();
    let vfs = catalog_of(dir.path(), &[&original]);
    let creator = Owner {
        uid: 1234,
        gid: 5678,
    };
    let (created, handle) = vfs
        .create_with(NodeId::ROOT, "new.mov", true, NewFile::new(0o600, creator))
        .unwrap();
    vfs.release(handle).unwrap();
    let chown = |ino, uid, gid| {
        let mut changes = SetAttr::default();
        changes.owner = Some(OwnerChange { uid, gid });
        vfs.setattr(ino, changes, None).map(|attr| attr.owner)
    };
    if !root {
        // Nobody else may be given a file: it stays this process's, and chown says so.
        assert_eq!((created.owner, created.perm), (Owner::current(), 0o600));
        let err = chown(created.id, None, Some(42)).unwrap_err();
        assert_eq!(err.errno(), libc::EPERM, "{err}");
        return;
    }
    assert_eq!((created.owner, created.perm), (creator, 0o600));
    let given = Owner { uid: 1234, gid: 42 };
    assert_eq!(chown(created.id, None, Some(42)).unwrap(), given);
    // A user's original and a folder keep their owners.
    assert_eq!(chown(id(2), Some(7), Some(7)).unwrap(), Owner::current());
    assert_eq!(
        chown(NodeId::ROOT, Some(7), Some(7)).unwrap(),
        Owner::current()
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&original).unwrap().uid(), 0);
}
