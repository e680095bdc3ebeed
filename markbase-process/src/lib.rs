//! What markbase's crates share about the processes they start (fuse-t's helper, the
//! system's mount commands, a background mount's server): waits with a deadline, an
//! orderly stop, and how a process ended in words.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// How often a bounded wait looks at the child.
const POLL: Duration = Duration::from_millis(10);

/// The exit status of `child` if it ends within `limit`; `None` if it is still running
/// (or cannot be waited for).
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Ends `child` in order: SIGTERM, up to `grace` to exit, then SIGKILL; always reaped.
/// Its exit status, if it exited before it had to be killed.
pub fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    if let Some(pid) = pid_of(child) {
        let _ = rustix::process::kill_process(pid, Signal::TERM);
    }
    let status = wait_within(child, grace);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// The exit status of `child`, which leads a process group of its own, if it ends
/// within `limit`; otherwise the whole group is killed, the child reaped, and `None`.
pub fn wait_or_kill_group(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let status = wait_within(child, limit);
    if status.is_none() {
        if let Some(group) = pid_of(child) {
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
        }
        let _ = child.wait();
    }
    status
}

/// How a process ended: "exited with code 3", "was killed by signal 9".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// Runs `probe` on a thread of its own and waits up to `limit` for its result; `None`
/// if it has not returned by then (it is left to finish alone). For calls that can
/// hang, such as a `stat` of a mount whose server is gone.
pub fn with_deadline<T: Send + 'static>(
    limit: Duration,
    probe: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("markbase-probe".into())
        .spawn(move || {
            let _ = tx.send(probe());
        })
        .ok()?;
    rx.recv_timeout(limit).ok()
}

fn pid_of(child: &Child) -> Option<Pid> {
    Pid::from_raw(i32::try_from(child.id()).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_bounded_wait_sees_an_exit_and_gives_up_on_a_sleeper() {
        let mut quick = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = wait_within(&mut quick, Duration::from_secs(10)).expect("exits");
        assert_eq!(describe_exit(status), "exited with code 3");

        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        assert_eq!(wait_within(&mut sleeper, Duration::from_millis(50)), None);
        // SIGTERM ends sleep at once: it exits by that signal, before any SIGKILL.
        let status = stop(&mut sleeper, Duration::from_secs(10)).expect("ends on SIGTERM");
        assert_eq!(describe_exit(status), "was killed by signal 15");
    }

    #[test]
    fn a_process_that_ignores_sigterm_is_killed() {
        let mut stubborn = Command::new("sh")
            .args(["-c", "trap '' TERM; exec tail -f /dev/null"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(stop(&mut stubborn, Duration::from_millis(200)), None);
        assert!(stubborn.try_wait().unwrap().is_some(), "reaped");
    }

    #[test]
    fn a_probe_past_its_deadline_is_abandoned() {
        assert_eq!(with_deadline(Duration::from_secs(5), || 7), Some(7));
        let slow = with_deadline(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_secs(2));
        });
        assert_eq!(slow, None);
    }
}
