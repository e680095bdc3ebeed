//! A catalog mounted through the kernel's `/dev/fuse` and used as a real filesystem:
//! `std::fs`, `ls`, `cp`, other processes and unmounts while the mount is in use.
//!
//! Every test needs root and `/dev/fuse`; without them it skips, or fails under
//! `MARKBASE_REQUIRE_ALL=1` ([`markbase_testkit::require_fuse`]).

#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use markbase_fuse::{Mount, MountError, MountOptions, PassthroughMode, mount_at, unmount_path};
use markbase_testkit::{
    RawCatalog, detach_mount, first_difference, pattern_byte, rename_noreplace, require_fuse,
    require_tool, run_within, write_pattern_file,
};
use markbase_vfs::{Vfs, VfsConfig, import::ImportOptions, schema::SCHEMA_SQL};
use tempfile::TempDir;

/// How long unmounting may take ([`MountOptions::shutdown_limit`], the 5 s).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// How long a change made by another process may take to show (generous: it is
/// the catalog's change check plus the kernel's 1 s attribute and entry cache).
const CHANGE_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A temp dir holding a catalog (`warren.sqlite`), its store, source media and an
/// empty mount point `mnt`.
struct Library {
    dir: TempDir,
    _watchdog: Watchdog,
}

impl Library {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("mnt")).expect("mount point");
        let watchdog = Watchdog::start(dir.path());
        Self {
            dir,
            _watchdog: watchdog,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn catalog(&self) -> PathBuf {
        self.path().join("warren.sqlite")
    }

    fn mountpoint(&self) -> PathBuf {
        self.path().join("mnt")
    }

    fn store(&self) -> PathBuf {
        self.path().join("warren-store")
    }

    /// An empty schema-v1 catalog (the root only).
    fn empty_catalog(&self) {
        RawCatalog::create(&self.catalog(), SCHEMA_SQL).expect("create an empty catalog");
    }

    /// Imports `source` into the catalog, asserting nothing was skipped.
    fn import(&self, source: &Path) -> markbase_vfs::import::ImportStats {
        let stats =
            markbase_vfs::import::import(source, &self.catalog(), &ImportOptions::default())
                .unwrap_or_else(|err| panic!("import {}: {err}", source.display()));
        assert!(
            stats.skipped.is_empty(),
            "import skipped {:?}",
            stats.skipped
        );
        stats
    }

    fn config(&self) -> VfsConfig {
        VfsConfig::new(self.catalog())
    }

    /// Mounts the catalog on `mnt` with `config`.
    fn mount_with(&self, config: VfsConfig) -> Mounted {
        Mounted::new(config, &self.mountpoint())
    }

    fn mount(&self) -> Mounted {
        self.mount_with(self.config())
    }

    /// Mounts the catalog on `mnt` with `options`.
    fn mount_with_options(&self, options: &MountOptions) -> Mounted {
        Mounted::with_options(self.config(), &self.mountpoint(), options)
    }
}

/// The options of the tests' mounts: the defaults, but for passthrough, which
/// `MARKBASE_PASSTHROUGH` (`auto`, `on`, `off`) chooses, so that the suite runs both
/// ways (scripts/test).
fn options() -> MountOptions {
    let passthrough = match std::env::var("MARKBASE_PASSTHROUGH").as_deref() {
        Err(_) | Ok("auto") => PassthroughMode::Auto,
        Ok("on") => PassthroughMode::On,
        Ok("off") => PassthroughMode::Off,
        Ok(other) => panic!("MARKBASE_PASSTHROUGH={other:?}: auto, on or off"),
    };
    MountOptions {
        passthrough,
        ..MountOptions::default()
    }
}

/// A live mount, taken off when dropped, also when the test fails (before the temp
/// dir it lives in is removed: declare it after the [`Library`]).
struct Mounted {
    mount: Option<Mount>,
    path: PathBuf,
}

impl Mounted {
    fn new(config: VfsConfig, mountpoint: &Path) -> Self {
        Self::with_options(config, mountpoint, &options())
    }

    fn with_options(config: VfsConfig, mountpoint: &Path, options: &MountOptions) -> Self {
        let vfs = Arc::new(Vfs::open(config).expect("open the catalog"));
        let mount = Mount::new(vfs, mountpoint, options)
            .unwrap_or_else(|err| panic!("mount on {}: {err}", mountpoint.display()));
        let path = mount.mountpoint().to_path_buf();
        assert_eq!(
            mount_at(&path)
                .expect("mountinfo")
                .map(|entry| entry.fstype),
            Some(String::from("fuse.markbase")),
            "the mount is in /proc/self/mountinfo"
        );
        Self {
            mount: Some(mount),
            path,
        }
    }

    /// The mount point (canonical).
    fn path(&self) -> &Path {
        &self.path
    }

    fn join(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }

    /// Unmounts, returning how long it took.
    fn unmount(mut self) -> (Result<(), MountError>, Duration) {
        let mount = self.mount.take().expect("mounted");
        let started = Instant::now();
        let result = mount.unmount();
        (result, started.elapsed())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        drop(self.mount.take());
        detach_mount(&self.path);
    }
}

/// A mount made with `mount(8)`, detached when dropped.
struct ForeignMount(PathBuf);

impl Drop for ForeignMount {
    fn drop(&mut self) {
        detach_mount(&self.0);
    }
}

/// A child process killed when dropped (and reaped, unless it cannot even die).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How long one test may run before it counts as hung (generous: a slow, shared
/// 2-core machine copies the 1 GiB file in well under a minute).
const HANG_LIMIT: Duration = Duration::from_secs(300);

/// Turns a hung test into a failure instead of a stalled run: after [`HANG_LIMIT`]
/// it detaches every mount below the test's temp dir (so none is left behind) and
/// ends the test process.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn start(dir: &Path) -> Self {
        let (done, finished) = mpsc::channel::<()>();
        let dir = dir.to_path_buf();
        let test = thread::current().name().unwrap_or("a test").to_owned();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(HANG_LIMIT) {
                eprintln!(
                    "{test} hangs: still running after {HANG_LIMIT:?}; detaching its mounts and exiting"
                );
                for point in mount_points_below(&dir) {
                    detach_mount(&point);
                }
                std::process::exit(101);
            }
        });
        Self(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Every mount point at or below `dir`, from `/proc/self/mountinfo`, deepest first.
fn mount_points_below(dir: &Path) -> Vec<PathBuf> {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    points
}

/// How long a command run on a mount may take before it counts as hung.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The errno of a call that must have failed.
#[track_caller]
fn errno<T: Debug>(result: io::Result<T>) -> i32 {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(err) => err
            .raw_os_error()
            .unwrap_or_else(|| panic!("error without an errno: {err}")),
    }
}

