//! Client-set properties of nodes (WebDAV's dead properties): the `Vfs` calls over
//! the properties database (kept beside the catalog, in the store).

pub use crate::catalog::properties::{Property, PropertyChange};
use crate::error::{Result, VfsError};
use crate::node::NodeId;
use crate::vfs::Vfs;

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
