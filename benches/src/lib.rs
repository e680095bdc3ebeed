//! Fixtures shared by the criterion benchmarks of `markbase-vfs` (see `benches/*.rs`).
//!
//! Generated data lives under `target/bench-data/` (or `$MARKBASE_BENCH_DATA`) and is
//! reused across runs: each fixture directory holds a `.complete` marker naming the
//! parameters it was built with, and is rebuilt from scratch when the marker is missing
//! or different.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use markbase_vfs::{
    NodeId, Vfs, VfsConfig,
    alias::AliasList,
    handles::{ReadSink, WriteSource},
    import::ImportOptions,
    schema::SCHEMA_SQL,
};
use rusqlite::{Connection, params};

/// Size of the file the read benchmark streams: 1 GiB.
pub const READ_FILE_SIZE: u64 = 1 << 30;

/// Names in each "warm" directory of the metadata catalog.
pub const WARM_NAMES: usize = 1_000;

/// Entries in the big directory (readdir, cold lookups).
pub const BIG_DIR_ENTRIES: usize = 100_000;

/// Size of the file the write benchmark streams: 4 GiB.
pub const WRITE_FILE_SIZE: u64 = 4 << 30;

/// Bytes per write call of the streaming write benchmark: 4 MiB, a 4K ProRes frame.
pub const WRITE_CHUNK: usize = 4 << 20;

/// Size of each file of the small-file write benchmark.
pub const SMALL_FILE_SIZE: usize = 4 << 10;

/// Files created (and written, and released) per measured batch of the small-file benchmark.
pub const SMALL_FILES_PER_BATCH: usize = 10_000;

/// Directories and files per directory of the open benchmark's catalog:
/// 1 root + 1,000 dirs + 1,000 × 999 files = 1,000,001 nodes.
pub const MILLION_DIRS: usize = 1_000;
/// Files in each directory of the 1M-node catalog.
pub const MILLION_FILES_PER_DIR: usize = 999;

/// The directory that holds generated benchmark data, created if needed.
///
/// `$MARKBASE_BENCH_DATA`, else `$CARGO_TARGET_DIR/bench-data`, else the
/// workspace's `target/bench-data`.
pub fn data_dir() -> PathBuf {
    let dir = if let Some(dir) = std::env::var_os("MARKBASE_BENCH_DATA") {
        PathBuf::from(dir)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("bench-data")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("bench-data")
    };
    std::fs::create_dir_all(&dir).expect("create the bench-data directory");
    dir
}

/// Resident memory of this process, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

/// Resident anonymous memory (heap, stacks) of this process, in KiB (`RssAnon`).
pub fn rss_anon_kib() -> u64 {
    proc_status_kib("RssAnon:")
}

/// Resident file-backed memory (mapped code and files) of this process, in KiB (`RssFile`).
pub fn rss_file_kib() -> u64 {
    proc_status_kib("RssFile:")
}

/// Peak resident memory of this process, in KiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"))
}

/// A reused buffer that [`Vfs::read`] fills with one `pread` straight into it.
///
/// Each call appends after the bytes read since the last [`VecSink::clear`], so the
/// sink stays right however many times `Vfs::read` calls it for one read.
pub struct VecSink {
    buf: Vec<u8>,
    filled: usize,
}

impl VecSink {
    /// A sink whose buffer holds `capacity` bytes (allocated and touched once, here).
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            filled: 0,
        }
    }

    /// Empties the sink for the next read; the buffer is kept.
    pub fn clear(&mut self) {
        self.filled = 0;
    }

    /// The bytes read since the last [`VecSink::clear`].
    pub fn filled(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// The whole buffer, for a baseline that reads into the same memory.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// The unfilled rest of the buffer is the sink ([`ReadSink`] for `[u8]`).
impl ReadSink for VecSink {
    fn read_from(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let n = ReadSink::read_from(&mut self.buf[self.filled..], file, offset, len)?;
        self.filled += n;
        Ok(n)
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = ReadSink::take(&mut self.buf[self.filled..], bytes)?;
        self.filled += n;
        Ok(n)
    }
}

/// A reused buffer that [`Vfs::write`] writes from with one `pwrite` straight out of it.
///
/// Every call writes the buffer's first `len` bytes, so a benchmark that writes the
/// same chunk over and over (at growing offsets) never copies or allocates.
pub struct VecSource {
    buf: Vec<u8>,
}

impl VecSource {
    /// A source of `capacity` bytes of a repeating pattern (allocated and touched once, here).
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: (0..capacity).map(|i| (i % 251) as u8).collect(),
        }
    }

    /// The whole buffer, for a baseline that writes from the same memory.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }
}

