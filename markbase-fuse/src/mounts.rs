//! The system's mount table: is a path a mount point, a dead FUSE mount, and unmounting.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::MountError;

/// What the system's mount table says about one mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted filesystem's type (`fuse.markbase`, `tmpfs`, `nfs`...).
    pub fstype: String,
    /// Where it comes from (device, server or FUSE filesystem name).
    pub source: String,
}

impl MountEntry {
    /// Whether a FUSE server serves it (on Linux, `fuse` or `fuse.<subtype>`).
    pub fn is_fuse(&self) -> bool {
        self.fstype == "fuse" || self.fstype.starts_with("fuse.")
    }
}

/// The mount at exactly `path` (absolute, no symlinks), the topmost one if stacked.
#[cfg(target_os = "linux")]
pub fn mount_at(path: &Path) -> io::Result<Option<MountEntry>> {
    Ok(mount_table()?
        .into_iter()
        .filter(|(point, _)| point == path)
        .map(|(_, entry)| entry)
        .next_back())
}

/// Every mount this process sees, with its mount point, in mount order (Linux).
#[cfg(target_os = "linux")]
pub fn mount_table() -> io::Result<Vec<(PathBuf, MountEntry)>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(parse_mountinfo_line)
        .map(|(point, entry)| (PathBuf::from(point), entry))
        .collect())
}

