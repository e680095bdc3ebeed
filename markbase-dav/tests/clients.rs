//! Real WebDAV clients against a served catalog: the litmus compliance suites, curl.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Served, curl, status};
use markbase_dav::{Access, Credentials};
use markbase_testkit::{pattern_byte, require_tool, run_within, write_pattern_file};

#[test]
fn litmus_passes_every_suite() {
    let Some(litmus) = require_tool("litmus") else {
        return;
    };
    let served = Served::start();
    let out = run_within(
        Command::new(litmus)
            .arg(served.url("/"))
            .current_dir(served.dir.path()),
        Duration::from_secs(300),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    let summaries: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("summary for"))
        .collect();
    // Straight to stderr, past the test harness's capture, so that every run's log
    // (CI's too) shows the summaries.
    let mut stderr = std::io::stderr().lock();
    for line in &summaries {
        writeln!(stderr, "{line}").unwrap();
    }
    drop(stderr);
    // litmus stops after a suite with failures, so every suite must be listed, all passed.
    for suite in ["basic", "copymove", "props", "locks", "http"] {
        let line = summaries
            .iter()
            .find(|line| line.contains(&format!("`{suite}'")))
            .unwrap_or_else(|| panic!("no summary for {suite}:\n{said}"));
        assert!(
            line.contains(" 0 failed") && line.ends_with("100.0%"),
            "{line}\n{said}"
        );
    }
}

#[test]
fn curl_range_requests_and_chunked_puts_move_exact_bytes() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let clip = served.url("/Day%201/clip.mov");
    for (first, last) in [
        (0u64, 0u64),
        (10, 19),
        (1 << 20, (2 << 20) + 7),
        (2_999_990, 3_000_000),
    ] {
        let range = format!("{first}-{last}");
        let out = curl(&["-r", &range, &clip]);
        let expected: Vec<u8> = (first..=last).map(|at| pattern_byte(5, at)).collect();
        assert_eq!(out.stdout, expected, "range {range}");
    }
    // A suffix range and a range past the end.
    let out = curl(&["-r", "-5", &clip]);
    let expected: Vec<u8> = (2_999_996..3_000_001)
        .map(|at| pattern_byte(5, at))
        .collect();
    assert_eq!(out.stdout, expected);
    let out = status(&["-r", "4000000-", &clip]);
    assert_eq!(out, "416");
    // Several ranges in one request: one open file seeks back and forth, and no
    // chunk read ahead for one range may stand in for another.
    let ranges = [(2_999_000u64, 2_999_099u64), (1_048_570, 2_097_160), (5, 9)];
    let spec = ranges
        .iter()
        .map(|(first, last)| format!("{first}-{last}"))
        .collect::<Vec<_>>()
        .join(",");
    let body = curl(&["-r", &spec, &clip]).stdout;
    let mut from = 0;
    for (first, last) in ranges {
        let part: Vec<u8> = (first..=last).map(|at| pattern_byte(5, at)).collect();
        let found = body[from..]
            .windows(part.len())
            .position(|window| window == part)
            .unwrap_or_else(|| panic!("range {first}-{last} missing or out of order"));
        from += found + part.len();
    }

    // A chunked PUT, read back whole.
    let upload = served.dir.path().join("upload.bin");
    write_pattern_file(&upload, 5 << 20, 6).unwrap();
    let put_url = served.url("/Day%201/upload.bin");
    let out = status(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-T",
        upload.to_str().unwrap(),
        &put_url,
    ]);
    assert_eq!(out, "201");
    let out = curl(&[&put_url]);
    assert_eq!(out.stdout, std::fs::read(&upload).unwrap());
    assert!(Path::new(&served.dir.path().join("warren-store")).is_dir());

    // The root can be neither deleted nor listed to infinite depth.
    let out = status(&["-X", "DELETE", &served.url("/")]);
    assert_eq!(out, "403");
    let out = curl(&[
        "-w",
        "%{http_code}",
        "-X",
        "PROPFIND",
        "-H",
        "Depth: infinity",
        &served.url("/"),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("propfind-finite-depth") && said.ends_with("403"),
        "{said}"
    );
    let out = curl(&[&served.url("/notes.txt")]);
    assert_eq!(out.stdout, b"shot list\n");
}

