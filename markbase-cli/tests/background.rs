//! `markbase mount` in the background, its default: the command returns once the mount
//! is verified (or fails with the cause), the serving process runs on in a session of
//! its own, `markbase mounts` lists it, and `markbase umount` ends it.
//!
//! Tests that mount need root and `/dev/fuse`; without them they skip, or fail under
//! `MARKBASE_REQUIRE_ALL=1` ([`markbase_testkit::require_fuse`]).

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::library::{Library, use_the_mount};
use common::{assert_fails_with, exit_within, markbase, run, stderr};
use markbase_testkit::{detach_mount, require_fuse, require_tool};
use serde_json::Value;

/// A background mount's serving process, found from what `markbase mount` said. Dropped,
/// it is killed and its mount detached, so that a failed test leaves neither behind.
struct Served {
    pid: u32,
    log: PathBuf,
    mountpoint: PathBuf,
}

impl Served {
    /// The process `out` (a successful background `markbase mount` of `mountpoint`)
    /// names, after checking what it said.
    fn from(out: &Output, mountpoint: &Path, backend: &str) -> Self {
        let said = stderr(out);
        assert!(out.status.success(), "markbase mount failed: {said}");
        let last = said.lines().last().unwrap_or_default();
        let expected = format!(" on {} via {backend} (pid ", mountpoint.display());
        assert!(
            last.starts_with("markbase: mounted ") && last.contains(&expected),
            "{said}"
        );
        let (pid, log) = last
            .rsplit_once("(pid ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .and_then(|rest| rest.split_once(", log "))
            .unwrap_or_else(|| panic!("no pid and log in {last:?}"));
        Self {
            pid: pid.parse().unwrap(),
            log: PathBuf::from(log),
            mountpoint: mountpoint.to_owned(),
        }
    }

    fn running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Waits (bounded) until the process is gone; false if it is not.
    fn gone_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.running() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn kill(&self) {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        assert!(
            self.gone_within(Duration::from_secs(10)),
            "pid {} lives on",
            self.pid
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.running() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
        detach_mount(&self.mountpoint);
    }
}

/// The session a process is in (`/proc/PID/stat`'s sixth field).
fn session_of(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap()
}

/// `markbase mounts --json`, parsed.
fn mounts() -> Vec<Value> {
    let out = run(markbase().args(["mounts", "--json"]));
    assert!(out.status.success(), "markbase mounts: {}", stderr(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("markbase mounts --json prints JSON")
        .as_array()
        .expect("a list")
        .clone()
}

/// What `markbase mounts --json` says of `mountpoint`, if it lists it.
fn listed(mountpoint: &Path) -> Option<Value> {
    let point = mountpoint.canonicalize().unwrap();
    mounts()
        .into_iter()
        .find(|mount| mount["mountpoint"].as_str() == point.to_str())
}

/// `markbase --catalog C mount MNT EXTRA...` of `lib`.
fn mount_command(lib: &Library, extra: &[&str]) -> Command {
    let mut command = markbase();
    command
        .arg("--catalog")
        .arg(lib.catalog())
        .arg("mount")
        .arg(lib.mountpoint())
        .args(extra);
    command
}

/// Runs `markbase mount` of `lib` to its end.
fn mount(lib: &Library, extra: &[&str]) -> Output {
    run(&mut mount_command(lib, extra))
}

#[test]
fn a_background_mount_returns_once_verified_and_umount_ends_its_server() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let out = mount(&lib, &[]);
    let served = Served::from(&out, &mnt, "fuse");
    assert!(
        stderr(&out).starts_with("markbase: mounting via fuse (/dev/fuse is available)\n"),
        "{}",
        stderr(&out)
    );
    // The command has returned and the mount serves.
    use_the_mount(&lib, "background.txt");
    assert!(served.running());
    assert_eq!(
        session_of(served.pid),
        served.pid,
        "not in a session of its own"
    );
    let log = fs::read_to_string(&served.log).unwrap();
    assert!(log.contains("mounted on"), "the log says: {log}");

    let entry = listed(&mnt).expect("markbase mounts lists the mount");
    assert_eq!(entry["state"], "answers", "{entry}");
    assert_eq!(entry["backend"], "fuse");
    assert_eq!(entry["pid"], served.pid);
    assert_eq!(
        entry["catalog"].as_str(),
        lib.catalog().canonicalize().unwrap().to_str()
    );
    assert_eq!(entry["log"].as_str(), served.log.to_str());
    let table = run(markbase().arg("mounts"));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("MOUNT POINT "), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with(mnt.to_str().unwrap())
                && line.contains(" answers ")
                && line.contains(&served.pid.to_string())),
        "{table}"
    );

    let out = run(markbase().arg("umount").arg(&mnt));
    assert_eq!(
        stderr(&out),
        format!(
            "markbase: unmounted {}; markbase pid {}, which served it, has stopped\n",
            mnt.display(),
            served.pid
        )
    );
    assert!(out.status.success());
    assert!(
        served.gone_within(Duration::from_secs(5)),
        "the server lives on"
    );
    assert_eq!(markbase_fuse::mount_at(&mnt).unwrap(), None);
    assert_eq!(listed(&mnt), None, "still listed after umount");
    // What was written through the mount is in the catalog.
    let cat = lib.markbase(&["cat", "/background.txt"]);
    assert_eq!(cat.stdout, b"background.txt");
}

#[test]
fn a_background_mount_that_cannot_mount_says_why_in_one_line() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    fs::write(mnt.join("keep.txt"), "precious").unwrap();
    let out = mount(&lib, &[]);
    assert_fails_with(&out, &format!("{} is not empty", mnt.display()));
    assert_eq!(
        fs::read_to_string(mnt.join("keep.txt")).unwrap(),
        "precious"
    );
    assert_eq!(listed(&mnt), None);