/// The buffer is the source ([`WriteSource`] for `[u8]`).
impl WriteSource for VecSource {
    fn write_to(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        self.buf.as_mut_slice().write_to(file, offset, len)
    }

    fn copy_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.buf.as_mut_slice().copy_to(buf)
    }
}

/// Writes all of `buf` at `offset` with plain `pwrite`, one call per short write, as a
/// caller of `Vfs::write` does.
pub fn pwrite_full(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.write_at(&buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// `syncfs(2)` of the filesystem that holds `path`: every dirty page and the journal
/// reach the disk, so that the next measured pass does not pay for an earlier one.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    // SAFETY: `dir` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPU time used so far by the calling thread, as (user, system) (`RUSAGE_THREAD`).
pub fn thread_cpu_times() -> (std::time::Duration, std::time::Duration) {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD)");
    let time =
        |tv: libc::timeval| std::time::Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1_000);
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// Marks `dir` so that ext4 spreads the directories made in it over the disk as it does
/// top-level ones (`chattr +T`, `FS_TOPDIR_FL`). Best effort: ignored where unsupported.
///
/// On an ext4 without a journal (as on this project's VMs), creating files in a block
/// group where many inodes were freed in the last minutes is 10-20x slower: the kernel
/// does not reuse those inodes yet and scans past each of them on every create
/// (`recently_deleted()` in `find_inode_bit()`). Spreading puts a benchmark's new files
/// away from the directories where other programs just deleted many files (not away from
/// block groups that were emptied outright: ext4 prefers those).
pub fn spread_subdirectories(dir: &Path) {
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let Ok(file) = File::open(dir) else {
        return;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut flags: libc::c_int = 0;
    // SAFETY: `fd` is open for the duration of both calls, and both take a pointer to
    // an int that lives across them.
    unsafe {
        if libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) == 0 && flags & FS_TOPDIR_FL == 0 {
            flags |= FS_TOPDIR_FL;
            libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

/// How many of this process's open descriptors name a deleted file (`/proc/self/fd`).
///
/// A write benchmark deletes its files between passes; a descriptor kept open on one
/// of them would keep its 4 GiB on the disk.
pub fn open_deleted_files() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().ends_with(" (deleted)"))
        .count()
}

/// Reads `len` bytes at `offset` with plain `pread`, retrying short reads, like `Vfs::read`.
pub fn pread_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(done)
}

/// Reads the whole file of `file_size` bytes with plain `pread`, `buf.len()` bytes per
/// call (the baseline of the read benchmarks); the first byte of the last read.
pub fn pread_pass(file: &File, file_size: u64, buf: &mut [u8]) -> Option<u8> {
    let mut total = 0u64;
    let mut offset = 0;
    while offset < file_size {
        total += pread_full(file, buf, offset).expect("pread") as u64;
        offset += buf.len() as u64;
    }
    assert_eq!(total, file_size);
    buf.first().copied()
}

/// Reads a whole file once so that its pages are in the page cache.
pub fn warm_page_cache(path: &Path) -> io::Result<u64> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    loop {
        let n = pread_full(&file, &mut buf, offset)?;
        if n == 0 {
            return Ok(offset);
        }
        offset += n as u64;
    }
}