#[test]
fn wrong_or_missing_credentials_get_401_and_nothing_else() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let access = Access::Basic(Credentials::from_password_file("editor", &password_file).unwrap());
    let served = Served::start_with(access);
    let notes = served.url("/notes.txt");
    for auth in [
        None,
        Some("editor:wrong"),
        Some("someone:correct horse"),
        Some("editor:"),
    ] {
        let mut args = vec!["-i"];
        if let Some(auth) = auth {
            args.extend(["-u", auth]);
        }
        args.push(&notes);
        let out = curl(&args);
        let reply = String::from_utf8_lossy(&out.stdout);
        assert!(reply.starts_with("HTTP/1.1 401"), "{auth:?}: {reply}");
        assert!(
            reply.contains("www-authenticate: Basic realm=\"markbase\""),
            "{reply}"
        );
        assert!(
            !reply.contains("shot list") && !reply.contains("editor"),
            "{reply}"
        );
        assert!(
            reply.trim_end().ends_with("content-length: 0") || !reply.contains("<"),
            "{reply}"
        );
    }
    let out = curl(&["-u", "editor:correct horse", &notes]);
    assert_eq!(out.stdout, b"shot list\n");
    // The user may write too.
    let out = status(&[
        "-u",
        "editor:correct horse",
        "-T",
        "-",
        &served.url("/new.txt"),
    ]);
    assert_eq!(out, "201");
}

#[test]
fn many_concurrent_gets_and_puts_complete() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let clip = served.url("/Day%201/clip.mov");
    let expected: Vec<u8> = (0..3_000_001u64).map(|at| pattern_byte(5, at)).collect();
    let uploads: Vec<_> = (0..16u64)
        .map(|i| {
            let path = served.dir.path().join(format!("up-{i}.bin"));
            write_pattern_file(&path, (1 << 20) + i * 4099, 100 + i).unwrap();
            path
        })
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| assert!(curl(&[&clip]).stdout == expected, "a GET got other bytes"));
        }
        for (i, upload) in uploads.iter().enumerate() {
            let url = served.url(&format!("/Day%201/up-{i}.bin"));
            scope.spawn(move || {
                let out = status(&["-T", upload.to_str().unwrap(), &url]);
                assert_eq!(out, "201", "PUT {url}");
            });
        }
    });
    for (i, upload) in uploads.iter().enumerate() {
        let out = curl(&[&served.url(&format!("/Day%201/up-{i}.bin"))]);
        assert!(
            out.stdout == std::fs::read(upload).unwrap(),
            "upload {i} reads back other bytes"
        );
    }
}

#[test]
fn locks_end_when_their_timeout_passes() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let notes = served.url("/notes.txt");
    let lockinfo = concat!(
        r#"<?xml version="1.0" encoding="utf-8"?>"#,
        r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>"#,
        r#"<D:locktype><D:write/></D:locktype><D:owner>test</D:owner></D:lockinfo>"#
    );
    let lock = |timeout: Option<&str>| {
        let mut args = vec![
            "-X",
            "LOCK",
            "-H",
            "Content-Type: application/xml",
            "--data-binary",
            lockinfo,
        ];
        if let Some(timeout) = timeout {
            args.extend(["-H", timeout]);
        }
        args.push(&notes);
        String::from_utf8_lossy(&curl(&args).stdout).into_owned()
    };
    let put = || status(&["-T", "-", &notes]);

    // A one-second lock blocks writers without its token, then ends by itself.
    let granted = lock(Some("Timeout: Second-1"));
    assert!(granted.contains("Second-1"), "{granted}");
    assert_eq!(put(), "423");
    std::thread::sleep(Duration::from_millis(2100));
    assert!(put().starts_with('2'), "the expired lock still blocks");

    // A lock asked for without a timeout, or for ever, gets a finite one.
    for timeout in [
        None,
        Some("Timeout: Infinite"),
        Some("Timeout: Second-999999"),
    ] {
        let granted = lock(timeout);
        let seconds: u64 = granted
            .split("<D:timeout>Second-")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{timeout:?}: no finite timeout in {granted}"));
        assert!(seconds <= 3600, "{timeout:?}: {seconds} s");
        let token = granted
            .split("<D:locktoken><D:href>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("a lock token");
        let out = status(&[
            "-X",
            "UNLOCK",
            "-H",
            &format!("Lock-Token: <{token}>"),
            &notes,
        ]);
        assert_eq!(out, "204");
    }
}

/// Sends `head` and then `body` on a raw connection, then closes it without
/// waiting for a reply: a client that goes away mid-upload.
fn send_and_hang_up(address: SocketAddr, head: &str, body: &[u8]) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    drop(stream);
}

