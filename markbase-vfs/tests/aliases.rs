//! Aliases: unusable `aliases_json` values, and aliases that point at things that
//! are not readable regular files, or whose file changes while it is open.
//! A file that cannot be read is still listed and stat'ed; opening it fails with
//! NoUsableAlias naming the node and every reason; resolve() reports each skip.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    CHILD_OK, assert_msg, child_arg, expect_err, list, raw_catalog, read_all, read_handle, within,
};
use markbase_testkit::{RawCatalog, pattern_byte, write_pattern_file};
use markbase_vfs::{
    NodeId, NodeKind, Vfs, VfsError,
    alias::{AliasEntry, AliasList, InvalidAlias, SkipReason},
};

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

fn pattern(seed: u64, len: u64) -> Vec<u8> {
    (0..len).map(|i| pattern_byte(seed, i)).collect()
}

fn json(aliases: &[&str]) -> String {
    AliasList::to_json(aliases)
}

/// The reasons of every skipped alias of `ino` according to `resolve`, and the
/// index of the alias that serves it (`None` when none does).
fn resolution(vfs: &Vfs, ino: NodeId) -> (Option<usize>, Vec<(Option<usize>, SkipReason)>) {
    let resolution = vfs.resolve(ino).unwrap();
    match resolution.outcome {
        Ok(backing) => (
            Some(backing.index),
            backing
                .skipped
                .iter()
                .map(|s| (s.index, s.reason.clone()))
                .collect(),
        ),
        Err(skipped) => (
            None,
            skipped.into_iter().map(|s| (s.index, s.reason)).collect(),
        ),
    }
}

/// Asserts that opening `ino` fails with NoUsableAlias naming the node, its path and `reasons`.
#[track_caller]
fn assert_unusable(vfs: &Vfs, ino: NodeId, path: &str, reasons: &[&str]) {
    let err = expect_err(vfs.open_file(ino));
    assert!(
        matches!(&err, VfsError::NoUsableAlias { id, .. } if *id == ino),
        "{err:?}"
    );
    assert_eq!(err.errno(), libc::EIO);
    let node = format!("node {ino}");
    let mut parts = vec![path, node.as_str()];
    parts.extend_from_slice(reasons);
    assert_msg(&err, &parts);
}