/// Runs `build` into `dir` unless `dir/.complete` says it already holds `version`.
///
/// A partial or outdated directory is removed first; the marker is written last.
fn cached_fixture(dir: &Path, version: &str, build: impl FnOnce(&Path)) {
    let marker = dir.join(".complete");
    if std::fs::read_to_string(&marker).is_ok_and(|found| found == version) {
        return;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("remove an outdated fixture");
    }
    std::fs::create_dir_all(dir).expect("create the fixture directory");
    let started = Instant::now();
    eprintln!("bench-data: building {} ...", dir.display());
    build(dir);
    std::fs::write(&marker, version).expect("write the fixture marker");
    eprintln!(
        "bench-data: built {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// The read benchmark's data: a 1 GiB pattern file, imported with [`markbase_vfs::import::import`].
pub struct ReadFixture {
    /// The catalog.
    pub catalog: PathBuf,
    /// The pattern file (the node's alias).
    pub file: PathBuf,
    /// The file's path in the catalog.
    pub catalog_path: &'static str,
    /// Its size.
    pub size: u64,
}

/// Builds (or reuses) the read fixture under `target/bench-data/read`.
pub fn read_fixture() -> ReadFixture {
    let dir = data_dir().join("read");
    let version = format!("read v1 size={READ_FILE_SIZE}");
    cached_fixture(&dir, &version, |dir| {
        let media = dir.join("media");
        std::fs::create_dir_all(&media).expect("create media dir");
        markbase_testkit::write_pattern_file(&media.join("pattern-1g.bin"), READ_FILE_SIZE, 7)
            .expect("write the pattern file");
        markbase_vfs::import::import(
            &media,
            &dir.join("warren.sqlite"),
            &ImportOptions::default(),
        )
        .expect("import the pattern file");
    });
    let file = dir.join("media").join("pattern-1g.bin");
    let size = std::fs::metadata(&file).expect("pattern file").len();
    assert_eq!(
        size,
        READ_FILE_SIZE,
        "{} has the wrong size",
        file.display()
    );
    ReadFixture {
        catalog: dir.join("warren.sqlite"),
        file,
        catalog_path: "/pattern-1g.bin",
        size,
    }
}

/// A write benchmark's scratch space, made afresh on every run (its subdirectories
/// spread over the disk, see [`spread_subdirectories`]):
///
/// ```text
/// <name>/warren.sqlite   an empty catalog; files created through it get their bytes in
/// <name>/warren-store/   the store (the default place, beside the catalog)
/// <name>/plain/          the baseline's plain files, on the same disk
/// ```
pub struct WriteFixture {
    /// The directory that holds all of it.
    pub dir: PathBuf,
    /// The catalog.
    pub catalog: PathBuf,
    /// Where the baseline writes its files.
    pub plain: PathBuf,
}

/// Makes a write benchmark's scratch space `target/bench-data/<name>`, removing whatever
/// an earlier (perhaps interrupted) run left there.
pub fn write_fixture(name: &str) -> WriteFixture {
    let dir = data_dir().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove an earlier write benchmark's files");
    }
    std::fs::create_dir_all(&dir).expect("create the write benchmark's directory");
    // The store and `plain/` then land in block groups of their own, away from the
    // inodes an earlier run freed.
    spread_subdirectories(&dir);
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).expect("create the write benchmark's directories");
    let catalog = dir.join("warren.sqlite");
    {
        let conn = Connection::open(&catalog).expect("create the catalog");
        conn.execute_batch(SCHEMA_SQL).expect("create the schema");
        finish_catalog(&conn);
    }
    WriteFixture {
        dir,
        catalog,
        plain,
    }
}

/// The metadata catalog: names to look up warm and cold, and a 100,000-entry directory.
///
/// ```text
/// /warm-files/f00000 .. f00999   files, each aliased to its own 16-byte file
/// /warm-dirs/d00000 .. d00999    directories
/// /big/e000000 .. e099999        files, all aliased to one shared 16-byte file
/// ```
pub struct MetaFixture {
    /// The catalog.
    pub catalog: PathBuf,
}

impl MetaFixture {
    /// The names in `/warm-files`.
    pub fn warm_file_names() -> Vec<String> {
        (0..WARM_NAMES).map(|i| format!("f{i:05}")).collect()
    }

    /// The names in `/warm-dirs`.
    pub fn warm_dir_names() -> Vec<String> {
        (0..WARM_NAMES).map(|i| format!("d{i:05}")).collect()
    }

    /// The names in `/big`.
    pub fn big_names() -> Vec<String> {
        (0..BIG_DIR_ENTRIES).map(|i| format!("e{i:06}")).collect()
    }
}

