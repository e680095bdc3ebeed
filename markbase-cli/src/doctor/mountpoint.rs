//! The directory to mount on: empty, a directory, not a mount already; or a dead
//! markbase mount, and the command that clears it.

use std::io;
use std::path::Path;
use std::time::Duration;

use markbase_fuse::{MountEntry, MountError, inspect_mount_point, is_dead_fuse_mount, mount_at};

use super::check::{Check, Status};
use super::quoted;
use super::users::User;
use crate::registry::{self, Entry};

/// How long the mount point may take to answer: a mount whose server is gone can
/// hang every look at it (an NFS mount on macOS).
const ANSWER_LIMIT: Duration = Duration::from_secs(3);

/// Whether `dir` can be mounted on by `user`, changing nothing.
pub fn check(dir: &Path, user: &User) -> Check {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    // What markbase recorded of a mount there, if it did.
    let record = registry::canonical(&dir)
        .ok()
        .and_then(|point| registry::find(&point).ok().flatten());
    let probe = dir.clone();
    let Some((dead_fuse, inspected)) = markbase_process::with_deadline(ANSWER_LIMIT, move || {
        (is_dead_fuse_mount(&probe), inspect_mount_point(&probe))
    }) else {
        return Check::new(
            "mount point",
            Status::Fail(format!("`markbase umount --lazy {}`", quoted(&dir))),
            format!(
                "{}: does not answer within {} (a mount whose server is gone?)",
                dir.display(),
                humantime::format_duration(ANSWER_LIMIT)
            ),
        );
    };
    let server_gone = record
        .as_ref()
        .is_some_and(|entry| !entry.record.process_alive());
    if dead_fuse || (server_gone && matches!(inspected, Err(MountError::AlreadyMounted { .. }))) {
        return dead(&dir, record.as_ref());
    }
    let (status, detail) = match inspected {
        Ok(path) => return usable(&path, user),
        Err(MountError::AlreadyMounted { path, fstype }) => mounted(&path, fstype, record.as_ref()),
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

/// A mount whose server is gone: `markbase umount` clears it.
fn dead(dir: &Path, record: Option<&Entry>) -> Check {
    let what = match (record, mount_at(dir)) {
        (Some(entry), _) => format!(
            "a dead markbase mount (its server, pid {}, is gone)",
            entry.record.pid
        ),
        (None, Ok(Some(entry))) if markbase_fuse::is_markbase_fstype(&entry.fstype) => {
            String::from("a dead markbase mount (its server is gone)")
        }
        (None, Ok(Some(MountEntry { fstype, source }))) => {
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

/// Something is mounted at `path` already: markbase's live mount (recorded, or a
/// `/dev/fuse` one by its type), or another.
fn mounted(path: &Path, fstype: String, record: Option<&Entry>) -> (Status, String) {
    let source = match mount_at(path) {
        Ok(Some(entry)) => entry.source,
        _ => String::from("?"),
    };
    let umount = format!("`markbase umount {}`", quoted(path));
    if let Some(entry) = record.filter(|entry| entry.record.fstype == fstype) {
        return (
            Status::Info(Some(format!("{umount} to take it off"))),
            format!(
                "{}: already mounted by markbase (a live mount of {} via {}, pid {})",
                path.display(),
                entry.record.catalog.display(),
                entry.record.backend,
                entry.record.pid
            ),
        );
    }
    if markbase_fuse::is_markbase_fstype(&fstype) {
        return (
            Status::Info(Some(format!("{umount} to take it off"))),
            format!(
                "{}: already mounted by markbase (a live mount, not recorded: another user's?)",
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
