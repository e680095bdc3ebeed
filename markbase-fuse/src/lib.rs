//! FUSE adapter for `markbase-vfs` (fuse-backend-rs: /dev/fuse on Linux, fuse-t on macOS).
//!
//! Not built yet: this crate is empty until the mount issue lands.
