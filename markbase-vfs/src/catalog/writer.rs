//! Writing rows: the statements that building and updating a catalog need.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{ConnectOptions, connect, enable_wal, preflight, schema, sql_error};
use crate::error::{Result, VfsError};
use crate::node::{NodeId, NodeKind};

/// A child row as the writer needs to see it.
#[derive(Debug)]
pub(crate) struct ExistingChild {
    pub id: i64,
    pub kind: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub aliases_json: String,
}

/// One connection that writes rows, in explicit transactions.
pub(crate) struct CatalogWriter {
    conn: Connection,
    path: PathBuf,
}

impl CatalogWriter {
    /// Opens the catalog at `path` for writing, creating a schema-v1 catalog when the
    /// file does not exist.
    pub fn open_or_create(path: &Path, options: &ConnectOptions) -> Result<Self> {
        let exists = path
            .try_exists()
            .map_err(|source| VfsError::CatalogUnreadable {
                path: path.to_owned(),
                cause: source,
            })?;
        let conn = if exists {
            preflight(path)?;
            connect(path, options)?
        } else {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(VfsError::io(
                    format!("creating catalog {}", path.display()),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("directory {} does not exist", dir.display()),
                    ),
                ));
            }
            let conn = Connection::open(path)
                .map_err(|source| sql_error(path, "creating the catalog", source))?;
            conn.busy_timeout(options.busy_timeout)
                .map_err(|source| sql_error(path, "configuring the connection", source))?;
            conn
        };
        if !exists
            && schema::is_empty(&conn)
                .map_err(|source| sql_error(path, "reading the schema", source))?
        {
            schema::create(&conn)
                .map_err(|source| sql_error(path, "creating the schema", source))?;
        }
        schema::check(&conn, path)?;
        enable_wal(&conn, path)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn sql(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> VfsError + '_ {
        move |source| sql_error(&self.path, context, source)
    }

    /// Starts a write transaction, taking the write lock now.
    pub fn begin(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.sql("starting a transaction"))
    }

    /// Commits the open transaction.
    pub fn commit(&self) -> Result<()> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.sql("committing"))
    }

    /// The lowest-id child of `parent` named `name`.
    pub fn child(&self, parent: NodeId, name: &str) -> Result<Option<ExistingChild>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, CAST(kind AS TEXT), size, mtime_ns, CAST(aliases_json AS TEXT) FROM nodes \
                 WHERE parent_id = ?1 AND name = ?2 ORDER BY id LIMIT 1",
            )
            .map_err(self.sql("looking up a name"))?;
        stmt.query_row(params![parent.sql(), name], |row| {
            Ok(ExistingChild {
                id: row.get(0)?,
                kind: utf8_text(row, 1)?,
                size: row
                    .get::<_, Option<i64>>(2)
                    .ok()
                    .flatten()
                    .and_then(|size| u64::try_from(size).ok())
                    .unwrap_or(0),
                mtime_ns: row.get::<_, Option<i64>>(3).ok().flatten().unwrap_or(0),
                aliases_json: utf8_text(row, 4)?,
            })
        })
        .optional()
        .map_err(self.sql("looking up a name"))
    }

    /// Inserts a node and returns its id.
    pub fn insert(
        &self,
        parent: NodeId,
        name: &str,
        kind: NodeKind,
        size: u64,
        mtime_ns: i64,
        aliases_json: &str,
    ) -> Result<NodeId> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO nodes (parent_id, name, kind, size, mtime_ns, aliases_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(self.sql("inserting a node"))?;
        stmt.execute(params![
            parent.sql(),
            name,
            kind.as_str(),
            i64::try_from(size).unwrap_or(i64::MAX),
            mtime_ns,
            aliases_json
        ])
        .map_err(self.sql("inserting a node"))?;
        let id = self.conn.last_insert_rowid();
        NodeId::from_sql(id).ok_or_else(|| VfsError::InvalidNode {
            id,
            reason: "SQLite gave the new row an id that is not positive".to_owned(),
        })
    }

    /// Sets a file node's size, mtime and aliases.
    pub fn update_file(&self, id: i64, size: u64, mtime_ns: i64, aliases_json: &str) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE nodes SET size = ?2, mtime_ns = ?3, aliases_json = ?4 WHERE id = ?1",
            )
            .map_err(self.sql("updating a node"))?;
        stmt.execute(params![
            id,
            i64::try_from(size).unwrap_or(i64::MAX),
            mtime_ns,
            aliases_json
        ])
        .map_err(self.sql("updating a node"))?;
        Ok(())
    }
}

/// A text column as a string; empty when it is NULL or not valid UTF-8, so that the
/// import skips that one row (naming its id) instead of failing as a whole.
fn utf8_text(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(index)? {
        rusqlite::types::ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(str::to_owned)
            .unwrap_or_default(),
        _ => String::new(),
    })
}
