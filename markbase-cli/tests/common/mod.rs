//! What the `markbase` binary's test files share: running it, and checking how it
//! fails.

// Each test file uses its own part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

use markbase_testkit::run_within;

#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod library;

/// How long a command that should end quickly may run before it counts as hung.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// The binary under test, without the user's catalog or log settings, and with the tests'
/// data directory (mount logs and records).
pub fn markbase() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_markbase"));
    cmd.env_remove("MARKBASE_CATALOG")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", data_home());
    cmd
}

/// `nobody`'s user and group id (Debian), whom tests run commands as.
pub const NOBODY: u32 = 65534;

/// `program` run as [`NOBODY`] through `setpriv` (found by
/// [`markbase_testkit::require_tool`]), which execs it: the child's pid is its pid.
pub fn as_nobody(setpriv: &std::path::Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(setpriv);
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(program);
    cmd
}

/// The `XDG_DATA_HOME` every `markbase` of the tests gets (under the target
/// directory, so that nothing lands in the home of whoever runs them).
pub fn data_home() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("data-home")
}

/// The fake `mount_nfs` that really mounts (a FUSE mount forwarding every request to
/// markbase's NFS server), and the bridge it runs; `None` (the test skips, or fails
/// under MARKBASE_REQUIRE_ALL) while the bridge is not built.
pub fn fake_mount_nfs() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let bridge =
        std::path::Path::new(env!("CARGO_BIN_EXE_markbase")).with_file_name("nfs-fuse-bridge");
    if !bridge.is_file() {
        markbase_testkit::cannot_run(
            "nfs-fuse-bridge is not built (cargo build -p markbase-nfs-bridge)",
        );
        return None;
    }
    let fake = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../markbase-testkit/nfs-bridge/fake-mount-nfs");
    Some((fake, bridge))
}

/// Runs `command` to its end (within [`COMMAND_LIMIT`]), which must not panic.
pub fn run(command: &mut Command) -> Output {
    let output = run_within(command, COMMAND_LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{command:?} panicked: {stderr}"
    );
    output
}

/// What the command said on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure with status 1 and exactly one line on stderr containing `needle`.
#[track_caller]
pub fn assert_fails_with(output: &Output, needle: &str) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(stderr.starts_with("markbase: error: "), "{stderr}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} does not mention {needle:?}"
    );
}

/// Starts `command` with its stderr read; the child, the first line it said, and the
/// rest of what it says.
pub fn start_reading(command: &mut Command) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    said.read_line(&mut first).unwrap();
    (child, first, said)
}

/// The exit status of `child` if it exits within `limit`: markbase's own bounded wait.
pub use markbase_process::wait_within as exit_within;

/// Sends `signal` to `child`, which has not been reaped.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: signalling our own child, which has not been reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}
