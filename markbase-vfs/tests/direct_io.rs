//! Handles opened `O_DIRECT` (Linux): aligned reads and writes go past the page cache
//! on the file that holds the bytes, unaligned ones through it, and every byte lands.

#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use markbase_vfs::handles::ReadSink;
use markbase_vfs::{NodeId, OpenFlags};

/// The bytes of `file` in the page cache (`fincore`, util-linux).
fn resident(fincore: &Path, file: &Path) -> u64 {
    let out = Command::new(fincore)
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn aligned_direct_io_skips_the_page_cache_and_unaligned_io_still_lands() {
    let Some(fincore) = markbase_testkit::require_tool("fincore") else {
        return;
    };
    // On the build's disk: a tmpfs (/tmp on some machines) is all page cache.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let vfs = common::empty_vfs(dir.path());
    let id = common::write_file(&vfs, NodeId::ROOT, "frames.bin", b"");
    let opened = vfs
        .open_node(id, OpenFlags::from_libc(libc::O_RDWR | libc::O_DIRECT))
        .unwrap();
    let frame: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    for n in 0..8u64 {
        vfs.write_at(opened.handle, n << 20, &frame).unwrap();
    }
    // Unaligned: through the page cache, and still written.
    vfs.write_at(opened.handle, 8 << 20, b"tail").unwrap();
    vfs.fsync(opened.handle, false).unwrap();
    let file = vfs.resolve(id).unwrap().outcome.unwrap().path.clone();
    let cached = resident(&fincore, &file);
    assert!(
        cached <= 64 << 10,
        "{cached} bytes of 8 MiB written O_DIRECT are cached"
    );

    let mut back = vec![0u8; 1 << 20];
    assert_eq!(
        vfs.read_at(opened.handle, 3 << 20, &mut back).unwrap(),
        1 << 20
    );
    assert!(back == frame, "an aligned direct read differs");
    let mut tail = [0u8; 4];
    assert_eq!(vfs.read_at(opened.handle, 8 << 20, &mut tail).unwrap(), 4);
    assert_eq!(&tail, b"tail");
    assert!(
        resident(&fincore, &file) <= 64 << 10,
        "a direct read filled the cache"
    );
    vfs.release(opened.handle).unwrap();
    assert_eq!(vfs.getattr(id).unwrap().size, (8 << 20) + 4);
}

/// A sink whose room starts `skew` bytes past a 4 KiB boundary, and which says whether
/// the core handed it bytes it had read itself ([`ReadSink::take`]).
struct Room {
    mem: Vec<u8>,
    start: usize,
    len: usize,
    took: bool,
}

impl Room {
    fn new(len: usize, skew: usize) -> Self {
        let mem = vec![0u8; len + 8192];
        let start = mem.as_ptr().align_offset(4096) + skew;
        Self {
            mem,
            start,
            len,
            took: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
}

impl ReadSink for Room {
    fn read_from(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let len = len.min(self.len);
        file.read_at(&mut self.mem[self.start..self.start + len], offset)
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.took = true;
        let len = bytes.len().min(self.len);
        self.mem[self.start..self.start + len].copy_from_slice(&bytes[..len]);
        Ok(len)
    }
}

/// An aligned direct read lands straight in an adapter's aligned memory, with no copy
/// through the handle's buffer; into unaligned memory, which a disk may refuse, it
/// still lands whole.
#[test]
fn a_direct_read_lands_straight_in_aligned_memory_and_whole_in_any() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let vfs = common::empty_vfs(dir.path());
    let frame: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
    let id = common::write_file(&vfs, NodeId::ROOT, "frame.bin", &frame);
    let opened = vfs
        .open_node(id, OpenFlags::from_libc(libc::O_RDONLY | libc::O_DIRECT))
        .unwrap();
    for skew in [0, 16] {
        let mut room = Room::new(256 << 10, skew);
        assert_eq!(
            vfs.read(opened.handle, 512 << 10, 256 << 10, &mut room)
                .unwrap(),
            256 << 10
        );
        assert!(
            room.bytes() == &frame[512 << 10..768 << 10],
            "skew {skew}: bytes differ"
        );
        if skew == 0 {
            assert!(!room.took, "an aligned sink was handed a copy");
        }
    }
    vfs.release(opened.handle).unwrap();
}
