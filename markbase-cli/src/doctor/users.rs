//! Who runs markbase, and who owns a file: names for the lines that say why access
//! is refused.

use std::ffi::CStr;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// The user this process runs as (its effective ids).
#[derive(Clone, Debug)]
pub struct User {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// The user's name, or the id when it has none.
    pub name: String,
}

impl User {
    /// This process's user.
    pub fn current() -> Self {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Self {
            uid,
            gid,
            name: user_name(uid),
        }
    }

    /// Whether it is root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// `mode 0600 root:root`: a file's permission bits and owners.
pub fn mode_and_owner(meta: &Metadata) -> String {
    format!(
        "mode {:04o} {}:{}",
        meta.mode() & 0o7777,
        user_name(meta.uid()),
        group_name(meta.gid())
    )
}

/// The name of user `uid`, or the number when it has none.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; all-zero is a valid value to be filled in.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for `buf.len()` bytes.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return uid.to_string();
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
    unsafe { CStr::from_ptr(entry.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// The name of group `gid`, or the number when it has none.
pub fn group_name(gid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: group is plain data; all-zero is a valid value to be filled in.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for `buf.len()` bytes.
    let rc = unsafe { libc::getgrgid_r(gid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return gid.to_string();
    }
    // SAFETY: on success gr_name points at a NUL-terminated string inside `buf`.
    unsafe { CStr::from_ptr(entry.gr_name) }
        .to_string_lossy()
        .into_owned()
}
