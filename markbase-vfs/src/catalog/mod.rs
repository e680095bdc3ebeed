//! The SQLite side: opening `warren.sqlite`, checking it, the queries the core runs, and
//! the properties database beside it.
//!
//! Nothing above this module writes SQL.

pub(crate) mod properties;
mod row;
pub mod schema;
pub(crate) mod writer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::alias::AliasList;
use crate::error::{EngineError, Result, VfsError};
use crate::node::{Node, NodeId};
use row::NODE_COLUMNS;
pub(crate) use row::{InvalidRow, Position, RawNode};

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How a catalog connection is opened and configured.
#[derive(Clone, Debug)]
pub(crate) struct ConnectOptions {
    /// How long a statement waits for another process's lock.
    pub busy_timeout: Duration,
}

impl ConnectOptions {
    fn flags() -> OpenFlags {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    }

    fn configure(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(())
    }
}

/// A row that the root does not reach, as [`Catalog::unreachable`] finds it (rows
/// whose id is not a positive integer are invalid, and left out).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DetachedRow {
    /// Its id.
    pub id: NodeId,
    /// Its `parent_id`, when that is an integer.
    pub parent: Option<i64>,
    /// Whether a row has the id `parent`.
    pub parent_exists: bool,
    /// Whether that row is a directory.
    pub parent_is_dir: bool,
}

/// Where a directory listing resumes, in (name, id) order.
#[derive(Clone, Copy)]
pub(crate) enum After<'a> {
    /// After every row of this name: the last entry handed out had it, and its
    /// same-named siblings are hidden.
    Name(&'a Position),
    /// After this one row (its name and id), where the previous page of one listing
    /// ended: a same-named sibling on the next page is still seen.
    Row(&'a Position, &'a Position),
}

/// An open, checked catalog: a pool of connections and the queries over them.
pub(crate) struct Catalog {
    path: PathBuf,
    /// What names this catalog file: see [`Catalog::id`].
    id: u64,
    base_dir: PathBuf,
    pool: Pool<SqliteConnectionManager>,
    options: ConnectOptions,
}

