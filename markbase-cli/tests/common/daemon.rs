//! A `markbase mount` run in the foreground as a user would run it, for the test files
//! that mount through the binary (Linux: `/dev/fuse`).

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use markbase_fuse::mount_at;
use markbase_testkit::detach_mount;

use super::markbase;

/// How long a daemon may take to unmount and exit once asked (the 5 s).
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// How long a daemon may take to mount (generous: a loaded 2-core machine).
pub const MOUNT_LIMIT: Duration = Duration::from_secs(30);

/// Detaches what is mounted at a path when dropped.
pub struct Detach(pub PathBuf);

impl Drop for Detach {
    fn drop(&mut self) {
        detach_mount(&self.0);
    }
}

/// A `markbase mount` in the foreground. Dropped while running, it is killed and its
/// mount detached, so that a failed test leaves neither behind.
pub struct Daemon {
    child: Child,
    mountpoint: PathBuf,
    stderr_file: PathBuf,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `markbase --catalog CATALOG mount MOUNTPOINT EXTRA...`, its stderr going
    /// to a new file in `log_dir`.
    pub fn start(catalog: &Path, mountpoint: &Path, log_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(markbase(), catalog, mountpoint, log_dir, extra)
    }

    /// As [`Daemon::start`], with `markbase` the command that runs the binary (as
    /// another user, say).
    pub fn start_with(
        mut markbase: Command,
        catalog: &Path,
        mountpoint: &Path,
        log_dir: &Path,
        extra: &[&str],
    ) -> Self {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr_file = log_dir.join(format!("daemon-{n}.stderr"));
        let child = markbase
            .arg("--catalog")
            .arg(catalog)
            .arg("mount")
            .arg(mountpoint)
            .arg("--foreground")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_file).unwrap())
            .spawn()
            .expect("start markbase mount");
        Self {
            child,
            mountpoint: mountpoint.to_owned(),
            stderr_file,
            status: None,
        }
    }

    /// What the daemon has printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// Waits until the daemon says it mounted and its mount answers. Another user's
    /// mount refuses our stat without asking its server; markbase checked that its
    /// mount answers before it said so.
    pub fn wait_mounted(&self) {
        let deadline = Instant::now() + MOUNT_LIMIT;
        loop {
            if self.stderr().contains(" mounted on ")
                && matches!(mount_at(&self.mountpoint), Ok(Some(entry)) if entry.fstype == "fuse.markbase")
                && fs::metadata(&self.mountpoint).map_or_else(
                    |err| err.kind() == std::io::ErrorKind::PermissionDenied,
                    |_| true,
                )
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not mounted within {MOUNT_LIMIT:?}; stderr: {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: libc::c_int) {
        super::signal(&self.child, signal);
    }

    /// Waits up to `limit` for the daemon to exit; its status and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let status = super::exit_within(&mut self.child, limit).unwrap_or_else(|| {
            panic!(
                "markbase mount still runs {limit:?} later; stderr: {}",
                self.stderr()
            )
        });
        self.status = Some(status);
        (status, started.elapsed())
    }

    /// Sends `signal` and asserts a clean exit within the shutdown limit, mount gone.
    pub fn stop_with(&mut self, signal: libc::c_int) {
        self.signal(signal);
        let (status, took) = self.wait_exit(SHUTDOWN_LIMIT + Duration::from_secs(1));
        let stderr = self.stderr();
        assert!(
            took <= SHUTDOWN_LIMIT,
            "signal {signal}: exit took {took:?}"
        );
        assert_eq!(
            status.code(),
            Some(0),
            "signal {signal}: {status}; {stderr}"
        );
        assert!(stderr.contains("markbase: unmounted "), "{stderr}");
        assert_eq!(
            mount_at(&self.mountpoint).unwrap(),
            None,
            "still mounted after the daemon exited"
        );
    }

    /// `kill -9`, leaving a dead mount behind.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let (status, _) = self.wait_exit(Duration::from_secs(10));
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        detach_mount(&self.mountpoint);
    }
}
