//! The bridge against a real NFSv3 server: nfs3_server's in-memory filesystem, served
//! on a free loopback port inside the test (its MOUNT and NFS share that port).
//! Mounting needs root and `/dev/fuse`; without them these tests skip.
#![cfg(target_os = "linux")]

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use markbase_testkit::{detach_mount, first_difference, pattern_byte, require_fuse, run_within};
use nfs3_server::memfs::MemFs;
use nfs3_server::tcp::{NFSTcp, NFSTcpListener};
use tempfile::TempDir;

const BRIDGE: &str = env!("CARGO_BIN_EXE_nfs-fuse-bridge");

/// How long mounting, unmounting or a bridge's exit may take.
const LIMIT: Duration = Duration::from_secs(30);

/// An in-memory NFSv3 server; it stops when dropped.
struct Server {
    runtime: tokio::runtime::Runtime,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(NFSTcpListener::bind("127.0.0.1:0", MemFs::default()))
            .expect("bind the NFS server");
        let port = listener.get_listen_port();
        runtime.spawn(async move { listener.handle_forever().await });
        Self { runtime, port }
    }

    /// Stops serving and closes every connection.
    fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// A bridge mount on a temporary directory, detached if the test fails while mounted.
struct Mounted {
    dir: TempDir,
    pid: u32,
}

impl Mounted {
    /// Mounts with the command `command` makes for the mount point; it must return
    /// once mounted.
    fn with(command: impl FnOnce(&Path) -> Command) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).expect("mount point");
        let pid_file = dir.path().join("bridge.pid");
        let mut command = command(&mnt);
        command.env("NFS_FUSE_BRIDGE_PID_FILE", &pid_file);
        let output = run_within(&mut command, LIMIT);
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = fs::read_to_string(&pid_file)
            .expect("pid file written once mounted")
            .trim()
            .parse()
            .expect("a pid");
        Self { dir, pid }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Waits for the bridge process to end; false if it is still running after `LIMIT`.
    fn bridge_exits(&self) -> bool {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if !running(self.pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.path()) {
            detach_mount(&self.path());
        }
    }
}

/// The bridge's command line for `server` on `mnt`.
fn bridge(server: &Server, mnt: &Path) -> Command {
    let mut command = Command::new(BRIDGE);
    command
        .args(["--port", &server.port.to_string()])
        .args(["--mount-port", &server.port.to_string()])
        .arg(mnt);
    command
}

/// Whether process `pid` still runs (a zombie waiting for its reaper does not).
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rsplit(") ").next(), Some(rest) if rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The file system type mounted at `path` per `/proc/self/mountinfo`, if any.
fn mount_type(path: &Path) -> Option<String> {
    let path = path.to_str()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields.iter().position(|field| *field == "-")?;
        (fields[4] == path).then(|| fields[separator + 1].to_string())
    })
}

fn is_mounted(path: &Path) -> bool {
    mount_type(path).is_some()
}