impl Catalog {
    /// Opens and checks the catalog at `path`, with a pool of `pool_size` connections.
    ///
    /// Reads nothing but the schema and the root row, whatever the catalog's size.
    pub fn open(path: &Path, pool_size: u32, options: ConnectOptions) -> Result<Self> {
        preflight(path)?;
        let path = std::fs::canonicalize(path).map_err(|source| VfsError::CatalogUnreadable {
            path: path.to_owned(),
            cause: source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("/"));

        let id = catalog_id(&path)?;
        let first = connect(&path, &options)?;
        schema::check(&first, &path)?;
        enable_wal(&first, &path)?;
        drop(first);

        let init_options = options.clone();
        let manager = SqliteConnectionManager::file(&path)
            .with_flags(ConnectOptions::flags())
            .with_init(move |conn| init_options.configure(conn));
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            // A SQLite connection does not go stale; checking it would cost a statement per query.
            .test_on_check_out(false)
            .connection_timeout(options.busy_timeout + Duration::from_secs(1))
            .build(manager)?;
        Ok(Self {
            path,
            id,
            base_dir,
            pool,
            options,
        })
    }

    /// The catalog file (canonical path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A number that names this catalog: the same for every open of the same file at
    /// the same path, another for another file (or this one moved or replaced).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory relative aliases are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// A new connection outside the pool, configured like the pooled ones.
    pub fn connect(&self) -> Result<Connection> {
        connect(&self.path, &self.options)
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    fn sql(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> VfsError + '_ {
        move |source| sql_error(&self.path, context, source)
    }

    /// The row with id `id`, if any.
    pub fn node(&self, id: NodeId) -> Result<Option<Result<Node, InvalidRow>>> {
        query_node(&*self.conn()?, id).map_err(self.sql("reading a node"))
    }

    /// Every child of `parent` named `name`, lowest id first (more than one only in a
    /// catalog that lacks the `UNIQUE (parent_id, name)` constraint).
    pub fn children_named(
        &self,
        parent: NodeId,
        name: &str,
    ) -> Result<Vec<Result<Node, InvalidRow>>> {
        query_children_named(&*self.conn()?, parent, name).map_err(self.sql("looking up a name"))
    }

    /// Up to `limit` children of `parent` in (name, id) order, after `after`.
    pub fn children_after(
        &self,
        parent: NodeId,
        after: Option<After<'_>>,
        limit: usize,
    ) -> Result<Vec<RawNode>> {
        let conn = self.conn()?;
        // The limit is written into the SQL, not bound: SQLite (3.53) re-prepares a
        // statement on every run when a bound parameter feeds its LIMIT.
        let context = "listing a directory";
        match after {
            None => {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 ORDER BY name, id LIMIT {limit}"
                    ))
                    .map_err(self.sql(context))?;
                stmt.query_map(params![parent.sql()], row::read)
                    .and_then(|rows| rows.collect())
                    .map_err(self.sql(context))
            }
            Some(After::Name(name)) => {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 AND name > ?2 \
                         ORDER BY name, id LIMIT {limit}"
                    ))
                    .map_err(self.sql(context))?;
                stmt.query_map(params![parent.sql(), name], row::read)
                    .and_then(|rows| rows.collect())
                    .map_err(self.sql(context))
            }
            Some(After::Row(name, id)) => {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 \
                         AND (name, id) > (?2, ?3) ORDER BY name, id LIMIT {limit}"
                    ))
                    .map_err(self.sql(context))?;
                stmt.query_map(params![parent.sql(), name, id], row::read)
                    .and_then(|rows| rows.collect())
                    .map_err(self.sql(context))
            }
        }
    }

    /// Calls `each` with the id and parsed `aliases_json` of every file row whose id is
    /// an integer (a full scan).
    pub fn for_each_file(&self, mut each: impl FnMut(i64, AliasList)) -> Result<()> {
        let conn = self.conn()?;
        let context = "scanning file nodes";
        let mut stmt = conn
            .prepare("SELECT id, aliases_json FROM nodes WHERE kind = 'file'")
            .map_err(self.sql(context))?;
        let mut rows = stmt.query([]).map_err(self.sql(context))?;
        while let Some(row) = rows.next().map_err(self.sql(context))? {
            if let ValueRef::Integer(id) = row.get_ref(0).map_err(self.sql(context))? {
                each(id, row::aliases(row.get_ref(1).map_err(self.sql(context))?));
            }
        }
        Ok(())
    }

    /// The fingerprint of the entries of `dir` (their ids and names, as
    /// the sum of their [`entry_hash`](crate::times::entry_hash)es), read from the
    /// `(parent_id, name)` index alone.
    pub fn entries_fingerprint(&self, dir: NodeId) -> Result<u64> {
        let conn = self.conn()?;
        let context = "reading a directory's entries";
        let mut stmt = conn
            .prepare_cached("SELECT id, name FROM nodes WHERE parent_id = ?1")
            .map_err(self.sql(context))?;
        let mut rows = stmt.query(params![dir.sql()]).map_err(self.sql(context))?;
        let mut sum = 0u64;
        while let Some(row) = rows.next().map_err(self.sql(context))? {
            let id: i64 = row.get(0).map_err(self.sql(context))?;
            let name = match row.get_ref(1).map_err(self.sql(context))? {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
                _ => &[],
            };
            sum = sum.wrapping_add(crate::times::entry_hash(id, name));
        }
        Ok(sum)
    }

    /// Every row (but the root) that no chain of directories leads to from the root,
    /// with its parent as it stands (a full scan, over the parent index).
    pub fn unreachable(&self) -> Result<Vec<DetachedRow>> {
        let conn = self.conn()?;
        let context = "looking for rows the root does not reach";
        let mut stmt = conn
            .prepare(
                "WITH RECURSIVE dirs(id) AS ( \
                     SELECT 1 \
                     UNION SELECT n.id FROM nodes n JOIN dirs d ON n.parent_id = d.id \
                         WHERE n.kind = 'dir' \
                 ) \
                 SELECT n.id, n.parent_id, p.id IS NOT NULL, p.kind = 'dir' \
                 FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id \
                 WHERE n.id IS NOT 1 AND (n.parent_id IS NULL OR n.parent_id NOT IN dirs)",
            )
            .map_err(self.sql(context))?;
        let rows = stmt
            .query_map([], |row| {
                let integer = |index| -> rusqlite::Result<Option<i64>> {
                    Ok(match row.get_ref(index)? {
                        ValueRef::Integer(value) => Some(value),
                        _ => None,
                    })
                };
                let parent = integer(1)?;
                let parent_exists = row.get::<_, bool>(2)?;
                let parent_is_dir = row.get::<_, Option<bool>>(3)?.unwrap_or(false);
                Ok(integer(0)?
                    .and_then(NodeId::from_sql)
                    .map(|id| DetachedRow {
                        id,
                        parent,
                        parent_exists,
                        parent_is_dir,
                    }))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.sql(context))?;
        Ok(rows.into_iter().flatten().collect())
    }

    /// How many rows the `nodes` table holds.
    pub fn node_count(&self) -> Result<u64> {
        let conn = self.conn()?;
        let count: i64 = conn
            .query_row("SELECT count(*) FROM nodes", [], |row| row.get(0))
            .map_err(self.sql("counting nodes"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The highest node id: a cheap upper bound on the number of nodes.
    pub fn max_id(&self) -> Result<u64> {
        let conn = self.conn()?;
        let max: Option<i64> = conn
            .query_row("SELECT max(id) FROM nodes", [], |row| row.get(0))
            .map_err(self.sql("counting nodes"))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()).unwrap_or(0))
    }
}

/// The row with id `id` on `conn`, if any.
pub(crate) fn query_node(
    conn: &Connection,
    id: NodeId,
) -> rusqlite::Result<Option<Result<Node, InvalidRow>>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1"))?;
    stmt.query_row([id.sql()], row::parse).optional()
}

