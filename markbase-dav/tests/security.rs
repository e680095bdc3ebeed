//! Hostile and malformed requests against a served catalog: paths that try to leave
//! it, oversized heads and bodies, slow clients. Each must fail with a 4xx (or a
//! dropped connection), change nothing, and leave the server serving.
//!
//! Requests go over raw TCP, written byte for byte, so no client library normalises
//! a path before the server sees it.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Served, curl, status};
use markbase_dav::Access;
use markbase_testkit::{require_tool, run_within};

/// How long a single request may take before the test calls it a hang.
const NO_HANG: Duration = Duration::from_secs(10);

/// What is written in every sentinel file outside the served directory.
const SENTINEL: &str = "sentinel: outside the catalog";

/// A served catalog inside a directory that also holds files it must never reach:
/// `etc/passwd`, `outside/secret.txt` and `outside/dir/file`, beside `served…/` (the
/// catalog, its imported `media/`, its `warren-store/`).
struct Sandbox {
    served: Served,
    /// The directory holding `served/` and the sentinels; removed last.
    top: tempfile::TempDir,
}

impl Sandbox {
    fn start() -> Self {
        Self::start_configured(|server| server)
    }

    fn start_configured(
        configure: impl FnOnce(markbase_dav::DavServer) -> markbase_dav::DavServer,
    ) -> Self {
        let top = tempfile::tempdir().unwrap();
        for dir in ["etc", "outside/dir", "served"] {
            std::fs::create_dir_all(top.path().join(dir)).unwrap();
        }
        for file in ["etc/passwd", "outside/secret.txt", "outside/dir/file"] {
            std::fs::write(top.path().join(file), SENTINEL).unwrap();
        }
        let dir = tempfile::Builder::new()
            .prefix("served")
            .tempdir_in(top.path())
            .unwrap();
        let served = Served::start_configured(dir, Access::Anonymous, |_| {}, configure);
        Self { served, top }
    }

    fn address(&self) -> SocketAddr {
        self.served.address()
    }