/// The mount at exactly `path` (absolute, no symlinks).
#[cfg(target_os = "macos")]
pub fn mount_at(path: &Path) -> io::Result<Option<MountEntry>> {
    let fs = rustix::fs::statfs(path)?;
    let text = |raw: &[libc::c_char]| {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    if Path::new(&text(&fs.f_mntonname)) != path {
        return Ok(None);
    }
    Ok(Some(MountEntry {
        fstype: text(&fs.f_fstypename),
        source: text(&fs.f_mntfromname),
    }))
}

/// Mount point and entry of one `/proc/self/mountinfo` line.
#[cfg(target_os = "linux")]
fn parse_mountinfo_line(line: &str) -> Option<(String, MountEntry)> {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    let (left, right) = line.split_once(" - ")?;
    let point = unescape(left.split(' ').nth(4)?);
    let mut right = right.split(' ');
    let fstype = unescape(right.next()?);
    let source = unescape(right.next()?);
    Some((point, MountEntry { fstype, source }))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
#[cfg(target_os = "linux")]
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` holds a FUSE mount whose server is gone ("Transport endpoint is not
/// connected"). `statfs` is asked because the kernel never answers it from a cache.
pub fn is_dead_fuse_mount(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(rustix::fs::statfs(path), Err(err) if err == rustix::io::Errno::NOTCONN)
            && matches!(mount_at(path), Ok(Some(entry)) if entry.is_fuse())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

/// Detaches the mount at `path` at once, even if busy (`umount -l`).
pub fn detach(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH)
            .map_err(io::Error::from)
            .or_else(|err| fusermount_unmount(path, true).map_err(|_| err))
    }
    #[cfg(not(target_os = "linux"))]
    {
        unmount_with_flags(path, libc::MNT_FORCE)
    }
}

/// Unmounts `path`; fails with `EBUSY` while files are open or a process works there.
pub fn unmount(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match rustix::mount::unmount(path, rustix::mount::UnmountFlags::empty()) {
            Ok(()) => Ok(()),
            Err(err) if err == rustix::io::Errno::PERM => fusermount_unmount(path, false),
            Err(err) => Err(err.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        unmount_with_flags(path, 0)
    }
}

#[cfg(not(target_os = "linux"))]
fn unmount_with_flags(path: &Path, flags: libc::c_int) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::unmount(path.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unmounts through the setuid helper, the way an unprivileged user may (Linux).
#[cfg(target_os = "linux")]
fn fusermount_unmount(path: &Path, lazy: bool) -> io::Result<()> {
    let mut last = io::Error::from_raw_os_error(libc::EPERM);
    for tool in ["fusermount3", "fusermount"] {
        let mut command = std::process::Command::new(tool);
        command.arg("-u").arg("-q");
        if lazy {
            command.arg("-z");
        }
        match command.arg(path).status() {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => last = io::Error::other(format!("{tool} -u failed ({status})")),
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Clears a dead FUSE mount at `path`; true if there was one.
fn clear_if_dead(path: &Path) -> Result<bool, MountError> {
    if !is_dead_fuse_mount(path) {
        return Ok(false);
    }
    detach(path).map_err(|cause| MountError::ClearDead {
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(true)
}

/// Checks that `path` can be mounted on: an existing, empty directory that is not a
/// mount point already. A dead FUSE mount there is cleared first, and logged.
/// Returns the canonical path.
pub fn prepare_mount_point(path: &Path) -> Result<PathBuf, MountError> {
    let path = std::path::absolute(path).map_err(|cause| MountError::inspect(path, cause))?;
    if clear_if_dead(&path)? {
        tracing::warn!(
            "cleared a dead mount at {}: its server had exited (Transport endpoint is not connected)",
            path.display()
        );
    }
    inspect_mount_point(&path)
}

/// Checks, changing nothing, that `path` can be mounted on: an existing, empty
/// directory that is not a mount point already. A dead FUSE mount there fails as
/// [`MountError::Inspect`] (ask [`is_dead_fuse_mount`] first to tell it apart;
/// [`prepare_mount_point`] clears it). Returns the canonical path.
pub fn inspect_mount_point(path: &Path) -> Result<PathBuf, MountError> {
    let path = std::path::absolute(path).map_err(|cause| MountError::inspect(path, cause))?;
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::MissingMountPoint(path));
        }
        Err(cause) => return Err(MountError::inspect(&path, cause)),
    };
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(path));
    }
    let path = path
        .canonicalize()
        .map_err(|cause| MountError::inspect(&path, cause))?;
    if let Some(entry) = mount_at(&path).map_err(|cause| MountError::inspect(&path, cause))? {
        return Err(MountError::AlreadyMounted {
            path,
            fstype: entry.fstype,
        });
    }
    let first = std::fs::read_dir(&path)
        .map_err(|cause| MountError::inspect(&path, cause))?
        .next()
        .transpose()
        .map_err(|cause| MountError::inspect(&path, cause))?;
    if let Some(first) = first {
        return Err(MountError::NotEmpty {
            path,
            example: first.file_name().to_string_lossy().into_owned(),
        });
    }
    Ok(path)
}

/// What [`unmount_path`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// A live mount was unmounted; its server sees the end and exits.
    Unmounted,
    /// A busy mount was detached (`lazy`); it goes away when its last user leaves.
    Detached,
    /// A dead mount (its server had exited) was cleared.
    ClearedDead,
}

/// Unmounts the markbase (or any FUSE) mount at `path`: `markbase umount`.
///
/// A dead mount is cleared; a busy one fails with [`MountError::Busy`] unless
/// `lazy`, which detaches it at once.
pub fn unmount_path(path: &Path, lazy: bool) -> Result<Unmounted, MountError> {
    let path = std::path::absolute(path).map_err(|cause| MountError::inspect(path, cause))?;
    if clear_if_dead(&path)? {
        return Ok(Unmounted::ClearedDead);
    }
    let path = path
        .canonicalize()
        .map_err(|cause| MountError::inspect(&path, cause))?;
    if mount_at(&path)
        .map_err(|cause| MountError::inspect(&path, cause))?
        .is_none()
    {
        return Err(MountError::NotMounted(path));
    }
    let result = if lazy {
        detach(&path).map(|()| Unmounted::Detached)
    } else {
        unmount(&path).map(|()| Unmounted::Unmounted)
    };
    result.map_err(|cause| match cause.raw_os_error() {
        Some(libc::EBUSY) => MountError::Busy(path),
        _ => MountError::Unmount { path, cause },
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let line = "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - fuse.markbase markbase rw,user_id=0";
        let (point, entry) = parse_mountinfo_line(line).expect("parses");
        assert_eq!(point, "/mnt/my disk");
        assert_eq!(entry.fstype, "fuse.markbase");
        assert!(crate::is_markbase_fstype(&entry.fstype));
        assert!(
            !crate::is_markbase_fstype("fuse.nfs-bridge") && !crate::is_markbase_fstype("markbase")
        );
        assert_eq!(entry.source, "markbase");
        assert!(entry.is_fuse());
        assert_eq!(parse_mountinfo_line("garbage"), None);
    }

    #[test]
    fn the_root_is_a_mount_point() {
        assert!(mount_at(Path::new("/")).expect("mountinfo").is_some());
        assert!(
            mount_at(Path::new("/definitely/not/mounted"))
                .expect("mountinfo")
                .is_none()
        );
    }
}
