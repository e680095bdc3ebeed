//! [`Permits`]: what the process serving the catalog may do with a node, judged from
//! the node's owner and permission bits as the kernel judges them. For protocols that
//! ask the server (NFS's ACCESS) rather than letting a kernel check the bits.

use std::sync::OnceLock;

use crate::node::{FileAttr, NodeKind};

/// What may be done with a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permits {
    /// Read a file, list a directory.
    pub read: bool,
    /// Write a file, add and remove a directory's entries.
    pub write: bool,
    /// Execute a file, search (enter) a directory.
    pub execute: bool,
}

/// Who this process is to the kernel: effective user, group and supplementary groups.
struct Process {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Process {
    fn current() -> &'static Self {
        static CURRENT: OnceLock<Process> = OnceLock::new();
        CURRENT.get_or_init(|| Self {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            groups: rustix::process::getgroups()
                .map(|groups| groups.iter().map(|gid| gid.as_raw()).collect())
                .unwrap_or_default(),
        })
    }
}

impl FileAttr {
    /// What this process may do with the node: root reads and writes anything, and
    /// executes a file any class may execute (and searches any directory); anyone else
    /// gets the bits of the one class it is in: owner, a group of its, or others.
    pub fn permits_this_process(&self) -> Permits {
        let process = Process::current();
        permits(self, process.uid, process.gid, &process.groups)
    }
}

fn permits(attr: &FileAttr, uid: u32, gid: u32, groups: &[u32]) -> Permits {
    let perm = attr.perm;
    if uid == 0 {
        return Permits {
            read: true,
            write: true,
            execute: attr.kind == NodeKind::Dir || perm & 0o111 != 0,
        };
    }
    let bits = if attr.owner.uid == uid {
        perm >> 6
    } else if attr.owner.gid == gid || groups.contains(&attr.owner.gid) {
        perm >> 3
    } else {
        perm
    };
    Permits {
        read: bits & 0o4 != 0,
        write: bits & 0o2 != 0,
        execute: bits & 0o1 != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeId, Owner};

    fn attr(kind: NodeKind, perm: u16, uid: u32, gid: u32) -> FileAttr {
        FileAttr {
            id: NodeId::ROOT,
            kind,
            size: 0,
            blocks: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            perm,
            owner: Owner { uid, gid },
            nlink: 1,
        }
    }

    fn rwx(read: bool, write: bool, execute: bool) -> Permits {
        Permits {
            read,
            write,
            execute,
        }
    }

    #[test]
    fn one_class_decides_and_root_passes_all_but_execute() {
        let file = attr(NodeKind::File, 0o640, 1000, 100);
        assert_eq!(
            permits(&file, 1000, 5, &[]),
            rwx(true, true, false),
            "owner"
        );
        assert_eq!(
            permits(&file, 1001, 100, &[]),
            rwx(true, false, false),
            "group"
        );
        assert_eq!(
            permits(&file, 1001, 5, &[100]),
            rwx(true, false, false),
            "a supplementary group"
        );
        assert_eq!(
            permits(&file, 1001, 5, &[]),
            rwx(false, false, false),
            "others"
        );
        // The owner's class decides even when the group's would allow more.
        let odd = attr(NodeKind::File, 0o070, 1000, 100);
        assert_eq!(permits(&odd, 1000, 100, &[]), rwx(false, false, false));
        assert_eq!(
            permits(&file, 0, 0, &[]),
            rwx(true, true, false),
            "root, no x bit"
        );
        let script = attr(NodeKind::File, 0o701, 1000, 100);
        assert_eq!(permits(&script, 0, 0, &[]), rwx(true, true, true));
        let dir = attr(NodeKind::Dir, 0o700, 1000, 100);
        assert_eq!(
            permits(&dir, 0, 0, &[]),
            rwx(true, true, true),
            "root searches any directory"
        );
    }
}
