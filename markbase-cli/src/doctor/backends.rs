//! What each way of mounting needs on this machine, checked as far as can be without
//! mounting, and the default way's readiness.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::check::{Check, Status};
use super::users::{User, group_name, mode_and_owner};
use crate::backend::{Machine, Plan, Way};

/// The kernel's FUSE device.
const DEV_FUSE: &str = "/dev/fuse";

/// The setuid helper through which a user other than root mounts FUSE (the one
/// fuse-backend-rs runs).
const FUSERMOUNT: &str = "fusermount3";

/// How a container gets FUSE.
const CONTAINER_FUSE: &str = "--device /dev/fuse --cap-add SYS_ADMIN";

/// Homebrew's command that installs fuse-t.
const INSTALL_FUSE_T: &str = "brew install macos-fuse-t/homebrew-cask/fuse-t";

/// One line per requirement of each way to mount on `machine`, with its way; a
/// requirement of `default`, the way `markbase mount` will use, fails when unmet.
pub fn checks(machine: &Machine, default: Option<Way>, user: &User) -> Vec<(Way, Check)> {
    let mut checks = Vec::new();
    if !machine.macos {
        let needed = default == Some(Way::Fuse);
        checks.push((Way::Fuse, dev_fuse(machine, needed, user)));
        checks.push((Way::Fuse, fusermount(needed, user)));
    }
    checks.push((Way::FuseT, fuse_t(machine, default == Some(Way::FuseT))));
    let needed = default == Some(Way::Nfs);
    checks.push((Way::Nfs, nfs_client(machine, needed, user)));
    if machine.macos {
        checks.push((Way::Nfs, network_volumes()));
    }
    checks
}

/// `/dev/fuse` exists and this user may open it for reading and writing, as a FUSE
/// mount does first. Opening it mounts nothing; it is closed at once.
fn dev_fuse(machine: &Machine, needed: bool, user: &User) -> Check {
    if !machine.dev_fuse {
        return Check::new(
            "fuse",
            Status::unmet(
                needed,
                format!(
                    "load the module (`sudo modprobe fuse`); in a container, start it with `{CONTAINER_FUSE}`"
                ),
            ),
            format!("{DEV_FUSE} does not exist"),
        );
    }
    let owner = std::fs::metadata(DEV_FUSE)
        .map(|meta| mode_and_owner(&meta))
        .unwrap_or_default();
    let err = match OpenOptions::new().read(true).write(true).open(DEV_FUSE) {
        Ok(_) => {
            return Check::new(
                "fuse",
                Status::Ok,
                format!("{DEV_FUSE} opens read-write ({owner})"),
            );
        }
        Err(err) => err,
    };
    if err.kind() != io::ErrorKind::PermissionDenied || user.is_root() {
        return Check::new(
            "fuse",
            Status::unmet(
                needed,
                format!(
                    "in a container, start it with `{CONTAINER_FUSE}`; otherwise check the device's driver (`sudo modprobe fuse`)"
                ),
            ),
            format!("{DEV_FUSE} cannot be opened ({err}; {owner})"),
        );
    }
    Check::new(
        "fuse",
        Status::unmet(needed, dev_fuse_access_fix(user)),
        format!(
            "{DEV_FUSE} is not readable and writable by user {} ({owner})",
            user.name
        ),
    )
}

/// How `user` gets read-write access to `/dev/fuse`: through its group when the group
/// may read and write it, else by opening it to all, as most distributions ship it.
fn dev_fuse_access_fix(user: &User) -> String {
    let root = "or run markbase as root";
    match std::fs::metadata(DEV_FUSE) {
        Ok(meta) if meta.mode() & 0o060 == 0o060 && meta.gid() != 0 => format!(
            "add {} to the group {} (`sudo usermod -aG {} {}`, then log in again), {root}",
            user.name,
            group_name(meta.gid()),
            group_name(meta.gid()),
            user.name
        ),
        _ => format!("`sudo chmod 0666 {DEV_FUSE}` (most distributions ship it so), {root}"),
    }
}

/// `fusermount3` for a user other than root: on `PATH`, setuid root.
fn fusermount(needed: bool, user: &User) -> Check {
    if user.is_root() {
        return Check::new(
            FUSERMOUNT,
            Status::Info(None),
            "not needed: root mounts FUSE itself",
        );
    }
    let Some(path) = on_path(FUSERMOUNT) else {
        let also = match on_path("fusermount") {
            Some(old) => format!(" (only FUSE 2's {} is)", old.display()),
            None => String::new(),
        };
        return Check::new(
            FUSERMOUNT,
            Status::unmet(
                needed,
                String::from(
                    "install fuse3 (`sudo apt install fuse3`, `sudo dnf install fuse3`), or run markbase as root",
                ),
            ),
            format!("not found on PATH{also}: a user other than root mounts FUSE through it"),
        );
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 => Check::new(
            FUSERMOUNT,
            Status::Ok,
            format!("{} (setuid root)", path.display()),
        ),
        found => {
            let owner = found.map(|meta| mode_and_owner(&meta)).unwrap_or_default();
            let at = super::quoted(&path);
            Check::new(
                FUSERMOUNT,
                Status::unmet(
                    needed,
                    format!(
                        "`sudo chown root {at} && sudo chmod u+s {at}`, or run markbase as root"
                    ),
                ),
                format!("{} is not setuid root ({owner})", path.display()),
            )
        }
    }
}