/// Every child of `parent` named `name` on `conn`, lowest id first.
pub(crate) fn query_children_named(
    conn: &Connection,
    parent: NodeId,
    name: &str,
) -> rusqlite::Result<Vec<Result<Node, InvalidRow>>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 AND name = ?2 ORDER BY id"
    ))?;
    stmt.query_map(params![parent.sql(), name], row::parse)?
        .collect()
}

/// Opens one configured connection to an existing catalog.
pub(crate) fn connect(path: &Path, options: &ConnectOptions) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, ConnectOptions::flags())
        .map_err(|source| sql_error(path, "opening the catalog", source))?;
    options
        .configure(&conn)
        .map_err(|source| sql_error(path, "configuring the connection", source))?;
    Ok(conn)
}

/// Switches the catalog to WAL so readers never wait for a writer.
///
/// A catalog we may not write to stays in its journal mode; it can still be read.
fn enable_wal(conn: &Connection, path: &Path) -> Result<()> {
    match conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    }) {
        Ok(_) => Ok(()),
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {
            tracing::debug!(catalog = %path.display(), "catalog is read-only; journal mode left as it is");
            Ok(())
        }
        Err(source) => Err(sql_error(path, "enabling WAL", source)),
    }
}

/// Checks the file itself before SQLite sees it, for errors that say what is wrong.
fn preflight(path: &Path) -> Result<()> {
    let not_a_catalog = |reason: &str| VfsError::NotACatalog {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(VfsError::CatalogMissing(path.to_owned()));
        }
        Err(source) => {
            return Err(VfsError::CatalogUnreadable {
                path: path.to_owned(),
                cause: source,
            });
        }
    };
    if meta.is_dir() {
        return Err(not_a_catalog("it is a directory"));
    }
    if !meta.is_file() {
        return Err(not_a_catalog("it is not a regular file"));
    }
    if meta.len() == 0 {
        return Err(not_a_catalog("the file is empty (0 bytes)"));
    }
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut file| file.read(&mut header))
        .map_err(|source| VfsError::CatalogUnreadable {
            path: path.to_owned(),
            cause: source,
        })?;
    if read < header.len() || &header != SQLITE_MAGIC {
        return Err(not_a_catalog("it does not start with the SQLite header"));
    }
    if meta.len() < 512 {
        return Err(not_a_catalog(&format!(
            "the file is truncated ({} bytes)",
            meta.len()
        )));
    }
    Ok(())
}

/// Maps a SQLite error to the error that says what it means for the catalog at `path`.
pub(crate) fn sql_error(path: &Path, context: &'static str, source: rusqlite::Error) -> VfsError {
    let path = path.to_owned();
    if source.sqlite_error().map(|error| error.extended_code)
        == Some(rusqlite::ffi::SQLITE_READONLY_DIRECTORY)
    {
        return VfsError::CatalogDirectoryReadOnly { path };
    }
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => VfsError::CatalogBusy { path },
        Some(ErrorCode::ReadOnly) => VfsError::CatalogReadOnly {
            path,
            reason: source.to_string(),
        },
        Some(ErrorCode::NotADatabase) => VfsError::NotACatalog {
            path,
            reason: "SQLite does not recognise it as a database".to_owned(),
        },
        Some(ErrorCode::DatabaseCorrupt) => VfsError::NotACatalog {
            path,
            reason: format!("it is damaged or truncated ({source})"),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => VfsError::CatalogUnreadable {
            path,
            cause: std::io::Error::other(source),
        },
        _ => VfsError::Sqlite {
            context,
            cause: EngineError::new(source),
        },
    }
}

/// The 64-bit FNV-1a hash of the catalog's canonical `path`, device and inode: fixed by
/// its definition, so it outlives a change of Rust's hashers or of this program.
fn catalog_id(path: &Path) -> Result<u64> {
    use std::hash::Hasher;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| VfsError::CatalogUnreadable {
        path: path.to_owned(),
        cause: source,
    })?;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(path.as_os_str().as_bytes());
    hasher.write_u64(meta.dev());
    hasher.write_u64(meta.ino());
    Ok(hasher.finish())
}