    let out = mount(&lib, &["--backend", "nfs", "--fuse-t-backend", "smb"]);
    assert_fails_with(
        &out,
        "--fuse-t-backend smb is for mounts made through fuse-t, and --backend nfs does not use it",
    );

    let missing = lib.dir.path().join("nowhere.sqlite");
    let out = run(markbase()
        .arg("--catalog")
        .arg(&missing)
        .arg("mount")
        .arg(lib.dir.path()));
    assert_fails_with(&out, &format!("{} does not exist", missing.display()));
}

/// Writes an executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_server_that_dies_before_its_mount_is_verified_is_reported() {
    let lib = Library::new();
    // The system's mount command, as if macOS's mount_nfs: this one kills the
    // markbase process that runs it (its parent), so nothing is ever mounted.
    let fake = script(lib.dir.path(), "mount_nfs", "kill -9 $PPID\nsleep 5");
    let out =
        run(mount_command(&lib, &["--backend", "nfs"]).env(markbase_nfs::MOUNT_COMMAND_ENV, &fake));
    assert_fails_with(
        &out,
        "was killed by signal 9 before the mount was verified (log: ",
    );
    assert_eq!(
        markbase_fuse::mount_at(&lib.mountpoint().canonicalize().unwrap()).unwrap(),
        None
    );
    assert_eq!(listed(&lib.mountpoint()), None);
}

#[test]
fn interrupting_the_wait_stops_the_server_it_started() {
    let lib = Library::new();
    let fake = script(lib.dir.path(), "mount_nfs", "exec sleep 30");
    let mut waiting = mount_command(&lib, &["--backend", "nfs", "--mount-timeout", "3s"])
        .env(markbase_nfs::MOUNT_COMMAND_ENV, &fake)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(waiting.id() as libc::pid_t, libc::SIGINT) };
    let status = exit_within(&mut waiting, Duration::from_secs(20))
        .expect("markbase mount did not end within 20 s of Ctrl-C");
    let mut said = String::new();
    std::io::Read::read_to_string(&mut waiting.stderr.take().unwrap(), &mut said).unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    let pid: u32 = said
        .trim_end()
        .strip_prefix("markbase: error: interrupted; stopped the mount process (pid ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{said}"))
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} lives on"
    );
}

