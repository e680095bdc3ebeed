//! `markbase mount` and `markbase umount`, driven as a user would: the real binary in
//! the foreground, signals, `kill -9`, dead mounts, and the errors a user can cause.
//!
//! Tests that mount need root and `/dev/fuse`; without them they skip, or fail under
//! `MARKBASE_REQUIRE_ALL=1` ([`markbase_testkit::require_fuse`]).

#![cfg(target_os = "linux")]

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::{Detach, SHUTDOWN_LIMIT};
use common::library::{Library, use_the_mount};
use common::{assert_fails_with, markbase, run, stderr};
use markbase_fuse::{is_dead_fuse_mount, mount_at};
use markbase_testkit::{detach_mount, require_fuse, require_tool, write_pattern_file};

#[test]
fn signals_unmount_and_end_the_daemon_cleanly() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    for (signal, name) in [
        (libc::SIGTERM, "sigterm.txt"),
        (libc::SIGINT, "sigint.txt"),
        (libc::SIGHUP, "sighup.txt"),
    ] {
        let mut daemon = lib.mount(&[]);
        let said = daemon.stderr();
        assert!(
            said.contains(&format!("mounted on {}", lib.mountpoint().display())),
            "{said}"
        );
        use_the_mount(&lib, name);
        daemon.stop_with(signal);
        // What was written is in the catalog.
        let cat = lib.markbase(&["cat", &format!("/{name}")]);
        assert_eq!(cat.stdout, name.as_bytes(), "{}", stderr(&cat));
    }
    assert!(fs::read_dir(lib.mountpoint()).unwrap().next().is_none());
}

#[test]
fn markbase_umount_ends_the_daemon() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let mnt_arg = mnt.to_str().unwrap();

    let mut daemon = lib.mount(&["--threads", "2"]);
    use_the_mount(&lib, "umount.txt");
    let umount = run(markbase().args(["umount", mnt_arg]));
    assert_eq!(umount.status.code(), Some(0), "{}", stderr(&umount));
    assert!(stderr(&umount).contains("unmounted"), "{}", stderr(&umount));
    let (status, took) = daemon.wait_exit(SHUTDOWN_LIMIT + Duration::from_secs(1));
    assert!(took <= SHUTDOWN_LIMIT, "the daemon took {took:?} to exit");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        daemon
            .stderr()
            .contains(&format!("{} was unmounted", mnt.display())),
        "{}",
        daemon.stderr()
    );
    assert_eq!(mount_at(&mnt).unwrap(), None);

    // A busy mount: umount refuses and says how to go on; --lazy detaches it, and the
    // daemon ends once the last program using it is done.
    let mut daemon = lib.mount(&[]);
    let held = File::open(mnt.join("clip.mov")).unwrap();
    let busy = run(markbase().args(["umount", mnt_arg]));
    assert_fails_with(&busy, "is busy");
    assert_fails_with(&busy, mnt_arg);
    assert!(mount_at(&mnt).unwrap().is_some());
    let lazy = run(markbase().args(["umount", "--lazy", mnt_arg]));
    assert_eq!(lazy.status.code(), Some(0), "{}", stderr(&lazy));
    assert!(stderr(&lazy).contains("detached"), "{}", stderr(&lazy));
    assert_eq!(mount_at(&mnt).unwrap(), None, "detached from the tree");
    drop(held);
    let (status, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}; {}", daemon.stderr());
}

