//! Catalog files that cannot be opened: missing, a directory, empty, foreign,
//! truncated, locked by someone else, unreadable. Each gives a clear error that
//! names the file, with the right errno; none panics or hangs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CATALOG, CHILD_OK, assert_msg, child_arg, config, expect_err, raw_catalog, within};
use markbase_vfs::{NodeId, NodeKind, Vfs, VfsConfig, VfsError};

fn open_err(config: VfsConfig) -> VfsError {
    let catalog = config.catalog.clone();
    within(Duration::from_secs(20), "Vfs::open", move || {
        Vfs::open(config).err()
    })
    .unwrap_or_else(|| panic!("opening {} should fail", catalog.display()))
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// Deterministic bytes that are not a SQLite database.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| markbase_testkit::pattern_byte(seed, i))
        .collect()
}

#[test]
fn missing_catalog_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere").join(CATALOG);
    let err = open_err(config(&path));
    assert!(
        matches!(&err, VfsError::CatalogMissing(p) if *p == path),
        "{err:?}"
    );
    assert_eq!(err.errno(), libc::ENOENT);
    assert_msg(&err, &[&shown(&path), "does not exist"]);
}

#[test]
fn directory_is_not_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    std::fs::create_dir(&path).unwrap();
    let err = open_err(config(&path));
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert_msg(&err, &[&shown(&path), "is a directory"]);
}

#[test]
fn empty_file_is_not_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    std::fs::write(&path, b"").unwrap();
    let err = open_err(config(&path));
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert_msg(&err, &[&shown(&path), "empty (0 bytes)"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "opening must not write the file"
    );
}

#[test]
fn random_bytes_are_not_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    let bytes = noise(64 * 1024, 7);
    std::fs::write(&path, &bytes).unwrap();
    let err = open_err(config(&path));
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert_msg(&err, &[&shown(&path), "SQLite header"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "opening must not change the file"
    );
}

#[test]
fn sqlite_header_followed_by_garbage_is_not_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(noise(16 * 1024, 11));
    std::fs::write(&path, &bytes).unwrap();
    let err = open_err(config(&path));
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert_msg(&err, &[&shown(&path), "not a usable SQLite database"]);
}

#[test]
fn header_only_file_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend([0u8; 84]);
    std::fs::write(&path, &bytes).unwrap();
    let err = open_err(config(&path));
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_msg(&err, &[&shown(&path), "truncated (100 bytes)"]);
}

/// A real catalog of 3,000 nodes cut in half: opening it, or walking what
/// opened, must end in an error that says the catalog is damaged; never a
/// panic, a hang, or a listing that silently pretends to be complete.
#[test]
fn truncated_catalog_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.conn.execute_batch("BEGIN").unwrap();
    let mut id = 2;
    for d in 0..50 {
        let dir_id = id;
        raw.dir(
            dir_id,
            1,
            &format!("day-{d:03}-with-a-fairly-long-directory-name"),
        )
        .unwrap();
        id += 1;
        for f in 0..60 {
            raw.file(
                id,
                dir_id,
                &format!("clip-{f:04}-camera-a-take-{d:03}.mov"),
                &[&format!(
                    "/media/archive/volume-{d:03}/clip-{f:04}-camera-a.mov"
                )],
            )
            .unwrap();
            id += 1;
        }
    }
    raw.conn.execute_batch("COMMIT").unwrap();
    let path = raw.path.clone();
    drop(raw);
    let full = std::fs::metadata(&path).unwrap().len();
    assert!(
        full > 64 * 1024,
        "the catalog spans many pages ({full} bytes)"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full / 2)
        .unwrap();

    let cfg = config(&path);
    let outcome = within(
        Duration::from_secs(30),
        "opening and walking a truncated catalog",
        move || {
            let vfs = match Vfs::open(cfg) {
                Ok(vfs) => vfs,
                Err(err) => return (Some(err), 0),
            };
            // Walk everything; the first error ends the walk.
            let mut seen = 0usize;
            let mut dirs = vec![NodeId::ROOT];
            while let Some(dir) = dirs.pop() {
                let mut entries = Vec::new();
                if let Err(err) = vfs.readdir(dir, 0, |e| {
                    entries.push(e.clone());
                    true
                }) {
                    return (Some(err), seen);
                }
                for entry in entries {
                    seen += 1;
                    let found = vfs
                        .lookup(dir, &entry.name)
                        .and_then(|_| vfs.getattr(entry.id));
                    if let Err(err) = found {
                        return (Some(err), seen);
                    }
                    if entry.kind == NodeKind::Dir {
                        dirs.push(entry.id);
                    }
                }
            }
            (None, seen)
        },
    );
    let (err, seen) = outcome;
    eprintln!("truncated catalog: {seen} nodes walked, then {err:?}");
    let err = err.unwrap_or_else(|| panic!("walking half a catalog saw {seen} nodes and no error"));
    assert!(
        seen < 3050,
        "half the catalog is gone, yet {seen} nodes were walked"
    );
    assert!(matches!(err, VfsError::NotACatalog { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert_msg(
        &err,
        &[
            &shown(&std::fs::canonicalize(&path).unwrap()),
            "damaged or truncated",
        ],
    );
}

fn short_busy(path: &Path) -> VfsConfig {
    let mut cfg = config(path);
    cfg.busy_timeout = Duration::from_millis(200);
    cfg
}

/// Asserts a `CatalogBusy` that came back promptly: the busy timeout is 200 ms, so
/// 5 s is far beyond it and far short of anything that would look like a hang.
#[track_caller]
fn assert_busy(err: &VfsError, path: &Path, elapsed: Duration) {
    assert!(matches!(err, VfsError::CatalogBusy { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EBUSY);
    assert_msg(err, &[&shown(path), "locked by another process"]);
    assert!(
        elapsed < Duration::from_secs(5),
        "CatalogBusy took {elapsed:?}"
    );
}

fn lock_exclusively(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    conn
}

#[test]
fn catalog_locked_by_another_connection_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "a").unwrap();
    let path = raw.path.clone();
    drop(raw);
    let lock = lock_exclusively(&path);

    let start = Instant::now();
    let err = open_err(short_busy(&path));
    assert_busy(
        &err,
        &std::fs::canonicalize(&path).unwrap(),
        start.elapsed(),
    );

    lock.execute_batch("COMMIT; PRAGMA locking_mode = NORMAL; SELECT count(*) FROM nodes;")
        .unwrap();
    drop(lock);
    let vfs = common::open(&path);
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["a"]);
}

const LOCK_TEST: &str = "catalog_locked_by_another_process_is_busy_and_recovers";

/// Starts a child holding `lock` ("exclusive": the whole file, or "write": an open
/// write transaction that added the row "uncommitted") on `path`.
fn hold_in_child(lock: &str, path: &Path) -> common::LockHolder {
    common::LockHolder::start(LOCK_TEST, &format!("{lock}:{}", path.display()))
}

/// The child's side: lock, announce, wait for stdin to close.
fn hold_lock(arg: &str) {
    let (lock, path) = arg.split_once(':').unwrap();
    let conn = match lock {
        "exclusive" => lock_exclusively(Path::new(path)),
        "write" => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch(
                "BEGIN EXCLUSIVE; \
                 INSERT INTO nodes (parent_id, name, kind) VALUES (1, 'uncommitted', 'dir');",
            )
            .unwrap();
            conn
        }
        other => panic!("unknown lock {other}"),
    };
    common::announce_holding();
    conn.execute_batch("COMMIT").unwrap();
    println!("{CHILD_OK}");
}