#[test]
fn mounts_tells_a_live_a_dead_and_a_foreign_mount_apart() {
    if !require_fuse() {
        return;
    }
    let Some(mount_tool) = require_tool("mount") else {
        return;
    };
    let [live, dead, foreign] = [(); 3].map(|()| Library::new());
    let [served_live, served_dead, served_foreign] = [&live, &dead, &foreign]
        .map(|lib| Served::from(&mount(lib, &[]), &lib.mountpoint(), "fuse"));

    served_dead.kill();
    served_foreign.kill();
    // Where the foreign one was, something else is mounted now.
    let foreign_mnt = foreign.mountpoint();
    detach_mount(&foreign_mnt);
    let out = run(Command::new(mount_tool)
        .args(["-t", "tmpfs", "-o", "size=1m", "not-markbase"])
        .arg(&foreign_mnt));
    assert!(out.status.success(), "mount -t tmpfs: {}", stderr(&out));

    // The table first: a foreign mount's stale record is shown once, then forgotten.
    let dead_mnt = dead
        .mountpoint()
        .canonicalize()
        .unwrap_or(dead.mountpoint());
    let foreign_mnt = foreign_mnt.canonicalize().unwrap();
    let table = run(markbase().arg("mounts"));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains(&format!(
            "{}: its server is gone; `markbase umount {}` clears it",
            dead_mnt.display(),
            dead_mnt.display()
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "{}: now holds a tmpfs mount of not-markbase, not markbase's",
            foreign_mnt.display()
        )),
        "{table}"
    );
    let live_entry = listed(&live.mountpoint()).expect("the live mount is listed");
    assert_eq!(live_entry["state"], "answers", "{live_entry}");
    let dead_entry = mounts()
        .into_iter()
        .find(|mount| mount["mountpoint"].as_str() == dead_mnt.to_str())
        .expect("the dead mount is listed");
    assert_eq!(dead_entry["state"], "dead", "{dead_entry}");
    assert_eq!(dead_entry["pid"], served_dead.pid);
    assert_eq!(
        dead_entry["fix"].as_str(),
        Some(format!("markbase umount {}", dead_mnt.display()).as_str())
    );

    // A stale record is forgotten once shown.
    assert_eq!(listed(&foreign_mnt), None);

    let out = run(markbase().arg("umount").arg(&dead_mnt));
    assert!(
        stderr(&out).contains("was a dead mount") && out.status.success(),
        "{}",
        stderr(&out)
    );
    assert!(
        listed(&dead_mnt).is_none(),
        "the cleared mount is still listed"
    );
    detach_mount(&foreign_mnt);
    let out = run(markbase().arg("umount").arg(live.mountpoint()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(served_live.gone_within(Duration::from_secs(5)));
}

#[test]
fn a_fuse_t_mount_goes_to_the_background_and_comes_off_with_umount() {
    if !require_fuse() || require_tool("python3").is_none() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../markbase-fuse/tests/fake-go-nfsv4");
    let out =
        run(mount_command(&lib, &["--backend", "fuse-t"]).env(markbase_fuse::HELPER_ENV, &helper));
    let served = Served::from(&out, &mnt, "fuse-t");
    use_the_mount(&lib, "via helper.txt");
    assert_eq!(listed(&mnt).expect("listed")["backend"], "fuse-t");
    let out = run(markbase().arg("umount").arg(&mnt));
    assert!(
        out.status.success() && stderr(&out).contains("has stopped"),
        "{}",
        stderr(&out)
    );
    assert!(served.gone_within(Duration::from_secs(10)));
    assert_eq!(listed(&mnt), None);
}