#[test]
fn a_killed_daemon_leaves_a_dead_mount_that_umount_and_mount_clear() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let mnt_arg = mnt.to_str().unwrap();

    // Written and fsynced, then the daemon is killed with the file still open.
    let mut daemon = lib.mount(&[]);
    let size = (3 << 20) + 11;
    let rendered = lib.dir.path().join("rendered.mov");
    write_pattern_file(&rendered, size, 77).unwrap();
    let bytes = fs::read(&rendered).unwrap();
    let mut file = File::create(mnt.join("rendered.mov")).unwrap();
    file.write_all(&bytes).unwrap();
    file.sync_all().unwrap();
    daemon.kill();
    drop(file);

    // The catalog has it, with its full size and every byte.
    let stat = lib.markbase(&["stat", "/rendered.mov"]);
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.status.success(), "{}", stderr(&stat));
    assert!(text.contains(&format!("size: {size} (")), "{text}");
    assert!(!text.contains("the catalog records"), "{text}");
    let cat = lib.markbase(&["cat", "/rendered.mov"]);
    assert!(cat.stdout == bytes, "cat gives other bytes");

    // The mount is dead.
    assert!(is_dead_fuse_mount(&mnt), "not a dead mount");
    let ls = run(Command::new("ls").arg(&mnt));
    assert!(!ls.status.success());
    assert!(
        stderr(&ls).contains("Transport endpoint is not connected"),
        "{}",
        stderr(&ls)
    );

    // `markbase umount` clears it and says so.
    let umount = run(markbase().args(["umount", mnt_arg]));
    assert_eq!(umount.status.code(), Some(0), "{}", stderr(&umount));
    assert!(
        stderr(&umount).contains("was a dead mount"),
        "{}",
        stderr(&umount)
    );
    assert_eq!(mount_at(&mnt).unwrap(), None);
    assert!(fs::read_dir(&mnt).unwrap().next().is_none());

    // Killed again: `markbase mount` clears the dead mount itself and mounts.
    let mut daemon = lib.mount(&[]);
    daemon.kill();
    assert!(is_dead_fuse_mount(&mnt), "not a dead mount");
    let mut daemon = lib.mount(&[]);
    let said = daemon.stderr();
    assert!(
        said.contains("cleared a dead mount") && said.contains(mnt_arg),
        "{said}"
    );
    assert!(!is_dead_fuse_mount(&mnt));
    assert_eq!(fs::read(mnt.join("rendered.mov")).unwrap(), bytes);
    use_the_mount(&lib, "after.txt");
    daemon.stop_with(libc::SIGTERM);
}

#[test]
fn bad_mount_points_fail_with_one_line_naming_them() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mount_on = |path: &Path| {
        let out = run(markbase()
            .arg("--catalog")
            .arg(lib.catalog())
            .arg("mount")
            .arg(path));
        // Mounted after all: take it off again before failing.
        detach_mount(path);
        out
    };

    let missing = lib.dir.path().join("missing");
    let out = mount_on(&missing);
    assert_fails_with(&out, &missing.display().to_string());
    assert_fails_with(&out, "does not exist");

    let file = lib.dir.path().join("a file");
    fs::write(&file, "x").unwrap();
    let out = mount_on(&file);
    assert_fails_with(&out, &file.display().to_string());
    assert_fails_with(&out, "is not a directory");

    let full = lib.dir.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("keep.txt"), "precious").unwrap();
    let out = mount_on(&full);
    assert_fails_with(&out, &full.display().to_string());
    assert_fails_with(&out, "is not empty");
    assert_eq!(
        fs::read_to_string(full.join("keep.txt")).unwrap(),
        "precious"
    );

    // A tmpfs mounted there.
    if let Some(mount_tool) = require_tool("mount") {
        let tmpfs = lib.dir.path().join("tmpfs");
        fs::create_dir(&tmpfs).unwrap();
        let out = run(Command::new(mount_tool)
            .args(["-t", "tmpfs", "-o", "size=1m", "markbase-test"])
            .arg(&tmpfs));
        assert!(out.status.success(), "mount -t tmpfs: {}", stderr(&out));
        let _unmount = Detach(tmpfs.clone());
        let out = mount_on(&tmpfs);
        assert_fails_with(&out, &tmpfs.display().to_string());
        assert_fails_with(&out, "already a mount point (tmpfs)");
    }

    // markbase mounted there already; the first mount is unharmed.
    let mut daemon = lib.mount(&[]);
    let mnt = lib.mountpoint();
    let out = run(markbase()
        .arg("--catalog")
        .arg(lib.catalog())
        .arg("mount")
        .arg(&mnt));
    assert_fails_with(&out, &mnt.display().to_string());
    assert_fails_with(&out, "already a mount point (fuse.markbase)");
    use_the_mount(&lib, "still.txt");
    daemon.stop_with(libc::SIGTERM);
}

