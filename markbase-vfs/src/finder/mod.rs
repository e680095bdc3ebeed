//! The files macOS Finder makes and asks for, kept out of the catalog.
//!
//! Finder writes an AppleDouble file (`._name`) beside every file it copies and a
//! `.DS_Store` into every folder it opens. They hold Finder's view state, not media,
//! so by default ([`FinderFiles::Aside`]) they live in an area of the store beside
//! the catalog, `<store>/finder/<directory node id>/<name>`: reachable by name,
//! never listed, never a catalog row. The area of a directory goes when the
//! directory does.
//!
//! Finder also asks the volume root for `.metadata_never_index` (Spotlight) and
//! `.ql_disablethumbnails` (Quick Look); that they exist keeps macOS from indexing
//! and thumbnailing the whole library, so both are answered as empty, read-only files.
//!
//! The rule sits inside the core's own calls (the `Vfs` side is `vfs/finder.rs`) (lookup, getattr, open, create, setattr,
//! unlink, rename, uploads, copies), so every adapter gets it by making them. Such a
//! file has an id no catalog row can have (see `id.rs`), made from its directory and name:
//! stable across restarts, and new when the file is moved. Nothing about it is ever
//! written to the catalog. A catalog node of the same name always wins, and nothing
//! moves between the catalog and these files (`EXDEV`).

mod area;
pub(crate) mod id;
mod listing;

pub(crate) use area::{AsideFile, FinderArea};

pub use crate::config::FinderFiles;
use crate::error::VfsError;
use crate::node::NodeId;

/// The root files whose presence tells macOS not to index or thumbnail the volume.
pub const PROBE_FILES: [&str; 2] = [".metadata_never_index", ".ql_disablethumbnails"];

/// Whether Finder makes `name` for its own metadata.
pub fn is_finder_metadata(name: &str) -> bool {
    name == ".DS_Store" || (name.starts_with("._") && name.len() > 2)
}

/// A file the Finder rule answers instead of the catalog.
pub(crate) enum Outside {
    /// A Finder metadata file in its directory's area; it may not exist yet.
    Aside(AsideFile),
    /// A probe file at the root: always there, empty and read-only.
    Probe { id: NodeId, name: &'static str },
}

/// The refusal of a write to a probe file.
pub(crate) fn read_only_probe(name: &str) -> VfsError {
    VfsError::OutsideCatalog {
        what: format!("{name:?} at the root"),
        refused: "probe files are empty and read-only",
    }
}
