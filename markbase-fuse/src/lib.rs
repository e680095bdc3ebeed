//! MarkBase VFS over FUSE: `/dev/fuse` on Linux, fuse-t on macOS.
//!
//! [`MarkbaseFs`] translates FUSE requests into [`markbase_vfs::Vfs`] calls and
//! nothing else. [`Mount`] puts it on a directory and takes it off again within a
//! deadline. On macOS it runs fuse-t's helper itself and reports a mount only after
//! verifying it ([`HelperError`] names each way that can fail).
//!
//! ```no_run
//! use std::sync::Arc;
//! use markbase_fuse::{Mount, MountOptions};
//! use markbase_vfs::{Vfs, VfsConfig};
//!
//! let vfs = Arc::new(Vfs::open(VfsConfig::new("warren.sqlite"))?);
//! let mount = Mount::new(vfs, "/mnt/library".as_ref(), &MountOptions::default())?;
//! while !mount.wait_ended(std::time::Duration::from_secs(1)) {}
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attr;
mod countdown;
mod error;
mod fs;
mod helper;
mod io;
#[cfg(target_os = "linux")]
mod kernel;
mod mount;
mod mounts;
#[cfg(target_os = "linux")]
mod passthrough;
mod workers;

pub use error::{HelperError, MountError};
pub use fs::{CachePolicy, MarkbaseFs};
pub use helper::{
    FuseTBackend, HELPER_ENV, HelperConfig, INSTALL_LOCATIONS, locate as locate_helper,
    user_location as user_helper_location,
};
pub use mount::{Mount, MountOptions, PassthroughMode};
/// The name a `/dev/fuse` mount gives its filesystem and subtype: the mount table shows
/// it as `markbase` of type `fuse.markbase`.
pub const SUBTYPE: &str = "markbase";

/// Whether a mount table's filesystem type is that of a markbase `/dev/fuse` mount.
pub fn is_markbase_fstype(fstype: &str) -> bool {
    fstype
        .strip_prefix("fuse.")
        .is_some_and(|subtype| subtype == SUBTYPE)
}

#[cfg(target_os = "linux")]
pub use mounts::mount_table;
pub use mounts::{
    MountEntry, Unmounted, inspect_mount_point, is_dead_fuse_mount, mount_at, prepare_mount_point,
    unmount_path,
};
