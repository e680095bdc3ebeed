//! macOS Finder's way of using a WebDAV server, replayed with curl: locked chunked
//! uploads with `X-Expected-Entity-Length`, AppleDouble and `.DS_Store` files kept out
//! of the catalog, and the probe files that keep Spotlight and Quick Look away.

mod common;

use std::path::Path;

use common::{Served, curl, status};
use markbase_dav::Access;
use markbase_testkit::{pattern_byte, require_tool, write_pattern_file};
use markbase_vfs::{Vfs, VfsConfig, finder::FinderFiles};

const LOCK_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>Finder</D:href></D:owner></D:lockinfo>"#;

/// Locks `url` as Finder does before it writes; the lock token.
fn lock(url: &str) -> String {
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "LOCK",
        "-H",
        "Timeout: Second-600",
        "-H",
        "Depth: 0",
        "-H",
        "Content-Type: text/xml; charset=\"utf-8\"",
        "--data-binary",
        LOCK_BODY,
        url,
    ]);
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 201"),
        "{head}"
    );
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("lock-token")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Lock-Token in {head}"))
}

/// Copies `source` to `url` as Finder does: LOCK, a chunked PUT that announces its
/// length in `X-Expected-Entity-Length`, UNLOCK. The PUT's status.
fn finder_copy(source: &Path, url: &str) -> String {
    let token = lock(url);
    let length = std::fs::metadata(source).unwrap().len().to_string();
    let put = status(&[
        "-X",
        "PUT",
        "-T",
        source.to_str().unwrap(),
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        &format!("X-Expected-Entity-Length: {length}"),
        "-H",
        &format!("If: ({token})"),
        url,
    ]);
    let unlock = status(&["-X", "UNLOCK", "-H", &format!("Lock-Token: {token}"), url]);
    assert_eq!(unlock, "204");
    put
}

/// What a PROPFIND with `depth` of `url` lists, and its status.
fn propfind(url: &str, depth: &str) -> (String, String) {
    let out = curl(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "PROPFIND",
        "-H",
        &format!("Depth: {depth}"),
        url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.to_owned())
}

/// The status of a MOVE of `from` to `to` (paths on `served`).
fn move_to(served: &Served, from: &str, to: &str) -> String {
    let destination = format!("Destination: {}", served.url(to));
    status(&["-X", "MOVE", "-H", &destination, &served.url(from)])
}

fn fresh_vfs(served: &Served) -> Vfs {
    Vfs::open(VfsConfig::new(served.dir.path().join("warren.sqlite"))).unwrap()
}

#[test]
fn finder_copies_keep_apple_double_and_ds_store_out_of_the_catalog() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let clip = served.dir.path().join("new.mov");
    write_pattern_file(&clip, 5_000_000, 9).unwrap();
    let fork = served.dir.path().join("fork");
    std::fs::write(&fork, b"\x00\x05\x16\x07 AppleDouble resource fork").unwrap();

    assert_eq!(finder_copy(&clip, &served.url("/Day%201/new.mov")), "204");
    assert_eq!(finder_copy(&fork, &served.url("/Day%201/._new.mov")), "204");
    let out = status(&[
        "-X",
        "PUT",
        "--data-binary",
        "view state",
        &served.url("/Day%201/.DS_Store"),
    ]);
    assert_eq!(out, "201");

    // Finder reads back what it wrote.
    let got = curl(&[&served.url("/Day%201/new.mov")]).stdout;
    assert_eq!(got.len(), 5_000_000);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(9, i as u64))
    );
    let got = curl(&[&served.url("/Day%201/._new.mov")]).stdout;
    assert_eq!(got, std::fs::read(&fork).unwrap());
    let (body, code) = propfind(&served.url("/Day%201/.DS_Store"), "0");
    assert_eq!(code, "207", "{body}");
    assert!(body.contains("<D:getcontentlength>10<"), "{body}");
    assert!(body.contains("getetag"), "{body}");

    // No one lists them, and the catalog has no node for them.
    let (listing, code) = propfind(&served.url("/Day%201/"), "1");
    assert_eq!(code, "207");
    assert!(
        listing.contains("new.mov") && listing.contains("clip.mov"),
        "{listing}"
    );
    assert!(
        !listing.contains("._new.mov") && !listing.contains(".DS_Store"),
        "{listing}"
    );
    let vfs = fresh_vfs(&served);
    assert_eq!(vfs.lookup_path("/Day 1/new.mov").unwrap().size, 5_000_000);
    for path in ["/Day 1/._new.mov", "/Day 1/.DS_Store"] {
        let id = vfs.lookup_path(path).unwrap().id;
        assert!(!id.in_catalog(), "{path} is catalog node {id}");
    }
    let day = vfs.lookup_path("/Day 1").unwrap().id;
    let area = served.dir.path().join(format!("warren-store/finder/{day}"));
    assert_eq!(
        std::fs::read(area.join(".DS_Store")).unwrap(),
        b"view state"
    );

    // A PUT cut short leaves a Finder file as it was, and no temporary file behind.
    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(served.address()).unwrap();
        let head = format!(
            "PUT /Day%201/._new.mov HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\n",
            served.address()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[b'x'; 100]).unwrap();
    }
    // The server notices the hang-up at once; give it the time to clean up.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut left: Vec<_> = std::fs::read_dir(&area)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".DS_Store", "._new.mov"]);
    assert_eq!(
        curl(&[&served.url("/Day%201/._new.mov")]).stdout,
        std::fs::read(&fork).unwrap()
    );

    // They move, and are deleted, by name.
    let out = move_to(&served, "/Day%201/._new.mov", "/Day%201/._renamed.mov");
    assert_eq!(out, "201");
    assert_eq!(status(&[&served.url("/Day%201/._new.mov")]), "404");
    assert_eq!(
        curl(&[&served.url("/Day%201/._renamed.mov")]).stdout,
        std::fs::read(&fork).unwrap()
    );
    // Not into the catalog, though.
    let out = move_to(&served, "/Day%201/._renamed.mov", "/Day%201/renamed.mov");
    assert_eq!(out, "403");
    assert_eq!(
        status(&["-X", "DELETE", &served.url("/Day%201/.DS_Store")]),
        "204"
    );
    assert!(!area.join(".DS_Store").exists());

    // A folder that goes takes its Finder files along.
    assert_eq!(status(&["-X", "DELETE", &served.url("/Day%201")]), "204");
    assert!(!area.exists(), "{} is still there", area.display());
    assert!(fresh_vfs(&served).check().unwrap().is_clean());
}