#[test]
fn unusable_aliases_json_is_listed_but_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    std::fs::write(&good, b"good bytes").unwrap();
    let raw = raw_catalog(dir.path());
    raw.insert(2, Some(1), "not-json", "file", 1234, "{oops")
        .unwrap();
    raw.insert(3, Some(1), "object", "file", 1234, r#"{"path": "/x"}"#)
        .unwrap();
    raw.insert(4, Some(1), "string", "file", 1234, r#""/just/a/string""#)
        .unwrap();
    raw.insert(
        5,
        Some(1),
        "non-strings",
        "file",
        1234,
        r#"[1, null, true, {"a": 1}, ""]"#,
    )
    .unwrap();
    raw.insert(6, Some(1), "empty", "file", 1234, "[]").unwrap();
    raw.conn
        .execute(
            "INSERT INTO nodes (id, parent_id, name, kind, size, aliases_json) \
             VALUES (7, 1, 'blob-json', 'file', 1234, x'5b5d')",
            [],
        )
        .unwrap();
    let mixed = format!(r#"[5, "", {}]"#, serde_json_string(good.to_str().unwrap()));
    raw.insert(8, Some(1), "mixed", "file", 1234, &mixed)
        .unwrap();
    let vfs = common::open(&raw.path);

    // Every file is listed and stat'ed with its recorded size.
    let entries = list(&vfs, NodeId::ROOT);
    assert_eq!(entries.len(), 7);
    for entry in &entries {
        assert_eq!(entry.kind, NodeKind::File, "{entry:?}");
        let attr = vfs.getattr(entry.id).unwrap();
        assert_eq!(attr.kind, NodeKind::File);
        let expected = if entry.id == id(8) { 10 } else { 1234 };
        assert_eq!(attr.size, expected, "{}", entry.name);
        assert_eq!(
            vfs.lookup(NodeId::ROOT, &entry.name).unwrap().size,
            expected
        );
    }

    assert_unusable(
        &vfs,
        id(2),
        "/not-json",
        &["aliases_json is not valid JSON"],
    );
    assert_unusable(
        &vfs,
        id(3),
        "/object",
        &["aliases_json is not a JSON array but an object"],
    );
    assert_unusable(&vfs, id(4), "/string", &["not a JSON array but a string"]);
    assert_unusable(
        &vfs,
        id(5),
        "/non-strings",
        &[
            "alias #1: unusable alias: not a string but the number 1",
            "alias #2: unusable alias: not a string but null",
            "alias #3: unusable alias: not a string but the boolean true",
            "alias #4: unusable alias: not a string but an object",
            "alias #5: unusable alias: an empty path",
        ],
    );
    assert_unusable(&vfs, id(6), "/empty", &["the node has no aliases"]);
    assert_unusable(
        &vfs,
        id(7),
        "/blob-json",
        &["aliases_json is a 2-byte blob, not text"],
    );

    let (served, skipped) = resolution(&vfs, id(2));
    assert_eq!(served, None);
    assert!(
        matches!(&skipped[..], [(None, SkipReason::Unparsable(m))] if m.contains("not valid JSON"))
    );
    let (served, skipped) = resolution(&vfs, id(5));
    assert_eq!(served, None);
    let not_string = |s: &str| SkipReason::Invalid(InvalidAlias::NotAString(s.to_owned()));
    assert_eq!(
        skipped,
        [
            (Some(0), not_string("the number 1")),
            (Some(1), not_string("null")),
            (Some(2), not_string("the boolean true")),
            (Some(3), not_string("an object")),
            (Some(4), SkipReason::Invalid(InvalidAlias::Empty)),
        ]
    );
    assert_eq!(resolution(&vfs, id(6)), (None, vec![]));

    // An unusable element before a good path: served by the path, the rest reported.
    assert_eq!(
        resolution(&vfs, id(8)),
        (
            Some(2),
            vec![
                (Some(0), not_string("the number 5")),
                (Some(1), SkipReason::Invalid(InvalidAlias::Empty))
            ]
        )
    );
    assert_eq!(read_all(&vfs, id(8)), b"good bytes");

    // The node itself shows its parsed aliases.
    let node = vfs.node(id(8)).unwrap();
    let markbase_vfs::node::Content::File(AliasList::Entries(entries)) = &node.content else {
        panic!("{node:?}");
    };
    assert_eq!(
        entries[0],
        AliasEntry::Invalid(not_string_alias("the number 5"))
    );
}

fn not_string_alias(kind: &str) -> InvalidAlias {
    InvalidAlias::NotAString(kind.to_owned())
}

fn serde_json_string(s: &str) -> String {
    AliasList::to_json(&[s])
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn aliases_that_are_not_regular_files_are_skipped_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir(base.join("a-dir")).unwrap();
    mkfifo(&base.join("a-fifo"));
    write_pattern_file(&base.join("good.bin"), 5000, 3).unwrap();
    std::os::unix::fs::symlink(base.join("good.bin"), base.join("link-to-good")).unwrap();
    std::os::unix::fs::symlink(base.join("a-dir"), base.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink(base.join("gone"), base.join("dangling")).unwrap();
    let raw = raw_catalog(base);
    raw.file(2, 1, "dir", &["a-dir"]).unwrap();
    raw.file(3, 1, "missing", &["no/such/file.mov"]).unwrap();
    raw.file(4, 1, "fifo", &["a-fifo"]).unwrap();
    raw.file(5, 1, "chardev", &["/dev/null"]).unwrap();
    raw.file(
        6,
        1,
        "everything-bad",
        &["a-dir", "no/such", "a-fifo", "link-to-dir", "dangling"],
    )
    .unwrap();
    raw.file(7, 1, "stale-then-good", &["moved/away.bin", "good.bin"])
        .unwrap();
    raw.file(8, 1, "via-link", &["link-to-good"]).unwrap();
    raw.file(9, 1, "fifo-then-good", &["a-fifo", "good.bin"])
        .unwrap();
    let vfs = std::sync::Arc::new(common::open(&raw.path));

    assert_unusable(&vfs, id(2), "/dir", &["alias #1 \"a-dir\": is a directory"]);
    assert_unusable(
        &vfs,
        id(3),
        "/missing",
        &["alias #1 \"no/such/file.mov\": not found"],
    );
    // A FIFO must neither block the open nor be read.
    let v = std::sync::Arc::clone(&vfs);
    within(Duration::from_secs(10), "opening a FIFO alias", move || {
        assert_unusable(
            &v,
            id(4),
            "/fifo",
            &["alias #1 \"a-fifo\": is a FIFO, not a regular file"],
        );
        assert_eq!(v.getattr(id(4)).unwrap().kind, NodeKind::File);
        let (served, skipped) = resolution(&v, id(9));
        assert_eq!(served, Some(1));
        assert_eq!(skipped, [(Some(0), SkipReason::NotRegular("FIFO"))]);
        assert_eq!(read_all(&v, id(9)), pattern(3, 5000));
    });
    assert_unusable(
        &vfs,
        id(5),
        "/chardev",
        &["alias #1 \"/dev/null\": is a character device, not a regular file"],
    );
    assert_unusable(
        &vfs,
        id(6),
        "/everything-bad",
        &[
            "alias #1 \"a-dir\": is a directory",
            "alias #2 \"no/such\": not found",
            "alias #3 \"a-fifo\": is a FIFO",
            "alias #4 \"link-to-dir\": is a directory",
            "alias #5 \"dangling\": not found",
        ],
    );
    assert_eq!(
        resolution(&vfs, id(6)),
        (
            None,
            vec![
                (Some(0), SkipReason::IsDirectory),
                (Some(1), SkipReason::NotFound),
                (Some(2), SkipReason::NotRegular("FIFO")),
                (Some(3), SkipReason::IsDirectory),
                (Some(4), SkipReason::NotFound),
            ]
        )
    );

    // A stale first alias: the second serves, the first is reported.
    assert_eq!(
        resolution(&vfs, id(7)),
        (Some(1), vec![(Some(0), SkipReason::NotFound)])
    );
    assert_eq!(read_all(&vfs, id(7)), pattern(3, 5000));
    assert_eq!(vfs.getattr(id(7)).unwrap().size, 5000);
    // A symbolic link to a file serves that file.
    assert_eq!(read_all(&vfs, id(8)), pattern(3, 5000));
}

#[test]
fn relative_aliases_resolve_against_the_catalog_directory() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir_all(library.join("media/day 1")).unwrap();
    write_pattern_file(&library.join("media/day 1/clip.mov"), 70_000, 9).unwrap();
    let raw = raw_catalog(&library);
    raw.file(2, 1, "clip.mov", &["media/day 1/clip.mov"])
        .unwrap();
    raw.file(3, 1, "dotted.mov", &["./media/../media/day 1/clip.mov"])
        .unwrap();
    // Cargo.toml exists in the tests' working directory, but not beside the catalog.
    assert!(Path::new("Cargo.toml").exists());
    raw.file(4, 1, "not-cwd", &["Cargo.toml"]).unwrap();
    let vfs = common::open(&raw.path);

    assert_eq!(read_all(&vfs, id(2)), pattern(9, 70_000));
    assert_eq!(read_all(&vfs, id(3)), pattern(9, 70_000));
    let backing = vfs.resolve(id(2)).unwrap().outcome.unwrap();
    assert_eq!(
        std::fs::canonicalize(&backing.path).unwrap(),
        std::fs::canonicalize(library.join("media/day 1/clip.mov")).unwrap()
    );
    assert_unusable(
        &vfs,
        id(4),
        "/not-cwd",
        &["alias #1 \"Cargo.toml\": not found"],
    );
}

/// A catalog with one file node (id 2, "clip.mov") whose alias is `alias`.
fn one_file(dir: &Path, alias: &Path) -> RawCatalog {
    let raw = raw_catalog(dir);
    raw.file(2, 1, "clip.mov", &[alias.to_str().unwrap()])
        .unwrap();
    raw
}

#[test]
fn file_deleted_while_open_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("clip.bin");
    write_pattern_file(&media, 200_000, 21).unwrap();
    let raw = one_file(dir.path(), &media);
    let vfs = common::open(&raw.path);

    let handle = vfs.open_file(id(2)).unwrap();
    std::fs::remove_file(&media).unwrap();
    assert_eq!(read_handle(&vfs, handle), pattern(21, 200_000));
    let mut buf = [0u8; 100];
    assert_eq!(vfs.read_at(handle, 150_000, &mut buf).unwrap(), 100);
    assert_eq!(buf.to_vec(), pattern(21, 150_100)[150_000..]);
    vfs.release(handle).unwrap();

    // The next open notices the file is gone.
    assert_unusable(&vfs, id(2), "/clip.mov", &["not found"]);
    assert_eq!(expect_err(vfs.release(handle)).errno(), libc::EBADF);
}

#[test]
fn file_truncated_while_open_gives_a_short_read_never_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("clip.bin");
    write_pattern_file(&media, 1 << 20, 5).unwrap();
    let raw = one_file(dir.path(), &media);
    let vfs = common::open(&raw.path);

    let handle = vfs.open_file(id(2)).unwrap();
    let mut head = vec![0u8; 4096];
    assert_eq!(vfs.read_at(handle, 0, &mut head).unwrap(), 4096);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&media)
        .unwrap()
        .set_len(300_000)
        .unwrap();

    let mut buf = vec![0u8; 1 << 20];
    let n = vfs.read_at(handle, 0, &mut buf).unwrap();
    assert_eq!(n, 300_000);
    assert_eq!(buf[..n], pattern(5, 300_000)[..]);
    assert_eq!(vfs.read_at(handle, 500_000, &mut buf).unwrap(), 0);

    // The zero-copy path gives the same short read.
    let mut sink = vec![0u8; 1 << 20];
    let n = vfs.read(handle, 299_000, 4096, &mut sink[..]).unwrap();
    assert_eq!(n, 1000);
    assert_eq!(sink[..n], pattern(5, 300_000)[299_000..]);
    vfs.release(handle).unwrap();
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 300_000);
}

