//! WebDAV adapter for `markbase-vfs` (dav-server over hyper).
//!
//! Not built yet: this crate is empty until the WebDAV issue lands.
