//! A browser's view of a served catalog: a GET of a folder is an HTML page whose
//! links lead to every entry, and a file's link downloads it.

mod common;

use common::{Served, curl, status};
use markbase_dav::{Access, Credentials};
use markbase_testkit::require_tool;

/// Names a page must show escaped and link to encoded.
const AWKWARD_FILE: &str = "a & b <c> \"d\".txt";
const AWKWARD_DIR: &str = "Ünïcode ☕ & <dir>";

/// Serves the common tree plus a file and a folder with awkward names.
fn served(access: Access, read_only: bool) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join(AWKWARD_DIR)).unwrap();
    std::fs::write(media.join(AWKWARD_FILE), b"awkward bytes").unwrap();
    std::fs::write(media.join(AWKWARD_DIR).join("inside.txt"), b"inside").unwrap();
    std::fs::write(media.join(".hidden"), b"dot file").unwrap();
    Served::start_configured(
        dir,
        access,
        |config| config.read_only = read_only,
        |server| server,
    )
}

/// The links of a listing page: (href, text) of every `<a href="...">...</a>`.
fn links(page: &str) -> Vec<(String, String)> {
    page.split("<a href=\"")
        .skip(1)
        .map(|rest| {
            let (href, rest) = rest.split_once('"').expect("a closing quote");
            let text = rest
                .split_once('>')
                .and_then(|(_, rest)| rest.split_once("</a>"))
                .map(|(text, _)| text)
                .expect("a link text");
            (href.to_owned(), text.to_owned())
        })
        .collect()
}

/// GETs `url` with `extra` curl arguments: the reply's head (lowercased) and body.
fn get(url: &str, extra: &[&str]) -> (String, Vec<u8>) {
    let mut args = vec!["-D", "-"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args).stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    (head, out[split + 4..].to_vec())
}

#[test]
fn a_folder_is_a_page_of_links_that_lead_to_every_entry() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    for read_only in [false, true] {
        let served = served(Access::Anonymous, read_only);
        let (head, body) = get(&served.url("/"), &[]);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("content-type: text/html; charset=utf-8"),
            "{head}"
        );
        let page = String::from_utf8(body).unwrap();
        let found = links(&page);
        let entries: Vec<(&str, &str)> = found
            .iter()
            .filter(|(href, _)| href != "..")
            .map(|(href, text)| (href.as_str(), text.as_str()))
            .collect();
        // Folders first, then files; names escaped, links percent-encoded; no dot files.
        assert_eq!(
            entries,
            [
                ("/Day%201/", "Day 1/"),
                (
                    "/%C3%9Cn%C3%AFcode%20%E2%98%95%20%26%20%3Cdir%3E/",
                    "Ünïcode ☕ &amp; &lt;dir&gt;/"
                ),
                (
                    "/a%20%26%20b%20%3Cc%3E%20%22d%22.txt",
                    "a &amp; b &lt;c&gt; &quot;d&quot;.txt"
                ),
                ("/notes.txt", "notes.txt"),
            ],
            "read_only {read_only}:\n{page}"
        );
        assert!(!page.contains("hidden"), "{page}");

        // Each link works: a file's downloads its bytes, a folder's is its own page.
        let (_, bytes) = get(&served.url(entries[2].0), &[]);
        assert_eq!(bytes, b"awkward bytes");
        let (_, bytes) = get(&served.url("/notes.txt"), &[]);
        assert_eq!(bytes, b"shot list\n");
        let (head, sub) = get(&served.url(entries[1].0), &[]);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let sub = String::from_utf8(sub).unwrap();
        let inside = links(&sub)
            .into_iter()
            .find(|(_, text)| text == "inside.txt")
            .unwrap_or_else(|| panic!("{sub}"));
        assert_eq!(get(&served.url(&inside.0), &[]).1, b"inside");
        let (_, day) = get(&served.url("/Day%201/"), &[]);
        let day = String::from_utf8(day).unwrap();
        assert!(
            day.contains("<a href=\"/Day%201/clip.mov\">clip.mov</a>"),
            "{day}"
        );

        // HEAD: the same head, no body.
        let out = curl(&["-I", &served.url("/Day%201/")]).stdout;
        let head = String::from_utf8_lossy(&out).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(!head.contains("<html"), "{head}");
        // A folder without its slash is redirected to it, as browsers expect.
        let (head, _) = get(&served.url("/Day%201"), &[]);
        assert!(head.starts_with("http/1.1 302"), "{head}");
        assert!(head.contains("location: /day%201/"), "{head}");
        // WebDAV clients still list with PROPFIND.
        let code = status(&["-X", "PROPFIND", "-H", "Depth: 1", &served.url("/")]);
        assert_eq!(code, "207");
    }
}

#[test]
fn a_folder_page_needs_the_credentials_the_server_needs() {
    let Some(_) = require_tool("curl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let credentials = Credentials::from_password_file("editor", &password_file).unwrap();
    let served = served(Access::Basic(credentials), false);
    for url in [served.url("/"), served.url("/Day%201/")] {
        let (head, body) = get(&url, &[]);
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(!String::from_utf8_lossy(&body).contains("notes.txt"));
        let (head, _) = get(&url, &["-u", "editor:wrong"]);
        assert!(head.starts_with("http/1.1 401"), "{head}");
    }
    let (head, body) = get(&served.url("/"), &["-u", "editor:correct horse"]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("<a href=\"/notes.txt\">notes.txt</a>"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}
