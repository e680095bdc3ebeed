//! import: building a catalog from a folder tree, importing it again, importing a
//! second copy, and importing into a catalog directory that does not exist yet.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{CATALOG, assert_msg, expect_err, names, read_all};
use markbase_testkit::{pattern_byte, write_pattern_file};
use markbase_vfs::{
    NodeId, NodeKind, Vfs,
    alias::SkipReason,
    import::{ImportOptions, ImportStats, import},
};

fn pattern(seed: u64, len: u64) -> Vec<u8> {
    (0..len).map(|i| pattern_byte(seed, i)).collect()
}

fn options(into: &str) -> ImportOptions<'static> {
    let mut options = ImportOptions::default();
    options.into = into.to_owned();
    options
}

/// The skipped entries as (file name, reason) pairs, sorted.
fn skips(stats: &ImportStats) -> Vec<(String, String)> {
    let mut skips: Vec<(String, String)> = stats
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_string_lossy().into_owned(),
                s.reason.clone(),
            )
        })
        .collect();
    skips.sort();
    skips
}

/// A source tree with every kind of entry import meets.
fn source_tree(root: &Path) {
    std::fs::create_dir_all(root.join("Day 1/camera A/deep/deeper")).unwrap();
    std::fs::create_dir_all(root.join("日本語 フォルダ")).unwrap();
    std::fs::create_dir_all(root.join("empty dir")).unwrap();
    write_pattern_file(&root.join("Day 1/clip 01.mov"), 100_000, 1).unwrap();
    write_pattern_file(
        &root.join("Day 1/camera A/deep/deeper/take ☕.mov"),
        7_777,
        2,
    )
    .unwrap();
    write_pattern_file(&root.join("日本語 フォルダ/café.jpg"), 4_096, 3).unwrap();
    std::fs::write(root.join("Day 1/empty.txt"), b"").unwrap();
    std::os::unix::fs::symlink(
        root.join("Day 1/clip 01.mov"),
        root.join("link to clip.mov"),
    )
    .unwrap();
    std::os::unix::fs::symlink(root.join("Day 1"), root.join("link to dir")).unwrap();
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling link")).unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"latin1 caf\xe9.mov")), b"x").unwrap();
    std::fs::create_dir(root.join(OsStr::from_bytes(b"bad dir \xff"))).unwrap();
    std::fs::write(
        root.join(OsStr::from_bytes(b"bad dir \xff"))
            .join("inside.mov"),
        b"y",
    )
    .unwrap();
}

#[test]
fn import_builds_a_catalog_from_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    source_tree(&source);
    let catalog = dir.path().join("library").join(CATALOG);
    std::fs::create_dir(catalog.parent().unwrap()).unwrap();

    let stats = import(&source, &catalog, &ImportOptions::default()).unwrap();
    assert_eq!(stats.dirs_added, 6, "{stats:?}");
    assert_eq!(stats.files_added, 5, "{stats:?}");
    assert_eq!(stats.files_updated, 0);
    assert_eq!(stats.unchanged, 0);
    assert_eq!(stats.bytes, 100_000 + 7_777 + 4_096 + 100_000);
    let skipped = skips(&stats);
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0].0, "bad dir \u{fffd}");
    assert!(reasons[0].1.contains("not valid UTF-8"), "{reasons:?}");
    assert_eq!(reasons[1].0, "dangling link");
    assert!(
        reasons[1].1.contains("dangling symbolic link"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2].0, "latin1 caf\u{fffd}.mov");
    assert!(reasons[2].1.contains("not valid UTF-8"), "{reasons:?}");
    assert_eq!(reasons[3].0, "link to dir");
    assert!(
        reasons[3]
            .1
            .contains("symbolic links to directories are not followed"),
        "{reasons:?}"
    );

    let vfs = common::open(&catalog);
    assert_eq!(
        names(&vfs, NodeId::ROOT),
        ["Day 1", "empty dir", "link to clip.mov", "日本語 フォルダ"]
    );
    assert_eq!(
        names(&vfs, vfs.lookup_path("/Day 1").unwrap().id),
        ["camera A", "clip 01.mov", "empty.txt"]
    );
    assert!(names(&vfs, vfs.lookup_path("/empty dir").unwrap().id).is_empty());

    let file = |path: &str| {
        let attr = vfs.lookup_path(path).unwrap();
        assert_eq!(attr.kind, NodeKind::File, "{path}");
        (attr.size, read_all(&vfs, attr.id))
    };
    assert_eq!(file("/Day 1/clip 01.mov"), (100_000, pattern(1, 100_000)));
    assert_eq!(
        file("/Day 1/camera A/deep/deeper/take ☕.mov"),
        (7_777, pattern(2, 7_777))
    );
    assert_eq!(
        file("/日本語 フォルダ/café.jpg"),
        (4_096, pattern(3, 4_096))
    );
    assert_eq!(file("/Day 1/empty.txt"), (0, Vec::new()));
    assert_eq!(file("/link to clip.mov"), (100_000, pattern(1, 100_000)));

    // Aliases are absolute source paths; the recorded size and mtime are the file's.
    let attr = vfs.lookup_path("/Day 1/clip 01.mov").unwrap();
    let backing = vfs.resolve(attr.id).unwrap().outcome.unwrap();
    let real = std::fs::canonicalize(&source)
        .unwrap()
        .join("Day 1/clip 01.mov");
    assert_eq!(backing.path, real);
    let node = vfs.node(attr.id).unwrap();
    assert_eq!(node.recorded_size, 100_000);
    let mtime = std::fs::metadata(&real).unwrap().modified().unwrap();
    assert_eq!(
        markbase_vfs::node::system_time_from_ns(node.mtime_ns),
        mtime
    );
    assert_eq!(vfs.getattr(attr.id).unwrap().mtime(), mtime);
}

