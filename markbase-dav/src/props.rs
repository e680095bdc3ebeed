//! Dead properties (set by clients with PROPPATCH) as the core keeps them.

use dav_server::fs::DavProp;
use markbase_vfs::properties::{Property, PropertyChange};

/// A PROPPATCH's changes as core property changes.
pub(crate) fn changes(patch: &[(bool, DavProp)]) -> Vec<PropertyChange> {
    patch
        .iter()
        .map(|(set, prop)| {
            if *set {
                PropertyChange::Set(Property {
                    namespace: prop.namespace.clone().unwrap_or_default(),
                    name: prop.name.clone(),
                    prefix: prop.prefix.clone(),
                    value: prop.xml.clone(),
                })
            } else {
                PropertyChange::Remove {
                    namespace: prop.namespace.clone().unwrap_or_default(),
                    name: prop.name.clone(),
                }
            }
        })
        .collect()
}

/// `property` as dav-server shows it, with its value if `value`.
pub(crate) fn dav_prop(property: Property, value: bool) -> DavProp {
    DavProp {
        name: property.name,
        prefix: property.prefix,
        namespace: (!property.namespace.is_empty()).then_some(property.namespace),
        xml: if value { property.value } else { None },
    }
}

/// `prop` without its value, as a PROPPATCH reply shows it.
pub(crate) fn name_only(prop: &DavProp) -> DavProp {
    DavProp {
        xml: None,
        ..prop.clone()
    }
}
