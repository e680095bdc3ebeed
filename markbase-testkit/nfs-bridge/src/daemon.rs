//! Going to the background once the mount is in place, so that the command returns
//! like `mount_nfs` does: the process forks first thing; the parent waits for the
//! child's report on a pipe and exits with it, the child mounts and serves.

use std::fs::{File, OpenOptions};
use std::io::{self, PipeReader, PipeWriter, Read as _, Write as _};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

/// What the child writes when the mount is ready; anything else is why it failed.
const READY: &str = "ready";

/// The child's end of the report pipe.
pub struct Report(PipeWriter);

/// Forks. In the parent, waits for the child's report and exits: 0 once the child
/// says the mount is ready, 1 (after printing why, and reaping the child) otherwise.
/// In the child, which leaves the caller's session, returns the report to make.
///
/// Must be called while the process has one thread: a forked child gets only the
/// calling thread, so locks held by others would stay held forever.
pub fn fork() -> anyhow::Result<Report> {
    let (reader, writer) = io::pipe().context("cannot make the report pipe")?;
    // SAFETY: the process has a single thread (see above), so the child is a full copy.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()).context("cannot fork"),
        0 => {
            drop(reader);
            rustix::process::setsid().context("cannot start a session")?;
            Ok(Report(writer))
        }
        child => {
            drop(writer);
            std::process::exit(await_report(reader, child))
        }
    }
}

/// The parent's exit status for the child's report.
fn await_report(mut reader: PipeReader, child: libc::pid_t) -> i32 {
    let mut report = String::new();
    let read = reader.read_to_string(&mut report);
    if read.is_ok() && report == READY {
        return 0;
    }
    match read {
        Ok(_) if report.is_empty() => {
            eprintln!("nfs-fuse-bridge: the bridge exited before the mount was ready")
        }
        Ok(_) => eprintln!("nfs-fuse-bridge: {report}"),
        Err(err) => eprintln!("nfs-fuse-bridge: cannot read the bridge's report: {err}"),
    }
    // SAFETY: `child` is our own child, not reaped yet; a null status pointer is allowed.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    1
}

impl Report {
    /// Tells the parent the mount is ready, after pointing standard input and output
    /// at `/dev/null` and standard error (the log) at `log` or `/dev/null`: the
    /// caller's pipes then close when the parent exits.
    pub fn ready(mut self, log: Option<&Path>) -> anyhow::Result<()> {
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .context("cannot open /dev/null")?;
        let log = match log {
            Some(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?,
            None => null.try_clone().context("cannot open /dev/null")?,
        };
        detach_stdio(&null, &log).context("cannot detach from the terminal")?;
        self.0
            .write_all(READY.as_bytes())
            .context("cannot report the mount ready")
    }

    /// Tells the parent why mounting failed; the exit status for the child.
    pub fn failed(mut self, err: &anyhow::Error) -> ExitCode {
        if self.0.write_all(format!("{err:#}").as_bytes()).is_err() {
            tracing::error!("{err:#}");
        }
        ExitCode::FAILURE
    }
}

fn detach_stdio(null: &File, log: &File) -> rustix::io::Result<()> {
    rustix::stdio::dup2_stdin(null.as_fd())?;
    rustix::stdio::dup2_stdout(null.as_fd())?;
    rustix::stdio::dup2_stderr(log.as_fd())
}