/// Asserts that `result` failed with `expected` (an errno), naming both on failure.
#[track_caller]
fn assert_errno<T: Debug>(result: io::Result<T>, expected: i32, what: &str) {
    let got = errno(result);
    assert_eq!(
        got,
        expected,
        "{what}: expected {}, got {}",
        io::Error::from_raw_os_error(expected),
        io::Error::from_raw_os_error(got)
    );
}

/// Asks the kernel to drop the cached pages of `file`, so the next reads reach the
/// filesystem server instead of the page cache.
fn drop_page_cache(file: &File) {
    // SAFETY: plain advice on a valid open descriptor.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise: {}", io::Error::from_raw_os_error(rc));
}

/// Polls `check` until it returns true, failing after `limit`.
#[track_caller]
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `f` on another thread and fails if it does not finish within `limit`.
#[track_caller]
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// The names in directory `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read_dir {}: {err}", dir.display()))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 name")
        })
        .collect();
    names.sort();
    names
}

/// The mount options of the topmost mount at `path`, from `/proc/self/mountinfo`.
fn mount_options(path: &Path) -> Option<Vec<String>> {
    let table = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.len() > 5 && Path::new(fields[4]) == path)
                .then(|| fields[5].split(',').map(str::to_owned).collect())
        })
        .next_back()
}

/// A catalog row, read with SQL straight from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    id: i64,
    parent: Option<i64>,
    name: String,
    kind: String,
    size: i64,
    aliases: Vec<String>,
}

