//! `markbase serve` driven as a user would: the real binary in the foreground,
//! signals during transfers, and the refusals a user can cause.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{markbase, signal};
use markbase_testkit::{require_tool, run_within, write_pattern_file};

/// How long the server may take to stop once signalled (5 s grace, plus slack).
const STOP_LIMIT: Duration = Duration::from_secs(8);

/// A library imported from a small tree: its directory and catalog.
fn library() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    write_pattern_file(&media.join("clip.mov"), 64 << 20, 3).unwrap();
    let catalog = dir.path().join("warren.sqlite");
    let out = run_within(
        markbase()
            .arg("--catalog")
            .arg(&catalog)
            .arg("import")
            .arg(&media),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, catalog)
}

/// `markbase serve` on a free loopback port; returns the child and its base URL once
/// it says it is serving.
fn serve(catalog: &std::path::Path) -> (Child, String) {
    serve_with(catalog, &[])
}

/// Like [`serve`], with `options` added to the command line.
fn serve_with(catalog: &std::path::Path, options: &[&str]) -> (Child, String) {
    let port = free_port();
    let (child, first, mut said) = start(catalog, &format!("127.0.0.1:{port}"), options);
    assert!(first.contains("serving"), "markbase serve said: {first}");
    // Read the rest too: a server whose stderr is closed dies of SIGPIPE.
    std::thread::spawn(move || std::io::copy(&mut said, &mut std::io::sink()));
    (child, format!("http://127.0.0.1:{port}"))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `markbase serve --listen LISTEN OPTIONS...`; returns the child, the first
/// line it said, and the rest of what it says.
fn start(
    catalog: &std::path::Path,
    listen: &str,
    options: &[&str],
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    common::start_reading(
        markbase()
            .arg("--catalog")
            .arg(catalog)
            .args(["serve", "--listen", listen])
            .args(options),
    )
}

/// Waits for `child` to exit within `limit`, killing it and failing otherwise.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    common::exit_within(child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("still running {limit:?} after the server was signalled");
    })
}

