//! `markbase doctor`, run as a user would: a healthy machine, a user who may not open
//! /dev/fuse, broken catalogs, a dead mount, a taken serve port. Each check's line is
//! found by its name and its status and fix asserted.
//!
//! Tests that mount, or run doctor as another user, need root and `/dev/fuse`; without
//! them they skip, or fail under `MARKBASE_REQUIRE_ALL=1`.

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::library::Library;
use common::{NOBODY, assert_fails_with, markbase, run, stderr};
use markbase_testkit::{cannot_run, is_root, require_fuse, require_tool, skip};
use markbase_vfs::schema::SCHEMA_SQL;

/// The lines whose status may be `warn` on a healthy machine: another test (of this
/// file or another) may hold a default serve port for a moment, and the machine's disk,
/// which holds the test's store, may be short of space (a warning, never a failure).
const MAY_WARN: [&str; 3] = ["webdav port", "nfs port", "store"];

/// `markbase --catalog CATALOG doctor ARGS...`
fn doctor(catalog: &Path, args: &[&str]) -> Output {
    run(markbase()
        .arg("--catalog")
        .arg(catalog)
        .arg("doctor")
        .args(args))
}

/// The checklist: each line's label (`ok`, `info`, `warn`, `FAIL`), name and text.
fn checklist(out: &Output) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (label, rest) = line.split_once(' ').expect("a label, then the check");
            let name = rest.trim_start().split_once(": ").expect("name: detail").0;
            (label.to_owned(), name.to_owned(), line.to_owned())
        })
        .collect()
}

/// Asserts that the one line named `name` has `label` and says each of `needles`; a
/// FAIL or warn line must say its fix. Returns the line.
#[track_caller]
fn assert_check(out: &Output, name: &str, label: &str, needles: &[&str]) -> String {
    let lines = checklist(out);
    let found: Vec<&(String, String, String)> =
        lines.iter().filter(|(_, n, _)| n == name).collect();
    assert_eq!(
        found.len(),
        1,
        "one {name:?} line expected in:\n{}",
        text(out)
    );
    let (got, _, line) = found[0];
    assert_eq!(got, label, "{line}");
    if label == "FAIL" || label == "warn" {
        assert!(line.contains(" — fix: "), "no fix: {line}");
    }
    for needle in needles {
        assert!(line.contains(needle), "{line:?} does not say {needle:?}");
    }
    line.clone()
}

/// What doctor printed, both streams.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_healthy_machine_passes_every_check_and_json_agrees() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let out = doctor(&lib.catalog(), &[mnt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = checklist(&out);
    for (label, name, line) in &lines {
        let allowed: &[&str] = if MAY_WARN.contains(&name.as_str()) {
            &["ok", "warn"]
        } else {
            &["ok", "info"]
        };
        assert!(allowed.contains(&label.as_str()), "{line}");
    }
    let catalog = lib.catalog().canonicalize().unwrap();
    assert_check(
        &out,
        "markbase",
        "ok",
        &[env!("CARGO_PKG_VERSION"), std::env::consts::OS],
    );
    assert_check(
        &out,
        "catalog",
        "ok",
        &[catalog.to_str().unwrap(), "opens", "4 nodes", "fsck: clean"],
    );
    assert_check(&out, "store", "ok", &["free of"]);
    assert_check(&out, "fuse", "ok", &["/dev/fuse opens read-write"]);
    assert_check(
        &out,
        "mount point",
        "ok",
        &[mnt.to_str().unwrap(), "an empty directory, not a mount"],
    );
    assert_check(&out, "default backend", "ok", &["fuse", "ready"]);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));

    // --json says the same, as one document.
    let json = doctor(&lib.catalog(), &[mnt.to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["ok"], true);
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), lines.len(), "{doc:#}");
    for (check, (label, name, line)) in checks.iter().zip(&lines) {
        assert_eq!(check["name"], name.as_str(), "{check}");
        let status = check["status"].as_str().unwrap();
        assert!(["ok", "info", "warn", "fail"].contains(&status), "{check}");
        if !MAY_WARN.contains(&name.as_str()) {
            assert_eq!(status, label.to_lowercase(), "{check} vs {line}");
            assert!(
                line.contains(check["detail"].as_str().unwrap()),
                "{check} vs {line}"
            );
        }
        if status == "ok" {
            assert!(check["fix"].is_null(), "{check}");
        }
    }
}

