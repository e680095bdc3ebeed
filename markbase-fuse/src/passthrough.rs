//! The kernel's FUSE passthrough (Linux 6.9+): a file opened with `FOPEN_PASSTHROUGH`
//! is read and written by the kernel itself, on a backing file registered through
//! `/dev/fuse`, with no request to markbase for its data.
//!
//! The kernel holds one backing per inode, and while it holds one, every open of the
//! inode must be passed through on it (any other open fails); while an inode has
//! cached opens, none may be passed through (ETXTBSY). So each node here is in one
//! way at a time: passed through on one backing file shared by its handles and
//! dropped with the last, or cached. A new open of a node whose alias now leads to
//! another file than the backing the kernel still holds for a program that has the
//! old file open cannot be served fresh: it fails with EBUSY, saying why, until that
//! program closes it, rather than read the old file.
//!
//! For each passed-through open the kernel opens the backing's path anew, with that
//! open's flags (`fs/fuse/passthrough.c`): an `O_DIRECT` open of the mount is direct on
//! the store's file, and a read-only first open does not keep later ones from writing.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use markbase_vfs::Vfs;
use markbase_vfs::handles::FileHandle;
use parking_lot::Mutex;

use crate::mount::PassthroughMode;

/// `/dev/fuse`'s ioctls that register and drop backing files (linux/fuse.h).
mod ioctl {
    /// `_IOW(229, 1, struct fuse_backing_map)`.
    pub const BACKING_OPEN: libc::Ioctl = 0x4010_e501;
    /// `_IOW(229, 2, uint32_t)`.
    pub const BACKING_CLOSE: libc::Ioctl = 0x4004_e502;

    /// `struct fuse_backing_map`.
    #[repr(C)]
    pub struct BackingMap {
        pub fd: i32,
        pub flags: u32,
        pub padding: u64,
    }
}

/// How one open of a file is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// By the kernel, on the backing with this id.
    Kernel(u32),
    /// By markbase, through the page cache.
    Cached,
    /// Not at all: the kernel still reads another file for this node (the open fails
    /// with EBUSY).
    Stale,
}

/// The way of one node's open handles.
#[derive(Debug)]
enum NodeWay {
    /// Passed through on backing `id`, the file `identity`, by `opens` handles.
    Kernel {
        id: u32,
        identity: (u64, u64),
        opens: usize,
    },
    /// Served cached by markbase to `opens` handles.
    Cached { opens: usize },
}

/// A mount's passthrough: the device its backings are registered on, and the way of
/// each node and handle.
pub struct Passthrough {
    mode: PassthroughMode,
    /// A descriptor of the session's `/dev/fuse`, once mounted.
    device: OnceLock<File>,
    /// Whether the kernel offered passthrough at INIT (and it was asked for).
    offered: OnceLock<bool>,
    /// Set once the kernel agreed at INIT and a backing was registered: passthrough
    /// is in use. Unset, every file is served by markbase.
    active: OnceLock<()>,
    nodes: Mutex<HashMap<u64, NodeWay>>,
    /// Each open handle's node and way.
    handles: Mutex<HashMap<u64, (u64, Served)>>,
}

impl Passthrough {
    /// A mount's passthrough in `mode`; nothing is passed through before
    /// [`Passthrough::attach`] and [`Passthrough::activate`].
    pub fn new(mode: PassthroughMode) -> Self {
        Self {
            mode,
            device: OnceLock::new(),
            offered: OnceLock::new(),
            active: OnceLock::new(),
            nodes: Mutex::default(),
            handles: Mutex::default(),
        }
    }

    /// The mode asked for.
    pub fn mode(&self) -> PassthroughMode {
        self.mode
    }

    /// Whether INIT should ask the kernel for passthrough.
    pub fn wanted(&self) -> bool {
        self.mode != PassthroughMode::Off
    }

    /// What INIT agreed on: whether the kernel passes files through on this mount.
    pub fn offered(&self, offered: bool) {
        let _ = self.offered.set(offered);
    }

    /// The session's `/dev/fuse`, on which backings are registered.
    pub fn attach(&self, device: File) {
        let _ = self.device.set(device);
    }

    /// Starts passing files through, after checking that the kernel takes a backing
    /// (`probe`, a file on the store's filesystem): the kernel agreed at INIT and this
    /// process may register backings. Why not, otherwise.
    pub fn activate(&self, probe: &File) -> Result<(), String> {
        if self.offered.get() != Some(&true) {
            return Err(String::from(
                "the kernel did not offer FUSE passthrough at INIT (Linux 6.9 or later with CONFIG_FUSE_PASSTHROUGH is needed)",
            ));
        }
        let id = self.open_backing(probe).map_err(|err| {
            if err.raw_os_error() == Some(libc::EPERM) {
                String::from("registering a backing file needs CAP_SYS_ADMIN (run as root)")
            } else {
                format!("the kernel refused a backing file: {err}")
            }
        })?;
        self.close_backing(id);
        let _ = self.active.set(());
        Ok(())
    }

    /// Whether files are being passed through.
    pub fn is_active(&self) -> bool {
        self.active.get().is_some()
    }