#[test]
fn a_signal_stops_the_server_in_time_and_keeps_acknowledged_puts() {
    let Some(curl) = require_tool("curl") else {
        return;
    };
    for stop in [libc::SIGTERM, libc::SIGINT] {
        let (dir, catalog) = library();
        let (mut server, url) = serve(&catalog);
        // An acknowledged upload...
        let upload = dir.path().join("upload.bin");
        write_pattern_file(&upload, 3 << 20, 8).unwrap();
        let put = run_within(
            Command::new(&curl)
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T"])
                .arg(&upload)
                .arg(format!("{url}/upload.bin")),
            Duration::from_secs(60),
        );
        assert_eq!(put.stdout, b"201");
        // ...and a slow download still running when the signal comes.
        let mut slow = Command::new(&curl)
            .args(["-sS", "--limit-rate", "1M", "-o", "/dev/null"])
            .arg(format!("{url}/clip.mov"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        signal(&server, stop);
        let status = exits_within(&mut server, STOP_LIMIT);
        assert!(status.success(), "signal {stop}: {status}");
        // The client still drains what the sockets had buffered (a few MB at 1 MB/s),
        // then sees the connection end short of the 64 MiB.
        let slow = exits_within(&mut slow, Duration::from_secs(40));
        assert!(
            !slow.success(),
            "the 64 MiB download at 1 MB/s cannot have finished"
        );

        let out = run_within(
            markbase()
                .arg("--catalog")
                .arg(&catalog)
                .args(["cat", "/upload.bin"]),
            Duration::from_secs(60),
        );
        assert!(
            out.stdout == std::fs::read(&upload).unwrap(),
            "the acknowledged PUT was lost"
        );
    }
}

#[test]
fn finder_files_stay_out_of_the_catalog_unless_asked() {
    let Some(curl) = require_tool("curl") else {
        return;
    };
    for (options, in_catalog) in [(&[][..], false), (&["--finder-files-in-catalog"][..], true)] {
        let (_dir, catalog) = library();
        let (mut server, url) = serve_with(&catalog, options);
        for name in ["._clip.mov", ".DS_Store"] {
            let put = run_within(
                Command::new(&curl)
                    .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
                    .args(["--data-binary", "finder"])
                    .arg(format!("{url}/{name}")),
                Duration::from_secs(60),
            );
            assert_eq!(put.stdout, b"201", "{options:?} {name}");
            let get = run_within(
                Command::new(&curl)
                    .args(["-sS"])
                    .arg(format!("{url}/{name}")),
                Duration::from_secs(60),
            );
            assert_eq!(get.stdout, b"finder", "{options:?} {name}");
        }
        signal(&server, libc::SIGTERM);
        assert!(exits_within(&mut server, STOP_LIMIT).success());
        let ls = run_within(
            markbase().arg("--catalog").arg(&catalog).args(["ls", "/"]),
            Duration::from_secs(60),
        );
        let listed = String::from_utf8_lossy(&ls.stdout);
        let expected: &[&str] = if in_catalog {
            &[".DS_Store", "._clip.mov", "clip.mov"]
        } else {
            &["clip.mov"]
        };
        let mut names: Vec<&str> = listed.lines().collect();
        names.sort_unstable();
        assert_eq!(names, expected, "{options:?}");
    }
}

#[test]
fn refusals_name_their_cause() {
    let (dir, catalog) = library();
    let run = |args: &[&str]| {
        run_within(
            markbase()
                .arg("--catalog")
                .arg(&catalog)
                .arg("serve")
                .args(args),
            Duration::from_secs(30),
        )
    };
    let out = run(&["--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("without authentication") && said.contains("0.0.0.0:0"),
        "{said}"
    );

    let missing = dir.path().join("no-such-password");
    let out = run(&[
        "--user",
        "editor",
        "--password-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()));

    let out = run(&["--user", "editor"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--user without --password-file is a usage error"
    );
    for usage in [
        "not-an-address",
        "localhost",
        "::1:4918",
        "localhost:99999",
        ":4918",
    ] {
        let out = run(&["--listen", usage]);
        assert_eq!(out.status.code(), Some(2), "--listen {usage}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(usage),
            "--listen {usage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A name that does not resolve is named (.invalid never resolves: RFC 6761).
    let out = run(&["--listen", "no-such-host.invalid:4918"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with("markbase: error: cannot resolve \"no-such-host.invalid\"")
            && said.lines().count() == 1,
        "{said}"
    );

    // A port already taken is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = run(&["--listen", &address]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&address));
}

#[test]
fn serving_without_a_user_says_who_can_change_the_library() {
    let Some(curl) = require_tool("curl") else {
        return;
    };
    let (dir, catalog) = library();
    for (options, can) in [
        (&[][..], "read, change and delete anything in the library"),
        (&["--read-only"][..], "read the whole library"),
    ] {
        let port = free_port();
        // A host name is resolved, and served on what it resolves to.
        let (mut server, first, mut said) = start(&catalog, &format!("localhost:{port}"), options);
        assert!(
            first.contains(&format!("127.0.0.1:{port}/"))
                || first.contains(&format!("[::1]:{port}/")),
            "{first}"
        );
        let mut second = String::new();
        said.read_line(&mut second).unwrap();
        assert_eq!(
            second,
            format!(
                "markbase: warning: no --user, so every user of this machine can {can} without a \
                 password; --user NAME --password-file FILE requires one\n"
            )
        );
        let head = run_within(
            Command::new(&curl)
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
                .arg(format!("http://localhost:{port}/clip.mov")),
            Duration::from_secs(60),
        );
        assert_eq!(head.stdout, b"200", "{options:?}");
        signal(&server, libc::SIGTERM);
        assert!(exits_within(&mut server, STOP_LIMIT).success());
    }

    // With a user, nothing to warn about.
    let password = dir.path().join("password");
    std::fs::write(&password, "secret\n").unwrap();
    let (mut server, first, mut said) = start(
        &catalog,
        &format!("127.0.0.1:{}", free_port()),
        &[
            "--user",
            "editor",
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert!(first.contains("serving"), "{first}");
    signal(&server, libc::SIGTERM);
    assert!(exits_within(&mut server, STOP_LIMIT).success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut said, &mut rest).unwrap();
    assert_eq!(rest, "markbase: stopped serving\n");
}
