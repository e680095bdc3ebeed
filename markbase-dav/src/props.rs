//! Dead properties (set by clients with PROPPATCH), kept in memory per node.

use std::collections::{BTreeMap, HashMap};

use dav_server::fs::DavProp;
use markbase_vfs::NodeId;
use parking_lot::Mutex;

/// A property's namespace and name.
type PropKey = (String, String);

/// Client-set properties of each node, for the life of the server.
#[derive(Default)]
pub(crate) struct PropStore(Mutex<HashMap<NodeId, BTreeMap<PropKey, DavProp>>>);

fn key(prop: &DavProp) -> PropKey {
    (
        prop.namespace.clone().unwrap_or_default(),
        prop.name.clone(),
    )
}

/// `prop` without its value, as a PROPPATCH reply or a name-only listing shows it.
fn name_only(prop: &DavProp) -> DavProp {
    DavProp {
        xml: None,
        ..prop.clone()
    }
}

impl PropStore {
    /// Sets (`true`) or removes each property; returns them without values.
    pub fn patch(&self, node: NodeId, patch: Vec<(bool, DavProp)>) -> Vec<DavProp> {
        let mut all = self.0.lock();
        let props = all.entry(node).or_default();
        patch
            .into_iter()
            .map(|(set, prop)| {
                let shown = name_only(&prop);
                if set {
                    props.insert(key(&prop), prop);
                } else {
                    props.remove(&key(&prop));
                }
                shown
            })
            .collect()
    }

    /// Every property of `node`, with values if `values`.
    pub fn all(&self, node: NodeId, values: bool) -> Vec<DavProp> {
        self.0.lock().get(&node).map_or_else(Vec::new, |props| {
            props
                .values()
                .map(|prop| {
                    if values {
                        prop.clone()
                    } else {
                        name_only(prop)
                    }
                })
                .collect()
        })
    }

    /// The value of one property of `node`.
    pub fn value(&self, node: NodeId, prop: &DavProp) -> Option<Vec<u8>> {
        self.0.lock().get(&node)?.get(&key(prop))?.xml.clone()
    }

    /// Gives `to` the properties of `from` (a copy).
    pub fn copy(&self, from: NodeId, to: NodeId) {
        let mut all = self.0.lock();
        if let Some(props) = all.get(&from).cloned() {
            all.insert(to, props);
        }
    }

    /// Forgets the properties of a removed node.
    pub fn forget(&self, node: NodeId) {
        self.0.lock().remove(&node);
    }
}