#[test]
fn file_replaced_at_its_path_is_resolved_again() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("clip.bin");
    write_pattern_file(&media, 100_000, 1).unwrap();
    let raw = one_file(dir.path(), &media);
    let vfs = common::open(&raw.path);

    assert_eq!(read_all(&vfs, id(2)), pattern(1, 100_000));
    let old = vfs.open_file(id(2)).unwrap();

    // Another file takes the path (write elsewhere, rename over it).
    let tmp = dir.path().join("clip.bin.new");
    write_pattern_file(&tmp, 60_000, 2).unwrap();
    std::fs::rename(&tmp, &media).unwrap();

    assert_eq!(vfs.getattr(id(2)).unwrap().size, 60_000);
    let new = vfs.open_file(id(2)).unwrap();
    assert_eq!(read_handle(&vfs, new), pattern(2, 60_000));
    // The handle opened before keeps reading the file it opened.
    assert_eq!(read_handle(&vfs, old), pattern(1, 100_000));
    vfs.release(new).unwrap();
    vfs.release(old).unwrap();

    // Deleted and recreated (not renamed) also counts as another file.
    std::fs::remove_file(&media).unwrap();
    write_pattern_file(&media, 33_333, 3).unwrap();
    assert_eq!(read_all(&vfs, id(2)), pattern(3, 33_333));
    assert_eq!(vfs.open_handles(), 0);
}