#[test]
fn usage_errors_and_a_missing_catalog_are_refused() {
    // Nothing here mounts: each is refused before.
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mnt_arg = mnt.to_str().unwrap();

    let zero = run(markbase().args(["mount", mnt_arg, "--threads", "0"]));
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert!(stderr(&zero).contains("--threads"), "{}", stderr(&zero));

    let missing = dir.path().join("nowhere/warren.sqlite");
    let out = run(markbase()
        .arg("--catalog")
        .arg(&missing)
        .args(["mount", mnt_arg]));
    assert_fails_with(&out, &missing.display().to_string());
    assert_fails_with(&out, "does not exist");
    assert_eq!(mount_at(&mnt).unwrap(), None);

    let not_mounted = run(markbase().args(["umount", mnt_arg]));
    assert_fails_with(&not_mounted, &format!("{mnt_arg} is not a mount point"));
    let gone = dir.path().join("gone");
    let out = run(markbase().arg("umount").arg(&gone));
    assert_fails_with(&out, &gone.display().to_string());
}

/// `auto` says which way it chose and why; `--backend fuse-t` runs on Linux too when
/// FUSE_NFSSRV_PATH names a helper (here the fake that speaks go-nfsv4's protocol and
/// mounts FUSE itself), and the mount says it is fuse-t's.
#[test]
fn the_backend_chosen_is_said_and_fuse_t_runs_the_named_helper() {
    if !require_fuse() || require_tool("python3").is_none() {
        return;
    }
    let lib = Library::new();
    let daemon = lib.mount(&[]);
    let said = daemon.stderr();
    assert!(
        said.contains("mounting via fuse (/dev/fuse is available)"),
        "{said}"
    );
    assert!(said.contains(" via fuse;"), "{said}");
    drop(daemon);

    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../markbase-fuse/tests/fake-go-nfsv4");
    let log = lib.dir.path().join("fuse-t.stderr");
    let mut child = markbase()
        .arg("--catalog")
        .arg(lib.catalog())
        .arg("mount")
        .arg(lib.mountpoint())
        .args(["--backend", "fuse-t", "--foreground"])
        .env(markbase_fuse::HELPER_ENV, &helper)
        .stdin(std::process::Stdio::null())
        .stderr(File::create(&log).unwrap())
        // A process group of its own, as a shell gives a foreground job.
        .process_group(0)
        .spawn()
        .unwrap();
    let _detach = Detach(lib.mountpoint());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&log).unwrap().contains(" mounted on ") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "markbase mount ended: {}",
            fs::read_to_string(&log).unwrap()
        );
        assert!(std::time::Instant::now() < deadline, "not mounted in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let said = fs::read_to_string(&log).unwrap();
    assert!(said.contains(" via fuse-t;"), "{said}");
    assert!(
        !said.contains("mounting via"),
        "an asked-for way needs no reason: {said}"
    );
    let entry = mount_at(&lib.mountpoint()).unwrap().expect("mounted");
    assert_eq!(entry.fstype, "fuse.fakehelper");
    assert_eq!(
        fs::read(lib.mountpoint().join("clip.mov")).unwrap(),
        lib.clip
    );

    // Ctrl-C, as a terminal sends it: to the whole process group. The helper, in a
    // session of its own, is not in it: it lives on until markbase tells it to unmount.
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) };
    let status = child.wait().unwrap();
    let said = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}: {said}");
    assert!(said.contains("markbase: unmounted "), "{said}");
    assert!(
        mount_at(&lib.mountpoint()).unwrap().is_none(),
        "still mounted"
    );
}