    /// Decides how `handle` (just opened on node `ino`) is served, registering its file
    /// as the node's backing when it is the node's first passed-through handle. A
    /// [`Served::Stale`] handle is not kept: its open fails.
    pub fn open(&self, vfs: &Vfs, ino: u64, handle: FileHandle) -> Served {
        if !self.is_active() {
            return Served::Cached;
        }
        let served = self.choose(vfs, ino, handle);
        if served != Served::Stale {
            self.handles.lock().insert(handle.raw(), (ino, served));
        }
        served
    }

    fn choose(&self, vfs: &Vfs, ino: u64, handle: FileHandle) -> Served {
        let mut nodes = self.nodes.lock();
        if let Some(NodeWay::Cached { opens }) = nodes.get_mut(&ino) {
            *opens += 1;
            return Served::Cached;
        }
        let passed = match vfs.pass_through(handle) {
            Ok(passed) => passed,
            Err(err) => {
                tracing::warn!("node {ino} is served by markbase: {err}");
                return self.cached(&mut nodes, ino);
            }
        };
        match nodes.get_mut(&ino) {
            Some(NodeWay::Kernel {
                id,
                identity,
                opens,
            }) => {
                if *identity == passed.identity() {
                    *opens += 1;
                    return Served::Kernel(*id);
                }
                tracing::warn!(
                    "node {ino}: its alias now leads to another file, and the kernel still reads the old one for a program that has it open; this open fails (EBUSY) until that program closes it (with --passthrough off, both are served)"
                );
                Served::Stale
            }
            _ => match self.open_backing(passed.file()) {
                Ok(id) => {
                    tracing::info!("node {ino} is passed through to the kernel");
                    nodes.insert(
                        ino,
                        NodeWay::Kernel {
                            id,
                            identity: passed.identity(),
                            opens: 1,
                        },
                    );
                    Served::Kernel(id)
                }
                Err(err) => {
                    tracing::warn!(
                        "node {ino} is served by markbase: the kernel refused its file as a backing: {err}"
                    );
                    self.cached(&mut nodes, ino)
                }
            },
        }
    }

    fn cached(&self, nodes: &mut HashMap<u64, NodeWay>, ino: u64) -> Served {
        nodes.insert(ino, NodeWay::Cached { opens: 1 });
        Served::Cached
    }

    /// Forgets `handle`, dropping its node's backing with the node's last handle.
    pub fn release(&self, handle: FileHandle) {
        let Some((ino, served)) = self.handles.lock().remove(&handle.raw()) else {
            return;
        };
        let mut nodes = self.nodes.lock();
        let last = match (served, nodes.get_mut(&ino)) {
            (Served::Kernel(_), Some(NodeWay::Kernel { opens, .. }))
            | (Served::Cached, Some(NodeWay::Cached { opens })) => {
                *opens -= 1;
                *opens == 0
            }
            _ => false,
        };
        if last && let Some(NodeWay::Kernel { id, .. }) = nodes.remove(&ino) {
            self.close_backing(id);
        }
    }

    fn open_backing(&self, file: &File) -> io::Result<u32> {
        let device = self
            .device
            .get()
            .ok_or_else(|| io::Error::other("the FUSE device is not attached"))?;
        let map = ioctl::BackingMap {
            fd: file.as_raw_fd(),
            flags: 0,
            padding: 0,
        };
        // SAFETY: BACKING_OPEN reads one `fuse_backing_map`, which `map` is, and
        // touches no other memory.
        let id = unsafe { libc::ioctl(device.as_raw_fd(), ioctl::BACKING_OPEN, &map) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(id as u32)
    }

    fn close_backing(&self, id: u32) {
        let Some(device) = self.device.get() else {
            return;
        };
        // SAFETY: BACKING_CLOSE reads one `u32`, which `id` is.
        if unsafe { libc::ioctl(device.as_raw_fd(), ioctl::BACKING_CLOSE, &id) } < 0 {
            tracing::warn!(
                "cannot drop FUSE backing {id}: {}",
                io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file to register as a backing.
    fn probe() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn a_kernel_that_did_not_offer_it_at_init_leaves_it_off_saying_why() {
        let passthrough = Passthrough::new(PassthroughMode::Auto);
        assert!(passthrough.wanted());
        passthrough.offered(false);
        let why = passthrough.activate(&probe()).unwrap_err();
        assert!(
            why.contains("the kernel did not offer FUSE passthrough at INIT"),
            "{why}"
        );
        assert!(!passthrough.is_active());
    }

    #[test]
    fn a_device_that_refuses_backings_leaves_it_off_saying_why() {
        let passthrough = Passthrough::new(PassthroughMode::On);
        passthrough.offered(true);
        let why = passthrough.activate(&probe()).unwrap_err();
        assert!(why.contains("the FUSE device is not attached"), "{why}");
        // Not /dev/fuse: the ioctl is unknown to it.
        passthrough.attach(File::open("/dev/null").unwrap());
        let why = passthrough.activate(&probe()).unwrap_err();
        assert!(
            why.starts_with("the kernel refused a backing file: "),
            "{why}"
        );
        assert!(!passthrough.is_active());
    }

    #[test]
    fn off_never_asks_the_kernel() {
        assert!(!Passthrough::new(PassthroughMode::Off).wanted());
    }
}
