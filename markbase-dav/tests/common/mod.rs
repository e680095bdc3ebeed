//! What the WebDAV test files share: a served catalog of a small imported tree, and
//! curl.

// Each test file uses its own part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use markbase_dav::{Access, Background, DavServer};
use markbase_testkit::{run_within, write_pattern_file};
use markbase_vfs::{Vfs, VfsConfig, import::ImportOptions};

/// A server on an ephemeral loopback port over a catalog of a small imported tree:
/// `notes.txt` ("shot list\n") and `Day 1/clip.mov` (3,000,001 pattern bytes, seed 5).
pub struct Served {
    /// Stopped when dropped, before the directory it serves goes.
    pub server: Background,
    /// Holds `media/` (the imported tree), `warren.sqlite` and `warren-store/`.
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// Serves to anyone, with the default settings.
    pub fn start() -> Self {
        Self::start_with(Access::Anonymous)
    }

    /// Serves to those `access` admits, with the default settings.
    pub fn start_with(access: Access) -> Self {
        Self::start_configured(
            tempfile::tempdir().unwrap(),
            access,
            |_| {},
            |server| server,
        )
    }

    /// Serves from `dir`, with the catalog's settings chosen by `vfs` and the
    /// server's by `server`.
    pub fn start_configured(
        dir: tempfile::TempDir,
        access: Access,
        vfs: impl FnOnce(&mut VfsConfig),
        server: impl FnOnce(DavServer) -> DavServer,
    ) -> Self {
        let source = dir.path().join("media");
        std::fs::create_dir_all(source.join("Day 1")).unwrap();
        write_pattern_file(&source.join("Day 1/clip.mov"), 3_000_001, 5).unwrap();
        std::fs::write(source.join("notes.txt"), b"shot list\n").unwrap();
        let catalog = dir.path().join("warren.sqlite");
        markbase_vfs::import::import(&source, &catalog, &ImportOptions::default()).unwrap();
        let mut config = VfsConfig::new(&catalog);
        vfs(&mut config);
        let vfs = Arc::new(Vfs::open(config).unwrap());

        let server =
            Background::start(vfs, "127.0.0.1:0".parse().unwrap(), access, server).unwrap();
        Self { dir, server }
    }

    /// Serves the catalog a stopped server left in `dir` again, with the defaults.
    pub fn restart(dir: tempfile::TempDir) -> Self {
        let vfs = Vfs::open(VfsConfig::new(dir.path().join("warren.sqlite"))).unwrap();
        let server = Background::start(
            Arc::new(vfs),
            "127.0.0.1:0".parse().unwrap(),
            Access::Anonymous,
            |server| server,
        )
        .unwrap();
        Self { dir, server }
    }

    /// The URL of `path` (already percent-encoded) on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address())
    }
}

/// Runs curl with `args`, which must succeed within 90 s.
pub fn curl(args: &[&str]) -> std::process::Output {
    let out = run_within(
        Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .args(args),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The HTTP status of a PROPPATCH of `url` with the XML body `update`.
pub fn proppatch(url: &str, update: &str) -> String {
    status(&[
        "-X",
        "PROPPATCH",
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        update,
        url,
    ])
}

/// The HTTP status curl got for `args` (the body is discarded).
pub fn status(args: &[&str]) -> String {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&curl(&all).stdout).into_owned()
}