#[test]
fn probe_files_keep_spotlight_and_quick_look_away() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    for name in markbase_vfs::finder::PROBE_FILES {
        let url = served.url(&format!("/{name}"));
        let (body, code) = propfind(&url, "0");
        assert_eq!(code, "207", "{name}: {body}");
        assert!(body.contains("<D:getcontentlength>0<"), "{body}");
        let out = curl(&["-w", "%{http_code}", &url]);
        assert_eq!(out.stdout, b"200");
        assert_eq!(status(&["-X", "PUT", "--data-binary", "x", &url]), "403");
        assert_eq!(status(&["-X", "DELETE", &url]), "403");
        // Only at the root, and never listed.
        assert_eq!(status(&[&served.url(&format!("/Day%201/{name}"))]), "404");
    }
    let (listing, _) = propfind(&served.url("/"), "1");
    assert!(!listing.contains(".metadata_never_index"), "{listing}");
    assert!(!listing.contains(".ql_disablethumbnails"), "{listing}");
    assert_eq!(status(&[&served.url("/.localized")]), "404");
    assert_eq!(status(&[&served.url("/Day%201/.localized")]), "404");
}

#[test]
fn finder_files_can_be_kept_in_the_catalog() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start_configured(
        tempfile::tempdir().unwrap(),
        Access::Anonymous,
        |config| config.finder_files = FinderFiles::InCatalog,
        |server| server,
    );
    let out = status(&[
        "-X",
        "PUT",
        "--data-binary",
        "fork",
        &served.url("/._clip.mov"),
    ]);
    assert_eq!(out, "201");
    let (listing, _) = propfind(&served.url("/"), "1");
    assert!(listing.contains("._clip.mov"), "{listing}");
    assert_eq!(
        fresh_vfs(&served).lookup_path("/._clip.mov").unwrap().size,
        4
    );
}

#[test]
fn a_read_only_server_takes_no_locks_so_finder_mounts_it_read_only() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start_configured(
        tempfile::tempdir().unwrap(),
        Access::Anonymous,
        |config| config.read_only = true,
        |server| server,
    );
    let notes = served.url("/notes.txt");
    let out = curl(&["-D", "-", "-o", "/dev/null", "-X", "OPTIONS", &notes]);
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let allow = head
        .lines()
        .find(|line| line.starts_with("allow:"))
        .unwrap_or_else(|| panic!("no Allow header: {head}"));
    assert!(
        !allow.contains("lock") && allow.contains("propfind"),
        "{allow}"
    );
    let lock = status(&[
        "-X",
        "LOCK",
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        LOCK_BODY,
        &notes,
    ]);
    assert_eq!(lock, "405");
    // Reading works; writing does not, Finder files included.
    assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
    for path in ["/notes.txt", "/._notes.txt", "/.DS_Store"] {
        let out = status(&["-X", "PUT", "--data-binary", "x", &served.url(path)]);
        assert_eq!(out, "403", "{path}");
    }
    assert_eq!(curl(&[&notes]).stdout, b"shot list\n");
}

#[test]
fn finder_files_copy_among_themselves_and_take_no_properties() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let served = Served::start();
    let put =
        |path: &str, body: &str| status(&["-X", "PUT", "--data-binary", body, &served.url(path)]);
    assert_eq!(put("/._notes.txt", "fork"), "201");
    let copy = |from: &str, to: &str| {
        let destination = format!("Destination: {}", served.url(to));
        status(&["-X", "COPY", "-H", &destination, &served.url(from)])
    };
    assert_eq!(copy("/._notes.txt", "/Day%201/._notes.txt"), "201");
    assert_eq!(curl(&[&served.url("/Day%201/._notes.txt")]).stdout, b"fork");
    // Over an existing one.
    assert_eq!(put("/._other", "other"), "201");
    assert_eq!(copy("/._other", "/Day%201/._notes.txt"), "204");
    assert_eq!(
        curl(&[&served.url("/Day%201/._notes.txt")]).stdout,
        b"other"
    );
    // Never into or out of the catalog.
    assert_eq!(copy("/._notes.txt", "/copied.txt"), "403");
    assert_eq!(copy("/notes.txt", "/._copied.txt"), "403");
    assert_eq!(status(&[&served.url("/copied.txt")]), "404");
    assert_eq!(status(&[&served.url("/._copied.txt")]), "404");

    let update = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test"><D:set><D:prop><Z:tag>x</Z:tag></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(
        common::proppatch(&served.url("/._notes.txt"), update),
        "403"
    );
    let vfs = fresh_vfs(&served);
    for path in ["/._notes.txt", "/Day 1/._notes.txt", "/._other"] {
        assert!(!vfs.lookup_path(path).unwrap().id.in_catalog(), "{path}");
    }
}
