//! Client-set properties of nodes (WebDAV's dead properties), kept beside the catalog.
//!
//! The catalog has no place for them, so they live in a small SQLite file of their
//! own in the store, `<store>/properties/properties.sqlite`, made on the first
//! change: they outlive the server, and a node's go when the node is removed through
//! the filesystem. Values are opaque bytes (for WebDAV, the property's XML).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Result, VfsError};
use crate::node::NodeId;
use crate::vfs::Vfs;

/// One property of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Its XML namespace (empty for none).
    pub namespace: String,
    /// Its name within the namespace.
    pub name: String,
    /// The prefix the client used for the namespace, if any.
    pub prefix: Option<String>,
    /// Its value as the client sent it, if any.
    pub value: Option<Vec<u8>>,
}

/// One change of [`Vfs::change_properties`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropertyChange {
    /// Sets the property, replacing one of the same namespace and name.
    Set(Property),
    /// Removes the property of this namespace and name, if there is one.
    Remove {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS properties (
    node_id INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT,
    value BLOB,
    PRIMARY KEY (node_id, namespace, name)
) WITHOUT ROWID";

/// The properties file of one store, opened on first use.
#[derive(Debug)]
pub(crate) struct PropertyFile {
    path: PathBuf,
    catalog: PathBuf,
    read_only: bool,
    busy_timeout: Duration,
    connection: Mutex<Option<Connection>>,
    /// Set once some node is known to have properties.
    populated: AtomicBool,
    /// When the file last showed no properties at all.
    empty_at: Mutex<Option<Instant>>,
    /// The highest node id with properties when the file was opened, or since set by
    /// this process; `u64::MAX` until the file is opened.
    highest: AtomicU64,
}

/// How long "no node has properties" is trusted before the file is asked again (it
/// may be changed by another process).
const EMPTY_TTL: Duration = Duration::from_secs(1);

impl PropertyFile {
    /// The properties file of the store at `store_dir`, for the nodes of `catalog`;
    /// only read when `read_only`.
    pub fn new(store_dir: &Path, catalog: &Path, read_only: bool, busy_timeout: Duration) -> Self {
        Self {
            path: store_dir.join("properties").join("properties.sqlite"),
            catalog: catalog.to_owned(),
            read_only,
            busy_timeout,
            connection: Mutex::new(None),
            populated: AtomicBool::new(false),
            empty_at: Mutex::new(None),
            highest: AtomicU64::new(u64::MAX),
        }
    }

    /// Runs `work` on the connection; `None` when the file does not exist and
    /// `create` is false (no node has properties yet).
    fn with<T>(
        &self,
        create: bool,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut connection = self.connection.lock();
        if connection.is_none() {
            if !create && !self.path.exists() {
                return Ok(None);
            }
            let opened = self.open()?;
            let highest: i64 = opened
                .query_row(
                    "SELECT coalesce(max(node_id), 0) FROM properties",
                    [],
                    |row| row.get(0),
                )
                .map_err(|err| self.error(err))?;
            self.highest
                .store(u64::try_from(highest).unwrap_or(0), Ordering::Release);
            *connection = Some(opened);
        }
        let connection = connection.as_mut().expect("opened above");
        work(connection).map(Some).map_err(|err| self.error(err))
    }

    fn open(&self) -> Result<Connection> {
        if self.read_only {
            let open = || {
                let connection =
                    Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                connection.busy_timeout(self.busy_timeout)?;
                Ok(connection)
            };
            return open().map_err(|err| self.error(err));
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|err| VfsError::io(format!("making {}", dir.display()), err))?;
        }
        let open = || {
            let connection = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?;
            connection.busy_timeout(self.busy_timeout)?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            // Properties are no data: a power cut may lose the last changes, never
            // the file, and creates need not wait for a sync.
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            connection.execute_batch(SCHEMA)?;
            self.drop_orphans(&connection)?;
            Ok(connection)
        };
        open().map_err(|err| self.error(err))
    }

    /// Removes the properties of nodes the catalog no longer has: removed by another
    /// program, their ids could be given to new nodes.
    fn drop_orphans(&self, connection: &Connection) -> rusqlite::Result<()> {
        connection.execute(
            "ATTACH DATABASE ?1 AS catalog",
            [self.catalog.to_string_lossy()],
        )?;
        let dropped = connection.execute(
            "DELETE FROM properties WHERE node_id NOT IN (SELECT id FROM catalog.nodes)",
            [],
        );
        connection.execute("DETACH DATABASE catalog", [])?;
        let dropped = dropped?;
        if dropped > 0 {
            tracing::info!("dropped {dropped} properties of nodes the catalog no longer has");
        }
        Ok(())
    }

    fn error(&self, err: rusqlite::Error) -> VfsError {
        VfsError::io(
            format!("properties file {}", self.path.display()),
            std::io::Error::other(err),
        )
    }

    /// Whether any node may have properties: once some has, always; that none has
    /// is trusted for [`EMPTY_TTL`].
    pub fn any(&self) -> Result<bool> {
        if self.populated.load(Ordering::Acquire) {
            return Ok(true);
        }
        let mut empty_at = self.empty_at.lock();
        if empty_at.is_some_and(|at| at.elapsed() < EMPTY_TTL) {
            return Ok(false);
        }
        let any = self
            .with(false, |connection| {
                connection.query_row("SELECT EXISTS (SELECT 1 FROM properties)", [], |row| {
                    row.get::<_, bool>(0)
                })
            })?
            .unwrap_or(false);
        if any {
            self.populated.store(true, Ordering::Release);
        } else {
            *empty_at = Some(Instant::now());
        }
        Ok(any)
    }

    /// Every property of `node`.
    pub fn all(&self, node: NodeId) -> Result<Vec<Property>> {
        let found = self.with(false, |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT namespace, name, prefix, value FROM properties WHERE node_id = ?1
                 ORDER BY namespace, name",
            )?;
            statement
                .query_map([node.sql()], |row| {
                    Ok(Property {
                        namespace: row.get(0)?,
                        name: row.get(1)?,
                        prefix: row.get(2)?,
                        value: row.get(3)?,
                    })
                })?
                .collect()
        })?;
        Ok(found.unwrap_or_default())
    }

    /// The property `namespace`/`name` of `node`.
    pub fn get(&self, node: NodeId, namespace: &str, name: &str) -> Result<Option<Property>> {
        let found = self.with(false, |connection| {
            connection
                .prepare_cached(
                    "SELECT prefix, value FROM properties
                     WHERE node_id = ?1 AND namespace = ?2 AND name = ?3",
                )?
                .query_row(params![node.sql(), namespace, name], |row| {
                    Ok(Property {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        prefix: row.get(0)?,
                        value: row.get(1)?,
                    })
                })
                .optional()
        })?;
        Ok(found.flatten())
    }

    /// Applies `changes` to `node`, all or none.
    pub fn change(&self, node: NodeId, changes: &[PropertyChange]) -> Result<()> {
        self.with(true, |connection| {
            let transaction = connection.transaction()?;
            for change in changes {
                match change {
                    PropertyChange::Set(property) => transaction.execute(
                        "INSERT OR REPLACE INTO properties (node_id, namespace, name, prefix, value)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            node.sql(),
                            property.namespace,
                            property.name,
                            property.prefix,
                            property.value
                        ],
                    )?,
                    PropertyChange::Remove { namespace, name } => transaction.execute(
                        "DELETE FROM properties WHERE node_id = ?1 AND namespace = ?2 AND name = ?3",
                        params![node.sql(), namespace, name],
                    )?,
                };
            }
            transaction.commit()
        })?;
        if changes
            .iter()
            .any(|change| matches!(change, PropertyChange::Set(_)))
        {
            self.populated.store(true, Ordering::Release);
            self.highest.fetch_max(node.get(), Ordering::AcqRel);
        }
        Ok(())
    }

    /// Gives `to` the properties of `from`, replacing its own.
    pub fn copy(&self, from: NodeId, to: NodeId) -> Result<()> {
        self.with(false, |connection| {
            let transaction = connection.transaction()?;
            transaction.execute("DELETE FROM properties WHERE node_id = ?1", [to.sql()])?;
            transaction.execute(
                "INSERT INTO properties (node_id, namespace, name, prefix, value)
                 SELECT ?2, namespace, name, prefix, value FROM properties WHERE node_id = ?1",
                [from.sql(), to.sql()],
            )?;
            transaction.commit()
        })?;
        self.highest.fetch_max(to.get(), Ordering::AcqRel);
        Ok(())
    }

    /// Removes what a node just made may have inherited. Nothing is asked of the file
    /// while no node has properties, or when the id is above every id with properties
    /// (a new id usually is).
    pub fn forget_inherited(&self, node: NodeId) -> Result<()> {
        if node.get() > self.highest.load(Ordering::Acquire) || !self.any()? {
            return Ok(());
        }
        self.forget(node)
    }

    /// Removes the properties of a removed node.
    pub fn forget(&self, node: NodeId) -> Result<()> {
        self.with(false, |connection| {
            connection.execute("DELETE FROM properties WHERE node_id = ?1", [node.sql()])
        })
        .map(drop)
    }
}