#[test]
fn an_aborted_or_mis_announced_put_changes_nothing() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let notes = served.url("/notes.txt");
    let store_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(served.dir.path().join("warren-store"))
            .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default()
    };

    // The client announces 10 MB, sends 1 MB and hangs up: the old content stays,
    // and a new name never appears.
    for path in ["/notes.txt", "/never.bin"] {
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 10000000\r\n\r\n",
            served.address()
        );
        send_and_hang_up(served.address(), &head, &vec![b'x'; 1 << 20]);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
    let out = status(&[&served.url("/never.bin")]);
    assert_eq!(out, "404");
    assert!(
        store_files().is_empty(),
        "upload debris: {:?}",
        store_files()
    );

    // Finder's X-Expected-Entity-Length that does not match the body, with fewer bytes
    // than announced and with more: 400, and the old content stays.
    for announced in ["99", "2"] {
        let out = status(&[
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            &format!("X-Expected-Entity-Length: {announced}"),
            "--data-binary",
            "short",
            "-X",
            "PUT",
            &notes,
        ]);
        assert_eq!(out, "400", "announced {announced}");
        assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
    }
    assert!(
        store_files().is_empty(),
        "upload debris: {:?}",
        store_files()
    );

    // A complete PUT replaces the content.
    let out = status(&["--data-binary", "new list", "-X", "PUT", &notes]);
    assert_eq!(out, "204");
    assert_eq!(curl(&[&notes]).stdout, b"new list");
}

#[test]
fn uploads_beyond_the_free_space_or_stalling_are_refused_and_leave_nothing() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    if !markbase_testkit::is_root() {
        markbase_testkit::cannot_run("mounting a small tmpfs store needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let mounted = run_within(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&store),
        Duration::from_secs(30),
    );
    assert!(
        mounted.status.success(),
        "{}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(store.clone());
    let served = Served::start_configured(
        dir,
        Access::Anonymous,
        |config| config.store = Some(store.clone()),
        |server| server.with_body_idle(Duration::from_secs(1)),
    );
    let big = served.dir.path().join("big.bin");
    write_pattern_file(&big, 2 << 20, 1).unwrap();
    let store_is_empty = || std::fs::read_dir(&store).unwrap().next().is_none();

    // Announced too large: 507 before a byte is read.
    let out = status(&["-T", big.to_str().unwrap(), &served.url("/big.bin")]);
    assert_eq!(out, "507");
    // Chunked, so unannounced: cut off when it outgrows the store.
    let out = status(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-T",
        big.to_str().unwrap(),
        &served.url("/big.bin"),
    ]);
    assert!(out.starts_with('4') || out.starts_with('5'), "{out}");
    assert_eq!(status(&[&served.url("/big.bin")]), "404");
    assert!(store_is_empty());

    // A client that stops sending mid-body: the request fails after the idle time,
    // and nothing is kept.
    use std::io::Write;
    let mut stalled = std::net::TcpStream::connect(served.address()).unwrap();
    let head = format!(
        "PUT /stalled.bin HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\n",
        served.address()
    );
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&[b'x'; 100]).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status(&[&served.url("/stalled.bin")]), "404");
    assert!(store_is_empty(), "a stalled upload left bytes in the store");
    drop(stalled);

    // What fits still goes in.
    let small = served.dir.path().join("small.bin");
    write_pattern_file(&small, 100_000, 2).unwrap();
    assert_eq!(
        status(&["-T", small.to_str().unwrap(), &served.url("/small.bin")]),
        "201"
    );
    assert_eq!(
        curl(&[&served.url("/small.bin")]).stdout,
        std::fs::read(&small).unwrap()
    );
}

#[test]
fn conditional_requests_are_honoured() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let notes = served.url("/notes.txt");
    let head = String::from_utf8_lossy(&curl(&["-I", &notes]).stdout).into_owned();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let etag = header("etag");
    let modified = header("last-modified");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // Reads: unchanged since what the client has -> 304; otherwise the body.
    assert_eq!(
        status(&["-H", &format!("If-None-Match: {etag}"), &notes]),
        "304"
    );
    assert_eq!(status(&["-H", "If-None-Match: \"other\"", &notes]), "200");
    assert_eq!(
        status(&["-H", &format!("If-Modified-Since: {modified}"), &notes]),
        "304"
    );
    let long_ago = "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(status(&["-H", long_ago, &notes]), "200");

    // Writes: only over the version the client names, and If-None-Match: * only
    // where nothing exists.
    let put = |condition: &str, body: &str, url: &str| {
        status(&["-H", condition, "--data-binary", body, "-X", "PUT", url])
    };
    assert_eq!(put("If-Match: \"stale\"", "lost update", &notes), "412");
    assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
    assert_eq!(put("If-None-Match: *", "clobber", &notes), "412");
    assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
    assert_eq!(put(&format!("If-Match: {etag}"), "take two", &notes), "204");
    assert_eq!(curl(&[&notes]).stdout, b"take two");
    // The content changed, so the old ETag no longer matches.
    assert_eq!(
        put(&format!("If-Match: {etag}"), "take three", &notes),
        "412"
    );
    assert_eq!(
        put("If-None-Match: *", "fresh", &served.url("/fresh.txt")),
        "201"
    );
}

