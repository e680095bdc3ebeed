//! What runs: markbase's version, the system, and the user.

use std::ffi::CStr;

use super::check::{Check, Status};
use super::users::{User, group_name};

/// markbase's version and what it runs on (`0.1.0 (x86_64 linux; Linux 6.8.0)`).
pub fn version() -> Check {
    let mut detail = format!(
        "{} ({} {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    if let Some((system, release)) = uname() {
        detail.push_str(&format!("; {system} {release}"));
    }
    detail.push(')');
    Check::new("markbase", Status::Ok, detail)
}

/// Who runs it: root mounts FUSE directly, other users through fusermount3.
pub fn user(user: &User) -> Check {
    let how = if user.is_root() {
        "root, so it mounts directly"
    } else if cfg!(target_os = "linux") {
        "not root, so FUSE mounts go through fusermount3"
    } else {
        "not root"
    };
    Check::new(
        "user",
        Status::Info(None),
        format!(
            "{} (uid {}, group {}): {how}",
            user.name,
            user.uid,
            group_name(user.gid)
        ),
    )
}

/// The kernel's name and release, as `uname -sr` prints them.
fn uname() -> Option<(String, String)> {
    // SAFETY: utsname is plain data; all-zero is a valid value to be filled in.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `names` is valid for writing.
    if unsafe { libc::uname(&mut names) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        // SAFETY: uname fills each field with a NUL-terminated string.
        unsafe { CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some((text(&names.sysname), text(&names.release)))
}
