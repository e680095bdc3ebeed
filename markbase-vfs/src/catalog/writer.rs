//! Writing rows: the statements that building and updating a catalog need.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::InvalidRow;
use super::{ConnectOptions, connect, enable_wal, preflight, schema, sql_error};
use crate::error::{Result, VfsError};
use crate::node::{Node, NodeId, NodeKind};

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
    /// The highest id this writer inserted or deleted. New rows get higher ids, so
    /// that an id (an inode number) is never reused while this writer lives: a
    /// handle still open on a removed node must not reach the node that took its id.
    highest_id: Cell<i64>,
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
            highest_id: Cell::new(0),
        })
    }

    /// A writer over an open, checked connection (the `Vfs`'s own).
    pub fn from_connection(conn: Connection, path: &Path) -> Self {
        Self {
            conn,
            path: path.to_owned(),
            highest_id: Cell::new(0),
        }
    }

    fn sql(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> VfsError + '_ {
        move |source| sql_error(&self.path, context, source)
    }

    /// Runs `body` in a write transaction: committed when it returns `Ok`, rolled back
    /// otherwise. With `durable`, the commit is synced to disk (`synchronous = FULL`),
    /// and so is every commit before it; otherwise it survives a crash of this process
    /// but not of the machine.
    pub fn transaction<T>(
        &self,
        durable: bool,
        body: impl FnOnce(&Self) -> Result<T>,
    ) -> Result<T> {
        if durable {
            self.conn
                .execute_batch("PRAGMA synchronous = FULL")
                .map_err(self.sql("making the commit durable"))?;
        }
        let result = self.begin().and_then(|()| body(self));
        let result = match result {
            Ok(value) => self.commit().map(|()| value),
            Err(err) => {
                if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                    tracing::debug!(error = %rollback, "rollback after a failed write");
                }
                Err(err)
            }
        };
        if durable {
            self.conn
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(self.sql("restoring synchronous = NORMAL"))?;
        }
        result
    }

    /// `PRAGMA data_version`: changes when another connection commits.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(self.sql("reading data_version"))
    }

    /// Sets the connection up for the write path: WAL commits without a sync each.
    pub fn use_normal_sync(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(self.sql("setting synchronous = NORMAL"))
    }

    /// Starts a write transaction, taking the write lock now.
    pub fn begin(&self) -> Result<()> {
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut stmt| stmt.execute([]))
            .map(drop)
            .map_err(self.sql("starting a transaction"))
    }

    /// Commits the open transaction.
    pub fn commit(&self) -> Result<()> {
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut stmt| stmt.execute([]))
            .map(drop)
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
                "INSERT INTO nodes (id, parent_id, name, kind, size, mtime_ns, aliases_json) \
                 VALUES (max(coalesce((SELECT max(id) FROM nodes), 0), ?7) + 1, \
                         ?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(self.sql("inserting a node"))?;
        stmt.execute(params![
            parent.sql(),
            name,
            kind.as_str(),
            i64::try_from(size).unwrap_or(i64::MAX),
            mtime_ns,
            aliases_json,
            self.highest_id.get()
        ])
        .map_err(self.sql("inserting a node"))?;
        let id = self.conn.last_insert_rowid();
        self.highest_id.set(self.highest_id.get().max(id));
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

impl CatalogWriter {
    fn run(
        &self,
        context: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql(context))?;
        stmt.execute(params).map_err(self.sql(context))
    }

    /// The row with id `id`, if any, read inside the writer's transaction.
    pub fn node(&self, id: NodeId) -> Result<Option<Result<Node, InvalidRow>>> {
        super::query_node(&self.conn, id).map_err(self.sql("reading a node"))
    }

    /// The children of `parent` named `name`, read inside the writer's transaction.
    pub fn children_named(
        &self,
        parent: NodeId,
        name: &str,
    ) -> Result<Vec<Result<Node, InvalidRow>>> {
        super::query_children_named(&self.conn, parent, name).map_err(self.sql("looking up a name"))
    }

    /// Records a file's size and mtime.
    pub fn set_size_mtime(&self, id: NodeId, size: u64, mtime_ns: i64) -> Result<()> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.run(
            "recording a file's size",
            "UPDATE nodes SET size = ?2, mtime_ns = ?3 WHERE id = ?1",
            params![id.sql(), size, mtime_ns],
        )
        .map(drop)
    }

    /// Records a node's mtime.
    pub fn set_mtime(&self, id: NodeId, mtime_ns: i64) -> Result<()> {
        self.run(
            "recording an mtime",
            "UPDATE nodes SET mtime_ns = ?2 WHERE id = ?1",
            params![id.sql(), mtime_ns],
        )
        .map(drop)
    }

    /// Records that the entries of directory `dir` changed at `now_ns`: its mtime, and
    /// with it the ctime the core reports.
    pub fn entries_changed(&self, dir: NodeId, now_ns: i64) -> Result<()> {
        self.run(
            "recording a directory's change",
            "UPDATE nodes SET mtime_ns = ?2 WHERE id = ?1 AND kind = 'dir'",
            params![dir.sql(), now_ns],
        )
        .map(drop)
    }

    /// Moves and/or renames a node.
    pub fn move_to(&self, id: NodeId, parent: NodeId, name: &str) -> Result<()> {
        self.run(
            "renaming a node",
            "UPDATE nodes SET parent_id = ?2, name = ?3 WHERE id = ?1",
            params![id.sql(), parent.sql(), name],
        )
        .map(drop)
    }

    /// Deletes one node's row.
    pub fn delete(&self, id: NodeId) -> Result<()> {
        self.highest_id.set(self.highest_id.get().max(id.sql()));
        self.run(
            "deleting a node",
            "DELETE FROM nodes WHERE id = ?1",
            params![id.sql()],
        )
        .map(drop)
    }

    /// Whether `dir` has any child row.
    pub fn has_children(&self, dir: NodeId) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM nodes WHERE parent_id = ?1 LIMIT 1")
            .map_err(self.sql("listing a directory"))?;
        stmt.exists(params![dir.sql()])
            .map_err(self.sql("listing a directory"))
    }
}

/// A text column as a string; empty when it is NULL or not valid UTF-8, so that the
/// import skips that one row (naming its id) instead of failing as a whole.
pub(crate) fn utf8_text(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(index)? {
        rusqlite::types::ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(str::to_owned)
            .unwrap_or_default(),
        _ => String::new(),
    })
}