fn unmount(path: &Path) {
    let output = run_within(Command::new("umount").arg(path), LIMIT);
    assert!(
        output.status.success(),
        "umount {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|offset| pattern_byte(seed, offset))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    names.sort();
    names
}

#[test]
fn files_and_directories_work_through_the_mount() {
    if !require_fuse() {
        return;
    }
    let server = Server::start();
    let mount = Mounted::with(|mnt| bridge(&server, mnt));
    let mnt = mount.path();
    assert_eq!(mount_type(&mnt).as_deref(), Some("fuse.nfs-bridge"));

    // 5 MiB written and read back, in the kernel's 1 MiB requests.
    let big = mnt.join("big.bin");
    let data = pattern(5 << 20, 7);
    fs::write(&big, &data).expect("write 5 MiB");
    assert_eq!(fs::metadata(&big).expect("stat").len(), data.len() as u64);
    let read = fs::read(&big).expect("read back");
    assert_eq!(first_difference(&read, &data), None, "read back differs");

    // Size, mode and mtime changes.
    let file = fs::OpenOptions::new().write(true).open(&big).expect("open");
    file.set_len(1000).expect("truncate");
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000))
        .expect("set mtime");
    drop(file);
    // memfs keeps no modes (it ignores SETATTR's mode), so only that chmod is taken
    // is checked here; the bridge's unit tests check that the mode is sent.
    fs::set_permissions(&big, fs::Permissions::from_mode(0o600)).expect("chmod");
    let meta = fs::metadata(&big).expect("stat");
    assert_eq!(meta.len(), 1000);
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(fs::read(&big).expect("read"), data[..1000]);

    // A directory long enough to take several READDIRPLUS pages and kernel buffers.
    let dir = mnt.join("dir");
    fs::create_dir(&dir).expect("mkdir");
    assert_eq!(
        fs::create_dir(&dir).expect_err("mkdir again").kind(),
        ErrorKind::AlreadyExists
    );
    let mut expected: Vec<String> = (0..400)
        .map(|i| format!("entry-with-a-longish-name-{i:04}"))
        .collect();
    for name in &expected {
        fs::write(dir.join(name), name).expect("create");
    }
    assert_eq!(names(&dir), expected);
    assert_eq!(names(&mnt), ["big.bin", "dir"]);

    // Rename, within and across directories, and removal.
    fs::rename(dir.join(&expected[0]), dir.join("renamed")).expect("rename");
    fs::rename(dir.join(&expected[1]), mnt.join("moved")).expect("rename across");
    assert_eq!(
        fs::read_to_string(dir.join("renamed")).expect("read"),
        expected[0]
    );
    assert_eq!(
        fs::read_to_string(mnt.join("moved")).expect("read"),
        expected[1]
    );
    assert_eq!(
        fs::metadata(dir.join(&expected[0]))
            .expect_err("old name")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::remove_dir(&dir)
            .expect_err("rmdir non-empty")
            .raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    expected.drain(..2);
    for name in expected.iter().map(String::as_str).chain(["renamed"]) {
        fs::remove_file(dir.join(name)).expect("unlink");
    }
    fs::remove_dir(&dir).expect("rmdir");
    fs::remove_file(mnt.join("moved")).expect("unlink");
    assert_eq!(names(&mnt), ["big.bin"]);

    // The tools a person would use.
    let ls = run_within(Command::new("ls").arg("-l").arg(&mnt), LIMIT);
    assert!(ls.status.success() && String::from_utf8_lossy(&ls.stdout).contains("big.bin"));
    let df = run_within(Command::new("df").arg("-P").arg(&mnt), LIMIT);
    assert!(
        df.status.success() && String::from_utf8_lossy(&df.stdout).contains("nfs-bridge"),
        "df: {}",
        String::from_utf8_lossy(&df.stderr)
    );

    unmount(&mnt);
    assert!(mount.bridge_exits(), "the bridge outlived its unmount");
    assert!(!is_mounted(&mnt));
}

#[test]
fn the_bridge_unmounts_and_ends_when_the_server_goes() {
    if !require_fuse() {
        return;
    }
    let server = Server::start();
    let mount = Mounted::with(|mnt| bridge(&server, mnt));
    let mnt = mount.path();
    fs::write(mnt.join("note"), "hello").expect("write");

    server.stop();
    assert!(mount.bridge_exits(), "the bridge outlived its server");
    assert!(!is_mounted(&mnt), "the mount stayed after the server went");
}

#[test]
fn fake_mount_nfs_mounts_through_the_bridge_like_mount_nfs() {
    if !require_fuse() {
        return;
    }
    let server = Server::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-mount-nfs");
    let mount = Mounted::with(|mnt| {
        let mut command = Command::new(&script);
        command
            .env("NFS_FUSE_BRIDGE", BRIDGE)
            .arg("-o")
            .arg(format!(
                "vers=3,tcp,port={0},mountport={0},nolocks,locallocks,noresvport,\
                 rsize=1048576,wsize=1048576,soft,intr,timeo=10,retrans=2,nobrowse",
                server.port
            ))
            .arg("127.0.0.1:/")
            .arg(mnt);
        command
    });
    let mnt = mount.path();
    assert_eq!(mount_type(&mnt).as_deref(), Some("fuse.nfs-bridge"));
    fs::write(mnt.join("note"), "hello").expect("write");
    assert_eq!(fs::read_to_string(mnt.join("note")).expect("read"), "hello");

    unmount(&mnt);
    assert!(mount.bridge_exits(), "the bridge outlived its unmount");
}

#[test]
fn a_mount_that_fails_exits_non_zero_and_says_why() {
    // Nothing listens on a port just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(BRIDGE);
    command
        .args([
            "--port",
            &port.to_string(),
            "--mount-port",
            &port.to_string(),
        ])
        .arg(dir.path());
    let output = run_within(&mut command, LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot MOUNT 127.0.0.1:/"), "{stderr}");
    assert!(!is_mounted(dir.path()));
}