/// Builds (or reuses) the metadata fixture under `target/bench-data/meta`.
pub fn meta_fixture() -> MetaFixture {
    let dir = data_dir().join("meta");
    let version = format!("meta v2 warm={WARM_NAMES} big={BIG_DIR_ENTRIES}");
    cached_fixture(&dir, &version, |dir| {
        let warm = dir.join("media").join("warm");
        std::fs::create_dir_all(&warm).expect("create media dir");
        for name in MetaFixture::warm_file_names() {
            std::fs::write(warm.join(&name), b"0123456789abcdef").expect("write a warm file");
        }
        std::fs::write(dir.join("media").join("shared.bin"), b"0123456789abcdef")
            .expect("write the shared file");

        let conn = new_catalog(&dir.join("warren.sqlite"));
        conn.execute_batch("BEGIN").expect("begin");
        {
            let mut insert = conn
                .prepare(
                    "INSERT INTO nodes (id, parent_id, name, kind, size, mtime_ns, aliases_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                )
                .expect("prepare insert");
            let mut row = |id: i64, parent: i64, name: &str, kind: &str, aliases: &str| {
                let size = if kind == "file" { 16 } else { 0 };
                insert
                    .execute(params![id, parent, name, kind, size, aliases])
                    .expect("insert a node");
            };
            let (warm_files, warm_dirs, big) = (2, 3, 4);
            row(warm_files, 1, "warm-files", "dir", "[]");
            row(warm_dirs, 1, "warm-dirs", "dir", "[]");
            row(big, 1, "big", "dir", "[]");
            let mut id = 10;
            for name in MetaFixture::warm_file_names() {
                let alias = AliasList::to_json(&[format!("media/warm/{name}")]);
                row(id, warm_files, &name, "file", &alias);
                id += 1;
            }
            for name in MetaFixture::warm_dir_names() {
                row(id, warm_dirs, &name, "dir", "[]");
                id += 1;
            }
            let shared = AliasList::to_json(&["media/shared.bin"]);
            for name in MetaFixture::big_names() {
                row(id, big, &name, "file", &shared);
                id += 1;
            }
        }
        conn.execute_batch("COMMIT").expect("commit");
        finish_catalog(&conn);
    });
    MetaFixture {
        catalog: dir.join("warren.sqlite"),
    }
}

/// Builds (or reuses) the 1,000,001-node catalog under `target/bench-data/million`.
///
/// Rows are written with plain SQL in one transaction, in (parent, name) order so
/// that index inserts append; aliases are absolute paths that need not exist
/// (opening the catalog never touches them).
pub fn million_fixture() -> PathBuf {
    let dir = data_dir().join("million");
    let version = format!("million v2 dirs={MILLION_DIRS} files={MILLION_FILES_PER_DIR}");
    cached_fixture(&dir, &version, |dir| {
        let conn = new_catalog(&dir.join("warren.sqlite"));
        conn.execute_batch("BEGIN").expect("begin");
        {
            let mut insert = conn
                .prepare(
                    "INSERT INTO nodes (id, parent_id, name, kind, size, mtime_ns, aliases_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare insert");
            let mtime = 1_700_000_000_000_000_000i64;
            for d in 0..MILLION_DIRS {
                let dir_id = 2 + d as i64;
                let name = format!("Project {d:04}");
                insert
                    .execute(params![dir_id, 1, name, "dir", 0, mtime, "[]"])
                    .expect("insert a dir");
            }
            let mut id = 2 + MILLION_DIRS as i64;
            for d in 0..MILLION_DIRS {
                let dir_id = 2 + d as i64;
                for f in 0..MILLION_FILES_PER_DIR {
                    let name = format!("clip {f:04}.mov");
                    let alias =
                        AliasList::to_json(&[format!("/Volumes/Media/Project {d:04}/{name}")]);
                    insert
                        .execute(params![id, dir_id, name, "file", 1 << 30, mtime, alias])
                        .expect("insert a file");
                    id += 1;
                }
            }
        }
        conn.execute_batch("COMMIT").expect("commit");
        finish_catalog(&conn);
    });
    dir.join("warren.sqlite")
}

/// The number of nodes in the 1M-node catalog.
pub const fn million_nodes() -> usize {
    1 + MILLION_DIRS + MILLION_DIRS * MILLION_FILES_PER_DIR
}

/// A new schema-v1 catalog at `path`, tuned for a fast one-off bulk load.
fn new_catalog(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("create the catalog");
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = OFF", [], |row| row.get(0))
        .expect("journal_mode pragma");
    conn.execute_batch("PRAGMA synchronous = OFF")
        .expect("synchronous pragma");
    conn.execute_batch(SCHEMA_SQL).expect("create the schema");
    conn
}

/// Leaves a bulk-loaded catalog as a real one is: in WAL mode (persistent, and what
/// `Vfs::open` would otherwise switch to on its first open, paying an fsync of the
/// freshly written file there) and synced to disk.
fn finish_catalog(conn: &Connection) {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .expect("switch to WAL");
    assert_eq!(mode, "wal");
}

/// Gives freed heap memory back to the system, so that a following `VmRSS` difference
/// counts new allocations instead of reused free pages.
pub fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions; glibc only releases free memory.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Opens `catalog` with the default configuration.
pub fn open_vfs(catalog: &Path) -> Vfs {
    Vfs::open(VfsConfig::new(catalog)).expect("open the catalog")
}

/// The id of the directory at `path` in `vfs`.
pub fn dir_id(vfs: &Vfs, path: &str) -> NodeId {
    vfs.lookup_path(path).expect("a fixture directory").id
}
