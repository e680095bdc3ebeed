//! FUSE passthrough through the binary (Linux 6.9+, as root): the kernel reads and
//! writes a file itself, so its bytes never cross markbase's process, and the catalog
//! still learns what was written; `--passthrough off`, and a user without
//! CAP_SYS_ADMIN (through fusermount3), are served every byte through markbase; an
//! alias replaced underneath is served fresh.
//!
//! Tests that mount need root and `/dev/fuse`; without them they skip, or fail under
//! `MARKBASE_REQUIRE_ALL=1` ([`markbase_testkit::require_fuse`]).

#![cfg(target_os = "linux")]

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::daemon::Daemon;
use common::library::Library;
use common::{NOBODY, as_nobody, assert_fails_with, markbase, run};
use markbase_fuse::mount_at;
use markbase_testkit::{require_fuse, require_tool, write_pattern_file};

/// The size of the file read through the mount.
const BIG: u64 = 64 << 20;

/// Bytes the process `pid` has read with read(2) and friends (`rchar` of
/// `/proc/PID/io`): a FUSE server that serves a file's reads reads its bytes.
fn bytes_read_by(pid: u32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .expect("rchar")
        .parse()
        .unwrap()
}

/// A library with a 64 MiB file `media/big.bin` (imported as `/big.bin`), and that file.
fn library_with_big_file() -> (Library, std::path::PathBuf) {
    let lib = Library::new();
    let big = lib.dir.path().join("media/big.bin");
    write_pattern_file(&big, BIG, 11).unwrap();
    let out = lib.markbase(&["import", lib.dir.path().join("media").to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    (lib, big)
}

/// A library with a 64 MiB file `big.bin`, mounted in the foreground with `extra`.
fn mounted(extra: &[&str]) -> (Library, Daemon, Vec<u8>) {
    let (lib, big) = library_with_big_file();
    let expected = fs::read(&big).unwrap();
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    let daemon = lib.mount(&args);
    (lib, daemon, expected)
}

/// Reads `path` whole, in 1 MiB reads, as another program would.
fn read_whole(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn passed_through_reads_never_reach_markbase_and_others_do() {
    if !require_fuse() {
        return;
    }
    let (lib, daemon, expected) = mounted(&["--passthrough", "auto"]);
    let said = daemon.stderr();
    assert!(
        said.contains("files are passed through to the kernel"),
        "{said}"
    );
    let before = bytes_read_by(daemon.pid());
    assert!(
        read_whole(&lib.mountpoint().join("big.bin")) == expected,
        "bytes differ"
    );
    let served = bytes_read_by(daemon.pid()) - before;
    assert!(
        served < BIG / 16,
        "markbase read {served} bytes to serve a {BIG}-byte file that the kernel should have read itself"
    );
    assert!(
        daemon.stderr().contains(" is passed through to the kernel"),
        "-v names the file passed through: {}",
        daemon.stderr()
    );
    drop(daemon);

    // Off: every byte goes through markbase, which reads it from the store.
    let (lib, daemon, expected) = mounted(&["--passthrough", "off"]);
    assert!(
        !daemon.stderr().contains("passed through to the kernel"),
        "{}",
        daemon.stderr()
    );
    let before = bytes_read_by(daemon.pid());
    assert!(
        read_whole(&lib.mountpoint().join("big.bin")) == expected,
        "bytes differ"
    );
    let served = bytes_read_by(daemon.pid()) - before;
    assert!(served >= BIG, "markbase read only {served} bytes of {BIG}");
}

#[test]
fn writes_passed_through_are_durable_and_recorded() {
    if !require_fuse() {
        return;
    }
    let (lib, mut daemon, _) = mounted(&["--passthrough", "on"]);
    let before = bytes_read_by(daemon.pid());
    let path = lib.mountpoint().join("take 2.mov");
    let frame: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut file = File::create(&path).unwrap();
    for _ in 0..16 {
        file.write_all(&frame).unwrap();
    }
    file.sync_all().unwrap();
    // The catalog knows the size once the file is synced, before it is closed.
    let stat = lib.markbase(&["stat", "/take 2.mov"]);
    let stat = String::from_utf8_lossy(&stat.stdout).into_owned();
    assert!(stat.contains("size: 16777216 "), "{stat}");
    drop(file);
    // The bytes written went to the kernel, not through markbase (which reads every
    // WRITE request's data from /dev/fuse).
    let through = bytes_read_by(daemon.pid()) - before;
    assert!(
        through < 4 << 20,
        "markbase read {through} bytes of 16 MiB written"
    );
    assert!(
        read_whole(&path) == frame.repeat(16),
        "bytes read back differ"
    );
    daemon.stop_with(libc::SIGTERM);
    let cat = lib.markbase(&["cat", "/take 2.mov"]);
    assert!(cat.stdout == frame.repeat(16), "the catalog's file differs");
}

#[test]
fn an_alias_replaced_underneath_is_served_fresh_and_never_through_the_old_file() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let media = lib.dir.path().join("media");
    let daemon = lib.mount(&["-v", "--passthrough", "on"]);
    let clip = lib.mountpoint().join("clip.mov");
    // A program keeps the clip open: the kernel holds its file as the node's backing.
    let mut held = File::open(&clip).unwrap();
    let mut first = vec![0u8; 4];
    held.read_exact(&mut first).unwrap();
    assert_eq!(first, lib.clip[..4]);

    // Another program replaces the file the alias names (a new file renamed over it).
    let fresh = media.join(".fresh");
    fs::write(&fresh, b"the re-exported clip").unwrap();
    fs::rename(&fresh, media.join("clip.mov")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Past the attribute timeout the mount sees the new file, but the kernel still
    // reads the old one for the program that holds it, and takes no second file for
    // one node: a new open fails rather than read the old file.
    let busy = File::open(&clip).expect_err("a new open of a replaced, held clip");
    assert_eq!(busy.raw_os_error(), Some(libc::EBUSY), "{busy}");
    held.read_exact(&mut first).unwrap();
    assert_eq!(first, lib.clip[4..8], "the held open keeps its own file");
    assert!(
        daemon
            .stderr()
            .contains("its alias now leads to another file"),
        "{}",
        daemon.stderr()
    );
    drop(held);
    // Closed, the old file is let go: the new one is served, passed through in turn.
    assert_eq!(read_whole(&clip), b"the re-exported clip");
    drop(daemon);
}

/// The bytes of `file` in the page cache (`fincore`, util-linux).
fn resident(fincore: &Path, file: &Path) -> u64 {
    let out = run(std::process::Command::new(fincore)
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(file));
    assert!(out.status.success(), "fincore: {}", common::stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `dd ARGS...`, which must succeed.
fn dd(args: &[&str]) {
    let out = run(std::process::Command::new("dd").args(args));
    assert!(
        out.status.success(),
        "dd {args:?}: {}",
        common::stderr(&out)
    );
}

/// An O_DIRECT open through the mount reaches the disk past the page cache, as on the
/// disk itself, with passthrough (the kernel opens the backing anew for each open,
/// with that open's flags) and without (markbase reads and writes an O_DIRECT
/// descriptor of the file): the file that holds its bytes gets no cached pages. A
/// cached read of the same file fills the page cache, as it should.
#[test]
fn o_direct_through_the_mount_skips_the_page_cache_both_ways() {
    if !require_fuse() {
        return;
    }
    let Some(fincore) = markbase_testkit::require_tool("fincore") else {
        return;
    };
    for passthrough in ["on", "off"] {
        let lib = Library::new();
        let daemon = lib.mount(&["--passthrough", passthrough]);
        let direct = lib.mountpoint().join("direct.bin");
        let of = format!("of={}", direct.display());
        dd(&["if=/dev/zero", &of, "bs=1M", "count=64", "oflag=direct"]);
        let store = lib.dir.path().join("warren-store");
        let held: Vec<_> = fs::read_dir(&store)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        let [bytes] = held.as_slice() else {
            panic!("one store file expected: {held:?}");
        };
        assert_eq!(fs::metadata(bytes).unwrap().len(), 64 << 20);
        let cached = resident(&fincore, bytes);
        assert!(
            cached < 8 << 20,
            "passthrough {passthrough}: {cached} bytes of 64 MiB written O_DIRECT are cached"
        );
        let input = format!("if={}", direct.display());
        dd(&[&input, "of=/dev/null", "bs=1M", "iflag=direct"]);
        let cached = resident(&fincore, bytes);
        assert!(
            cached < 8 << 20,
            "passthrough {passthrough}: {cached} bytes cached after an O_DIRECT read"
        );
        // An unaligned O_DIRECT write: markbase writes it through the page cache; the
        // kernel, passing it through, refuses it as the disk itself does.
        let odd = lib.mountpoint().join("odd.bin");
        let of = format!("of={}", odd.display());
        let out = run(std::process::Command::new("dd").args([
            "if=/dev/zero",
            &of,
            "bs=1000",
            "count=3",
            "oflag=direct",
        ]));
        if passthrough == "off" {
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert_eq!(fs::metadata(&odd).unwrap().len(), 3000);
        } else {
            assert!(
                common::stderr(&out).contains("Invalid argument"),
                "{}",
                common::stderr(&out)
            );
        }

        // Read without O_DIRECT, the same file fills the page cache, as it should.
        assert_eq!(read_whole(&direct).len(), 64 << 20);
        let cached = resident(&fincore, bytes);
        assert!(
            cached >= 32 << 20,
            "passthrough {passthrough}: only {cached} bytes cached by a cached read"
        );
        drop(daemon);
    }
}

/// An O_DIRECT read or write larger than one FUSE request reaches markbase as several
/// requests in flight at once (FUSE's async direct I/O), each served through its own
/// aligned buffer: every byte lands where it belongs, both ways.
#[test]
fn large_o_direct_requests_served_together_land_right() {
    if !require_fuse() {
        return;
    }
    for passthrough in ["on", "off"] {
        let lib = Library::new();
        let source = lib.dir.path().join("frames.bin");
        write_pattern_file(&source, (48 << 20) + (12 << 10), 17).unwrap();
        let expected = fs::read(&source).unwrap();
        let daemon = lib.mount(&["--passthrough", passthrough]);
        let copy = lib.mountpoint().join("frames.bin");
        let (input, output) = (
            format!("if={}", source.display()),
            format!("of={}", copy.display()),
        );
        dd(&[&input, &output, "bs=8M", "oflag=direct", "conv=fsync"]);
        let back = lib.dir.path().join("back.bin");
        let (input, output) = (
            format!("if={}", copy.display()),
            format!("of={}", back.display()),
        );
        dd(&[&input, &output, "bs=8M", "iflag=direct"]);
        assert!(
            fs::read(&back).unwrap() == expected,
            "passthrough {passthrough}: bytes read back differ"
        );
        drop(daemon);
        let cat = lib.markbase(&["cat", "/frames.bin"]);
        assert!(
            cat.stdout == expected,
            "passthrough {passthrough}: the catalog's file differs"
        );
    }
}

#[test]
fn a_file_opened_to_read_first_is_written_through_a_later_open() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let daemon = lib.mount(&["--passthrough", "on"]);
    let clip = lib.mountpoint().join("clip.mov");
    let reader = File::open(&clip).unwrap();
    let mut writer = fs::OpenOptions::new().append(true).open(&clip).unwrap();
    writer.write_all(b"appended").unwrap();
    writer.sync_all().unwrap();
    drop((reader, writer));
    let bytes = read_whole(&clip);
    assert!(bytes.ends_with(b"appended") && bytes.len() == lib.clip.len() + 8);
    assert_eq!(bytes[..lib.clip.len()], lib.clip[..]);
    drop(daemon);
}

#[test]
fn the_writeback_cache_turns_passthrough_off_and_on_with_it_is_refused() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let daemon = lib.mount(&["-v", "--writeback-cache"]);
    assert!(
        daemon.stderr().contains(
            "files are not passed through to the kernel: the writeback cache was asked for"
        ),
        "{}",
        daemon.stderr()
    );
    drop(daemon);
    let out = run(markbase()
        .arg("--catalog")
        .arg(lib.catalog())
        .arg("mount")
        .arg(lib.mountpoint())
        .args([
            "--backend",
            "fuse",
            "--passthrough",
            "on",
            "--writeback-cache",
        ]));
    assert_fails_with(
        &out,
        "FUSE passthrough was asked for, and cannot be used: the kernel passes no file through on a mount with the writeback cache",
    );
}

/// Only the kernel's FUSE passes files through: `on` with another backend is refused,
/// naming both flags, before anything is mounted.
#[test]
fn passthrough_on_with_a_backend_that_cannot_pass_through_is_refused() {
    let lib = Library::new();
    for backend in ["nfs", "fuse-t"] {
        let out = lib.markbase(&[
            "mount",
            lib.mountpoint().to_str().unwrap(),
            "--backend",
            backend,
            "--passthrough",
            "on",
        ]);
        assert_fails_with(
            &out,
            &format!(
                "--passthrough on needs the kernel's FUSE (--backend fuse, Linux), and --backend {backend} does not pass files through"
            ),
        );
        assert_eq!(mount_at(&lib.mountpoint()).unwrap(), None);
    }
}

/// `/dev/fuse` opened to every user while this lives; its mode is put back when it is
/// dropped, also when the test fails.
struct DevFuseOpenToAll {
    mode: u32,
}

impl DevFuseOpenToAll {
    fn new() -> Self {
        let mode = fs::metadata(DEV_FUSE).unwrap().permissions().mode() & 0o7777;
        fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(0o666)).unwrap();
        Self { mode }
    }
}

impl Drop for DevFuseOpenToAll {
    fn drop(&mut self) {
        fs::set_permissions(DEV_FUSE, fs::Permissions::from_mode(self.mode)).unwrap();
    }
}

const DEV_FUSE: &str = "/dev/fuse";

/// A user without CAP_SYS_ADMIN mounts through fusermount3 and is served without
/// passthrough: `-v` says why, every byte read crosses markbase and is right, and
/// writes reach the catalog. With `on` the mount fails saying why, and no other way
/// is tried.
#[test]
fn an_unprivileged_mount_is_served_without_passthrough_and_says_why() {
    if !require_fuse() {
        return;
    }
    let (Some(setpriv), Some(_)) = (require_tool("setpriv"), require_tool("fusermount3")) else {
        return;
    };
    let _open = DevFuseOpenToAll::new();
    let (lib, big) = library_with_big_file();
    lib.give_to_nobody();

    let mut daemon = lib.mount_as_nobody(&setpriv, &["-v", "--passthrough", "auto"]);
    let said = daemon.stderr();
    assert!(
        said.contains(
            "files are not passed through to the kernel: registering a backing file needs CAP_SYS_ADMIN"
        ),
        "{said}"
    );
    // The kernel's record of the mount names who mounted it.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let mnt = lib.mountpoint();
    let entry = mounts
        .lines()
        .find(|line| line.split(' ').nth(1) == mnt.to_str())
        .expect("mounted");
    assert!(entry.contains(&format!("user_id={NOBODY},")), "{entry}");
    let before = bytes_read_by(daemon.pid());
    let mounted = lib.mountpoint().join("big.bin");
    let out = run(as_nobody(&setpriv, "cmp").arg(&big).arg(&mounted));
    assert!(
        out.status.success(),
        "bytes differ: {}",
        common::stderr(&out)
    );
    let served = bytes_read_by(daemon.pid()) - before;
    assert!(served >= BIG, "markbase read only {served} bytes of {BIG}");
    let copy = lib.mountpoint().join("copy.bin");
    let out = run(as_nobody(&setpriv, "cp").arg(&big).arg(&copy));
    assert!(out.status.success(), "{}", common::stderr(&out));
    daemon.stop_with(libc::SIGTERM);
    let cat = lib.markbase(&["cat", "/copy.bin"]);
    assert!(cat.stdout == fs::read(&big).unwrap(), "the copy differs");

    let out = run(lib
        .markbase_as_nobody(&setpriv)
        .arg("--catalog")
        .arg(lib.catalog())
        .args(["mount", "-f", "--passthrough", "on"])
        .arg(lib.mountpoint()));
    assert_fails_with(
        &out,
        "FUSE passthrough was asked for, and cannot be used: registering a backing file needs CAP_SYS_ADMIN",
    );
    assert!(
        !common::stderr(&out).contains("nfs"),
        "no other way is tried: {}",
        common::stderr(&out)
    );
    assert_eq!(mount_at(&lib.mountpoint()).unwrap(), None);
}
