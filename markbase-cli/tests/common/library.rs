//! A small library (a catalog of a few files) with an empty mount point, for the test
//! files that mount it through the binary (Linux).

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use markbase_testkit::write_pattern_file;
use tempfile::TempDir;

use super::daemon::Daemon;
use super::{NOBODY, as_nobody, markbase, run, stderr};

/// A temp dir with a catalog of a few files and an empty mount point `mnt`.
pub struct Library {
    pub dir: TempDir,
    /// `media/clip.mov`, imported as `/clip.mov`.
    pub clip: Vec<u8>,
}

impl Library {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = dir.path().join("media");
        fs::create_dir_all(media.join("Day 1")).unwrap();
        write_pattern_file(&media.join("clip.mov"), (1 << 20) + 3, 5).unwrap();
        fs::write(media.join("Day 1/notes.txt"), "take 3 is the one\n").unwrap();
        fs::create_dir(dir.path().join("mnt")).unwrap();
        let out = run(markbase()
            .arg("import")
            .arg(&media)
            .arg("--catalog")
            .arg(dir.path().join("warren.sqlite")));
        assert!(out.status.success(), "import: {}", stderr(&out));
        let clip = fs::read(media.join("clip.mov")).unwrap();
        Self { dir, clip }
    }

    pub fn catalog(&self) -> PathBuf {
        self.dir.path().join("warren.sqlite")
    }

    pub fn mountpoint(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// `markbase --catalog C ARGS...`
    pub fn markbase(&self, args: &[&str]) -> Output {
        run(markbase().arg("--catalog").arg(self.catalog()).args(args))
    }

    /// Starts `markbase mount` on `mnt` and waits until it is mounted.
    pub fn mount(&self, extra: &[&str]) -> Daemon {
        let daemon = Daemon::start(&self.catalog(), &self.mountpoint(), self.dir.path(), extra);
        daemon.wait_mounted();
        daemon
    }

    /// Gives the whole library (catalog, files, mount point) to [`NOBODY`].
    pub fn give_to_nobody(&self) {
        for entry in walkdir::WalkDir::new(self.dir.path()) {
            chown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }

    /// `markbase` run as [`NOBODY`] through `setpriv`, with a data directory in the
    /// library (which [`Library::give_to_nobody`] makes theirs).
    pub fn markbase_as_nobody(&self, setpriv: &Path) -> Command {
        let mut cmd = as_nobody(setpriv, env!("CARGO_BIN_EXE_markbase"));
        cmd.env_remove("MARKBASE_CATALOG")
            .env_remove("RUST_LOG")
            .env("XDG_DATA_HOME", self.dir.path().join("data"));
        cmd
    }

    /// Starts `markbase mount` on `mnt` as [`NOBODY`] (a library given to them), and
    /// waits until it is mounted.
    pub fn mount_as_nobody(&self, setpriv: &Path, extra: &[&str]) -> Daemon {
        let daemon = Daemon::start_with(
            self.markbase_as_nobody(setpriv),
            &self.catalog(),
            &self.mountpoint(),
            self.dir.path(),
            extra,
        );
        daemon.wait_mounted();
        daemon
    }
}

/// Reads and writes through a running mount: the mount is really in use.
pub fn use_the_mount(lib: &Library, name: &str) {
    let mnt = lib.mountpoint();
    assert_eq!(fs::read(mnt.join("clip.mov")).unwrap(), lib.clip);
    assert_eq!(
        fs::read_to_string(mnt.join("Day 1/notes.txt")).unwrap(),
        "take 3 is the one\n"
    );
    fs::write(mnt.join(name), name.as_bytes()).unwrap();
    assert_eq!(fs::read(mnt.join(name)).unwrap(), name.as_bytes());
}
