//! Which way `markbase mount` mounts: the backend asked for, or, for `auto`, every
//! way this machine can use in the order worth trying, each with why.

use std::path::{Path, PathBuf};

use crate::cli::Backend;

/// A way to mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// The kernel's FUSE (`/dev/fuse`, Linux).
    Fuse,
    /// fuse-t's helper, a local NFS server relaying FUSE messages (macOS).
    FuseT,
    /// markbase's own NFS server, mounted by the system's NFS client.
    Nfs,
}

impl Way {
    /// Its `--backend` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fuse => "fuse",
            Self::FuseT => "fuse-t",
            Self::Nfs => "nfs",
        }
    }
}

/// What this machine offers for mounting.
#[derive(Debug)]
pub struct Machine {
    /// Whether it is macOS (where `auto` prefers NFS) rather than Linux.
    pub macos: bool,
    /// Whether `/dev/fuse` exists.
    pub dev_fuse: bool,
    /// The system's NFS mount command, if it has one.
    pub nfs_client: Option<PathBuf>,
    /// fuse-t's helper, or why it was not found.
    pub fuse_t: Result<PathBuf, String>,
}

impl Machine {
    /// This machine, `helper` being the fuse-t helper asked for, if any.
    pub fn probe(helper: Option<&Path>) -> Self {
        let nfs_client = if cfg!(target_os = "macos") {
            ["/sbin/mount_nfs"].as_slice()
        } else {
            ["/sbin/mount.nfs", "/usr/sbin/mount.nfs"].as_slice()
        }
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists());
        Self {
            macos: cfg!(target_os = "macos"),
            dev_fuse: Path::new("/dev/fuse").exists(),
            nfs_client,
            fuse_t: markbase_fuse::locate_helper(helper).map_err(|err| err.to_string()),
        }
    }
}

/// The ways to try, in order, each with why; and why each other way `auto` knows
/// was passed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The ways to try, first choice first.
    pub tries: Vec<(Way, String)>,
    /// The ways left out, with why.
    pub passed: Vec<(Way, String)>,
}

impl Plan {
    /// Why each way was passed over, in one line: `fuse: why; nfs: why`.
    pub fn passed_over(&self) -> String {
        let reasons: Vec<String> = self
            .passed
            .iter()
            .map(|(way, why)| format!("{}: {why}", way.name()))
            .collect();
        reasons.join("; ")
    }
}

/// The plan for `backend` on `machine`. An explicit backend is tried whatever the
/// machine seems to offer: its own failure says best what is missing.
pub fn plan(backend: Backend, machine: &Machine) -> Plan {
    let asked = |way| Plan {
        tries: vec![(way, String::from("asked for"))],
        passed: Vec::new(),
    };
    match backend {
        Backend::Fuse => asked(Way::Fuse),
        Backend::FuseT => asked(Way::FuseT),
        Backend::Nfs => asked(Way::Nfs),
        Backend::Auto => auto(machine),
    }
}

/// `auto`: on Linux the kernel's FUSE, then NFS; on macOS the built-in NFS client
/// (nothing to install, one hop), then fuse-t.
fn auto(machine: &Machine) -> Plan {
    let order = if machine.macos {
        [Way::Nfs, Way::FuseT, Way::Fuse]
    } else {
        [Way::Fuse, Way::Nfs, Way::FuseT]
    };
    let mut plan = Plan::default();
    for way in order {
        match usable(way, machine) {
            Ok(why) => plan.tries.push((way, why)),
            Err(why) => plan.passed.push((way, why)),
        }
    }
    plan
}

/// Why `way` can be tried on `machine`, or why not.
fn usable(way: Way, machine: &Machine) -> Result<String, String> {
    match way {
        Way::Fuse if machine.macos => Err(String::from("macOS has no /dev/fuse")),
        Way::Fuse if machine.dev_fuse => Ok(String::from("/dev/fuse is available")),
        Way::Fuse => Err(String::from(
            "/dev/fuse is missing (load the fuse module, or give the container --device /dev/fuse)",
        )),
        Way::Nfs => match &machine.nfs_client {
            Some(client) => Ok(format!(
                "markbase's NFS server, mounted by {}",
                client.display()
            )),
            None if machine.macos => Err(String::from("/sbin/mount_nfs is missing")),
            None => Err(String::from(
                "no NFS client (mount.nfs; Debian: nfs-common)",
            )),
        },
        Way::FuseT => match &machine.fuse_t {
            Ok(helper) => Ok(format!("fuse-t's helper is {}", helper.display())),
            Err(missing) => Err(missing.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(macos: bool) -> Machine {
        Machine {
            macos,
            dev_fuse: !macos,
            nfs_client: Some(PathBuf::from(if macos {
                "/sbin/mount_nfs"
            } else {
                "/sbin/mount.nfs"
            })),
            fuse_t: Err(String::from("the fuse-t helper go-nfsv4 was not found")),
        }
    }

    fn ways(plan: &Plan) -> Vec<Way> {
        plan.tries.iter().map(|(way, _)| *way).collect()
    }

    #[test]
    fn auto_prefers_the_kernel_on_linux_and_nfs_on_macos() {
        let linux = plan(Backend::Auto, &machine(false));
        assert_eq!(ways(&linux), [Way::Fuse, Way::Nfs]);
        assert_eq!(linux.passed.len(), 1);
        assert!(linux.passed[0].1.contains("not found"), "{linux:?}");

        let mut mac = machine(true);
        mac.fuse_t = Ok(PathBuf::from("/usr/local/bin/go-nfsv4"));
        let mac = plan(Backend::Auto, &mac);
        assert_eq!(ways(&mac), [Way::Nfs, Way::FuseT]);
        assert!(mac.tries[1].1.contains("/usr/local/bin/go-nfsv4"));
        assert_eq!(
            mac.passed,
            [(Way::Fuse, String::from("macOS has no /dev/fuse"))]
        );
    }

    #[test]
    fn auto_passes_over_what_is_missing_and_says_why() {
        let mut bare = machine(false);
        bare.dev_fuse = false;
        bare.nfs_client = None;
        let bare = plan(Backend::Auto, &bare);
        assert!(bare.tries.is_empty());
        let why: Vec<&str> = bare.passed.iter().map(|(_, why)| why.as_str()).collect();
        assert!(why[0].contains("/dev/fuse is missing"), "{why:?}");
        assert!(why[1].contains("nfs-common"), "{why:?}");
    }

    #[test]
    fn an_explicit_backend_is_tried_alone() {
        for (backend, way) in [
            (Backend::Fuse, Way::Fuse),
            (Backend::FuseT, Way::FuseT),
            (Backend::Nfs, Way::Nfs),
        ] {
            assert_eq!(ways(&plan(backend, &machine(false))), [way]);
        }
    }
}