/// Every row of `catalog`, in id order, read through a connection of its own.
fn rows(catalog: &Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open(catalog).expect("open the catalog with SQLite");
    let mut stmt = conn
        .prepare(
            "SELECT id, parent_id, name, kind, size, \
             (SELECT group_concat(value, char(10)) FROM json_each(aliases_json)) \
             FROM nodes ORDER BY id",
        )
        .expect("prepare");
    stmt.query_map([], |row| {
        let aliases: Option<String> = row.get(5)?;
        Ok(Row {
            id: row.get(0)?,
            parent: row.get(1)?,
            name: row.get(2)?,
            kind: row.get(3)?,
            size: row.get(4)?,
            aliases: aliases
                .map(|a| a.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// The row named `name` in directory `parent`, if any.
fn row_named(catalog: &Path, parent: i64, name: &str) -> Option<Row> {
    rows(catalog)
        .into_iter()
        .find(|row| row.parent == Some(parent) && row.name == name)
}

/// The file an alias names, relative aliases taken from the catalog's directory.
fn alias_path(catalog: &Path, alias: &str) -> PathBuf {
    catalog.parent().expect("catalog dir").join(alias)
}

/// Every regular file in the store (none when it was never made).
fn store_files(lib: &Library) -> BTreeSet<PathBuf> {
    match fs::read_dir(lib.store()) {
        Ok(entries) => entries
            .map(|entry| entry.expect("store entry").path())
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
        Err(err) => panic!("read the store: {err}"),
    }
}

// ---------------------------------------------------------------------------
// A generated library, compared through the mount
// ---------------------------------------------------------------------------

/// Directories of the generated tree, parents first ("" is the tree's root).
const TREE_DIRS: &[&str] = &[
    "Projects",
    "Projects/Überblick 2026",
    "Projects/Überblick 2026/Ton 🎙",
    "Projects/Überblick 2026/Ton 🎙/deep",
    "Projects/Überblick 2026/Ton 🎙/deep/deeper",
    "Projects/Überblick 2026/Ton 🎙/deep/deeper/deepest",
    "Projects/Überblick 2026/frames",
    "インタビュー",
    "empty dir",
    "a",
    "a/b",
];

const TREE_FILES: usize = 300;

/// The size of generated file `i`: empty, tiny, around page and request boundaries,
/// and three of a few MiB.
fn tree_file_size(i: usize) -> u64 {
    match i {
        7 | 150 | 299 => (3 << 20) + i as u64,
        _ => match i % 10 {
            0 => 0,
            1 => 1,
            2 => 4095,
            3 => 4096,
            4 => 4097,
            5 => (64 << 10) + 17,
            6 => (128 << 10) + i as u64,
            _ => (i as u64 * 7919) % 20_000,
        },
    }
}

/// A distinct mtime for entry `i`, with nanoseconds.
fn tree_mtime(i: usize) -> SystemTime {
    UNIX_EPOCH
        + Duration::new(
            1_500_000_000 + i as u64 * 3_601,
            (i as u32).wrapping_mul(1_234_567) % 1_000_000_000,
        )
}

/// Writes the generated tree under `root`: nested directories with unicode names, an
/// empty one, and [`TREE_FILES`] files of varied sizes, each with its own mtime.
fn generate_tree(root: &Path) {
    for dir in TREE_DIRS {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    let prefixes = [
        "clip",
        "Ton",
        "façade",
        "日本語",
        "emoji 🎬",
        "with space",
        "x",
    ];
    let extensions = [".mov", ".wav", ".txt", "", ".tar.gz"];
    let homes: Vec<&str> = std::iter::once("")
        .chain(TREE_DIRS.iter().copied().filter(|d| *d != "empty dir"))
        .collect();
    for i in 0..TREE_FILES {
        // Most files go to "frames", so that one directory is larger than a FUSE page.
        let dir = if i % 3 == 0 {
            "Projects/Überblick 2026/frames"
        } else {
            homes[i % homes.len()]
        };
        let name = format!(
            "{} {i:03}{}",
            prefixes[i % prefixes.len()],
            extensions[i % extensions.len()]
        );
        let path = root.join(dir).join(name);
        write_pattern_file(&path, tree_file_size(i), i as u64).expect("write a file");
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(tree_mtime(i)))
            .expect("set a file's mtime");
    }
    // Directory mtimes last: adding entries changed them.
    for (i, dir) in TREE_DIRS.iter().enumerate() {
        File::open(root.join(dir))
            .and_then(|d| d.set_times(FileTimes::new().set_modified(tree_mtime(1000 + i))))
            .expect("set a directory's mtime");
    }
}

/// What a tree walk sees of one entry.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    dir: bool,
    /// Files only: a directory's size is the filesystem's business.
    size: Option<u64>,
    mtime: SystemTime,
}

/// Every entry below `root` by relative path, from `std::fs::metadata`.
fn walk(root: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if meta.is_dir() {
                pending.push(path.clone());
            }
            out.insert(
                path.strip_prefix(root).expect("below root").to_path_buf(),
                Seen {
                    dir: meta.is_dir(),
                    size: meta.is_file().then_some(meta.len()),
                    mtime: meta.modified().expect("mtime"),
                },
            );
        }
    }
    out
}

/// `ls -R .` run in `dir`, byte order.
fn ls_recursive(dir: &Path) -> String {
    let out = run_within(
        Command::new("ls")
            .args(["-R", "."])
            .current_dir(dir)
            .env("LC_ALL", "C"),
        COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "ls -R {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 listing")
}

#[test]
fn an_imported_tree_reads_back_exactly() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let media = lib.path().join("media");
    generate_tree(&media);
    let stats = lib.import(&media);
    assert_eq!(stats.files_added, TREE_FILES as u64);
    let mounted = lib.mount();

    // The listing, as `ls -R` prints it.
    let source_listing = ls_recursive(&media);
    let mounted_listing = ls_recursive(mounted.path());
    assert_eq!(mounted_listing, source_listing, "ls -R differs");
    assert!(
        source_listing.contains("emoji 🎬 004.tar.gz"),
        "{source_listing}"
    );
    assert!(source_listing.contains("./empty dir:"), "{source_listing}");

    // Kinds, sizes and mtimes (to the nanosecond) of every entry.
    let source = walk(&media);
    let seen = walk(mounted.path());
    assert_eq!(source.len(), TREE_FILES + TREE_DIRS.len());
    let source_paths: BTreeSet<_> = source.keys().collect();
    let seen_paths: BTreeSet<_> = seen.keys().collect();
    assert_eq!(
        seen_paths.symmetric_difference(&source_paths).count(),
        0,
        "missing through the mount: {:?}; extra: {:?}",
        source_paths.difference(&seen_paths).collect::<Vec<_>>(),
        seen_paths.difference(&source_paths).collect::<Vec<_>>()
    );
    for (path, expected) in &source {
        assert_eq!(&seen[path], expected, "{}", path.display());
    }

    // Every byte of every file.
    let mut bytes = 0;
    for (path, entry) in &source {
        if entry.dir {
            continue;
        }
        let want = fs::read(media.join(path)).expect("read the source");
        let got = fs::read(mounted.path().join(path))
            .unwrap_or_else(|err| panic!("read {} through the mount: {err}", path.display()));
        if got != want {
            let at = first_difference(&got, &want);
            panic!(
                "{}: {} bytes through the mount, {} expected; first difference at {at:?}",
                path.display(),
                got.len(),
                want.len()
            );
        }
        bytes += got.len();
    }
    assert!(bytes > 9 << 20, "only {bytes} bytes compared");

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// A directory of 100,000 entries
// ---------------------------------------------------------------------------

const BIG_DIR_ENTRIES: usize = 100_000;

/// The name of entry `i` of the big directory: varied lengths and scripts, a few
/// close to the 255-byte limit, so that listing pages end at every kind of boundary.
fn big_dir_name(i: usize) -> String {
    let mut name = format!(
        "entry {i:06}{}",
        [
            "",
            " ü",
            " 日本",
            " 🎬.mov",
            ".wav",
            " with some more words"
        ][i % 6]
    );
    if i.is_multiple_of(997) {
        name.push_str(&"L".repeat(220));
    }
    name
}

#[test]
fn a_directory_of_100000_entries_lists_completely() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let shared = lib.path().join("shared.txt");
    fs::write(&shared, b"the same small file\n").unwrap();
    let raw = RawCatalog::create(&lib.catalog(), SCHEMA_SQL).expect("catalog");
    raw.conn.execute_batch("BEGIN").unwrap();
    raw.dir(2, 1, "big").unwrap();
    {
        let aliases = format!("[\"{}\"]", shared.display());
        let mut insert = raw
            .conn
            .prepare(
                "INSERT INTO nodes (id, parent_id, name, kind, size, mtime_ns, aliases_json) \
                 VALUES (?1, 2, ?2, 'file', 20, 0, ?3)",
            )
            .unwrap();
        for i in 0..BIG_DIR_ENTRIES {
            insert
                .execute(rusqlite::params![i as i64 + 3, big_dir_name(i), aliases])
                .unwrap();
        }
    }
    raw.conn.execute_batch("COMMIT").unwrap();
    drop(raw);
    let expected: BTreeSet<String> = (0..BIG_DIR_ENTRIES).map(big_dir_name).collect();
    assert_eq!(expected.len(), BIG_DIR_ENTRIES);

    let mounted = lib.mount();
    let big = mounted.join("big");

    // `ls -f`: every entry in directory order, unsorted, with `.` and `..`.
    let out = run_within(Command::new("ls").arg("-f").arg(&big), COMMAND_LIMIT);
    assert!(
        out.status.success(),
        "ls -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("UTF-8 names")
        .lines()
        .collect();
    assert_eq!(listed.len(), BIG_DIR_ENTRIES + 2, "ls -f line count");
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "ls -f lists a name twice");
    assert!(unique.contains(".") && unique.contains(".."));
    let names: BTreeSet<String> = unique
        .into_iter()
        .filter(|name| *name != "." && *name != "..")
        .map(str::to_owned)
        .collect();
    assert!(
        names == expected,
        "ls -f: {} names missing (e.g. {:?}), {} unexpected (e.g. {:?})",
        expected.difference(&names).count(),
        expected.difference(&names).next(),
        names.difference(&expected).count(),
        names.difference(&expected).next()
    );

    // std::fs::read_dir, which the kernel may answer with readdirplus.
    let mut read: Vec<String> = Vec::with_capacity(BIG_DIR_ENTRIES);
    for entry in fs::read_dir(&big).expect("read_dir") {
        let entry = entry.expect("entry");
        assert!(entry.file_type().expect("file type").is_file());
        read.push(entry.file_name().into_string().expect("UTF-8"));
    }
    assert_eq!(read.len(), BIG_DIR_ENTRIES, "read_dir entry count");
    let read: BTreeSet<String> = read.into_iter().collect();
    assert_eq!(read.len(), BIG_DIR_ENTRIES, "read_dir lists a name twice");
    assert!(read == expected, "read_dir lists other names");

    // Entries are real files: the shared alias serves each.
    for i in [0, 1, 997, 54_321, BIG_DIR_ENTRIES - 1] {
        assert_eq!(
            fs::read(big.join(big_dir_name(i))).expect("read an entry"),
            b"the same small file\n"
        );
    }

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Concurrent readers
// ---------------------------------------------------------------------------

#[test]
fn concurrent_readers_get_their_own_bytes() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let media = lib.path().join("media");
    fs::create_dir(&media).unwrap();
    let sizes = [(3 << 20) + 1, (2 << 20) + 4095, 1 << 20, (5 << 20) - 7];
    for (i, size) in sizes.iter().enumerate() {
        write_pattern_file(&media.join(format!("file {i}.mov")), *size, 100 + i as u64).unwrap();
    }
    lib.import(&media);
    let expected: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..sizes.len())
            .map(|i| fs::read(media.join(format!("file {i}.mov"))).unwrap())
            .collect(),
    );
    let mounted = lib.mount();
    let root = mounted.path().to_path_buf();

    thread::scope(|scope| {
        for t in 0..8usize {
            let expected = Arc::clone(&expected);
            let root = root.clone();
            scope.spawn(move || {
                // Each thread reads its own file (two threads per file) and file 0,
                // which every thread reads, with its own buffer size.
                let buffer = 4096 * (t + 1) + 511 * t;
                for round in 0..3 {
                    for index in [t % sizes.len(), 0] {
                        let path = root.join(format!("file {index}.mov"));
                        let mut file = File::open(&path).expect("open");
                        drop_page_cache(&file);
                        let mut got = Vec::with_capacity(expected[index].len());
                        let mut buf = vec![0u8; buffer];
                        loop {
                            let n = file.read(&mut buf).expect("read");
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        assert!(
                            got == expected[index],
                            "thread {t}, round {round}: file {index} read back wrong \
                             ({} bytes, {} expected; first difference at {:?})",
                            got.len(),
                            expected[index].len(),
                            first_difference(&got, &expected[index])
                        );
                        // Positioned reads at scattered offsets of the same open file.
                        let len = expected[index].len() as u64;
                        for k in 0..16u64 {
                            let offset = (k * 7_777_777 + t as u64 * 131) % len;
                            let mut piece = vec![0u8; 10_000];
                            let n = file.read_at(&mut piece, offset).expect("pread");
                            let end = offset as usize + n;
                            assert_eq!(n, 10_000.min(len as usize - offset as usize));
                            assert!(
                                piece[..n] == expected[index][offset as usize..end],
                                "thread {t}: pread of file {index} at {offset}"
                            );
                        }
                    }
                }
            });
        }
    });

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// A 1 GiB file copied in, read back, renamed and deleted
// ---------------------------------------------------------------------------

const GIB: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Chunk `index` (1 MiB) of the big file: a pattern with the chunk's and page's
/// numbers stamped at the start of every 4 KiB page, so a misplaced page shows.
fn big_chunk(base: &[u8], index: u64, out: &mut [u8]) {
    out.copy_from_slice(base);
    for (page, bytes) in out.chunks_mut(4096).enumerate() {
        bytes[..8].copy_from_slice(&(index * 256 + page as u64).to_le_bytes());
    }
}

fn big_base() -> Vec<u8> {
    (0..CHUNK as u64)
        .map(|i| pattern_byte(1 << 40, i))
        .collect()
}

/// Reads `path` to its end and compares it with the big file, chunk by chunk.
fn assert_big_file(path: &Path) {
    let base = big_base();
    let mut want = vec![0u8; CHUNK];
    let mut got = vec![0u8; CHUNK];
    let mut file = File::open(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    drop_page_cache(&file);
    for index in 0..GIB / CHUNK as u64 {
        big_chunk(&base, index, &mut want);
        file.read_exact(&mut got)
            .unwrap_or_else(|err| panic!("reading chunk {index}: {err}"));
        if got != want {
            let at = first_difference(&got, &want).expect("they differ");
            panic!(
                "{}: byte {} differs",
                path.display(),
                index * CHUNK as u64 + at as u64
            );
        }
    }
    assert_eq!(
        file.read(&mut got).expect("read at the end"),
        0,
        "bytes past 1 GiB"
    );
}

#[test]
fn a_gigabyte_file_is_copied_in_read_back_renamed_and_deleted() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    lib.empty_catalog();
    let catalog = lib.catalog();

    // The source, generated beside the catalog (in the temp dir).
    let source = lib.path().join("source.bin");
    {
        let base = big_base();
        let mut chunk = vec![0u8; CHUNK];
        let mut out = BufWriter::with_capacity(CHUNK, File::create(&source).unwrap());
        for index in 0..GIB / CHUNK as u64 {
            big_chunk(&base, index, &mut chunk);
            out.write_all(&chunk).unwrap();
        }
        out.into_inner().unwrap().sync_all().unwrap();
    }

    let mounted = lib.mount();
    fs::create_dir(mounted.join("incoming")).unwrap();
    let incoming = row_named(&catalog, 1, "incoming").expect("the directory's row");

    // Copy it in with cp.
    let copied = mounted.join("incoming/big.bin");
    let cp = run_within(Command::new("cp").arg(&source).arg(&copied), COMMAND_LIMIT);
    assert!(
        cp.status.success(),
        "cp: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
    fs::remove_file(&source).unwrap();
    assert_eq!(fs::metadata(&copied).unwrap().len(), GIB);

    // The catalog has the node with its size; its bytes are in the store.
    let row = row_named(&catalog, incoming.id, "big.bin").expect("the copied file's row");
    assert_eq!(row.kind, "file");
    assert_eq!(row.size, GIB as i64, "recorded size");
    assert_eq!(row.aliases.len(), 1, "{row:?}");
    let stored = alias_path(&catalog, &row.aliases[0]);
    assert!(
        stored.starts_with(lib.store()),
        "{} is outside the store",
        stored.display()
    );
    assert_eq!(fs::metadata(&stored).unwrap().len(), GIB);

    // Every byte, through the mount.
    assert_big_file(&copied);

    // Renamed into another directory: the same node under its new name.
    let renamed = mounted.join("renamed.bin");
    fs::rename(&copied, &renamed).unwrap();
    assert_errno(fs::metadata(&copied), libc::ENOENT, "old name after rename");
    assert_eq!(fs::metadata(&renamed).unwrap().len(), GIB);
    assert_eq!(row_named(&catalog, incoming.id, "big.bin"), None);
    let moved = row_named(&catalog, 1, "renamed.bin").expect("the renamed file's row");
    assert_eq!(
        moved,
        Row {
            parent: Some(1),
            name: "renamed.bin".into(),
            ..row.clone()
        }
    );
    assert!(stored.exists(), "rename kept the store file");

    // Deleted: the row and the store file are gone.
    fs::remove_file(&renamed).unwrap();
    assert_errno(fs::metadata(&renamed), libc::ENOENT, "deleted file");
    assert!(
        rows(&catalog).iter().all(|r| r.id != row.id),
        "the deleted file's row is still in the catalog"
    );
    assert!(!stored.exists(), "{} was not deleted", stored.display());
    assert!(store_files(&lib).is_empty(), "{:?}", store_files(&lib));
    assert_eq!(names(mounted.path()), ["incoming"]);

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Changes behave as on a local filesystem
// ---------------------------------------------------------------------------

#[test]
fn changes_behave_as_on_a_local_filesystem() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    lib.empty_catalog();
    let catalog = lib.catalog();
    let mounted = lib.mount();
    let at = |name: &str| mounted.join(name);

    // Create, write, append, overwrite in place.
    fs::write(at("notes.txt"), b"first version\n").unwrap();
    assert_eq!(fs::read(at("notes.txt")).unwrap(), b"first version\n");
    OpenOptions::new()
        .append(true)
        .open(at("notes.txt"))
        .unwrap()
        .write_all(b"more\n")
        .unwrap();
    File::options()
        .write(true)
        .open(at("notes.txt"))
        .unwrap()
        .write_all_at(b"FIRST", 0)
        .unwrap();
    assert_eq!(fs::read(at("notes.txt")).unwrap(), b"FIRST version\nmore\n");
    assert_eq!(fs::metadata(at("notes.txt")).unwrap().len(), 19);

    // Truncate shorter, then longer (zeros), then with O_TRUNC.
    let file = File::options().write(true).open(at("notes.txt")).unwrap();
    file.set_len(5).unwrap();
    assert_eq!(fs::read(at("notes.txt")).unwrap(), b"FIRST");
    file.set_len(8).unwrap();
    assert_eq!(fs::read(at("notes.txt")).unwrap(), b"FIRST\0\0\0");
    assert_eq!(file.metadata().unwrap().len(), 8);
    drop(file);
    fs::write(at("notes.txt"), b"new").unwrap();
    assert_eq!(fs::read(at("notes.txt")).unwrap(), b"new");
    assert_errno(
        File::create_new(at("notes.txt")),
        libc::EEXIST,
        "O_CREAT|O_EXCL on an existing file",
    );

    // mkdir, and its errors; rmdir of a non-empty directory.
    fs::create_dir(at("album")).unwrap();
    assert!(fs::metadata(at("album")).unwrap().is_dir());
    assert_errno(fs::create_dir(at("album")), libc::EEXIST, "mkdir existing");
    assert_errno(
        fs::create_dir(at("notes.txt")),
        libc::EEXIST,
        "mkdir on a file",
    );
    fs::write(at("album/track.wav"), b"la la la").unwrap();
    assert_errno(
        fs::remove_dir(at("album")),
        libc::ENOTEMPTY,
        "rmdir non-empty",
    );
    assert_errno(
        fs::remove_dir(at("notes.txt")),
        libc::ENOTDIR,
        "rmdir of a file",
    );
    assert_errno(
        fs::remove_file(at("album")),
        libc::EISDIR,
        "unlink of a directory",
    );
    assert_errno(
        fs::create_dir(at("missing/child")),
        libc::ENOENT,
        "mkdir below a missing directory",
    );

    // rename over an existing file replaces it; RENAME_NOREPLACE refuses.
    fs::write(at("a.txt"), b"AAA").unwrap();
    fs::write(at("b.txt"), b"BBB").unwrap();
    fs::write(at("c.txt"), b"CCC").unwrap();
    fs::rename(at("a.txt"), at("b.txt")).unwrap();
    assert_errno(fs::metadata(at("a.txt")), libc::ENOENT, "renamed-away name");
    assert_eq!(fs::read(at("b.txt")).unwrap(), b"AAA");
    assert_errno(
        rename_noreplace(&at("b.txt"), &at("c.txt")),
        libc::EEXIST,
        "RENAME_NOREPLACE onto an existing file",
    );
    assert_eq!(fs::read(at("b.txt")).unwrap(), b"AAA");
    assert_eq!(fs::read(at("c.txt")).unwrap(), b"CCC");
    rename_noreplace(&at("c.txt"), &at("d.txt")).expect("RENAME_NOREPLACE to a free name");
    fs::rename(at("d.txt"), at("c.txt")).unwrap();

    // A directory is renamed with what it holds.
    fs::rename(at("album"), at("album 2026")).unwrap();
    assert_eq!(fs::read(at("album 2026/track.wav")).unwrap(), b"la la la");
    assert_errno(fs::metadata(at("album")), libc::ENOENT, "renamed directory");

    // An unlinked file stays readable and writable through an open descriptor.
    fs::write(at("doomed.txt"), b"still here").unwrap();
    let mut doomed = File::options()
        .read(true)
        .write(true)
        .open(at("doomed.txt"))
        .unwrap();
    fs::remove_file(at("doomed.txt")).unwrap();
    assert_errno(
        fs::metadata(at("doomed.txt")),
        libc::ENOENT,
        "unlinked file",
    );
    assert!(!names(mounted.path()).contains(&"doomed.txt".to_string()));
    let mut text = String::new();
    doomed.read_to_string(&mut text).unwrap();
    assert_eq!(text, "still here");
    assert_eq!(doomed.metadata().unwrap().len(), 10);
    doomed.write_all(b", and more").unwrap();
    let mut back = vec![0u8; 20];
    doomed.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(back, b"still here, and more");
    assert_eq!(doomed.metadata().unwrap().len(), 20);
    // Closing it reports no error (close(2) is where a failed flush would show).
    let fd = std::os::fd::IntoRawFd::into_raw_fd(doomed);
    // SAFETY: `fd` was just taken from the File, which no longer owns it.
    assert_eq!(
        unsafe { libc::close(fd) },
        0,
        "close: {}",
        io::Error::last_os_error()
    );

    // rmdir once empty.
    fs::remove_file(at("album 2026/track.wav")).unwrap();
    fs::remove_dir(at("album 2026")).unwrap();
    assert_errno(
        fs::metadata(at("album 2026")),
        libc::ENOENT,
        "removed directory",
    );

    // The mount and the catalog agree, and the store keeps only live files' bytes.
    assert_eq!(names(mounted.path()), ["b.txt", "c.txt", "notes.txt"]);
    let rows = rows(&catalog);
    let files: BTreeMap<&str, i64> = rows
        .iter()
        .filter(|row| row.parent.is_some())
        .map(|row| {
            assert_eq!(row.parent, Some(1), "{row:?}");
            assert_eq!(row.kind, "file", "{row:?}");
            (row.name.as_str(), row.size)
        })
        .collect();
    assert_eq!(
        files,
        BTreeMap::from([("b.txt", 3), ("c.txt", 3), ("notes.txt", 3)])
    );
    let live: BTreeSet<PathBuf> = rows
        .iter()
        .flat_map(|row| row.aliases.iter().map(|a| alias_path(&catalog, a)))
        .collect();
    assert_eq!(
        store_files(&lib),
        live,
        "store files vs the catalog's aliases"
    );

    // Only folders and regular files: other types are refused as unsupported (EPERM).
    let listed = names(mounted.path());
    let eperm = libc::EPERM;
    assert_errno(
        std::os::unix::fs::symlink("b.txt", at("link")),
        eperm,
        "symlink",
    );
    assert_errno(fs::hard_link(at("b.txt"), at("hard")), eperm, "link");
    let fifo = std::ffi::CString::new(at("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
    assert_errno(
        if made == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        },
        eperm,
        "mkfifo",
    );
    assert_eq!(names(mounted.path()), listed, "nothing was made");

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Read-only mounts
// ---------------------------------------------------------------------------

#[test]
fn a_read_only_mount_reads_and_refuses_every_change() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    let media = lib.path().join("media");
    fs::create_dir_all(media.join("Day 1")).unwrap();
    write_pattern_file(&media.join("Day 1/clip.mov"), 300_000, 9).unwrap();
    lib.import(&media);
    let before = rows(&lib.catalog());
    let mut config = lib.config();
    config.read_only = true;
    let mounted = lib.mount_with(config);
    let at = |name: &str| mounted.join(name);

    let options = mount_options(mounted.path()).expect("mount options");
    assert!(options.iter().any(|o| o == "ro"), "{options:?}");
    assert_eq!(
        fs::read(at("Day 1/clip.mov")).unwrap(),
        fs::read(media.join("Day 1/clip.mov")).unwrap()
    );
    assert_eq!(names(mounted.path()), ["Day 1"]);

    let erofs = libc::EROFS;
    assert_errno(File::create(at("new.txt")), erofs, "create");
    assert_errno(
        File::options().write(true).open(at("Day 1/clip.mov")),
        erofs,
        "open for writing",
    );
    assert_errno(
        File::options().append(true).open(at("Day 1/clip.mov")),
        erofs,
        "open for appending",
    );
    assert_errno(fs::create_dir(at("new dir")), erofs, "mkdir");
    assert_errno(fs::remove_file(at("Day 1/clip.mov")), erofs, "unlink");
    assert_errno(fs::remove_dir(at("Day 1")), erofs, "rmdir");
    assert_errno(
        fs::rename(at("Day 1/clip.mov"), at("clip.mov")),
        erofs,
        "rename",
    );
    let clip = File::open(at("Day 1/clip.mov")).unwrap();
    assert_errno(
        clip.set_modified(SystemTime::now()),
        erofs,
        "setting the mtime",
    );

    // Nothing changed.
    assert_eq!(rows(&lib.catalog()), before);
    assert!(!lib.store().exists(), "a read-only mount made the store");
    assert_eq!(fs::metadata(at("Day 1/clip.mov")).unwrap().len(), 300_000);

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Who may read
// ---------------------------------------------------------------------------

/// Reads `path` as `nobody` (uid and gid 65534) with `head`; its stderr on failure.
fn read_as_nobody(setpriv: &Path, path: &Path) -> Result<(), String> {
    let output = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "head",
            "-c1",
        ])
        .arg(path)
        .output()
        .expect("run setpriv");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn other_users_reach_the_mount_only_when_allowed_and_as_the_files_allow() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !require_fuse() {
        return;
    }
    let Some(setpriv) = require_tool("setpriv") else {
        return;
    };
    let lib = Library::new();
    // `nobody` must be able to reach the mount point and the media themselves.
    fs::set_permissions(lib.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let media = lib.path().join("media");
    fs::create_dir(&media).unwrap();
    for (name, mode) in [("open.mov", 0o644), ("private.mov", 0o600)] {
        fs::write(media.join(name), b"frames").unwrap();
        fs::set_permissions(media.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::chown(media.join("open.mov"), Some(1234), Some(5678)).unwrap();
    assert!(read_as_nobody(&setpriv, &media.join("open.mov")).is_ok());
    assert!(read_as_nobody(&setpriv, &media.join("private.mov")).is_err());
    lib.import(&media);

    // By default only the mounting user reaches the mount.
    let mounted = lib.mount();
    let refused = read_as_nobody(&setpriv, &mounted.join("open.mov")).unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");
    let open = fs::metadata(mounted.join("open.mov")).unwrap();
    assert_eq!(
        (open.uid(), open.gid(), open.mode() & 0o7777),
        (1234, 5678, 0o644),
        "a file has its bytes' owner, group and mode"
    );
    let private = fs::metadata(mounted.join("private.mov")).unwrap();
    assert_eq!((private.uid(), private.mode() & 0o7777), (0, 0o600));
    let (result, _) = mounted.unmount();
    result.expect("unmount");

    // With allow_other, each user reads what the files themselves let them read.
    let options = MountOptions {
        allow_other: true,
        ..options()
    };
    let mounted = lib.mount_with_options(&options);
    let line = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .rfind(|line| line.split(' ').nth(4).map(Path::new) == Some(mounted.path()))
        .map(str::to_owned)
        .expect("the mount in mountinfo");
    assert!(line.contains(",allow_other"), "{line}");
    read_as_nobody(&setpriv, &mounted.join("open.mov")).expect("nobody reads a 0644 file");
    let refused = read_as_nobody(&setpriv, &mounted.join("private.mov")).unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");

    // A file made through the mount has the mode it was made with; chmod and chown
    // change it, and the kernel's checks follow.
    use std::os::unix::fs::OpenOptionsExt;
    let mine = mounted.join("mine.mov");
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&mine)
        .unwrap()
        .write_all(b"frames")
        .unwrap();
    let made = fs::metadata(&mine).unwrap();
    assert_eq!((made.uid(), made.mode() & 0o777), (0, 0o600));
    assert!(read_as_nobody(&setpriv, &mine).is_err());
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o644)).unwrap();
    read_as_nobody(&setpriv, &mine).expect("nobody reads it after chmod 0644");
    std::os::unix::fs::chown(&mine, Some(65534), None).unwrap();
    assert_eq!(fs::metadata(&mine).unwrap().uid(), 65534);
    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Changes made by another process
// ---------------------------------------------------------------------------

/// Runs one SQL statement on `catalog` with the `sqlite3` command: another process.
fn sqlite3(sqlite: &Path, catalog: &Path, sql: &str) {
    let out = run_within(
        Command::new(sqlite)
            .args(["-cmd", ".timeout 10000"])
            .arg(catalog)
            .arg(sql),
        COMMAND_LIMIT,
    );
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rows_written_by_another_process_show_in_the_mount() {
    if !require_fuse() {
        return;
    }
    let Some(sqlite) = require_tool("sqlite3") else {
        return;
    };
    let lib = Library::new();
    let media = lib.path().join("media");
    fs::create_dir(&media).unwrap();
    fs::write(media.join("first.txt"), b"first").unwrap();
    lib.import(&media);
    let late_source = lib.path().join("late source.txt");
    fs::write(&late_source, b"added by another process\n").unwrap();
    let mounted = lib.mount();
    let late = mounted.join("late.txt");

    // Looked up before it exists: the kernel may now remember that it is absent.
    assert_errno(fs::metadata(&late), libc::ENOENT, "not yet added");
    assert_eq!(names(mounted.path()), ["first.txt"]);

    sqlite3(
        &sqlite,
        &lib.catalog(),
        &format!(
            "INSERT INTO nodes (parent_id, name, kind, size, mtime_ns, aliases_json) \
             VALUES (1, 'late.txt', 'file', 25, 0, '[\"{}\"]')",
            late_source.display()
        ),
    );
    eventually(CHANGE_LIMIT, "the added row shows by name", || {
        fs::metadata(&late).is_ok()
    });
    eventually(CHANGE_LIMIT, "the added row is listed", || {
        names(mounted.path()) == ["first.txt", "late.txt"]
    });
    assert_eq!(fs::read(&late).unwrap(), b"added by another process\n");

    sqlite3(
        &sqlite,
        &lib.catalog(),
        "DELETE FROM nodes WHERE name = 'first.txt'",
    );
    eventually(CHANGE_LIMIT, "the deleted row is gone by name", || {
        fs::metadata(mounted.join("first.txt")).is_err()
    });
    eventually(CHANGE_LIMIT, "the deleted row is no longer listed", || {
        names(mounted.path()) == ["late.txt"]
    });
    assert_errno(
        File::open(mounted.join("first.txt")),
        libc::ENOENT,
        "opening a deleted row",
    );

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}

// ---------------------------------------------------------------------------
// Unmounting while the mount is in use
// ---------------------------------------------------------------------------

/// A library holding one sparse file of `size` bytes, `big.mov`.
fn library_with_big_file(size: u64) -> Library {
    let lib = Library::new();
    let media = lib.path().join("media");
    fs::create_dir_all(media.join("Day 1")).unwrap();
    File::create(media.join("Day 1/big.mov"))
        .unwrap()
        .set_len(size)
        .unwrap();
    lib.import(&media);
    lib
}

#[test]
fn unmounting_during_a_read_ends_in_time_and_the_reader_does_not_hang() {
    if !require_fuse() {
        return;
    }
    const SIZE: u64 = 512 << 20;
    let lib = library_with_big_file(SIZE);
    let mounted = lib.mount();
    let path = mounted.join("Day 1/big.mov");

    let (started_tx, started) = mpsc::channel();
    let (ended_tx, ended) = mpsc::channel();
    thread::spawn(move || {
        let outcome = (|| {
            let mut buf = vec![0u8; 1 << 20];
            let mut announced = false;
            // Reads the file again and again until the mount goes away under it.
            loop {
                let mut file = match File::open(&path) {
                    Ok(file) => file,
                    Err(err) => return format!("open failed: {err}"),
                };
                drop_page_cache(&file);
                let mut done = 0u64;
                loop {
                    match file.read(&mut buf) {
                        Ok(0) if done < SIZE => {
                            return format!("short read: end after {done} of {SIZE} bytes");
                        }
                        Ok(0) => break,
                        Ok(n) => {
                            done += n as u64;
                            if !announced {
                                let _ = started_tx.send(());
                                announced = true;
                            }
                        }
                        Err(err) => return format!("read failed after {done} bytes: {err}"),
                    }
                }
            }
        })();
        let _ = ended_tx.send(outcome);
    });
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader started reading");
    thread::sleep(Duration::from_millis(100));

    let mountpoint = mounted.path().to_path_buf();
    let (result, took) = mounted.unmount();
    result.expect("unmount while a reader is busy");
    assert!(
        took <= SHUTDOWN_LIMIT,
        "unmounting took {took:?}, over {SHUTDOWN_LIMIT:?}"
    );
    let outcome = ended
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader hangs after the unmount");
    eprintln!("reader: {outcome}");
    assert_eq!(mount_at(&mountpoint).unwrap(), None, "still in mountinfo");
    assert!(names(&mountpoint).is_empty(), "the mount point is not bare");
}

#[test]
fn a_busy_mount_unmounts_in_time() {
    if !require_fuse() {
        return;
    }
    let lib = library_with_big_file(8 << 20);
    let mounted = lib.mount();
    let mountpoint = mounted.path().to_path_buf();
    let day = mounted.join("Day 1");

    // An open descriptor here, a thread and a process whose working directory is there.
    let mut held = File::open(day.join("big.mov")).unwrap();
    held.read_exact(&mut [0u8; 4096]).unwrap();
    let _sleeper = ChildGuard(
        Command::new("sleep")
            .arg("60")
            .current_dir(&day)
            .spawn()
            .expect("start sleep"),
    );
    let (in_place_tx, in_place) = mpsc::channel();
    let (leave_tx, leave) = mpsc::channel::<()>();
    let dweller = {
        let day = day.clone();
        thread::spawn(move || {
            // SAFETY: unshare(CLONE_FS) gives this thread its own working directory.
            let rc = unsafe { libc::unshare(libc::CLONE_FS) };
            assert_eq!(rc, 0, "unshare: {}", io::Error::last_os_error());
            std::env::set_current_dir(&day).expect("chdir into the mount");
            in_place_tx.send(()).unwrap();
            let _ = leave.recv();
        })
    };
    in_place
        .recv_timeout(Duration::from_secs(10))
        .expect("the thread entered the mount");

    // A plain unmount refuses, naming the path.
    match unmount_path(&mountpoint, false) {
        Err(err @ MountError::Busy(_)) => {
            assert!(
                matches!(&err, MountError::Busy(path) if path == &mountpoint),
                "{err:?}"
            );
            assert!(err.to_string().contains(&mountpoint.display().to_string()));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(mount_at(&mountpoint).unwrap().is_some());

    let (result, took) = mounted.unmount();
    result.expect("unmount of a busy mount");
    assert!(
        took <= SHUTDOWN_LIMIT,
        "unmounting took {took:?}, over {SHUTDOWN_LIMIT:?}"
    );
    assert_eq!(mount_at(&mountpoint).unwrap(), None, "still in mountinfo");

    // The descriptor left behind gets an answer (bytes or an error), not a hang.
    let outcome = within(Duration::from_secs(10), "a read after unmount", move || {
        let mut buf = vec![0u8; 1 << 20];
        held.read_at(&mut buf, 4 << 20).map(|n| n.to_string())
    });
    eprintln!("read on the held descriptor after unmount: {outcome:?}");
    leave_tx.send(()).unwrap();
    dweller.join().unwrap();
}

// ---------------------------------------------------------------------------
// Mount errors
// ---------------------------------------------------------------------------

/// Mounts the catalog on `path`, which must fail; returns the error.
fn mount_error(vfs: &Arc<Vfs>, path: &Path) -> MountError {
    match Mount::new(Arc::clone(vfs), path, &options()) {
        Ok(mount) => {
            let _ = mount.unmount();
            panic!("mounting on {} succeeded", path.display())
        }
        Err(err) => err,
    }
}

#[track_caller]
fn assert_names_path(err: &MountError, path: &Path) {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
    assert_eq!(message.lines().count(), 1, "{message:?}");
}

#[test]
fn bad_mount_points_are_refused_with_their_path() {
    if !require_fuse() {
        return;
    }
    let lib = Library::new();
    lib.empty_catalog();
    let vfs = Arc::new(Vfs::open(lib.config()).unwrap());

    let missing = lib.path().join("missing");
    let err = mount_error(&vfs, &missing);
    assert!(
        matches!(&err, MountError::MissingMountPoint(p) if p == &missing),
        "{err:?}"
    );
    assert_names_path(&err, &missing);

    let file = lib.path().join("a file");
    fs::write(&file, b"not a directory").unwrap();
    let err = mount_error(&vfs, &file);
    assert!(
        matches!(&err, MountError::NotADirectory(p) if p == &file),
        "{err:?}"
    );
    assert_names_path(&err, &file);

    let full = lib.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("keep me.txt"), b"precious").unwrap();
    let err = mount_error(&vfs, &full);
    assert!(
        matches!(&err, MountError::NotEmpty { path, example } if path == &full && example == "keep me.txt"),
        "{err:?}"
    );
    assert_names_path(&err, &full);
    assert_eq!(fs::read(full.join("keep me.txt")).unwrap(), b"precious");

    // Something else mounted there.
    if let Some(mount_tool) = require_tool("mount") {
        let tmpfs = lib.path().join("tmpfs");
        fs::create_dir(&tmpfs).unwrap();
        let out = run_within(
            Command::new(mount_tool)
                .args(["-t", "tmpfs", "markbase-test", "-o", "size=1m"])
                .arg(&tmpfs),
            COMMAND_LIMIT,
        );
        assert!(
            out.status.success(),
            "mount -t tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _tmpfs_guard = ForeignMount(tmpfs.clone());
        let err = mount_error(&vfs, &tmpfs);
        assert!(
            matches!(&err, MountError::AlreadyMounted { path, fstype } if path == &tmpfs && fstype == "tmpfs"),
            "{err:?}"
        );
        assert_names_path(&err, &tmpfs);
    }

    // markbase mounted there already.
    let mounted = lib.mount();
    let err = mount_error(&vfs, mounted.path());
    assert!(
        matches!(&err, MountError::AlreadyMounted { path, fstype } if path == mounted.path() && fstype == "fuse.markbase"),
        "{err:?}"
    );
    assert_names_path(&err, mounted.path());
    // The first mount still works.
    assert!(names(mounted.path()).is_empty());
    fs::write(mounted.join("still.txt"), b"alive").unwrap();
    assert_eq!(fs::read(mounted.join("still.txt")).unwrap(), b"alive");

    let (result, _) = mounted.unmount();
    result.expect("unmount");
}
