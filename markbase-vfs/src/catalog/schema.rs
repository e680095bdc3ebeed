//! Schema v1 of `warren.sqlite`: creating it, and checking a catalog made elsewhere.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Result, VfsError};

/// The schema version this crate reads and writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// The statements that create an empty schema-v1 catalog with its root directory.
pub const SCHEMA_SQL: &str = "
PRAGMA user_version = 1;
CREATE TABLE nodes (
  id           INTEGER PRIMARY KEY,
  parent_id    INTEGER REFERENCES nodes(id),
  name         TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('dir', 'file')),
  size         INTEGER NOT NULL DEFAULT 0,
  mtime_ns     INTEGER NOT NULL DEFAULT 0,
  aliases_json TEXT NOT NULL DEFAULT '[]',
  UNIQUE (parent_id, name)
);
CREATE INDEX nodes_by_parent ON nodes(parent_id, name);
INSERT INTO nodes (id, parent_id, name, kind) VALUES (1, NULL, '', 'dir');
";

/// The columns of `nodes` the core reads; others are ignored.
const REQUIRED_COLUMNS: [&str; 7] = [
    "id",
    "parent_id",
    "name",
    "kind",
    "size",
    "mtime_ns",
    "aliases_json",
];

/// Creates the schema-v1 tables and the root node in an empty database.
pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("BEGIN; {SCHEMA_SQL} COMMIT;"))
}

/// Whether the database has no tables yet (a file SQLite just created).
pub(crate) fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    Ok(tables == 0)
}

/// Checks that `conn` holds a schema-v1 catalog with a root directory.
///
/// Errors name what is missing or wrong: the version, the table, the column or the root row.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<()> {
    let problem = |problem: String| VfsError::Schema {
        path: path.to_owned(),
        problem,
    };
    let sql = |source| super::sql_error(path, "checking the schema", source);

    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(problem(format!(
            "schema version {version} is newer than the version {SCHEMA_VERSION} this markbase \
             understands; upgrade markbase"
        )));
    }
    if version < 0 {
        return Err(problem(format!("schema version {version} is not valid")));
    }

    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('nodes')")
        .map_err(sql)?;
    let columns: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql)?;
    if columns.is_empty() {
        return Err(problem("has no table `nodes`".to_owned()));
    }
    if let Some(missing) = REQUIRED_COLUMNS
        .iter()
        .find(|required| !columns.iter().any(|c| c.eq_ignore_ascii_case(required)))
    {
        return Err(problem(format!("table `nodes` has no column `{missing}`")));
    }
    if version == 0 {
        tracing::warn!(
            catalog = %path.display(),
            "catalog has user_version 0 but a schema-v1 `nodes` table; reading it as version 1"
        );
    }

    let root: Option<(Option<i64>, String)> = conn
        .query_row(
            "SELECT parent_id, CAST(kind AS TEXT) FROM nodes WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql)?;
    match root {
        None => Err(problem("table `nodes` has no root row (id 1)".to_owned())),
        Some((_, kind)) if kind != "dir" => Err(problem(format!(
            "root node 1 has kind {kind:?}; the root must be a 'dir'"
        ))),
        Some((Some(parent), _)) => Err(problem(format!(
            "root node 1 has parent_id {parent}; the root must have none"
        ))),
        Some((None, _)) => Ok(()),
    }
}