#[test]
fn properties_outlive_the_server() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let notes = served.url("/notes.txt");
    let patch = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:M="urn:markbase:test"><D:set><D:prop><M:rating>5 stars</M:rating></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(common::proppatch(&notes, patch), "207");
    let find = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:M="urn:markbase:test"><D:prop><M:rating/></D:prop></D:propfind>"#;
    let rating = |url: &str| {
        let out = curl(&[
            "-X",
            "PROPFIND",
            "-H",
            "Depth: 0",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            find,
            url,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(rating(&notes).contains("5 stars"), "{}", rating(&notes));
    // A listing shows it on its file only.
    let listing = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &served.url("/")]).stdout;
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(listing.matches("5 stars").count(), 1, "{listing}");
    assert_eq!(listing.matches("<D:response>").count(), 3, "{listing}");

    // A new server over the same catalog still has it; a COPY carries it along.
    let Served { server, dir } = served;
    drop(server);
    let served = Served::restart(dir);
    let notes = served.url("/notes.txt");
    assert!(rating(&notes).contains("5 stars"), "{}", rating(&notes));
    let copy = served.url("/copy.txt");
    let out = status(&["-X", "COPY", "-H", &format!("Destination: {copy}"), &notes]);
    assert_eq!(out, "201");
    assert!(rating(&copy).contains("5 stars"), "{}", rating(&copy));
}

#[test]
fn a_file_where_a_folder_should_be_is_a_missing_folder() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let below = |name: &str| served.url(&format!("/notes.txt/{name}"));
    // RFC 4918: no parent collection means 409 for PUT and MKCOL; reads find nothing.
    for (args, expected) in [
        (vec!["-X", "PUT", "--data-binary", "x"], "409"),
        (vec!["-X", "MKCOL"], "409"),
        (vec![], "404"),
        (vec!["-X", "DELETE"], "404"),
        (vec!["-X", "PROPFIND", "-H", "Depth: 0"], "404"),
    ] {
        for name in ["x", "._x"] {
            let url = below(name);
            let mut all = args.clone();
            all.push(&url);
            assert_eq!(status(&all), expected, "{args:?} {name}");
        }
    }
    assert_eq!(curl(&[&served.url("/notes.txt")]).stdout, b"shot list\n");
}

#[test]
fn propfind_getetag_is_the_etag_header() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let etag_of = |path: &str| {
        let head = curl(&["-sI", &served.url(path)]).stdout;
        String::from_utf8_lossy(&head)
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("etag")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no ETag for {path}"))
    };
    let notes = etag_of("/notes.txt");
    let clip = etag_of("/Day%201/clip.mov");
    assert!(notes.starts_with('"') && notes.ends_with('"'), "{notes}");
    for (path, depth, wanted) in [
        ("/notes.txt", "0", vec![&notes]),
        ("/", "1", vec![&notes]),
        ("/Day%201/", "1", vec![&clip]),
    ] {
        let out = curl(&[
            "-X",
            "PROPFIND",
            "-H",
            &format!("Depth: {depth}"),
            &served.url(path),
        ]);
        let reply = String::from_utf8_lossy(&out.stdout);
        for etag in wanted {
            assert!(
                reply.contains(&format!("<D:getetag>{etag}</D:getetag>")),
                "{path}: {reply}"
            );
        }
        assert!(
            !reply.contains("<D:getetag>n"),
            "a bare etag in {path}: {reply}"
        );
    }
}

#[test]
fn a_folder_s_etag_changes_with_its_entries() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let folder = served.url("/Day%201/");
    let etag = || {
        let out = curl(&["-X", "PROPFIND", "-H", "Depth: 0", &folder]);
        let reply = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = reply.find("<D:getetag>").expect("a getetag") + "<D:getetag>".len();
        let end = reply[start..].find("</D:getetag>").expect("its end") + start;
        reply[start..end].to_owned()
    };
    let mut seen = vec![etag()];
    let steps: [&[&str]; 3] = [
        &[
            "--data-binary",
            "new",
            "-X",
            "PUT",
            &served.url("/Day%201/new.txt"),
        ],
        &[
            "-X",
            "MOVE",
            "-H",
            &format!("Destination: {}", served.url("/Day%201/moved.txt")),
            &served.url("/Day%201/new.txt"),
        ],
        &["-X", "DELETE", &served.url("/Day%201/moved.txt")],
    ];
    for step in steps {
        let code = status(step);
        assert!(code.starts_with('2'), "{step:?}: {code}");
        let now = etag();
        assert!(
            !seen.contains(&now),
            "{step:?} left the folder's ETag at {now}"
        );
        seen.push(now);
    }
}
