//! MarkBase VFS over NFSv3: the catalog served to NFS clients, above all macOS's
//! own `mount_nfs`, so that a Mac mounts the library with nothing to install.
//!
//! The protocol is [`nfs3_server`]'s (vendored with small fixes, see
//! `vendor/README.md`): NFSv3 and MOUNT on one TCP port, so that a client needs no
//! rpcbind (`vers=3,tcp,port=P,mountport=P`). This crate only translates its calls to
//! the core's ([`markbase_vfs::Vfs`]): reads and writes by node through the core's
//! node-file cache (no open or close per request), listings from the core's
//! resumable offsets, COMMIT as the core's durable commit. File handles carry the
//! catalog's id and the node id, so they outlive a restart of the server.
//!
//! ```no_run
//! # async fn run(vfs: std::sync::Arc<markbase_vfs::Vfs>) -> Result<(), markbase_nfs::ServeError> {
//! let server = markbase_nfs::NfsServer::bind(vfs, "127.0.0.1:0".parse().unwrap(), Vec::new()).await?;
//! println!("mount_nfs -o vers=3,tcp,port={0},mountport={0} 127.0.0.1:/ /Volumes/Library", server.local_addr().port());
//! server.run(std::future::pending()).await;
//! # Ok(()) }
//! ```

mod attr;
mod buffers;
mod error;
mod fs;
mod handle;
mod listing;
mod mount;
mod server;

pub use mount::{MOUNT_COMMAND_ENV, NfsMount, NfsMountError, NfsMountOptions};
pub use server::{MountsServed, NfsServer, ServeError};
