//! Helpers shared by the integration tests: catalogs in temp dirs, listings,
//! reads, hang guards, and child processes (other writers, dropped privileges).

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use markbase_testkit::RawCatalog;
use markbase_vfs::{NodeId, Vfs, VfsConfig, VfsError, readdir::DirEntry, schema::SCHEMA_SQL};

/// The catalog file name used by every test.
pub const CATALOG: &str = "warren.sqlite";

/// Set in a re-executed test binary: the argument of the child's role.
pub const CHILD_ENV: &str = "MARKBASE_VFS_TEST_CHILD";

/// A schema-v1 catalog with only the root, at `dir/warren.sqlite`.
pub fn raw_catalog(dir: &Path) -> RawCatalog {
    RawCatalog::create(&dir.join(CATALOG), SCHEMA_SQL).expect("create a schema-v1 catalog")
}

/// A configuration for tests: outside changes are checked on every call, file
/// attributes are never trusted from the cache, and a lock fails fast.
pub fn config(catalog: &Path) -> VfsConfig {
    let mut config = VfsConfig::new(catalog);
    config.change_check_interval = Duration::ZERO;
    config.attr_ttl = Duration::ZERO;
    config.busy_timeout = Duration::from_secs(2);
    config
}

/// A filesystem over a new catalog with only the root, in `dir`.
pub fn empty_vfs(dir: &Path) -> Vfs {
    open(&raw_catalog(dir).path)
}

/// Opens the catalog in `dir` again, with [`config`] changed by `configure`.
pub fn reopen(dir: &Path, configure: impl FnOnce(&mut VfsConfig)) -> Vfs {
    let mut config = config(&dir.join(CATALOG));
    configure(&mut config);
    Vfs::open(config).unwrap_or_else(|err| panic!("reopen {}: {err}", dir.display()))
}

/// Creates file `name` in `parent` holding `bytes`; its node id.
pub fn write_file(vfs: &Vfs, parent: NodeId, name: &str, bytes: &[u8]) -> NodeId {
    let (attr, handle) = vfs.create(parent, name, true).unwrap();
    vfs.write_at(handle, 0, bytes).unwrap();
    vfs.release(handle).unwrap();
    attr.id
}

/// Opens `catalog` with [`config`].
pub fn open(catalog: &Path) -> Vfs {
    Vfs::open(config(catalog)).unwrap_or_else(|err| panic!("open {}: {err}", catalog.display()))
}

/// The error of `result`, which must have failed.
#[track_caller]
pub fn expect_err<T>(result: Result<T, VfsError>) -> VfsError {
    match result {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(err) => err,
    }
}

/// Asserts that the message of `err` contains every one of `parts`.
#[track_caller]
pub fn assert_msg(err: &VfsError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "error message {message:?} does not mention {part:?} ({err:?})"
        );
    }
}

/// Every entry of directory `dir`, listed in one call.
pub fn list(vfs: &Vfs, dir: NodeId) -> Vec<DirEntry> {
    let mut entries = Vec::new();
    vfs.readdir(dir, 0, |entry| {
        entries.push(entry.clone());
        true
    })
    .unwrap_or_else(|err| panic!("readdir {dir}: {err}"));
    entries
}

/// The names in directory `dir`, in listing order.
pub fn names(vfs: &Vfs, dir: NodeId) -> Vec<String> {
    list(vfs, dir)
        .into_iter()
        .map(|e| e.name.to_string())
        .collect()
}

/// The whole content of file `ino`, read through a handle with `read_at`.
pub fn read_all(vfs: &Vfs, ino: NodeId) -> Vec<u8> {
    let handle = vfs
        .open_file(ino)
        .unwrap_or_else(|err| panic!("open node {ino}: {err}"));
    let bytes = read_handle(vfs, handle);
    vfs.release(handle).expect("release");
    bytes
}

/// Everything an open handle gives from offset 0 to the end, in 64 KiB `read_at` calls.
pub fn read_handle(vfs: &Vfs, handle: markbase_vfs::handles::FileHandle) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = vfs
            .read_at(handle, out.len() as u64, &mut buf)
            .expect("read_at");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Runs `f` on another thread and fails the test if it does not finish within
/// `limit`: the guard against a call that hangs.
#[track_caller]
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {limit:?}: it hangs")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// A temp dir that other users may enter (tempfile makes them 0700).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    dir
}

/// Gives `path` and everything below it to `uid:gid`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    for entry in tree_paths(path) {
        std::os::unix::fs::lchown(&entry, Some(uid), Some(gid))
            .unwrap_or_else(|err| panic!("chown {}: {err}", entry.display()));
    }
}

