//! The directory to mount on: empty, a directory, not a mount already; or a dead
//! markbase mount, and the command that clears it.

use std::io;
use std::path::Path;

use markbase_fuse::{MountEntry, MountError, inspect_mount_point, is_dead_fuse_mount, mount_at};

use super::check::{Check, Status};
use super::quoted;
use super::users::User;

/// The type of a markbase FUSE mount in the mount table (Linux).
const MARKBASE_FSTYPE: &str = "fuse.markbase";

/// Whether `dir` can be mounted on by `user`, changing nothing.
pub fn check(dir: &Path, user: &User) -> Check {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    if is_dead_fuse_mount(&dir) {
        return dead(&dir);
    }
    let (status, detail) = match inspect_mount_point(&dir) {
        Ok(path) => return usable(&path, user),
        Err(MountError::AlreadyMounted { path, fstype }) => mounted(&path, fstype),
        Err(MountError::MissingMountPoint(path)) => (
            Status::Fail(format!("`mkdir -p {}`", quoted(&path))),
            format!("{}: does not exist", path.display()),
        ),
        Err(MountError::NotADirectory(path)) => (
            Status::Fail(String::from(
                "mount on an empty directory (`mkdir -p NEWDIR`)",
            )),
            format!("{}: not a directory", path.display()),
        ),
        Err(MountError::NotEmpty { path, example }) => (
            Status::Fail(String::from(
                "mount on an empty directory (`mkdir -p NEWDIR`), or move what it holds away: a mount would hide it",
            )),
            format!("{}: not empty (it holds {example:?})", path.display()),
        ),
        Err(MountError::Inspect { path, cause })
            if cause.kind() == io::ErrorKind::PermissionDenied =>
        {
            (
                Status::Fail(format!(
                    "mount on a directory of {}'s (`mkdir -p ~/mnt`), or let {} reach this one",
                    user.name, user.name
                )),
                format!(
                    "{}: cannot be examined by user {} ({cause})",
                    path.display(),
                    user.name
                ),
            )
        }
        Err(other) => (
            Status::Fail(String::from(
                "mount on another empty directory (`mkdir -p NEWDIR`)",
            )),
            other.to_string(),
        ),
    };
    Check::new("mount point", status, detail)
}

/// A FUSE mount whose server is gone: `markbase umount` clears it.
fn dead(dir: &Path) -> Check {
    let what = match mount_at(dir) {
        Ok(Some(entry)) if entry.fstype == MARKBASE_FSTYPE => {
            String::from("a dead markbase mount (its server is gone)")
        }
        Ok(Some(MountEntry { fstype, source })) => {
            format!("a dead FUSE mount ({fstype} from {source}; its server is gone)")
        }
        _ => String::from("a dead FUSE mount (its server is gone)"),
    };
    Check::new(
        "mount point",
        Status::Fail(format!("`markbase umount {}`", quoted(dir))),
        format!("{}: {what}", dir.display()),
    )
}

/// Something is mounted at `path` already: markbase's live mount, or another.
fn mounted(path: &Path, fstype: String) -> (Status, String) {
    let source = match mount_at(path) {
        Ok(Some(entry)) => entry.source,
        _ => String::from("?"),
    };
    let umount = format!("`markbase umount {}`", quoted(path));
    if fstype == MARKBASE_FSTYPE {
        return (
            Status::Info(Some(format!("{umount} to take it off"))),
            format!(
                "{}: already mounted by markbase (a live mount)",
                path.display()
            ),
        );
    }
    let loopback = source.starts_with("127.0.0.1:") || source.starts_with("localhost:");
    if fstype == "nfs" && loopback {
        return (
            Status::Info(Some(format!("{umount} to take it off"))),
            format!(
                "{}: already mounted from a local NFS server ({source}): markbase's, if you mounted it",
                path.display()
            ),
        );
    }
    (
        Status::Fail(format!(
            "mount on another empty directory, or unmount that first (`sudo umount {}`)",
            quoted(path)
        )),
        format!(
            "{}: already a mount point ({fstype} from {source})",
            path.display()
        ),
    )
}

/// An empty directory, not a mount: usable if `user` may mount there (a user other
/// than root needs write access, as fusermount3 and macOS's mounts demand).
fn usable(path: &Path, user: &User) -> Check {
    if !user.is_root() && rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_err() {
        return Check::new(
            "mount point",
            Status::Fail(format!(
                "`sudo chown {} {}`, or mount on a directory of {}'s (`mkdir -p ~/mnt`)",
                user.name,
                quoted(path),
                user.name
            )),
            format!(
                "{}: an empty directory, but user {} may not write there, so may not mount there",
                path.display(),
                user.name
            ),
        );
    }
    Check::new(
        "mount point",
        Status::Ok,
        format!("{}: an empty directory, not a mount", path.display()),
    )
}