/// fuse-t's helper and where it was found, or everywhere it was looked for.
fn fuse_t(machine: &Machine, needed: bool) -> Check {
    match &machine.fuse_t {
        Ok(helper) => Check::new("fuse-t", Status::Ok, format!("helper {}", helper.display())),
        Err(why) if machine.macos => Check::new(
            "fuse-t",
            Status::unmet(needed, String::from(INSTALL_FUSE_T)),
            format!("not installed: {why}"),
        ),
        Err(why) if std::env::var_os(markbase_fuse::HELPER_ENV).is_some() => Check::new(
            "fuse-t",
            Status::unmet(
                needed,
                format!(
                    "set {} to an executable go-nfsv4",
                    markbase_fuse::HELPER_ENV
                ),
            ),
            why.clone(),
        ),
        Err(_) => Check::new(
            "fuse-t",
            Status::Info(None),
            format!(
                "not used on Linux (/dev/fuse is the way) unless {} names its helper",
                markbase_fuse::HELPER_ENV
            ),
        ),
    }
}

/// The system's NFS client, which mounts markbase's NFS server (`--backend nfs`).
fn nfs_client(machine: &Machine, needed: bool, user: &User) -> Check {
    match &machine.nfs_client {
        // mount.nfs refuses every user but root (short of an fstab entry per mount).
        Some(client) if !machine.macos && !user.is_root() => {
            return Check::new(
                "nfs",
                Status::unmet(
                    needed,
                    String::from("run markbase as root (sudo) to mount over NFS"),
                ),
                format!(
                    "{} is there, but on Linux only root mounts NFS",
                    client.display()
                ),
            );
        }
        Some(client) => {
            return Check::new(
                "nfs",
                Status::Ok,
                format!("{} mounts markbase's NFS server", client.display()),
            );
        }
        None => {}
    }
    if machine.macos {
        return Check::new(
            "nfs",
            Status::unmet(
                needed,
                format!(
                    "it ships with macOS, so check the system; meanwhile mount through fuse-t (`{INSTALL_FUSE_T}`, then `markbase mount --backend fuse-t DIR`)"
                ),
            ),
            String::from("/sbin/mount_nfs is missing"),
        );
    }
    Check::new(
        "nfs",
        Status::unmet(
            needed,
            String::from(
                "`sudo apt install nfs-common` (Debian, Ubuntu) or `sudo dnf install nfs-utils` (Fedora)",
            ),
        ),
        String::from("no NFS client (mount.nfs in /sbin or /usr/sbin): --backend nfs cannot mount"),
    )
}

/// macOS's permission for network volumes, which NFS and fuse-t mounts are: it cannot
/// be asked without mounting, so the line says what its refusal looks like.
fn network_volumes() -> Check {
    let app = match std::env::var("TERM_PROGRAM").as_deref() {
        Ok("Apple_Terminal") => "Terminal",
        Ok("iTerm.app") => "iTerm",
        Ok("vscode") => "Visual Studio Code",
        Ok("WezTerm") => "WezTerm",
        _ => "your terminal app",
    };
    Check::new(
        "network volumes",
        Status::Info(Some(format!(
            "System Settings › Privacy & Security › Files and Folders › {app} › Network Volumes \
             (or Full Disk Access for {app}), then quit and reopen {app}"
        ))),
        format!(
            "cannot be checked without mounting: if mounting fails, or listing the mount says \
             \"Operation not permitted\", macOS refuses {app} access to network volumes"
        ),
    )
}

/// The default way (`markbase mount --backend auto`'s first) and whether it is ready:
/// none of its `requirements` failed. When it is not, the fix names the next way
/// whose requirements are all met, if any.
pub fn summary(plan: &Plan, macos: bool, requirements: &[(Way, Check)]) -> Check {
    let name = "default backend";
    let Some((way, why)) = plan.tries.first() else {
        let fix = if macos {
            format!("/sbin/mount_nfs ships with macOS; or install fuse-t: `{INSTALL_FUSE_T}`")
        } else {
            format!(
                "give the machine /dev/fuse (`sudo modprobe fuse`; in a container `{CONTAINER_FUSE}`) \
                 or an NFS client (`sudo apt install nfs-common`)"
            )
        };
        return Check::new(
            name,
            Status::Fail(fix),
            format!(
                "none: this machine offers no way to mount ({})",
                plan.passed_over()
            ),
        );
    };
    let of = |wanted: Way| requirements.iter().filter(move |(way, _)| *way == wanted);
    if !of(*way).any(|(_, check)| check.is_fail()) {
        return Check::new(name, Status::Ok, format!("{} ({why}): ready", way.name()));
    }
    let next = plan.tries[1..]
        .iter()
        .find(|(next, _)| of(*next).all(|(_, check)| check.is_met()));
    let fix = match next {
        Some((next, _)) => format!(
            "fix the FAIL lines above, or mount another way: `markbase mount --backend {} DIR`",
            next.name()
        ),
        None => String::from("fix the FAIL lines above"),
    };
    Check::new(
        name,
        Status::Fail(fix),
        format!("{} ({why}): not ready", way.name()),
    )
}

/// The first `tool` on `PATH`.
fn on_path(tool: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}