/// `Vfs::read` into a slice sink: the bytes land where they belong, and the count
/// never exceeds what the sink holds, even when `len` asks for more.
#[test]
fn read_into_a_slice_never_misplaces_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("clip.bin");
    write_pattern_file(&media, 64 * 1024, 8).unwrap();
    let raw = one_file(dir.path(), &media);
    let vfs = common::open(&raw.path);
    let handle = vfs.open_file(id(2)).unwrap();
    let expected = pattern(8, 64 * 1024);

    let mut buf = vec![0u8; 4096];
    let n = vfs.read(handle, 1000, 4096, &mut buf[..]).unwrap();
    assert_eq!(n, 4096);
    assert_eq!(buf, expected[1000..5096]);

    // Asking for more than the slice holds.
    let mut small = vec![0u8; 4096];
    let n = vfs.read(handle, 0, 8192, &mut small[..]).unwrap();
    assert!(
        n <= small.len(),
        "read reported {n} bytes into a {}-byte slice",
        small.len()
    );
    assert_eq!(small[..n], expected[..n]);
    vfs.release(handle).unwrap();
}

/// A file that grows while it is read (a recording in progress): every read gives
/// the bytes at the offsets asked for, however the writer's appends interleave.
#[test]
fn file_growing_while_read_never_misplaces_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("recording.bin");
    write_pattern_file(&media, 512, 4).unwrap();
    let raw = one_file(dir.path(), &media);
    let vfs = common::open(&raw.path);
    let handle = vfs.open_file(id(2)).unwrap();

    const FINAL: u64 = 4 << 20;
    let writer_path = media.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&writer_path)
            .unwrap();
        let mut at = 512u64;
        while at < FINAL {
            let chunk: Vec<u8> = (at..at + 64).map(|i| pattern_byte(4, i)).collect();
            file.write_all(&chunk).unwrap();
            at += 64;
        }
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut reads = 0;
    loop {
        let done = writer.is_finished();
        let n = vfs.read(handle, 0, buf.len(), &mut buf[..]).unwrap();
        reads += 1;
        if let Some(bad) = (0..n).find(|&i| buf[i] != pattern_byte(4, i as u64)) {
            panic!("read #{reads} returned {n} bytes with a wrong byte at offset {bad}");
        }
        if done {
            break;
        }
    }
    writer.join().unwrap();
    vfs.release(handle).unwrap();
}