impl Vfs {
    /// Gives a node just made no properties: the catalog gives the highest id again
    /// once its node is removed, and one removed by another program left its
    /// properties behind.
    pub(crate) fn clear_properties(&self, node: NodeId) {
        if let Err(err) = self.properties.forget_inherited(node) {
            tracing::warn!(%node, "cannot clear the properties of a new node: {err}");
        }
    }

    /// Whether any node may have client-set properties: `false` means none has, so an
    /// adapter listing many entries can skip asking for each. Cheap: the properties
    /// file is asked at most once a second while it has none.
    pub fn has_properties(&self) -> Result<bool> {
        self.properties.any()
    }

    /// Every client-set property of node `node`, ordered by namespace and name.
    pub fn properties(&self, node: NodeId) -> Result<Vec<Property>> {
        if !self.getattr(node)?.id.in_catalog() {
            return Ok(Vec::new());
        }
        self.properties.all(node)
    }

    /// The client-set property `namespace`/`name` of node `node`, if it has one.
    pub fn property(&self, node: NodeId, namespace: &str, name: &str) -> Result<Option<Property>> {
        if !self.getattr(node)?.id.in_catalog() {
            return Ok(None);
        }
        self.properties.get(node, namespace, name)
    }

    /// Sets and removes properties of node `node`, all in one transaction.
    pub fn change_properties(&self, node: NodeId, changes: &[PropertyChange]) -> Result<()> {
        self.ensure_writable()?;
        if !self.getattr(node)?.id.in_catalog() {
            return Err(VfsError::OutsideCatalog {
                what: format!("node {node}"),
                refused: "Finder files take no properties",
            });
        }
        self.properties.change(node, changes)
    }
}