#[test]
fn catalog_locked_by_another_process_is_busy_and_recovers() {
    if let Some(path) = child_arg() {
        hold_lock(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_catalog(dir.path());
    raw.dir(2, 1, "before").unwrap();
    let path = raw.path.clone();
    drop(raw);
    let canonical = std::fs::canonicalize(&path).unwrap();

    // Locked before opening: the open fails, promptly.
    let holder = hold_in_child("exclusive", &path);
    let start = Instant::now();
    let err = open_err(short_busy(&path));
    assert_busy(&err, &canonical, start.elapsed());
    holder.release();

    // Once the lock is gone the catalog opens (and is switched to WAL).
    let vfs = Arc::new(Vfs::open(short_busy(&path)).unwrap());
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["before"]);

    // In WAL mode a writer holding its transaction open does not block readers,
    // and its uncommitted row is not seen.
    let holder = hold_in_child("write", &path);
    let v = Arc::clone(&vfs);
    let listed = within(
        Duration::from_secs(20),
        "readdir while another process writes",
        move || common::names(&v, NodeId::ROOT),
    );
    assert_eq!(listed, ["before"]);
    let err = expect_err(vfs.lookup(NodeId::ROOT, "uncommitted"));
    assert!(matches!(err, VfsError::NotFound(_)), "{err:?}");
    holder.release();
    // After the commit the new row is seen.
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["before", "uncommitted"]);
    assert_eq!(
        vfs.lookup(NodeId::ROOT, "uncommitted").unwrap().kind,
        NodeKind::Dir
    );
}

/// `chmod 000` does not stop root, so the check runs in a child as `nobody`.
#[test]
fn unreadable_catalog_names_the_file_and_the_os_error() {
    if let Some(dir) = child_arg() {
        assert!(
            !markbase_testkit::is_root(),
            "the child must not run as root"
        );
        let dir = PathBuf::from(dir);
        // A catalog with no read permission.
        let path = dir.join(CATALOG);
        let err = open_err(config(&path));
        assert!(matches!(err, VfsError::CatalogUnreadable { .. }), "{err:?}");
        assert_eq!(err.errno(), libc::EACCES);
        assert_msg(&err, &[&shown(&path), "cannot be read", "ermission denied"]);
        // A catalog in a directory that may not be entered.
        let path = dir.join("closed").join(CATALOG);
        let err = open_err(config(&path));
        assert!(matches!(err, VfsError::CatalogUnreadable { .. }), "{err:?}");
        assert_eq!(err.errno(), libc::EACCES);
        assert_msg(&err, &[&shown(&path), "cannot be read"]);
        println!("{CHILD_OK}");
        return;
    }
    let dir = common::open_tempdir();
    let path = raw_catalog(dir.path()).path;
    std::fs::create_dir(dir.path().join("closed")).unwrap();
    drop(raw_catalog(&dir.path().join("closed")));
    if markbase_testkit::is_root() {
        common::chown_tree(dir.path(), common::NOBODY, common::NOBODY);
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(
        dir.path().join("closed"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();

    common::assert_passes_as_nobody(
        "unreadable_catalog_names_the_file_and_the_os_error",
        dir.path(),
    );
}