#[test]
fn a_user_who_cannot_open_dev_fuse_is_told_the_mode_and_the_fix() {
    if !is_root() {
        cannot_run("running doctor as another user needs root");
        return;
    }
    let Some(setpriv) = require_tool("setpriv") else {
        return;
    };
    let Ok(device) = fs::metadata("/dev/fuse") else {
        cannot_run("/dev/fuse does not exist");
        return;
    };
    if device.mode() & 0o006 != 0 {
        skip("/dev/fuse is open to every user here");
        return;
    }
    // The library belongs to the user, so that only /dev/fuse stands in the way.
    let lib = Library::new();
    lib.give_to_nobody();
    let out = run(lib
        .markbase_as_nobody(&setpriv)
        .arg("--catalog")
        .arg(lib.catalog())
        .arg("doctor")
        .arg(lib.mountpoint()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mode = format!("mode {:04o}", device.mode() & 0o7777);
    assert_check(
        &out,
        "fuse",
        "FAIL",
        &[
            "/dev/fuse is not readable and writable by user",
            &mode,
            "sudo chmod 0666 /dev/fuse",
            "run markbase as root",
        ],
    );
    assert_check(&out, "catalog", "ok", &["fsck: clean"]);
    assert_check(&out, "mount point", "ok", &["an empty directory"]);
    assert_check(&out, "default backend", "FAIL", &["fuse", "not ready"]);
    assert!(stderr(&out).contains("check(s) failed"), "{}", text(&out));
}

/// A catalog in WAL mode, in a directory the user may read but not write, cannot be
/// opened by them (SQLite must create its `-shm` file there): a command says so, naming
/// the directory, doctor fails with the fix, and with the directory theirs it opens.
#[test]
fn a_catalog_in_a_directory_the_user_cannot_write_is_refused_naming_the_directory() {
    if !is_root() {
        cannot_run("running markbase as another user needs root");
        return;
    }
    let Some(setpriv) = require_tool("setpriv") else {
        return;
    };
    let lib = Library::new();
    let dir = lib.dir.path().canonicalize().unwrap();
    let catalog = dir.join("warren.sqlite");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", catalog.display()));
    }
    let ls = || {
        run(lib
            .markbase_as_nobody(&setpriv)
            .arg("--catalog")
            .arg(&catalog)
            .args(["ls", "/"]))
    };
    assert_fails_with(
        &ls(),
        &format!(
            "catalog {0} cannot be opened by this user: it is in WAL mode, and SQLite must create {0}-shm beside it, in {1}, which this user may not write",
            catalog.display(),
            dir.display()
        ),
    );
    let out = run(lib
        .markbase_as_nobody(&setpriv)
        .arg("--catalog")
        .arg(&catalog)
        .arg("doctor"));
    assert_check(
        &out,
        "catalog",
        "FAIL",
        &[
            "cannot be opened by user nobody",
            "WAL mode",
            "mode 0755 root:root",
            &format!("`sudo chown nobody {}`", dir.display()),
        ],
    );

    chown(&dir, Some(NOBODY), None).unwrap();
    let out = ls();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clip.mov"));
}

#[test]
fn broken_catalogs_fail_naming_the_file_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().canonicalize().unwrap().join(name);

    let missing = at("missing.sqlite");
    let out = doctor(&missing, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_check(
        &out,
        "catalog",
        "FAIL",
        &[
            missing.to_str().unwrap(),
            "does not exist",
            "import DIR",
            "--catalog PATH",
        ],
    );
    // The other checks still ran.
    assert_check(&out, "store", "info", &["the catalog does not open"]);
    assert!(
        checklist(&out)
            .iter()
            .any(|(_, name, _)| name == "default backend")
    );

    let garbage = at("garbage.sqlite");
    fs::write(&garbage, "this is not a catalog\n".repeat(300)).unwrap();
    let out = doctor(&garbage, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_check(
        &out,
        "catalog",
        "FAIL",
        &[
            garbage.to_str().unwrap(),
            "not a usable SQLite database",
            "--catalog PATH",
        ],
    );

    let no_column = at("no-column.sqlite");
    let schema = SCHEMA_SQL.replace("aliases_json TEXT NOT NULL DEFAULT '[]',", "");
    assert_ne!(schema, SCHEMA_SQL);
    rusqlite::Connection::open(&no_column)
        .unwrap()
        .execute_batch(&schema)
        .unwrap();
    let out = doctor(&no_column, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_check(
        &out,
        "catalog",
        "FAIL",
        &[
            no_column.to_str().unwrap(),
            "table `nodes` has no column `aliases_json`",
            "import DIR",
        ],
    );

    let no_table = at("no-table.sqlite");
    rusqlite::Connection::open(&no_table)
        .unwrap()
        .execute_batch("CREATE TABLE files (path TEXT);")
        .unwrap();
    let out = doctor(&no_table, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_check(
        &out,
        "catalog",
        "FAIL",
        &[no_table.to_str().unwrap(), "has no table `nodes`"],
    );
}

#[test]
fn a_dead_mount_fails_with_the_command_that_clears_it() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let mnt = lib.mountpoint();
    let mnt_arg = mnt.to_str().unwrap();
    let mut daemon = Daemon::start(&lib.catalog(), &mnt, lib.dir.path(), &[]);
    daemon.wait_mounted();

    // A live markbase mount is no failure.
    let out = doctor(&lib.catalog(), &[mnt_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_check(
        &out,
        "mount point",
        "info",
        &[
            "already mounted by markbase (a live mount of ",
            " via fuse, pid ",
            &format!("markbase umount {mnt_arg}"),
        ],
    );

    daemon.kill();
    let out = doctor(&lib.catalog(), &[mnt_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_check(
        &out,
        "mount point",
        "FAIL",
        &[
            "a dead markbase mount (its server, pid ",
            "is gone)",
            &format!("fix: `markbase umount {mnt_arg}`"),
        ],
    );

    // The fix clears it.
    let umount = run(markbase().args(["umount", mnt_arg]));
    assert_eq!(umount.status.code(), Some(0), "{}", stderr(&umount));
    let out = doctor(&lib.catalog(), &[mnt_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_check(
        &out,
        "mount point",
        "ok",
        &["an empty directory, not a mount"],
    );
}

#[test]
fn a_taken_serve_port_is_a_warning_with_the_fix() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    // Another test's doctor may hold the port for a moment, or another program for
    // longer: either way it is taken while doctor runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    let _held = loop {
        match TcpListener::bind("127.0.0.1:4918") {
            Ok(listener) => break Some(listener),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let out = doctor(&lib.catalog(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_check(
        &out,
        "webdav port",
        "warn",
        &[
            "127.0.0.1:4918 (markbase serve webdav) is taken",
            "fix: `markbase serve webdav --listen 127.0.0.1:",
        ],
    );
    assert_check(&out, "default backend", "ok", &["ready"]);
}