#[test]
fn reimporting_the_same_tree_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    source_tree(&source);
    let catalog = dir.path().join(CATALOG);
    let first = import(&source, &catalog, &ImportOptions::default()).unwrap();
    let dump = || {
        let conn = rusqlite::Connection::open(&catalog).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, parent_id, name, kind, size, mtime_ns, aliases_json FROM nodes ORDER BY id")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok(format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };
    let before = dump();

    let again = import(&source, &catalog, &ImportOptions::default()).unwrap();
    assert_eq!(again.dirs_added, 0, "{again:?}");
    assert_eq!(again.files_added, 0, "{again:?}");
    assert_eq!(again.files_updated, 0, "{again:?}");
    assert_eq!(again.unchanged, first.dirs_added + first.files_added);
    assert_eq!(skips(&again), skips(&first));
    assert_eq!(dump(), before, "re-import wrote to the catalog");
}

#[test]
fn a_second_copy_becomes_a_second_alias() {
    let dir = tempfile::tempdir().unwrap();
    let copy1 = dir.path().join("drive 1");
    let copy2 = dir.path().join("drive 2");
    for (copy, seed) in [(&copy1, 10), (&copy2, 20)] {
        std::fs::create_dir_all(copy.join("Day 1")).unwrap();
        write_pattern_file(&copy.join("Day 1/clip.mov"), 50_000, seed).unwrap();
    }
    write_pattern_file(&copy2.join("Day 1/only on 2.mov"), 10, 30).unwrap();
    let catalog = dir.path().join(CATALOG);

    import(&copy1, &catalog, &ImportOptions::default()).unwrap();
    let stats = import(&copy2, &catalog, &ImportOptions::default()).unwrap();
    assert_eq!(stats.files_updated, 1, "{stats:?}");
    assert_eq!(stats.files_added, 1, "{stats:?}");
    assert_eq!(stats.unchanged, 1, "the directory: {stats:?}");

    let vfs = common::open(&catalog);
    let clip = vfs.lookup_path("/Day 1/clip.mov").unwrap().id;
    let first = std::fs::canonicalize(&copy1)
        .unwrap()
        .join("Day 1/clip.mov");
    let second = std::fs::canonicalize(&copy2)
        .unwrap()
        .join("Day 1/clip.mov");
    let markbase_vfs::node::Content::File(aliases) = &vfs.node(clip).unwrap().content else {
        panic!("a file");
    };
    assert_eq!(
        *aliases,
        markbase_vfs::alias::AliasList::parse(&markbase_vfs::alias::AliasList::to_json(&[
            first.to_str().unwrap(),
            second.to_str().unwrap()
        ]))
    );
    // The first copy stays preferred.
    let resolution = vfs.resolve(clip).unwrap().outcome.unwrap();
    assert_eq!(
        (resolution.index, resolution.path.clone()),
        (0, first.clone())
    );
    assert_eq!(read_all(&vfs, clip), pattern(10, 50_000));

    // Importing either copy again changes nothing.
    for copy in [&copy1, &copy2] {
        let stats = import(copy, &catalog, &ImportOptions::default()).unwrap();
        assert_eq!(
            stats.files_updated + stats.files_added + stats.dirs_added,
            0,
            "{stats:?}"
        );
    }

    // Without the first drive, the second serves, and the first is reported.
    std::fs::remove_dir_all(&copy1).unwrap();
    let vfs = common::open(&catalog);
    let resolution = vfs.resolve(clip).unwrap().outcome.unwrap();
    assert_eq!(resolution.index, 1);
    assert_eq!(resolution.skipped[0].reason, SkipReason::NotFound);
    assert_eq!(read_all(&vfs, clip), pattern(20, 50_000));
}