/// `chmod 000` does not stop root, so the check runs in a child as `nobody`.
#[test]
fn unreadable_alias_is_permission_denied() {
    if let Some(dir) = child_arg() {
        assert!(
            !markbase_testkit::is_root(),
            "the child must not run as root"
        );
        let dir = PathBuf::from(dir);
        assert_eq!(
            std::fs::File::open(dir.join("secret.bin"))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::PermissionDenied,
            "the child can read the secret file: privileges were not dropped"
        );
        let vfs = common::open(&dir.join(common::CATALOG));
        assert_eq!(vfs.getattr(id(2)).unwrap().size, 777);
        assert_unusable(
            &vfs,
            id(2),
            "/secret.mov",
            &["alias #1", "secret.bin", "permission denied"],
        );
        assert_eq!(
            resolution(&vfs, id(2)),
            (None, vec![(Some(0), SkipReason::PermissionDenied)])
        );
        assert_eq!(
            resolution(&vfs, id(3)),
            (Some(1), vec![(Some(0), SkipReason::PermissionDenied)])
        );
        assert_eq!(read_all(&vfs, id(3)), b"public");
        println!("{CHILD_OK}");
        return;
    }
    let dir = common::open_tempdir();
    let raw = raw_catalog(dir.path());
    raw.insert(
        2,
        Some(1),
        "secret.mov",
        "file",
        777,
        &json(&["secret.bin"]),
    )
    .unwrap();
    raw.file(3, 1, "secret-or-public.mov", &["secret.bin", "public.bin"])
        .unwrap();
    drop(raw);
    std::fs::write(dir.path().join("public.bin"), b"public").unwrap();
    let secret = dir.path().join("secret.bin");
    std::fs::write(&secret, b"secret").unwrap();
    common::hide_from_nobody(dir.path(), &secret);

    common::assert_passes_as_nobody("unreadable_alias_is_permission_denied", dir.path());
}

#[test]
fn preferred_alias_takes_over_again_when_it_returns() {
    let dir = common::open_tempdir();
    let first = dir.path().join("first.mov");
    let second = dir.path().join("second.mov");
    std::fs::write(&second, b"from the backup").unwrap();
    let raw = common::raw_catalog(dir.path());
    raw.file(2, 1, "clip.mov", &["first.mov", "second.mov"])
        .unwrap();
    let mut config = common::config(&raw.path);
    config.attr_ttl = std::time::Duration::from_millis(100);
    let vfs = Vfs::open(config).unwrap();

    assert_eq!(common::read_all(&vfs, id(2)), b"from the backup");
    // The first drive comes back: within attr_ttl the backup still serves...
    std::fs::write(&first, b"from the first drive").unwrap();
    assert_eq!(common::read_all(&vfs, id(2)), b"from the backup");
    // ...and once attr_ttl has passed, the preferred alias serves again.
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(common::read_all(&vfs, id(2)), b"from the first drive");
    assert_eq!(vfs.getattr(id(2)).unwrap().size, 20);
}