fn tree_paths(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_owned()];
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            out.extend(tree_paths(&entry.expect("dir entry").path()));
        }
    }
    out
}

/// Gives `dir` and everything below it to `nobody` (when we are root) but `secret`, a
/// file in it that no one but root may read (mode 0): a child run as `nobody`
/// ([`assert_passes_as_nobody`]) reaches the directory and cannot open the file.
pub fn hide_from_nobody(dir: &Path, secret: &Path) {
    if markbase_testkit::is_root() {
        chown_tree(dir, NOBODY, NOBODY);
        std::os::unix::fs::lchown(secret, Some(0), Some(0)).expect("chown the secret");
    }
    std::fs::set_permissions(secret, std::fs::Permissions::from_mode(0o000))
        .expect("chmod the secret");
}

/// The uid and gid privilege-dropped children run as (`nobody`).
pub const NOBODY: u32 = 65534;

/// This test binary, at a path that `nobody` may execute (copied into `scratch`
/// when its own directory is closed to other users).
fn executable_for_others(scratch: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let open_to_others = exe
        .ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
        && std::fs::metadata(&exe).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005);
    if open_to_others {
        return exe;
    }
    let copy = scratch.join("test-binary");
    std::fs::copy(&exe, &copy).expect("copy the test binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy
}

/// Re-runs the test `test` of this binary in a child process with [`CHILD_ENV`] set to
/// `arg`. With `unprivileged`, the child runs as `nobody` under `setpriv` (when we
/// are root); `None` when `setpriv` is missing and the test must be skipped.
pub fn run_child(test: &str, arg: &str, unprivileged: bool, scratch: &Path) -> Option<Output> {
    let exe = if unprivileged {
        executable_for_others(scratch)
    } else {
        std::env::current_exe().expect("exe")
    };
    let mut args: Vec<OsString> = Vec::new();
    let program: OsString = if unprivileged && markbase_testkit::is_root() {
        let setpriv = markbase_testkit::require_tool("setpriv")?;
        args.extend(["--reuid=65534", "--regid=65534", "--clear-groups", "--"].map(OsString::from));
        args.push(exe.into_os_string());
        setpriv.into_os_string()
    } else {
        exe.into_os_string()
    };
    args.extend(["--exact", test, "--nocapture", "--test-threads=1"].map(OsString::from));
    let output = Command::new(program)
        .args(args)
        .env(CHILD_ENV, arg)
        .output()
        .expect("spawn the child test process");
    Some(output)
}

/// Runs the test `test` of this binary again as `nobody` (see [`run_child`]) with
/// `dir` as its argument and scratch space, and asserts that its checks passed.
/// Without `setpriv` the test is skipped, as [`markbase_testkit::require_tool`] says.
pub fn assert_passes_as_nobody(test: &str, dir: &Path) {
    let arg = dir.to_str().expect("temp dirs are UTF-8");
    if let Some(output) = run_child(test, arg, true, dir) {
        assert_child_ok(&output);
    }
}

/// Line a child prints when its checks passed, so that a child that ran no test
/// (a filter that matched nothing also exits 0) is not taken for a pass.
pub const CHILD_OK: &str = "CHILD-CHECKS-PASSED";

/// Asserts that a child ran its test and that its checks passed.
#[track_caller]
pub fn assert_child_ok(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(CHILD_OK),
        "child process failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}

/// The role argument when this process is a child started by [`run_child`].
pub fn child_arg() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// What a lock holder prints once it holds its lock.
pub const HOLDING: &str = "HOLDING-THE-LOCK";

/// A child process (this test binary again) that takes a catalog lock, says so with
/// [`announce_holding`], and holds it until its stdin closes.
pub struct LockHolder {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl LockHolder {
    /// Re-runs the test `test` with [`CHILD_ENV`] set to `arg`, and waits until the
    /// child holds its lock.
    pub fn start(test: &str, arg: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stdout = within(
            Duration::from_secs(20),
            "waiting for the lock holder",
            move || {
                let mut stdout = stdout;
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = stdout.read_line(&mut line).unwrap();
                    assert!(n > 0, "the lock holder exited before taking the lock");
                    if line.contains(HOLDING) {
                        return stdout;
                    }
                }
            },
        );
        Self { child, stdout }
    }

    /// Closes the child's stdin (it then ends its transaction) and waits for it to
    /// exit, asserting that it did so cleanly.
    pub fn release(mut self) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success() && rest.contains(CHILD_OK),
            "lock holder: {status}\n{rest}"
        );
    }
}

/// The holder's side: says it holds the lock, then waits for its stdin to close.
pub fn announce_holding() {
    println!("\n{HOLDING}");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_line(&mut String::new());
}