#[test]
fn into_creates_the_target_directory() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("card");
    std::fs::create_dir_all(source.join("DCIM")).unwrap();
    write_pattern_file(&source.join("DCIM/IMG_0001.JPG"), 1234, 5).unwrap();
    let catalog = dir.path().join(CATALOG);

    let stats = import(&source, &catalog, &options("/Archive/2024/card 1/")).unwrap();
    assert_eq!(
        stats.dirs_added, 4,
        "Archive, 2024, card 1, DCIM: {stats:?}"
    );
    assert_eq!(stats.files_added, 1);
    let vfs = common::open(&catalog);
    let attr = vfs
        .lookup_path("/Archive/2024/card 1/DCIM/IMG_0001.JPG")
        .unwrap();
    assert_eq!(read_all(&vfs, attr.id), pattern(5, 1234));
    assert_eq!(
        vfs.path_of(attr.id).unwrap(),
        "/Archive/2024/card 1/DCIM/IMG_0001.JPG"
    );

    // A second import into an existing part of the path reuses it.
    let stats = import(&source, &catalog, &options("Archive/2025")).unwrap();
    assert_eq!(stats.dirs_added, 2, "2025, DCIM: {stats:?}");
    let vfs = common::open(&catalog);
    assert_eq!(
        names(&vfs, vfs.lookup_path("/Archive").unwrap().id),
        ["2024", "2025"]
    );
}

#[test]
fn import_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("a.mov"), b"a").unwrap();
    let catalog = dir.path().join(CATALOG);

    // `into` with a name that can never be one.
    let err = expect_err(import(&source, &catalog, &options("Archive/../etc")));
    assert_eq!(err.errno(), libc::EINVAL);
    assert_msg(&err, &["\"Archive/../etc\"", "\"..\""]);
    // `into` through a file.
    import(&source, &catalog, &ImportOptions::default()).unwrap();
    let err = expect_err(import(&source, &catalog, &options("a.mov/sub")));
    assert_eq!(err.errno(), libc::ENOTDIR);
    // A source that is a file, or missing.
    let err = expect_err(import(
        &source.join("a.mov"),
        &catalog,
        &ImportOptions::default(),
    ));
    assert_eq!(err.errno(), libc::ENOTDIR);
    let err = expect_err(import(
        &dir.path().join("missing"),
        &catalog,
        &ImportOptions::default(),
    ));
    assert_eq!(err.errno(), libc::ENOENT);
    assert_msg(&err, &["missing"]);
    // A catalog path that is not a catalog.
    let not_catalog = dir.path().join("notes.txt");
    std::fs::write(&not_catalog, b"shopping list").unwrap();
    let err = expect_err(import(&source, &not_catalog, &ImportOptions::default()));
    assert!(
        matches!(err, markbase_vfs::VfsError::NotACatalog { .. }),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&not_catalog).unwrap(), b"shopping list");

    // The catalog is still whole.
    let vfs = Vfs::open(common::config(&catalog)).unwrap();
    assert_eq!(names(&vfs, NodeId::ROOT), ["a.mov"]);
    assert_eq!(vfs.catalog_path(), std::fs::canonicalize(&catalog).unwrap());
}

/// Rows already in the catalog that are not valid UTF-8 where import reads them:
/// those entries are skipped, naming the node, and left as they are; the rest of
/// the tree is imported.
#[test]
fn import_skips_existing_rows_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    for name in ["bad aliases.mov", "bad kind.mov", "fine.mov"] {
        std::fs::write(source.join(name), name).unwrap();
    }
    let raw = common::raw_catalog(dir.path());
    raw.conn
        .execute_batch(
            "INSERT INTO nodes (id, parent_id, name, kind, aliases_json)
                 VALUES (2, 1, 'bad aliases.mov', 'file', CAST(x'5b222fff225d' AS TEXT));
             PRAGMA ignore_check_constraints = ON;
             INSERT INTO nodes (id, parent_id, name, kind)
                 VALUES (3, 1, 'bad kind.mov', CAST(x'66696cff' AS TEXT));",
        )
        .unwrap();
    let dump = |raw: &markbase_testkit::RawCatalog| -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut stmt = raw
            .conn
            .prepare("SELECT CAST(kind AS BLOB), CAST(aliases_json AS BLOB) FROM nodes WHERE id IN (2, 3) ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = dump(&raw);

    let stats = import(&source, &raw.path, &ImportOptions::default()).unwrap();
    assert_eq!(stats.files_added, 1, "{stats:?}");
    let skipped = skips(&stats);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, "bad aliases.mov");
    assert!(skipped[0].1.contains("node 2"), "{skipped:?}");
    assert_eq!(skipped[1].0, "bad kind.mov");
    assert!(skipped[1].1.contains("node 3"), "{skipped:?}");
    assert_eq!(
        dump(&raw),
        before,
        "the rows import could not read were changed"
    );

    let vfs = common::open(&raw.path);
    assert_eq!(
        read_all(&vfs, vfs.lookup_path("/fine.mov").unwrap().id),
        b"fine.mov"
    );
}
