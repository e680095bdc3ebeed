//! `markbase serve nfs` and `markbase mount --backend nfs` driven as a user would:
//! the real binary, real NFS clients nobody here wrote (libnfs's `nfs-ls` and
//! `nfs-cp`), and the system's mount command replaced by fakes that fail in each way
//! the real one can.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{assert_fails_with, exit_within, markbase, run, signal, start_reading};
use markbase_testkit::{cannot_run, is_root, require_tool, run_within, write_pattern_file};

/// A served catalog: the server's process and its port.
struct Served {
    child: Child,
    port: u16,
}

impl Served {
    /// `markbase serve nfs` of `catalog` on a free loopback port, once it says so.
    fn start(catalog: &Path) -> Self {
        let (child, first, mut said) =
            start_reading(markbase().arg("--catalog").arg(catalog).args([
                "serve",
                "nfs",
                "--listen",
                "127.0.0.1:0",
            ]));
        let port = first
            .split(" at 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("markbase serve nfs said: {first}"));
        // Read the rest too: a server whose stderr is closed dies of SIGPIPE.
        std::thread::spawn(move || std::io::copy(&mut said, &mut std::io::sink()));
        Self { child, port }
    }

    /// The libnfs URL of `path` (`/dir/file`; libnfs mounts the directory part).
    fn url(&self, path: &str) -> String {
        let (dir, file) = path.rsplit_once('/').unwrap();
        let dir = if dir.is_empty() { "/" } else { dir };
        let port = self.port;
        format!("nfs://127.0.0.1{dir}/{file}?nfsport={port}&mountport={port}&version=3")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        signal(&self.child, libc::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Runs a libnfs tool, which must succeed; its stdout.
fn libnfs(tool: &Path, args: &[&str]) -> String {
    let out = run_within(Command::new(tool).args(args), Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Imports `tree` into a catalog beside it.
fn import(tree: &Path) -> PathBuf {
    let catalog = tree.parent().unwrap().join("warren.sqlite");
    let out = run(markbase()
        .arg("--catalog")
        .arg(&catalog)
        .arg("import")
        .arg(tree));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    catalog
}

#[test]
fn libnfs_lists_and_copies_a_tree_both_ways() {
    let (Some(ls), Some(cp)) = (require_tool("nfs-ls"), require_tool("nfs-cp")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("media");
    let names = ["clip A.mov", "Grüße ½ & <é>.txt", "日本語.wav"];
    std::fs::create_dir_all(tree.join("Day 1/many")).unwrap();
    for (seed, name) in names.iter().enumerate() {
        write_pattern_file(
            &tree.join("Day 1").join(name),
            3 << 20 | seed as u64,
            seed as u64,
        )
        .unwrap();
    }
    for i in 0..10_000 {
        std::fs::write(tree.join(format!("Day 1/many/f{i:05}")), i.to_string()).unwrap();
    }
    let catalog = import(&tree);
    let served = Served::start(&catalog);

    // The listing has every name, the big folder all of its entries.
    let day = libnfs(&ls, &[&served.url("/Day 1/")]);
    for name in names.iter().chain(&["many"]) {
        assert!(
            day.lines().any(|line| line.ends_with(name)),
            "{name} not in {day}"
        );
    }
    let many = libnfs(&ls, &[&served.url("/Day 1/many/")]);
    let listed: std::collections::BTreeSet<&str> = many
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|name| name.starts_with('f'))
        .collect();
    assert_eq!(listed.len(), 10_000, "nfs-ls listed {}", listed.len());

    // Down: every byte; up: a new file the catalog then serves, every byte.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    for name in names {
        let local = shm.path().join("down");
        libnfs(
            &cp,
            &[
                &served.url(&format!("/Day 1/{name}")),
                local.to_str().unwrap(),
            ],
        );
        assert!(
            std::fs::read(&local).unwrap() == std::fs::read(tree.join("Day 1").join(name)).unwrap(),
            "{name} came down different"
        );
        std::fs::remove_file(&local).unwrap();
    }
    let source = dir.path().join("upload.bin");
    write_pattern_file(&source, 7 << 20, 9).unwrap();
    libnfs(
        &cp,
        &[source.to_str().unwrap(), &served.url("/Day 1/upload é.bin")],
    );
    let cat = run(markbase()
        .arg("--catalog")
        .arg(&catalog)
        .args(["cat", "/Day 1/upload é.bin"]));
    assert!(
        cat.stdout == std::fs::read(&source).unwrap(),
        "the upload is not what was sent"
    );
    let day = libnfs(&ls, &[&served.url("/Day 1/")]);
    assert!(day.contains("upload é.bin"), "{day}");
}

#[test]
fn serve_nfs_refuses_an_open_address_without_allowed_networks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("media");
    std::fs::create_dir_all(&tree).unwrap();
    let catalog = import(&tree);
    let out = run(markbase().arg("--catalog").arg(&catalog).args([
        "serve",
        "nfs",
        "--listen",
        "0.0.0.0:0",
    ]));
    assert_fails_with(&out, "without --allow");
    let out = run(markbase().arg("--catalog").arg(&catalog).args([
        "serve",
        "nfs",
        "--allow",
        "10.0.0.0/33",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("10.0.0.0/33"),
        "{}",
        common::stderr(&out)
    );
}

/// A fake of the system's NFS mount command: a shell script with `body`, given the
/// same arguments (`-o OPTIONS 127.0.0.1:/ DIR`).
fn fake_mount(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `markbase mount DIR --backend nfs` with `fake` as the mount command, to its end.
fn mount_with(catalog: &Path, mountpoint: &Path, fake: &Path) -> std::process::Output {
    run(markbase()
        .arg("--catalog")
        .arg(catalog)
        .arg("mount")
        .arg(mountpoint)
        .args(["--backend", "nfs", "--mount-timeout", "3s"])
        .env(markbase_nfs::MOUNT_COMMAND_ENV, fake))
}

#[test]
fn each_way_the_nfs_mount_command_fails_is_named() {
    if !is_root() {
        cannot_run("mounting a foreign filesystem needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("media");
    std::fs::create_dir_all(&tree).unwrap();
    let catalog = import(&tree);
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();

    let refuses = fake_mount(
        dir.path(),
        "refuses",
        "echo 'mount_nfs: can not mount 127.0.0.1:/: Operation not permitted' >&2; exit 71",
    );
    let out = mount_with(&catalog, &mountpoint, &refuses);
    assert_fails_with(
        &out,
        "exited with code 71; it said: mount_nfs: can not mount 127.0.0.1:/: Operation not permitted",
    );

    // The original report's false success: exit 0, nothing mounted.
    let lies = fake_mount(dir.path(), "lies", "exit 0");
    assert_fails_with(
        &mount_with(&catalog, &mountpoint, &lies),
        "nothing was mounted there",
    );

    // Something is mounted, but not by us; it is left alone.
    let foreign = fake_mount(
        dir.path(),
        "foreign",
        "for last; do :; done; mount -t tmpfs foreign \"$last\"",
    );
    let out = mount_with(&catalog, &mountpoint, &foreign);
    assert_fails_with(&out, "never asked markbase's NFS server to MOUNT");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounted.contains(mountpoint.to_str().unwrap()),
        "the foreign mount was removed"
    );
    assert!(
        run(Command::new("umount").arg(&mountpoint))
            .status
            .success()
    );

    // It never returns: stopped at the deadline, with all it started.
    let hangs = fake_mount(dir.path(), "hangs", "echo waiting; sleep 300 & wait");
    let out = mount_with(&catalog, &mountpoint, &hangs);
    assert_fails_with(
        &out,
        "did not return within 3s and was stopped; it said: waiting",
    );
    let leftover = run(Command::new("pgrep").args(["-f", "sleep 300"]));
    assert!(!leftover.status.success(), "the fake's child outlived it");

    // No such command.
    let out = mount_with(&catalog, &mountpoint, &dir.path().join("absent"));
    assert_fails_with(&out, "was not found");
}

#[test]
fn a_real_nfs_mount_reads_writes_and_comes_off_before_the_server_stops() {
    if !is_root() {
        cannot_run("mounting needs root");
        return;
    }
    if !markbase_testkit::require_fuse() {
        return;
    }
    // The fake mount_nfs really mounts (markbase-testkit/nfs-bridge).
    let Some((fake, bridge)) = common::fake_mount_nfs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("media");
    std::fs::create_dir_all(&tree).unwrap();
    write_pattern_file(&tree.join("clip.mov"), 5 << 20, 4).unwrap();
    let catalog = import(&tree);
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();

    let mount = || {
        let (child, first, said) = start_reading(
            markbase()
                .arg("--catalog")
                .arg(&catalog)
                .arg("mount")
                .arg(&mountpoint)
                .args(["--backend", "nfs", "--foreground"])
                .env(markbase_nfs::MOUNT_COMMAND_ENV, &fake)
                .env("NFS_FUSE_BRIDGE", &bridge),
        );
        assert!(
            first.contains("mounted on") && first.contains("via nfs"),
            "markbase mount said: {first}"
        );
        (child, said)
    };
    let (mut child, mut said) = mount();
    std::thread::spawn(move || std::io::copy(&mut said, &mut std::io::sink()));

    assert!(
        std::fs::read(mountpoint.join("clip.mov")).unwrap()
            == std::fs::read(tree.join("clip.mov")).unwrap(),
        "the clip read through the mount differs"
    );
    let written = mountpoint.join("notes é.txt");
    std::fs::write(&written, b"written through NFS").unwrap();
    assert_eq!(std::fs::read(&written).unwrap(), b"written through NFS");

    signal(&child, libc::SIGTERM);
    let status = exit_within(&mut child, Duration::from_secs(20))
        .expect("markbase mount did not exit within 20 s of SIGTERM");
    assert!(status.success(), "markbase mount ended with {status}");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounted.contains(mountpoint.to_str().unwrap()),
        "still mounted: {mounted}"
    );
    let cat = run(markbase()
        .arg("--catalog")
        .arg(&catalog)
        .args(["cat", "/notes é.txt"]));
    assert_eq!(cat.stdout, b"written through NFS");

    // `markbase umount` takes an NFS mount off too; the server then says so and stops.
    let (mut child, mut said) = mount();
    let out = run(markbase().arg("umount").arg(&mountpoint));
    assert!(out.status.success(), "{}", common::stderr(&out));
    let status = exit_within(&mut child, Duration::from_secs(20))
        .expect("markbase mount did not exit within 20 s of its unmount");
    assert!(status.success(), "markbase mount ended with {status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut said, &mut rest).unwrap();
    assert!(
        rest.contains("was unmounted"),
        "markbase mount said: {rest}"
    );
}
