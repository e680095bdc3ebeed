//! A protocol-neutral filesystem over a MarkBase media-library catalog.
//!
//! MarkBase keeps a library as a catalog, `warren.sqlite`: a tree of nodes whose
//! bytes live in ordinary files elsewhere on disk, the node's *aliases*. [`Vfs`]
//! turns that catalog into the calls a filesystem needs (lookup, getattr,
//! readdir, open/read/release, statfs) with inode numbers equal to node ids,
//! so that a FUSE or WebDAV adapter only translates its protocol.
//!
//! - **Catalog**: an r2d2 pool of SQLite connections (WAL, busy timeout); the
//!   schema is checked on open and a wrong one is refused with a message that
//!   names what is wrong. Opening reads only the schema and the root row.
//! - **Aliases**: the first alias that opens as a regular file serves the file;
//!   every other is kept with its reason ([`Vfs::resolve`]).
//! - **Opening**: [`OpenFlags`] and one decision for every adapter
//!   ([`Vfs::open_node`], [`Vfs::open_at`], [`Vfs::open_path`]); [`VfsFile`] is an
//!   open file used as a [`std::fs::File`] is (`Read`, `Write`, `Seek`, closed on drop).
//! - **Reads**: an open handle owns the alias [`File`](std::fs::File);
//!   [`Vfs::read`] lets a [`ReadSink`](handles::ReadSink) `pread` straight into its own buffer, and the
//!   kernel is asked to read ahead of a handle read in sequence.
//! - **Stateless I/O by node** (NFS, which has no open or close): [`Vfs::read_node`],
//!   [`Vfs::write_node`] and [`Vfs::commit_node`] name a node and an offset; the core
//!   keeps the node's file open between calls ([`VfsConfig::node_file_cache`]).
//! - **Listings**: [`Vfs::readdir`] with offsets that survive changes, and
//!   [`Vfs::readdir_plus`] with each entry's attributes.
//! - **Who may read**: a file has the owner and mode of the file that holds its
//!   bytes, less what the folders above it keep out; directory times move with every
//!   change of their entries, also one another program makes.
//! - **Changes**: commits by other processes are noticed (`PRAGMA data_version`)
//!   and drop every cache, so a removed node is never served.
//! - **Finder's own files**: `._*`, `.DS_Store` and the root's probe files are kept
//!   out of the catalog by the core's own calls ([`FinderFiles`](finder::FinderFiles)),
//!   with ids no catalog row has ([`NodeId::in_catalog`]), the same for every adapter.
//! - **Path-based adapters** (WebDAV): [`Vfs::lookup_path`], [`Vfs::lookup_parent`],
//!   [`validate_path`](node::validate_path) for paths that arrive over the network,
//!   whole-content uploads ([`Vfs::begin_upload`]) and client-set properties
//!   ([`Vfs::properties`]), kept beside the catalog in the store.
//! - **Errors**: one [`VfsError`] with [`VfsError::errno`] and [`VfsError::level`].
//!
//! The root holds what every user needs; the rest lives in modules named for what
//! they hold ([`alias`], [`check`], [`finder`], [`handles`], [`import`], [`node`],
//! [`open`], [`properties`], [`readdir`], [`schema`], [`write`](mod@write), ...).
//! The front is [`vfs`]: the `Vfs` type and its calls, in modules by kind (`check`,
//! `open`, `readdir`, `write`... are those, re-exported here). Every module outside it
//! is a part that never sees `Vfs`: the catalog with its SQL, writer and properties
//! database; caches, handles, the store, aliases, Finder files, times, read-ahead.
//!
//! # Example
//!
//! ```
//! use markbase_vfs::import::{import, ImportOptions};
//! use markbase_vfs::{NodeId, Vfs, VfsConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let media = dir.path().join("media");
//! # std::fs::create_dir_all(media.join("Day 1"))?;
//! # std::fs::write(media.join("Day 1/clip.mov"), b"frames")?;
//! # let catalog = dir.path().join("warren.sqlite");
//! // Build a catalog from a folder, then read it back through the filesystem view.
//! import(&media, &catalog, &ImportOptions::default())?;
//! let vfs = Vfs::open(VfsConfig::new(&catalog))?;
//!
//! let mut names = Vec::new();
//! vfs.readdir(NodeId::ROOT, 0, |entry| {
//!     names.push(entry.name.to_string());
//!     true
//! })?;
//! assert_eq!(names, ["Day 1"]);
//!
//! let clip = vfs.lookup_path("/Day 1/clip.mov")?;
//! let handle = vfs.open_file(clip.id)?;
//! let mut buf = vec![0; clip.size as usize];
//! let n = vfs.read_at(handle, 0, &mut buf)?;
//! vfs.release(handle)?;
//! assert_eq!(&buf[..n], b"frames");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod alias;
mod cache;
mod catalog;
mod config;
mod cursors;
mod direct;
pub mod error;
pub mod finder;
pub mod handles;
pub mod import;
pub mod node;
pub mod node_files;
pub mod permits;
mod prefetch;
mod primary;
mod reach;
mod readahead;
mod recorder;
mod store;
mod times;
pub mod vfs;

pub use catalog::schema;
pub use config::VfsConfig;
pub use error::{Result, VfsError};
pub use node::{FileAttr, NodeId, NodeKind};
pub use open::OpenFlags;
pub use vfs::{Vfs, VfsFile, check, namespace, open, properties, readdir, upload, write};

/// Adapters share one `Vfs` across request threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Vfs>();
};