    /// Every file and directory under the top directory, but the catalog's own files
    /// (compared through [`Sandbox::catalog_rows`]): kind, size, contents' digest and
    /// modification time.
    fn tree(&self) -> BTreeMap<PathBuf, String> {
        fn walk(top: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("warren.sqlite") {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let relative = path.strip_prefix(top).unwrap().to_owned();
                if meta.is_dir() {
                    into.insert(relative, String::from("dir"));
                    walk(top, &path, into);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
                        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
                    });
                    into.insert(
                        relative,
                        format!(
                            "{:?} {} bytes, digest {digest:x}, modified {:?}",
                            meta.file_type(),
                            meta.len(),
                            meta.modified().unwrap()
                        ),
                    );
                }
            }
        }
        let mut tree = BTreeMap::new();
        walk(self.top.path(), self.top.path(), &mut tree);
        tree
    }

    /// Every row of the catalog's `nodes` table, read by another process.
    fn catalog_rows(&self) -> String {
        let catalog = self.served.dir.path().join("warren.sqlite");
        let out = run_within(
            Command::new("sqlite3").arg(&catalog).arg(
                "SELECT id, parent_id, name, kind, size, mtime_ns, aliases_json \
                 FROM nodes ORDER BY id",
            ),
            NO_HANG,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Both of the above: what must not change.
    fn state(&self) -> (BTreeMap<PathBuf, String>, String) {
        (self.tree(), self.catalog_rows())
    }

    /// The server still answers: `/notes.txt` reads back whole, from a new connection.
    fn assert_serving(&self) {
        let reply = exchange(
            self.address(),
            &request(self.address(), "GET", "/notes.txt", &[], b""),
        );
        assert_eq!(reply.status, Some(200), "{reply:?}");
        assert!(reply.body.ends_with(b"\r\n\r\nshot list\n"), "{reply:?}");
    }
}

/// What came back on a connection.
#[derive(Debug)]
struct Reply {
    /// The status of the first response, if one came before the connection closed.
    status: Option<u16>,
    /// Everything read, head included.
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request with `target` exactly as given on the request line, `Host: address`,
/// `Connection: close`, `headers` and `body`.
fn request(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes` on a new connection while reading what comes back until the server
/// closes it; a server that neither answers nor closes within [`NO_HANG`] fails the
/// test. Writing goes on in another thread, so a server that answers early and
/// closes is seen answering.
fn exchange(address: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(NO_HANG)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // The server may close before taking it all: that is an answer too.
            let _ = writer.write_all(bytes);
            let _ = writer.flush();
        });
        let mut body = Vec::new();
        let mut chunk = [0u8; 64 << 10];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "no end of the reply after {:?}: {}",
                        started.elapsed(),
                        String::from_utf8_lossy(&body)
                    )
                }
                // Reset: the server closed with bytes of ours unread.
                Err(_) => break,
            }
        }
        // The connection is shut down before the writer can block on it.
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let status = body
            .strip_prefix(b"HTTP/1.1 ")
            .and_then(|rest| std::str::from_utf8(rest.get(..3)?).ok())
            .and_then(|code| code.parse().ok());
        Reply { status, body }
    })
}

/// Request targets that name something outside the catalog, or no valid name.
fn hostile_targets(address: SocketAddr) -> Vec<(String, String)> {
    let mut targets: Vec<(String, String)> = [
        "/../etc/passwd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/etc/passwd",
        "/.%2e/etc/passwd",
        "/Day%201/../../etc/passwd",
        "/Day%201/..%2f..%2fetc",
        "/Day%201/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/a%2fb",
        "/..\\..\\etc\\passwd",
        "/%5c..%5cetc",
        "/Day%201\\..\\..\\etc",
        "/back%5Cslash",
        "/x%00y",
        "/notes.txt%00.jpg",
        "/%c0%ae%c0%ae/etc/passwd",
        "/%ff%fe",
        "http://other.example/../../etc/passwd",
    ]
    .iter()
    .map(|target| (target.to_string(), target.to_string()))
    .collect();
    let here = format!("http://{address}/%2e%2e/%2e%2e/etc/passwd");
    targets.push((here.clone(), here));
    targets.push(("/ + 300-byte name".into(), format!("/{}", "n".repeat(300))));
    targets.push((
        "/Day 1/ + 256-byte name".into(),
        format!("/Day%201/{}", "n".repeat(256)),
    ));
    targets.push((
        "/ + 5000-byte name".into(),
        format!("/{}", "p".repeat(5000)),
    ));
    targets.push((
        "5000-byte path of 25 names".into(),
        "/".to_owned() + &format!("{}/", "q".repeat(199)).repeat(25),
    ));
    targets.push((
        "2000 a/ components".into(),
        format!("/{}", "a/".repeat(2000)),
    ));
    targets.push((
        "2000 a/ then ../ x2001".into(),
        format!("/{}{}etc/passwd", "a/".repeat(2000), "../".repeat(2001)),
    ));
    targets
}

/// Destination headers that name something outside the catalog, another server, or
/// no valid name.
fn hostile_destinations(address: SocketAddr) -> Vec<String> {
    let mut destinations: Vec<String> = [
        "/../outside/stolen.txt",
        "/%2e%2e/outside/stolen.txt",
        "/Day%201/../../outside/stolen.txt",
        "/Day%201/..%2f..%2foutside",
        "/a%2fb",
        "/..\\outside\\stolen.txt",
        "/%5c..%5coutside",
        "/back%5cslash",
        "/x%00y",
        "http://other.example/stolen.txt",
        "https://other.example/stolen.txt",
        "http://other.example/../../outside/stolen.txt",
        "http://127.0.0.1:1/stolen.txt",
        "//other.example/stolen.txt",
        "file:///tmp/stolen.txt",
        "not a url",
    ]
    .iter()
    .map(|destination| destination.to_string())
    .collect();
    let port = address.port();
    destinations.extend([
        format!("http://localhost:{port}/stolen.txt"),
        format!("http://{address}@other.example/stolen.txt"),
        format!("ftp://{address}/stolen.txt"),
        format!("http://{address}/../outside/stolen.txt"),
        format!("http://{address}/%2e%2e/outside/stolen.txt"),
        format!("http://{address}/back%5cslash"),
        format!("http://{address}/{}", "n".repeat(300)),
        format!("/{}", "n".repeat(300)),
        format!("/{}", "a/".repeat(2000)),
        format!("/{}", "a/".repeat(3000)),
    ]);
    destinations
}

#[test]
fn hostile_paths_get_4xx_and_change_nothing() {
    let Some(_) = require_tool("sqlite3") else {
        return;
    };
    let sandbox = Sandbox::start();
    let before = sandbox.state();
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    let mut check = |what: String, reply: Reply| {
        let status = reply.status;
        let text = reply.text();
        table.push(format!("{what:<70} -> {status:?}"));
        if !status.is_some_and(|status| (400..500).contains(&status)) {
            wrong.push(format!("{what}: {status:?}\n{text}"));
        } else if text.contains(SENTINEL) || text.contains("root:") {
            wrong.push(format!("{what}: leaked a file outside\n{text}"));
        }
    };

    let address = sandbox.address();
    for (name, target) in hostile_targets(address) {
        let shown: String = name.chars().take(60).collect();
        for (method, headers, body) in [
            ("GET", vec![], &b""[..]),
            ("HEAD", vec![], b""),
            ("PUT", vec![], b"pwned\n"),
            ("DELETE", vec![], b""),
            ("MKCOL", vec![], b""),
            ("PROPFIND", vec!["Depth: 1"], b""),
            (
                "PROPPATCH",
                vec!["Content-Type: application/xml"],
                PROPPATCH,
            ),
            ("LOCK", vec!["Content-Type: application/xml"], LOCKINFO),
            ("COPY", vec!["Destination: /copied.txt"], b""),
            ("MOVE", vec!["Destination: /moved.txt"], b""),
        ] {
            let reply = exchange(address, &request(address, method, &target, &headers, body));
            check(format!("{method} {shown}"), reply);
        }
    }
    for destination in hostile_destinations(address) {
        let shown: String = destination.chars().take(55).collect();
        let header = format!("Destination: {destination}");
        for (method, source) in [
            ("COPY", "/notes.txt"),
            ("MOVE", "/notes.txt"),
            ("COPY", "/Day%201"),
            ("MOVE", "/Day%201/"),
        ] {
            let overwrite = ["Overwrite: T", "Overwrite: F"];
            for extra in overwrite {
                let reply = exchange(
                    address,
                    &request(address, method, source, &[&header, extra], b""),
                );
                check(format!("{method} {source} to {shown} ({extra})"), reply);
            }
        }
    }
    // Bytes the request line may not hold at all.
    for (name, target) in [
        ("raw NUL", &b"/x\0y"[..]),
        ("raw control byte", b"/x\x01y"),
        ("raw DEL", b"/x\x7fy"),
        ("raw UTF-8", "/caf\u{e9}".as_bytes()),
        ("raw space", b"/x y/../../etc/passwd"),
    ] {
        for method in ["GET", "PUT"] {
            let mut bytes = format!("{method} ").into_bytes();
            bytes.extend_from_slice(target);
            bytes.extend_from_slice(
                format!(" HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n").as_bytes(),
            );
            bytes.extend_from_slice(b"Content-Length: 6\r\n\r\npwned\n");
            check(format!("{method} {name}"), exchange(address, &bytes));
        }
    }

    for line in &table {
        println!("{line}");
    }
    assert!(
        wrong.is_empty(),
        "not refused with a 4xx:\n{}",
        wrong.join("\n\n")
    );
    assert_eq!(
        sandbox.state(),
        before,
        "a hostile request changed something"
    );
    sandbox.assert_serving();
    // What is inside is still reachable, however the path is spelled.
    let clip = "/Day%201/../Day%201/./%2e/clip.mov";
    let reply = exchange(address, &request(address, "HEAD", clip, &[], b""));
    assert_eq!(reply.status, Some(200), "{reply:?}");
    // And a COPY to this server, named by URL or by path, still goes ahead.
    for (destination, copy) in [
        (format!("http://{address}/copy%201.txt"), "/copy%201.txt"),
        (
            format!("http://LOCALHOST:{}/c.txt", address.port()),
            "/c.txt",
        ),
        (String::from("/Day%201/../copy%202.txt"), "/copy%202.txt"),
    ] {
        let header = format!("Destination: {destination}");
        let copying = request(address, "COPY", "/notes.txt", &[&header], b"");
        let host = format!("Host: {address}");
        // The Host a client sends names the server as it knows it.
        let copying = if destination.contains("LOCALHOST") {
            let localhost = format!("Host: localhost:{}", address.port());
            String::from_utf8(copying)
                .unwrap()
                .replace(&host, &localhost)
                .into_bytes()
        } else {
            copying
        };
        let reply = exchange(address, &copying);
        assert_eq!(reply.status, Some(201), "{destination}: {reply:?}");
        let reply = exchange(address, &request(address, "GET", copy, &[], b""));
        assert!(reply.body.ends_with(b"\r\n\r\nshot list\n"), "{reply:?}");
    }
}

const PROPPATCH: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop><Z:a>b</Z:a></D:prop></D:set></D:propertyupdate>"#;

const LOCKINFO: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;

#[test]
fn curl_path_as_is_cannot_leave_the_catalog() {
    let (Some(_), Some(_)) = (require_tool("curl"), require_tool("sqlite3")) else {
        return;
    };
    let sandbox = Sandbox::start();
    let before = sandbox.state();
    let base = sandbox.served.url("");
    for path in [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
    ] {
        let url = format!("{base}{path}");
        let out = curl(&["--path-as-is", "-w", "\n%{http_code}", &url]);
        let said = String::from_utf8_lossy(&out.stdout);
        let code = said.rsplit('\n').next().unwrap();
        assert!(code.starts_with('4'), "{path}: {said}");
        assert!(
            !said.contains(SENTINEL) && !said.contains("root:"),
            "{said}"
        );
        let code = status(&["--path-as-is", "-T", "-", &url]);
        assert!(code.starts_with('4'), "PUT {path}: {code}");
    }
    assert_eq!(sandbox.state(), before);
    sandbox.assert_serving();
}

#[test]
fn oversized_heads_and_bodies_fail_and_the_server_goes_on() {
    let Some(_) = require_tool("sqlite3") else {
        return;
    };
    let sandbox = Sandbox::start();
    let before = sandbox.state();
    let address = sandbox.address();
    let mut table = Vec::new();

    // A head over the 64 KiB limit: one huge header, many headers, a huge request line.
    let huge_header = format!("X-Huge: {}", "h".repeat(100 << 10));
    let many: Vec<String> = (0..2000)
        .map(|i| format!("X-Many-{i}: {}", "m".repeat(40)))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let long_target = format!("/{}", "u".repeat(100 << 10));
    for (what, method, target, headers) in [
        (
            "100 KiB header",
            "GET",
            "/notes.txt",
            vec![huge_header.as_str()],
        ),
        (
            "100 KiB header on a PUT",
            "PUT",
            "/new.txt",
            vec![huge_header.as_str()],
        ),
        ("2000 headers", "GET", "/notes.txt", many.clone()),
        ("2000 headers on a PUT", "PUT", "/new.txt", many.clone()),
        ("100 KiB request line", "GET", long_target.as_str(), vec![]),
        (
            "100 KiB request line PUT",
            "PUT",
            long_target.as_str(),
            vec![],
        ),
    ] {
        let reply = exchange(
            address,
            &request(address, method, target, &headers, b"pwned\n"),
        );
        table.push(format!("{what:<40} -> {:?}", reply.status));
        // hyper answers 431 and closes; the reset may beat the answer to the client.
        assert!(
            reply
                .status
                .is_none_or(|status| status == 431 || status == 414),
            "{what}: {reply:?}"
        );
        assert!(reply.status.is_some() || reply.body.is_empty(), "{reply:?}");
        sandbox.assert_serving();
    }

    // Bodies over dav-server's 64 KiB for the methods whose body it reads whole.
    let big = vec![b' '; 1 << 20];
    for (method, path, headers) in [
        (
            "PROPFIND",
            "/",
            vec!["Depth: 1", "Content-Type: application/xml"],
        ),
        (
            "PROPPATCH",
            "/notes.txt",
            vec!["Content-Type: application/xml"],
        ),
        ("LOCK", "/notes.txt", vec!["Content-Type: application/xml"]),
    ] {
        let reply = exchange(address, &request(address, method, path, &headers, &big));
        let what = format!("{method} with a 1 MiB body");
        table.push(format!("{what:<40} -> {:?}", reply.status));
        assert!(
            reply.status.is_none_or(|status| status == 413),
            "{method}: {reply:?}"
        );
        sandbox.assert_serving();
    }

    // PUTs announcing more than any store has, or lengths that are not lengths.
    for (what, headers) in [
        (
            "Content-Length u64::MAX",
            vec!["Content-Length: 18446744073709551615"],
        ),
        (
            "Content-Length 2^64",
            vec!["Content-Length: 18446744073709551616"],
        ),
        ("Content-Length -1", vec!["Content-Length: -1"]),
        (
            "two Content-Lengths",
            vec!["Content-Length: 6", "Content-Length: 600"],
        ),
        (
            "X-Expected-Entity-Length u64::MAX",
            vec![
                "Transfer-Encoding: chunked",
                "X-Expected-Entity-Length: 18446744073709551615",
            ],
        ),
    ] {
        let mut bytes =
            format!("PUT /new.txt HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n")
                .into_bytes();
        for header in &headers {
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        if what.starts_with("X-Expected") {
            bytes.extend_from_slice(b"6\r\npwned\n\r\n0\r\n\r\n");
        } else {
            bytes.extend_from_slice(b"pwned\n");
        }
        let reply = exchange(address, &bytes);
        let what = format!("PUT, {what}");
        table.push(format!("{what:<40} -> {:?}", reply.status));
        assert!(
            reply
                .status
                .is_some_and(|status| (400..500).contains(&status) || status == 507),
            "{what}: {reply:?}"
        );
        sandbox.assert_serving();
    }

    for line in &table {
        println!("{line}");
    }
    assert_eq!(
        sandbox.state(),
        before,
        "a refused request changed something"
    );
}

/// Reads `stream` until the server closes it, failing if that takes over `limit`.
/// Returns what it sent first, if anything.
fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    started.elapsed() < limit,
                    "the connection is still open after {limit:?}"
                );
            }
            Err(_) => return got,
        }
    }
}

/// Waits until the server drops `stream` (within `limit`), which it must do no
/// sooner than `timeout` after `started`, saying nothing or 408.
fn assert_dropped(stream: &mut TcpStream, started: Instant, timeout: Duration, limit: Duration) {
    let got = wait_for_close(stream, limit);
    let after = started.elapsed();
    assert!(after >= timeout, "dropped after {after:?}");
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn slow_request_heads_are_dropped_while_others_are_served() {
    let Some(_) = require_tool("sqlite3") else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let sandbox = Sandbox::start_configured(|server| server.with_header_timeout(timeout));
    let before = sandbox.state();
    let address = sandbox.address();

    // Half a request line, then nothing.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled.write_all(b"PUT /stalled.txt HT").unwrap();
    // Another client is served meanwhile.
    sandbox.assert_serving();
    assert_dropped(&mut stalled, started, timeout, Duration::from_secs(10));

    // A complete request line, then a header a byte every 50 ms for 10 s (slowloris):
    // the timeout is for the whole head, so sending does not keep it open (were it
    // reset by each byte, the connection would stay open past the 8 s allowed).
    let started = Instant::now();
    let mut slow = TcpStream::connect(address).unwrap();
    slow.write_all(format!("PUT /slow.txt HTTP/1.1\r\nHost: {address}\r\nX-Slow: ").as_bytes())
        .unwrap();
    let mut writer = slow.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        for _ in 0..200 {
            if writer.write_all(b"s").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    sandbox.assert_serving();
    assert_dropped(&mut slow, started, timeout, Duration::from_secs(8));
    // Stops the sender, if the server's close has not yet.
    let _ = slow.shutdown(std::net::Shutdown::Both);
    sending.join().unwrap();

    // A connection that says nothing at all.
    let started = Instant::now();
    let mut silent = TcpStream::connect(address).unwrap();
    let got = wait_for_close(&mut silent, Duration::from_secs(8));
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(started.elapsed() >= timeout);

    sandbox.assert_serving();
    assert_eq!(sandbox.state(), before);
    // The connections were dropped, not served late.
    for path in ["/stalled.txt", "/slow.txt"] {
        let reply = exchange(address, &request(address, "GET", path, &[], b""));
        assert_eq!(reply.status, Some(404), "{reply:?}");
    }
}
