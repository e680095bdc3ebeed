//! The `fake-mount-nfs` script: `mount_nfs`'s command line in, the bridge's out, and
//! `mount_nfs`-style errors for what it cannot take. A stub stands in for the bridge,
//! so nothing is mounted and no root is needed.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use markbase_testkit::run_within;
use tempfile::TempDir;

/// A stub bridge that writes its arguments, one a line, to `args` beside it and exits 3.
fn stub_bridge() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let stub = dir.path().join("bridge");
    let args = dir.path().join("args");
    fs::write(
        &stub,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 3\n",
            args.display()
        ),
    )
    .expect("write stub");
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).expect("chmod stub");
    (dir, stub)
}

fn fake_mount_nfs(bridge: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fake-mount-nfs");
    run_within(
        Command::new(script)
            .env("NFS_FUSE_BRIDGE", bridge)
            .args(args),
        Duration::from_secs(10),
    )
}

#[test]
fn mount_nfs_arguments_become_the_bridges_and_its_status_is_kept() {
    let (dir, stub) = stub_bridge();
    let options = "vers=3,tcp,port=2049,mountport=2050,nolocks,locallocks,noresvport,\
                   rsize=1048576,wsize=1048576,soft,intr,timeo=10,retrans=2,nobrowse";
    let output = fake_mount_nfs(&stub, &["-o", options, "127.0.0.1:/export/a", "/mnt/x"]);
    assert_eq!(output.status.code(), Some(3), "the bridge's status");
    let args = fs::read_to_string(dir.path().join("args")).expect("the stub ran");
    let expected = [
        "--host",
        "127.0.0.1",
        "--port",
        "2049",
        "--mount-port",
        "2050",
        "--export",
        "/export/a",
        "--",
        "/mnt/x",
    ];
    assert_eq!(args.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn options_may_come_in_several_lists() {
    let (dir, stub) = stub_bridge();
    let args = [
        "-o",
        "vers=3",
        "-o",
        "tcp,port=1",
        "-o",
        "mountport=2",
        "h:/",
        "d",
    ];
    assert_eq!(fake_mount_nfs(&stub, &args).status.code(), Some(3));
    let args = fs::read_to_string(dir.path().join("args")).expect("the stub ran");
    assert!(args.contains("--port\n1\n--mount-port\n2\n"), "{args}");
}

#[test]
fn what_mount_nfs_cannot_take_fails_with_its_reason() {
    let (dir, stub) = stub_bridge();
    let cases: &[(&[&str], &str)] = &[
        (&["-o", "tcp,port=1,mountport=1", "h:/", "d"], "pass vers=3"),
        (
            &["-o", "vers=4,tcp,port=1,mountport=1", "h:/", "d"],
            "version 4",
        ),
        (&["-o", "vers=3,port=1,mountport=1", "h:/", "d"], "pass tcp"),
        (
            &["-o", "vers=3,udp,port=1,mountport=1", "h:/", "d"],
            "only TCP",
        ),
        (
            &["-o", "vers=3,tcp,mountport=1", "h:/", "d"],
            "port= is required",
        ),
        (
            &["-o", "vers=3,tcp,port=1", "h:/", "d"],
            "mountport= is required",
        ),
        (
            &["-o", "vers=3,tcp,port=x1,mountport=1", "h:/", "d"],
            "bad option value: port=x1",
        ),
        (
            &["-o", "vers=3,tcp,,port=1,mountport=1", "h:/", "d"],
            "bad option syntax: ''",
        ),
        (
            &["-o", "vers=3,tcp,=1,port=1,mountport=1", "h:/", "d"],
            "bad option syntax: '=1'",
        ),
        (
            &["-o", "vers=3,tcp,port=1,mountport=1,soft=", "h:/", "d"],
            "bad option syntax",
        ),
        (
            &["-o", "vers=3,tcp,port=1,mountport=1,no locks", "h:/", "d"],
            "bad option syntax",
        ),
        (
            &["-o", "vers=3,tcp,port=1,mountport=1", "h", "d"],
            "bad remote path 'h'",
        ),
        (
            &["-o", "vers=3,tcp,port=1,mountport=1", ":/", "d"],
            "no host",
        ),
        (&["-x", "h:/", "d"], "illegal option -- x"),
        (&["-o"], "option requires an argument -- o"),
        (&["h:/"], "usage: mount_nfs"),
    ];
    for (args, reason) in cases {
        let output = fake_mount_nfs(&stub, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("mount_nfs: ") || stderr.starts_with("usage: "),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{args:?}: want {reason:?}, got {stderr}"
        );
    }
    assert!(
        !dir.path().join("args").exists(),
        "the bridge ran for a bad command line"
    );
}
