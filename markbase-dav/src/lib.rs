//! MarkBase VFS over WebDAV: a [`dav_server`] filesystem over [`markbase_vfs::Vfs`],
//! served over HTTP/1.1 by hyper.
//!
//! [`MarkbaseDavFs`] translates dav-server's calls into core calls and nothing else;
//! [`DavServer`] serves it with an in-memory lock system whose locks expire, refuses what
//! dav-server would get wrong (PROPFIND with infinite depth, removing the root), and
//! shuts down within a bounded time.
//!
//! [`Access`] admits anyone or one user with a password (HTTP Basic).
//!
//! A PUT writes a new content that takes the file's name only once complete
//! ([`markbase_vfs::upload::Upload`]): a client that goes away mid-upload changes nothing.
//!
//! A PUT may not announce or send more bytes than the store has free (507, or the
//! request fails), nor let its body stall for a minute.
//!
//! macOS Finder's `._*` and `.DS_Store` files, and the probe files it asks the root
//! for, are the core's rule ([`markbase_vfs::finder::FinderFiles`]): this adapter makes the
//! same calls for them as for any file.

mod auth;
mod background;
mod body;
mod errors;
mod etags;
mod file;
mod fs;
mod guard;
mod locks;
mod meta;
mod props;
mod readahead;
mod server;

pub use auth::{Access, Credentials, CredentialsError};
pub use background::Background;
pub use fs::MarkbaseDavFs;
pub use server::{DEFAULT_BODY_IDLE, DavServer};
