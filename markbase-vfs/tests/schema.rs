//! Catalogs that are SQLite but not MarkBase schema v1: refused on open with a
//! message naming the table, column, version or root row; extra tables and
//! columns are ignored.

mod common;

use std::path::Path;

use common::{CATALOG, assert_msg, config, expect_err};
use markbase_testkit::RawCatalog;
use markbase_vfs::{NodeId, NodeKind, Vfs, VfsError, schema::SCHEMA_SQL};

const COLUMNS: [(&str, &str); 7] = [
    ("id", "id INTEGER PRIMARY KEY"),
    ("parent_id", "parent_id INTEGER"),
    ("name", "name TEXT NOT NULL DEFAULT ''"),
    ("kind", "kind TEXT NOT NULL DEFAULT 'dir'"),
    ("size", "size INTEGER NOT NULL DEFAULT 0"),
    ("mtime_ns", "mtime_ns INTEGER NOT NULL DEFAULT 0"),
    ("aliases_json", "aliases_json TEXT NOT NULL DEFAULT '[]'"),
];

/// Opens a catalog made by `sql` and returns the schema error it must give.
#[track_caller]
fn schema_error(dir: &Path, sql: &str) -> VfsError {
    let path = dir.join(CATALOG);
    drop(RawCatalog::create(&path, sql).expect("run the schema SQL"));
    let err = expect_err(Vfs::open(config(&path)));
    assert!(matches!(err, VfsError::Schema { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    let canonical = std::fs::canonicalize(&path).unwrap();
    assert_msg(&err, &[&canonical.display().to_string()]);
    err
}

#[test]
fn no_nodes_table() {
    let dir = tempfile::tempdir().unwrap();
    let err = schema_error(
        dir.path(),
        "PRAGMA user_version = 1; CREATE TABLE files (id INTEGER PRIMARY KEY, name TEXT);",
    );
    assert_msg(&err, &["no table `nodes`"]);
}

#[test]
fn each_missing_column_is_named() {
    for (missing, _) in COLUMNS {
        let dir = tempfile::tempdir().unwrap();
        let columns: Vec<&str> = COLUMNS
            .iter()
            .filter(|(name, _)| *name != missing)
            .map(|(_, decl)| *decl)
            .collect();
        let sql = format!(
            "PRAGMA user_version = 1; CREATE TABLE nodes ({}); \
             INSERT INTO nodes DEFAULT VALUES;",
            columns.join(", ")
        );
        let err = schema_error(dir.path(), &sql);
        assert_msg(&err, &[&format!("table `nodes` has no column `{missing}`")]);
    }
}

#[test]
fn newer_user_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SCHEMA_SQL.replace("PRAGMA user_version = 1;", "PRAGMA user_version = 2;");
    let err = schema_error(dir.path(), &sql);
    assert_msg(
        &err,
        &["schema version 2 is newer", "version 1", "upgrade markbase"],
    );
}

#[test]
fn negative_user_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SCHEMA_SQL.replace("PRAGMA user_version = 1;", "PRAGMA user_version = -4;");
    let err = schema_error(dir.path(), &sql);
    assert_msg(&err, &["schema version -4 is not valid"]);
}

#[test]
fn missing_root_row() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SCHEMA_SQL.replace(
        "INSERT INTO nodes (id, parent_id, name, kind) VALUES (1, NULL, '', 'dir');",
        "INSERT INTO nodes (id, parent_id, name, kind) VALUES (2, NULL, 'orphan', 'dir');",
    );
    let err = schema_error(dir.path(), &sql);
    assert_msg(&err, &["no root row (id 1)"]);
}

#[test]
fn root_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SCHEMA_SQL.replace(
        "VALUES (1, NULL, '', 'dir')",
        "VALUES (1, NULL, '', 'file')",
    );
    let err = schema_error(dir.path(), &sql);
    assert_msg(&err, &["root node 1", "\"file\"", "must be a 'dir'"]);
}

#[test]
fn root_with_a_parent() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SCHEMA_SQL.replace("VALUES (1, NULL, '', 'dir')", "VALUES (1, 1, '', 'dir')");
    let err = schema_error(dir.path(), &sql);
    assert_msg(&err, &["root node 1 has parent_id 1"]);
}

/// Extra tables and columns, and a user_version of 0 on a v1-shaped table, are accepted.
#[test]
fn extra_tables_and_columns_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CATALOG);
    let sql = "
        CREATE TABLE tags (node_id INTEGER, tag TEXT);
        CREATE TABLE nodes (
          rating INTEGER DEFAULT 3,
          id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT NOT NULL, kind TEXT NOT NULL,
          size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,
          aliases_json TEXT NOT NULL DEFAULT '[]', colour TEXT
        );
        INSERT INTO nodes (id, parent_id, name, kind) VALUES (1, NULL, '', 'dir');
        INSERT INTO nodes (id, parent_id, name, kind, colour) VALUES (2, 1, 'Projects', 'dir', 'red');
        INSERT INTO tags VALUES (2, 'work');
    ";
    let raw = RawCatalog::create(&path, sql).unwrap();
    assert_eq!(
        raw.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
    drop(raw);
    let vfs = common::open(&path);
    let attr = vfs.lookup(NodeId::ROOT, "Projects").unwrap();
    assert_eq!(attr.kind, NodeKind::Dir);
    assert_eq!(attr.id.get(), 2);
    assert_eq!(common::names(&vfs, NodeId::ROOT), ["Projects"]);
    assert_eq!(vfs.path_of(attr.id).unwrap(), "/Projects");
}

#[test]
fn the_catalog_id_names_one_catalog_file_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::raw_catalog(dir.path()).path;
    let id = common::open(&first).catalog_id();
    assert_eq!(common::open(&first).catalog_id(), id, "the same file again");

    let other_dir = tempfile::tempdir().unwrap();
    let other = common::raw_catalog(other_dir.path()).path;
    assert_ne!(common::open(&other).catalog_id(), id, "another catalog");

    // A copy put in its place is another catalog: its nodes may be other files.
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(&first, &copy).unwrap();
    std::fs::rename(&copy, &first).unwrap();
    assert_ne!(common::open(&first).catalog_id(), id, "a replaced file");
}
