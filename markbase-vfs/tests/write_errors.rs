//! Write-path failures surface as the right errno with a message that names the
//! culprit, and leave nothing half-done: out of space (a real, small tmpfs as the
//! store), permission denied (as `nobody`), a catalog locked by another process,
//! unknown or read-only handles, invalid names.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{CATALOG, CHILD_OK, assert_msg, child_arg, expect_err, within};
use markbase_vfs::{
    NodeId, NodeKind, Vfs, VfsError, handles::FileHandle, namespace::RenameMode, write::SetAttr,
};

fn id(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}

/// The files in `dir` (none when it does not exist), sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("listing {}: {err}", dir.display()),
    };
    files.sort();
    files
}

#[track_caller]
fn assert_clean(vfs: &Vfs) {
    let report = vfs.check().unwrap();
    assert!(report.is_clean(), "check() found {report:?}");
}

// ---------------------------------------------------------------------------
// Out of space
// ---------------------------------------------------------------------------

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` on `dir`; `None` (skip) when that is not possible.
    #[track_caller]
    fn mount(dir: &Path, options: &str) -> Option<Self> {
        if !markbase_testkit::is_root() {
            markbase_testkit::cannot_run("mounting a tmpfs for the ENOSPC test needs root");
            return None;
        }
        let mount = markbase_testkit::require_tool("mount")?;
        markbase_testkit::require_tool("umount")?;
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new(mount)
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            markbase_testkit::cannot_run(&format!("mount -t tmpfs failed: {}", said.trim()));
            return None;
        }
        Some(Self {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy: detach it, so that the temp dir can go.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn statvfs(dir: &Path) -> libc::statvfs {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut out = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid NUL-terminated path and a buffer of the right type.
    let rc = unsafe { libc::statvfs(path.as_ptr(), out.as_mut_ptr()) };
    assert_eq!(rc, 0, "statvfs {}", dir.display());
    // SAFETY: statvfs succeeded, so it filled the buffer.
    unsafe { out.assume_init() }
}

#[test]
fn out_of_space_is_enospc_naming_the_file_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // 2 MiB of data and 4 inodes: the root directory and three files.
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("store"), "size=2m,nr_inodes=4") else {
        return;
    };
    let store = tmpfs.dir.clone();
    std::fs::create_dir(dir.path().join("library")).unwrap();
    let raw = common::raw_catalog(&dir.path().join("library"));
    let mut config = common::config(&raw.path);
    config.store = Some(store.clone());
    let vfs = Vfs::open(config).unwrap();

    // statfs reports the store's filesystem: the tmpfs, not the catalog's disk.
    let before = vfs.statfs().unwrap();
    let real = statvfs(&store);
    assert_eq!(
        (before.blocks, before.blocks_free),
        (real.f_blocks, real.f_bfree)
    );
    assert_eq!(before.blocks * before.block_size, 2 << 20);

    // Writing more than fits: ENOSPC, naming the node and its store file.
    let (big, handle) = vfs.create(NodeId::ROOT, "big.mov", true).unwrap();
    let store_file = vfs.resolve(big.id).unwrap().outcome.unwrap().path.clone();
    assert!(store_file.starts_with(&store), "{}", store_file.display());
    let chunk = vec![0x5au8; 512 << 10];
    let mut written = 0u64;
    let err = loop {
        match vfs.write_at(handle, written, &chunk) {
            Ok(n) => written += n as u64,
            Err(err) => break err,
        }
        assert!(written <= 4 << 20, "4 MiB written into a 2 MiB tmpfs");
    };
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert_msg(
        &err,
        &[
            &format!("node {}", big.id),
            &store_file.display().to_string(),
            "No space left on device",
        ],
    );
    assert!(
        written <= 2 << 20,
        "{written} bytes written into a 2 MiB tmpfs"
    );
    assert_eq!(vfs.statfs().unwrap().blocks_available, 0);

    // Through the zero-copy entry point too: a second file gets no byte in.
    let (small, small_handle) = vfs.create(NodeId::ROOT, "small.mov", true).unwrap();
    let err = expect_err(vfs.write(small_handle, 0, 4096, &mut [1u8; 4096][..]));
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert_msg(&err, &[&format!("node {}", small.id), "No space left"]);

    // Whatever did get written is recorded on release; nothing is inconsistent.
    vfs.release(handle).unwrap();
    vfs.release(small_handle).unwrap();
    let size = vfs.getattr(big.id).unwrap().size;
    assert!(size >= written, "{size} < {written}");
    assert_eq!(vfs.node(big.id).unwrap().recorded_size, size);
    assert_clean(&vfs);

    // Out of inodes: the create fails with ENOSPC naming the store, and leaves
    // neither a node nor a store file.
    let (_, third) = vfs.create(NodeId::ROOT, "third.mov", true).unwrap();
    vfs.release(third).unwrap();
    let files = files_in(&store);
    assert_eq!(files.len(), 3);
    let err = expect_err(vfs.create(NodeId::ROOT, "fourth.mov", true));
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert_msg(
        &err,
        &[&store.display().to_string(), "No space left on device"],
    );
    assert_eq!(
        vfs.lookup(NodeId::ROOT, "fourth.mov").unwrap_err().errno(),
        libc::ENOENT
    );
    assert_eq!(files_in(&store), files);
    assert_eq!(
        common::names(&vfs, NodeId::ROOT),
        ["big.mov", "small.mov", "third.mov"]
    );
    assert_clean(&vfs);

    // Freeing space makes room again.
    vfs.unlink(NodeId::ROOT, "big.mov").unwrap();
    assert!(!store_file.exists());
    let (after, handle) = vfs.create(NodeId::ROOT, "after.mov", true).unwrap();
    let bytes: Vec<u8> = (0..1u64 << 20)
        .map(|i| markbase_testkit::pattern_byte(9, i))
        .collect();
    vfs.write_at(handle, 0, &bytes).unwrap();
    vfs.release(handle).unwrap();
    assert_eq!(common::read_all(&vfs, after.id), bytes);
    assert_clean(&vfs);
    drop(vfs);
    drop(tmpfs);
    assert!(files_in(&store).is_empty(), "the tmpfs is still mounted");
}

#[test]
fn a_copy_that_runs_out_of_space_is_removed_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("store"), "size=1m") else {
        return;
    };
    let store = tmpfs.dir.clone();
    std::fs::create_dir(dir.path().join("library")).unwrap();
    let raw = common::raw_catalog(&dir.path().join("library"));
    // The source lives outside the store: 3 MiB, three times what the store holds.
    let source = dir.path().join("library/original.mov");
    markbase_testkit::write_pattern_file(&source, 3 << 20, 4).unwrap();
    raw.file(2, 1, "original.mov", &[source.to_str().unwrap()])
        .unwrap();
    let mut config = common::config(&raw.path);
    config.store = Some(store.clone());
    let vfs = Vfs::open(config).unwrap();

    let err = vfs.copy_file(id(2), NodeId::ROOT, "copy.mov").unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC, "{err}");
    assert!(
        matches!(vfs.lookup_path("/copy.mov"), Err(VfsError::NotFound(_))),
        "a partial copy is left in the catalog"
    );
    assert!(
        files_in(&store).is_empty(),
        "store files left: {:?}",
        files_in(&store)
    );
    assert_eq!(vfs.open_handles(), 0);
    assert_clean(&vfs);
    drop(vfs);
    drop(tmpfs);
}

// ---------------------------------------------------------------------------
// Permission denied
// ---------------------------------------------------------------------------

/// `chmod` does not stop root, so the checks run in a child as `nobody`.
#[test]
fn permission_denied_is_eacces_naming_the_path() {
    if let Some(dir) = child_arg() {
        assert!(
            !markbase_testkit::is_root(),
            "the child must not run as root"
        );
        permission_checks(Path::new(&dir));
        println!("{CHILD_OK}");
        return;
    }
    let dir = common::open_tempdir();
    let raw = common::raw_catalog(dir.path());
    raw.insert(2, Some(1), "locked.mov", "file", 6, "[\"locked.bin\"]")
        .unwrap();
    raw.insert(3, Some(1), "mine.mov", "file", 4, "[\"mine.bin\"]")
        .unwrap();
    drop(raw);
    std::fs::write(dir.path().join("locked.bin"), b"locked").unwrap();
    std::fs::write(dir.path().join("mine.bin"), b"mine").unwrap();
    std::fs::create_dir(dir.path().join("closed-store")).unwrap();
    if markbase_testkit::is_root() {
        common::chown_tree(dir.path(), common::NOBODY, common::NOBODY);
        for path in ["locked.bin", "closed-store"] {
            std::os::unix::fs::lchown(dir.path().join(path), Some(0), Some(0)).unwrap();
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("locked.bin"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("closed-store"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();

    common::assert_passes_as_nobody("permission_denied_is_eacces_naming_the_path", dir.path());
    assert_eq!(
        std::fs::read(dir.path().join("locked.bin")).unwrap(),
        b"locked"
    );
}

fn permission_checks(dir: &Path) {
    let locked = dir.join("locked.bin");
    assert_eq!(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&locked)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::PermissionDenied,
        "the child may write the locked file: privileges were not dropped"
    );
    let vfs = common::open(&dir.join(CATALOG));
    let canonical = std::fs::canonicalize(&locked).unwrap();

    // Opening for writing, truncating by path, a non-exclusive create of it.
    let errs = [
        expect_err(vfs.open_file_rw(id(2))),
        expect_err(vfs.setattr(id(2), SetAttr::size(0), None)),
        expect_err(vfs.create(NodeId::ROOT, "locked.mov", false)),
    ];
    for err in &errs {
        assert_eq!(err.errno(), libc::EACCES, "{err}");
        assert_msg(err, &[&canonical.display().to_string(), "ermission denied"]);
    }
    // Reading is still allowed, and the bytes are untouched.
    assert_eq!(common::read_all(&vfs, id(2)), b"locked");
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 6);
    // A file the user owns is writable (the denial is about that one file).
    let h = vfs.open_file_rw(id(3)).unwrap();
    vfs.write_at(h, 4, b"!").unwrap();
    vfs.release(h).unwrap();
    assert_eq!(common::read_all(&vfs, id(3)), b"mine!");

    // A store the user may not write to: the create fails naming the store, and
    // leaves no node and no file.
    let mut config = common::config(&dir.join(CATALOG));
    config.store = Some(PathBuf::from("closed-store"));
    let closed = Vfs::open(config).unwrap();
    let store = std::fs::canonicalize(dir.join("closed-store")).unwrap();
    let err = expect_err(closed.create(NodeId::ROOT, "new.mov", true));
    assert_eq!(err.errno(), libc::EACCES, "{err}");
    assert_msg(&err, &[&store.display().to_string(), "ermission denied"]);
    assert_eq!(
        closed.lookup(NodeId::ROOT, "new.mov").unwrap_err().errno(),
        libc::ENOENT
    );
    assert!(files_in(&store).is_empty());
    assert_clean(&closed);
    assert_clean(&vfs);
}

// ---------------------------------------------------------------------------
// The catalog locked by another writer
// ---------------------------------------------------------------------------

const LOCK_TEST: &str = "catalog_locked_by_another_writer_is_ebusy_and_nothing_is_half_done";
/// A child holding the catalog's write lock: `how` is "immediate" or "exclusive", that
/// kind of transaction with an insert in it, rolled back on release. (The catalog is in
/// WAL mode, where readers go on reading either way.)
fn hold_in_child(how: &str, catalog: &Path) -> common::LockHolder {
    common::LockHolder::start(LOCK_TEST, &format!("{how}|{}", catalog.display()))
}

fn hold_lock(arg: &str) {
    let (how, path) = arg.split_once('|').unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    let setup = match how {
        "immediate" => "BEGIN IMMEDIATE;",
        "exclusive" => "BEGIN EXCLUSIVE;",
        other => panic!("unknown lock {other}"),
    };
    conn.execute_batch(setup).unwrap();
    conn.execute_batch("INSERT INTO nodes (parent_id, name, kind) VALUES (1, 'other', 'dir');")
        .unwrap();
    common::announce_holding();
    conn.execute_batch("ROLLBACK").unwrap();
    println!("{CHILD_OK}");
}

#[test]
fn catalog_locked_by_another_writer_is_ebusy_and_nothing_is_half_done() {
    if let Some(arg) = child_arg() {
        hold_lock(&arg);
        return;
    }
    for how in ["immediate", "exclusive"] {
        locked_catalog(how);
    }
}

fn locked_catalog(how: &str) {
    let dir = tempfile::tempdir().unwrap();
    let raw = common::raw_catalog(dir.path());
    let catalog = raw.path.clone();
    drop(raw);
    let mut config = common::config(&catalog);
    config.busy_timeout = Duration::from_millis(100);
    let vfs = std::sync::Arc::new(Vfs::open(config).unwrap());
    let canonical = std::fs::canonicalize(&catalog).unwrap();
    let store = canonical.parent().unwrap().join("warren-store");

    // Before the lock: a directory, a file with a dirty handle, a file to rename.
    let dir_ino = vfs.mkdir(NodeId::ROOT, "dir").unwrap().id;
    let (dirty, dirty_handle) = vfs.create(NodeId::ROOT, "dirty.mov", true).unwrap();
    let before_lock = b"written before the lock";
    vfs.write_at(dirty_handle, 0, before_lock).unwrap();
    let (_, h) = vfs.create(NodeId::ROOT, "keep.mov", true).unwrap();
    vfs.release(h).unwrap();
    let store_before = files_in(&store);
    assert_eq!(store_before.len(), 2);

    let holder = hold_in_child(how, &catalog);
    let v = std::sync::Arc::clone(&vfs);
    let errs: Vec<(&str, Option<VfsError>, Duration)> = within(
        Duration::from_secs(30),
        "writes to a locked catalog",
        move || {
            let timed = |what, f: &dyn Fn() -> Option<VfsError>| {
                let start = Instant::now();
                let err = f();
                (what, err, start.elapsed())
            };
            vec![
                timed("create", &|| v.create(NodeId::ROOT, "new.mov", true).err()),
                timed("create in a directory", &|| {
                    v.create(dir_ino, "new.mov", false).err()
                }),
                timed("mkdir", &|| v.mkdir(NodeId::ROOT, "newdir").err()),
                timed("rename", &|| {
                    v.rename(
                        NodeId::ROOT,
                        "keep.mov",
                        dir_ino,
                        "moved.mov",
                        RenameMode::Replace,
                    )
                    .err()
                }),
                timed("unlink", &|| v.unlink(NodeId::ROOT, "keep.mov").err()),
                timed("rmdir", &|| v.rmdir(NodeId::ROOT, "dir").err()),
                timed("flush", &|| v.flush(dirty_handle).err()),
            ]
        },
    );
    for (what, err, elapsed) in &errs {
        let err = err
            .as_ref()
            .unwrap_or_else(|| panic!("{how} lock: {what} succeeded on a locked catalog"));
        assert_eq!(err.errno(), libc::EBUSY, "{how} lock: {what}: {err}");
        assert_msg(
            err,
            &[
                &canonical.display().to_string(),
                "locked by another process",
            ],
        );
        assert!(
            *elapsed < Duration::from_secs(5),
            "{how} lock: {what} took {elapsed:?} with a 100 ms busy timeout"
        );
    }
    // No store file was left by the failed creates.
    assert_eq!(files_in(&store), store_before, "{how} lock");
    holder.release();

    // Once the lock is gone: nothing of the failed calls is in the catalog or the store.
    assert_eq!(
        common::names(&vfs, NodeId::ROOT),
        ["dir", "dirty.mov", "keep.mov"],
        "{how} lock"
    );
    assert!(common::names(&vfs, dir_ino).is_empty(), "{how} lock");
    assert_eq!(files_in(&store), store_before, "{how} lock");
    assert_clean(&vfs);
    // The failed flush kept the handle dirty: flushing again records the size.
    vfs.flush(dirty_handle).unwrap();
    assert_eq!(
        vfs.node(dirty.id).unwrap().recorded_size,
        before_lock.len() as u64
    );
    vfs.release(dirty_handle).unwrap();
    // And every call works again.
    let (_, h) = vfs.create(NodeId::ROOT, "new.mov", true).unwrap();
    vfs.release(h).unwrap();
    vfs.rename(
        NodeId::ROOT,
        "keep.mov",
        dir_ino,
        "moved.mov",
        RenameMode::Replace,
    )
    .unwrap();
    vfs.unlink(dir_ino, "moved.mov").unwrap();
    vfs.rmdir(NodeId::ROOT, "dir").unwrap();
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["dirty.mov", "new.mov"]);
    assert_clean(&vfs);
}

// ---------------------------------------------------------------------------
// Bad handles and bad names
// ---------------------------------------------------------------------------

#[test]
fn unknown_and_read_only_handles_are_ebadf() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::open(&common::raw_catalog(dir.path()).path);
    let (attr, h) = vfs.create(NodeId::ROOT, "f.mov", true).unwrap();
    vfs.write_at(h, 0, b"bytes").unwrap();
    vfs.release(h).unwrap();

    // A handle never given out, and one already released.
    for bad in [FileHandle::from_raw(987_654), h] {
        let raw = bad.raw().to_string();
        let errs = [
            expect_err(vfs.write_at(bad, 0, b"x")),
            expect_err(vfs.write(bad, 0, 1, &mut b"x".to_vec()[..])),
            expect_err(vfs.flush(bad)),
            expect_err(vfs.fsync(bad, false)),
            expect_err(vfs.setattr(attr.id, SetAttr::size(0), Some(bad))),
            expect_err(vfs.read_at(bad, 0, &mut [0u8; 4])),
            expect_err(vfs.release(bad)),
        ];
        for err in &errs {
            assert!(matches!(err, VfsError::BadHandle(_)), "{err:?}");
            assert_eq!(err.errno(), libc::EBADF, "{err}");
            assert_msg(err, &["bad file handle", &raw]);
        }
    }

    // A read handle cannot write, truncate, or be used as a write handle.
    let r = vfs.open_file(attr.id).unwrap();
    let errs = [
        expect_err(vfs.write_at(r, 0, b"x")),
        expect_err(vfs.write(r, 0, 1, &mut b"x".to_vec()[..])),
        expect_err(vfs.setattr(attr.id, SetAttr::size(0), Some(r))),
    ];
    for err in &errs {
        assert!(matches!(err, VfsError::NotWritable(_)), "{err:?}");
        assert_eq!(err.errno(), libc::EBADF, "{err}");
        assert_msg(err, &[&r.raw().to_string(), "not open for writing"]);
    }
    // Flushing or syncing a read handle is harmless.
    vfs.flush(r).unwrap();
    vfs.fsync(r, true).unwrap();
    vfs.release(r).unwrap();
    assert_eq!(common::read_all(&vfs, attr.id), b"bytes");
    assert_eq!(vfs.open_handles(), 0);
}

#[test]
fn invalid_names_are_refused_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::open(&common::raw_catalog(dir.path()).path);
    vfs.mkdir(NodeId::ROOT, "d").unwrap();
    let long = "x".repeat(256);
    let long_utf8 = "日".repeat(86); // 258 bytes in 86 characters
    let cases: [(&str, i32, &str); 7] = [
        ("", libc::EINVAL, "empty"),
        (".", libc::EINVAL, "'.' and '..'"),
        ("..", libc::EINVAL, "'.' and '..'"),
        ("a/b", libc::EINVAL, "'/'"),
        ("a\0b", libc::EINVAL, "NUL"),
        (&long, libc::ENAMETOOLONG, "256 bytes"),
        (&long_utf8, libc::ENAMETOOLONG, "258 bytes"),
    ];
    for (name, errno, reason) in cases {
        let errs = [
            ("create", expect_err(vfs.create(NodeId::ROOT, name, true))),
            ("create", expect_err(vfs.create(NodeId::ROOT, name, false))),
            ("mkdir", expect_err(vfs.mkdir(NodeId::ROOT, name))),
            (
                "rename to",
                expect_err(vfs.rename(NodeId::ROOT, "d", NodeId::ROOT, name, RenameMode::Replace)),
            ),
            (
                "rename from",
                expect_err(vfs.rename(NodeId::ROOT, name, NodeId::ROOT, "e", RenameMode::Replace)),
            ),
            ("unlink", expect_err(vfs.unlink(NodeId::ROOT, name))),
            ("rmdir", expect_err(vfs.rmdir(NodeId::ROOT, name))),
        ];
        for (what, err) in &errs {
            assert!(
                matches!(err, VfsError::InvalidName { .. }),
                "{what} {name:?}: {err:?}"
            );
            assert_eq!(err.errno(), errno, "{what} {name:?}: {err}");
            assert_msg(err, &[&format!("{name:?}"), reason]);
        }
    }
    // The longest valid name works, in bytes: 255 of them.
    let longest = "y".repeat(255);
    let (_, h) = vfs.create(NodeId::ROOT, &longest, true).unwrap();
    vfs.release(h).unwrap();
    let longest_utf8 = format!("{}yy", "日".repeat(84)); // 254 bytes
    vfs.mkdir(NodeId::ROOT, &longest_utf8).unwrap();
    let mut names = common::names(&vfs, NodeId::ROOT);
    names.sort();
    let mut expected = vec!["d".to_owned(), longest.clone(), longest_utf8];
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(
        vfs.getattr(vfs.lookup(NodeId::ROOT, "d").unwrap().id)
            .unwrap()
            .kind,
        NodeKind::Dir
    );
    // Only the one valid create made a store file.
    assert_eq!(files_in(&dir.path().join("warren-store")).len(), 1);
    assert_clean(&vfs);
}

#[test]
fn catalog_the_user_cannot_write_refuses_writes_with_erofs_naming_it() {
    if let Some(dir) = common::child_arg() {
        let dir = Path::new(&dir);
        let vfs = Vfs::open(common::config(&dir.join(common::CATALOG))).unwrap();
        // Reading works.
        assert_eq!(common::names(&vfs, NodeId::ROOT), ["existing"]);
        let err = vfs.mkdir(NodeId::ROOT, "new").unwrap_err();
        assert_eq!(err.errno(), libc::EROFS, "{err}");
        assert!(err.to_string().contains(common::CATALOG), "{err}");
        assert!(err.to_string().contains("cannot be written"), "{err}");
        println!("{}", common::CHILD_OK);
        return;
    }
    let dir = common::open_tempdir();
    let raw = common::raw_catalog(dir.path());
    raw.dir(2, 1, "existing").unwrap();
    // Put the catalog in WAL mode now, so that a reader needs no write access to switch it.
    drop(common::open(&raw.path));
    drop(raw);
    if markbase_testkit::is_root() {
        common::chown_tree(dir.path(), common::NOBODY, common::NOBODY);
        std::os::unix::fs::lchown(dir.path().join(common::CATALOG), Some(0), Some(0)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join(common::CATALOG),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    common::assert_passes_as_nobody(
        "catalog_the_user_cannot_write_refuses_writes_with_erofs_naming_it",
        dir.path(),
    );
}
