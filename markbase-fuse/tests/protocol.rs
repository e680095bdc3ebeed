//! [`MarkbaseFs`] as the kernel sees it, without a kernel: each test sends FUSE
//! requests through fuse-backend-rs's `Server` from an in-memory client
//! ([`fuse_client`]) and checks the replies byte for byte: negotiated features,
//! entries and their timeouts, attributes, directory offsets, open flags, rename
//! flags, and the errno of every refusal. No root, no `/dev/fuse`: these run
//! everywhere, unlike `tests/mount.rs`, which checks the same adapter mounted.

#![cfg(target_os = "linux")]

mod fuse_client;

use std::fmt::Debug;
use std::fs::{self, File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuse_backend_rs::abi::fuse_abi::{EntryOut, FsOptions, OpenOptions, SetattrIn, SetattrValid};
use fuse_client::{Answer, Client, Errno, Listed};
use libc::{
    DT_DIR, DT_REG, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY,
    RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, S_IFDIR, S_IFIFO, S_IFREG,
};
use markbase_fuse::{CachePolicy, MarkbaseFs};
use markbase_testkit::{is_root, pattern_byte, write_pattern_file};
use markbase_vfs::{Vfs, VfsConfig, import::ImportOptions, node::Owner};
use tempfile::TempDir;

const ROOT: u64 = 1;

/// The mount's entry and attribute timeout; not whole seconds, so that both halves of
/// the replies' timeouts are checked.
const TTL: Duration = Duration::from_millis(1500);

/// Who owns the folders (the catalog's [`VfsConfig::owner`]), unlike anyone real.
const DIR_OWNER: Owner = Owner {
    uid: 4242,
    gid: 4343,
};

/// Who owns `clip.mov` when the tests run as root (who can give it away).
const FILE_OWNER: Owner = Owner {
    uid: 1234,
    gid: 5678,
};

/// `clip.mov`: its size, pattern seed, permission bits and mtime (s, ns).
const CLIP_SIZE: u64 = 100;
const CLIP_SEED: u64 = 7;
const CLIP_PERM: u32 = 0o640;
const CLIP_MTIME: (u64, u32) = (1_600_000_000, 123_456_789);

/// The entries of `/list`, listed with small buffers while it changes.
const LIST: &[&str] = &["a", "b", "c", "d", "e"];

/// A READDIR buffer that holds any whole listing here.
const BIG: u32 = 64 * 1024;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A temp dir holding a catalog imported from `media/`:
///
/// ```text
/// /clip.mov    CLIP_SIZE pattern bytes, mode CLIP_PERM, mtime CLIP_MTIME
/// /Day 1/a.txt "alpha\n"
/// /empty/
/// /list/a ... /list/e   empty files
/// ```
struct Library {
    dir: TempDir,
}

impl Library {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Folders closed to others would hide the files' group and other bits.
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod tempdir");
        let lib = Self { dir };
        let media = lib.media("");
        for sub in ["Day 1", "empty", "list"] {
            fs::create_dir_all(media.join(sub)).expect("media folder");
        }
        let clip = lib.media("clip.mov");
        write_pattern_file(&clip, CLIP_SIZE, CLIP_SEED).expect("clip.mov");
        fs::set_permissions(&clip, Permissions::from_mode(CLIP_PERM)).expect("chmod clip");
        File::options()
            .write(true)
            .open(&clip)
            .and_then(|file| file.set_modified(clip_mtime()))
            .expect("clip mtime");
        if is_root() {
            std::os::unix::fs::chown(&clip, Some(FILE_OWNER.uid), Some(FILE_OWNER.gid))
                .expect("chown clip");
        }
        fs::write(lib.media("Day 1/a.txt"), b"alpha\n").expect("a.txt");
        for name in LIST {
            fs::write(lib.media(&format!("list/{name}")), b"").expect("list entry");
        }
        let stats = markbase_vfs::import::import(&media, &lib.catalog(), &ImportOptions::default())
            .expect("import");
        assert!(
            stats.skipped.is_empty(),
            "import skipped {:?}",
            stats.skipped
        );
        lib
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn media(&self, rel: &str) -> PathBuf {
        self.path().join("media").join(rel)
    }

    fn catalog(&self) -> PathBuf {
        self.path().join("warren.sqlite")
    }

    fn store(&self) -> PathBuf {
        self.path().join("warren-store")
    }

    fn config(&self) -> VfsConfig {
        let mut config = VfsConfig::new(self.catalog());
        config.owner = DIR_OWNER;
        config
    }

    fn client(&self) -> Client {
        self.client_with(self.config(), false)
    }

    fn read_only_client(&self) -> Client {
        let mut config = self.config();
        config.read_only = true;
        self.client_with(config, false)
    }

    fn client_with(&self, config: VfsConfig, writeback: bool) -> Client {
        let vfs = Arc::new(Vfs::open(config).expect("open the catalog"));
        Client::new(MarkbaseFs::new(
            vfs,
            CachePolicy {
                ttl: TTL,
                writeback,
            },
        ))
    }

    /// The files the store holds.
    fn store_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.store()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|entry| entry.expect("store entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        files
    }

    /// The one file the store holds.
    fn only_store_file(&self) -> PathBuf {
        let files = self.store_files();
        assert_eq!(files.len(), 1, "store files: {files:?}");
        files.into_iter().next().expect("one file")
    }
}

fn clip_mtime() -> SystemTime {
    UNIX_EPOCH + Duration::new(CLIP_MTIME.0, CLIP_MTIME.1)
}

fn clip_bytes() -> Vec<u8> {
    (0..CLIP_SIZE).map(|i| pattern_byte(CLIP_SEED, i)).collect()
}

/// Asserts that `result` is the errno `expected`.
#[track_caller]
fn assert_errno<T: Debug>(result: Answer<T>, expected: i32) {
    match result {
        Err(Errno(got)) if got == expected => {}
        other => panic!("expected {:?}, got {other:?}", Errno(expected)),
    }
}

/// The node `name` in `parent`, which must exist.
#[track_caller]
fn ino(client: &mut Client, parent: u64, name: &str) -> u64 {
    let entry = client
        .lookup(parent, name.as_bytes())
        .unwrap_or_else(|errno| panic!("LOOKUP {name:?}: {errno:?}"));
    assert_ne!(entry.nodeid, 0, "{name:?} is missing");
    entry.nodeid
}

/// Whether `name` in `parent` is absent (LOOKUP answers a negative entry).
#[track_caller]
fn absent(client: &mut Client, parent: u64, name: &str) -> bool {
    let entry = client
        .lookup(parent, name.as_bytes())
        .unwrap_or_else(|errno| panic!("LOOKUP {name:?}: {errno:?}"));
    entry.nodeid == 0
}

/// Asserts that a reply's timeout (seconds and nanoseconds) is [`TTL`].
#[track_caller]
fn assert_ttl(secs: u64, nsecs: u32, what: &str) {
    assert_eq!(
        Duration::new(secs, nsecs),
        TTL,
        "{what}: timeout {secs} s {nsecs} ns"
    );
}

/// Creates file `name` in `parent` holding `data`, closed again; its node.
fn make_file(client: &mut Client, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (entry, open) = client
        .create(
            parent,
            name.as_bytes(),
            O_CREAT | O_EXCL | O_RDWR,
            S_IFREG | 0o644,
            0,
        )
        .unwrap_or_else(|errno| panic!("CREATE {name:?}: {errno:?}"));
    if !data.is_empty() {
        assert_eq!(
            client.write(entry.nodeid, open.fh, 0, data),
            Ok(data.len() as u32)
        );
    }
    client.release(entry.nodeid, open.fh).expect("RELEASE");
    entry.nodeid
}

/// Opens `ino` with `flags`; the handle.
#[track_caller]
fn open(client: &mut Client, ino: u64, flags: i32) -> u64 {
    let out = client
        .open(ino, flags)
        .unwrap_or_else(|errno| panic!("OPEN {ino} with {flags:#o}: {errno:?}"));
    assert_ne!(out.fh, 0, "OPEN {ino}: no handle");
    out.fh
}

fn size_of_node(client: &mut Client, ino: u64) -> u64 {
    client.getattr(ino, None).expect("GETATTR").attr.size
}

fn names(listed: &[Listed]) -> Vec<&str> {
    listed.iter().map(Listed::name).collect()
}

fn setattr(valid: SetattrValid) -> SetattrIn {
    SetattrIn {
        valid: valid.bits(),
        ..SetattrIn::default()
    }
}

fn page_size() -> u32 {
    rustix::param::page_size() as u32
}

// ---------------------------------------------------------------------------
// INIT
// ---------------------------------------------------------------------------

/// The features markbase asks for on Linux.
fn wanted() -> FsOptions {
    FsOptions::ASYNC_READ
        | FsOptions::BIG_WRITES
        | FsOptions::MAX_PAGES
        | FsOptions::ATOMIC_O_TRUNC
        | FsOptions::PARALLEL_DIROPS
        | FsOptions::AUTO_INVAL_DATA
        | FsOptions::DO_READDIRPLUS
        | FsOptions::READDIRPLUS_AUTO
        | FsOptions::ASYNC_DIO
}

fn enabled(flags: u32, flags2: u32) -> FsOptions {
    let bits = u64::from(flags) | (u64::from(flags2) << 32);
    let options = FsOptions::from_bits_truncate(bits);
    assert_eq!(
        options.bits(),
        bits,
        "INIT answered unknown flags {bits:#x}"
    );
    options
}

#[test]
fn init_enables_what_markbase_wants_of_all_the_kernel_offers() {
    let lib = Library::new();
    let mut client = lib.client();
    let out = client.init(FsOptions::all(), 128 * 1024).expect("INIT");
    assert_eq!((out.major, out.minor), (7, 33));
    assert_eq!(enabled(out.flags, out.flags2), wanted());
    // MAX_PAGES: 256 pages per request, 1 MiB writes.
    assert_eq!(out.max_pages, 256);
    assert_eq!(out.max_write, 256 * page_size());
    assert_eq!(out.max_readahead, 128 * 1024);
    assert_eq!(out.time_gran, 1, "timestamps in nanoseconds");
}

#[test]
fn init_with_writeback_caching_also_enables_it() {
    let lib = Library::new();
    let mut client = lib.client_with(lib.config(), true);
    let out = client.init(FsOptions::all(), 0).expect("INIT");
    assert_eq!(
        enabled(out.flags, out.flags2),
        wanted() | FsOptions::WRITEBACK_CACHE
    );
}

#[test]
fn init_enables_only_what_the_kernel_offers() {
    let lib = Library::new();
    let mut client = lib.client();
    // An old kernel: no big writes, no MAX_PAGES, no READDIRPLUS, no flags2.
    let offered = FsOptions::ASYNC_READ
        | FsOptions::POSIX_LOCKS
        | FsOptions::SPLICE_READ
        | FsOptions::WRITEBACK_CACHE
        | FsOptions::ATOMIC_O_TRUNC;
    let out = client.init(offered, 0).expect("INIT");
    assert_eq!(
        enabled(out.flags, out.flags2),
        FsOptions::ASYNC_READ | FsOptions::ATOMIC_O_TRUNC,
        "writeback was not asked for, locks and splice are not wanted"
    );
    assert_eq!(out.max_pages, 0);
    assert_eq!(out.max_write, 4096, "fuse-backend-rs's smallest");
}

// ---------------------------------------------------------------------------
// LOOKUP, FORGET, GETATTR
// ---------------------------------------------------------------------------

#[test]
fn lookup_of_a_file_answers_its_entry_and_attributes() {
    let lib = Library::new();
    let mut client = lib.client();
    let entry = client.lookup(ROOT, b"clip.mov").expect("LOOKUP");
    let meta = fs::metadata(lib.media("clip.mov")).expect("stat clip");
    assert_ne!(entry.nodeid, 0);
    assert_eq!(entry.generation, 0);
    assert_ttl(entry.entry_valid, entry.entry_valid_nsec, "entry");
    assert_ttl(entry.attr_valid, entry.attr_valid_nsec, "attributes");
    let attr = entry.attr;
    assert_eq!(attr.ino, entry.nodeid);
    assert_eq!(attr.mode, S_IFREG | CLIP_PERM);
    assert_eq!(attr.size, CLIP_SIZE);
    assert_eq!(attr.nlink, 1);
    assert_eq!((attr.uid, attr.gid), (meta.uid(), meta.gid()));
    assert_eq!((attr.mtime, attr.mtimensec), CLIP_MTIME);
}

#[test]
fn lookup_of_a_folder_answers_the_catalog_owner_and_0755() {
    let lib = Library::new();
    let mut client = lib.client();
    let entry = client.lookup(ROOT, b"Day 1").expect("LOOKUP");
    assert_ne!(entry.nodeid, 0);
    assert_ttl(entry.entry_valid, entry.entry_valid_nsec, "entry");
    assert_eq!(entry.attr.mode, S_IFDIR | 0o755);
    assert_eq!(
        (entry.attr.uid, entry.attr.gid),
        (DIR_OWNER.uid, DIR_OWNER.gid)
    );
    assert_eq!(entry.attr.ino, entry.nodeid);
    let inner = client.lookup(entry.nodeid, b"a.txt").expect("LOOKUP a.txt");
    assert_eq!(inner.attr.size, 6);
    assert_eq!(inner.attr.mode & libc::S_IFMT, S_IFREG);
}

#[test]
fn lookup_of_a_missing_name_is_a_negative_entry_kept_for_the_ttl() {
    let lib = Library::new();
    let mut client = lib.client();
    let entry = client
        .lookup(ROOT, b"nothing")
        .expect("a reply, not an error");
    assert_eq!(entry.nodeid, 0, "a negative entry");
    assert_ttl(entry.entry_valid, entry.entry_valid_nsec, "negative entry");
    assert_eq!((entry.attr_valid, entry.attr_valid_nsec), (0, 0));
    assert_eq!(entry.attr.ino, 0);
    assert_eq!(entry.attr.mode, 0);
    // Made afterwards, it is found: the core forgot its own negative entry.
    let made = make_file(&mut client, ROOT, "nothing", b"");
    assert_eq!(ino(&mut client, ROOT, "nothing"), made);
}

#[test]
fn lookup_of_names_the_catalog_cannot_hold_fails() {
    let lib = Library::new();
    let mut client = lib.client();
    // Not UTF-8: no catalog name can match, so ENOENT (and nothing for the kernel
    // to cache).
    assert_errno(client.lookup(ROOT, b"clip\xff.mov"), libc::ENOENT);
    assert_errno(client.lookup(ROOT, &[b'x'; 256]), libc::ENAMETOOLONG);
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(client.lookup(clip, b"inside"), libc::ENOTDIR);
}

#[test]
fn forget_has_no_reply() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert!(client.forget(clip, 1).is_none());
    // The node is still served: forgetting holds no state.
    assert_eq!(ino(&mut client, ROOT, "clip.mov"), clip);
}

#[test]
fn getattr_of_a_file_is_its_backing_files_mode_owner_size_times_and_blocks() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let out = client.getattr(clip, None).expect("GETATTR");
    assert_ttl(out.attr_valid, out.attr_valid_nsec, "attributes");
    let meta = fs::metadata(lib.media("clip.mov")).expect("stat clip");
    let attr = out.attr;
    assert_eq!(attr.ino, clip);
    assert_eq!(attr.mode, S_IFREG | CLIP_PERM);
    assert_eq!(attr.size, CLIP_SIZE);
    assert_eq!(attr.blocks, meta.blocks());
    assert_eq!(attr.blksize, 1 << 20, "programs size their buffers by it");
    if is_root() {
        assert_eq!((attr.uid, attr.gid), (FILE_OWNER.uid, FILE_OWNER.gid));
    }
    assert_eq!((attr.uid, attr.gid), (meta.uid(), meta.gid()));
    assert_eq!((attr.mtime, attr.mtimensec), CLIP_MTIME);
    assert_eq!(
        (attr.atime, attr.atimensec),
        CLIP_MTIME,
        "atime is the mtime: the catalog keeps none"
    );
    // Changed (chmod, utimes) after its mtime: the backing file's ctime.
    assert_eq!(
        (attr.ctime as i64, i64::from(attr.ctimensec)),
        (meta.ctime(), meta.ctime_nsec())
    );
}

#[test]
fn getattr_of_the_root_is_counted() {
    let lib = Library::new();
    let mut client = lib.client();
    assert_eq!(client.fs().root_getattrs(), 0);
    let out = client.getattr(ROOT, None).expect("GETATTR /");
    assert_eq!(out.attr.ino, ROOT);
    assert_eq!(out.attr.mode, S_IFDIR | 0o755);
    assert_eq!((out.attr.uid, out.attr.gid), (DIR_OWNER.uid, DIR_OWNER.gid));
    assert_eq!(client.fs().root_getattrs(), 1);
    let day = ino(&mut client, ROOT, "Day 1");
    client.getattr(day, None).expect("GETATTR");
    assert_eq!(client.fs().root_getattrs(), 1, "only the root's count");
}

#[test]
fn getattr_of_an_unlinked_file_still_open_is_the_open_files() {
    let lib = Library::new();
    let mut client = lib.client();
    let (entry, opened) = client
        .create(ROOT, b"gone", O_CREAT | O_RDWR, S_IFREG | 0o600, 0)
        .expect("CREATE");
    let gone = entry.nodeid;
    assert_eq!(client.write(gone, opened.fh, 0, b"12345"), Ok(5));
    client.unlink(ROOT, b"gone").expect("UNLINK");
    for fh in [Some(opened.fh), None] {
        let attr = client
            .getattr(gone, fh)
            .expect("GETATTR of the open file")
            .attr;
        assert_eq!(attr.nlink, 0, "fh {fh:?}");
        assert_eq!(attr.size, 5, "fh {fh:?}");
        assert_eq!(attr.mode, S_IFREG | 0o600, "fh {fh:?}");
    }
    client.release(gone, opened.fh).expect("RELEASE");
    assert_errno(client.getattr(gone, None), libc::ENOENT);
    assert_errno(client.getattr(9999, None), libc::ENOENT);
}

// ---------------------------------------------------------------------------
// READDIR, READDIRPLUS
// ---------------------------------------------------------------------------

/// Checks the listing of the root: `.` and `..` first, then the entries in name order.
fn check_root_listing(client: &mut Client, listed: &[Listed]) {
    assert_eq!(
        names(listed),
        [".", "..", "Day 1", "clip.mov", "empty", "list"]
    );
    assert_eq!(
        (listed[0].ino, listed[0].off, listed[0].type_),
        (ROOT, 1, u32::from(DT_DIR))
    );
    assert_eq!(
        (listed[1].ino, listed[1].off, listed[1].type_),
        (ROOT, 2, u32::from(DT_DIR)),
        "the root is its own parent"
    );
    for entry in &listed[2..] {
        let found = ino(client, ROOT, entry.name());
        assert_eq!(entry.ino, found, "{}", entry.name());
        assert!(entry.off > 2, "{}: offset {}", entry.name(), entry.off);
        let kind = if entry.name() == "clip.mov" {
            DT_REG
        } else {
            DT_DIR
        };
        assert_eq!(entry.type_, u32::from(kind), "{}", entry.name());
    }
}

#[test]
fn readdir_lists_dot_and_dotdot_first_then_entries_in_name_order() {
    let lib = Library::new();
    let mut client = lib.client();
    let dir = client.opendir(ROOT).expect("OPENDIR");
    let listed = client.readdir(ROOT, dir.fh, 0, BIG).expect("READDIR");
    check_root_listing(&mut client, &listed);
    // At the end: an empty reply.
    let last = listed.last().expect("entries").off;
    assert_eq!(client.readdir(ROOT, dir.fh, last, BIG), Ok(Vec::new()));
    client.releasedir(ROOT, dir.fh).expect("RELEASEDIR");

    let day = ino(&mut client, ROOT, "Day 1");
    let listed = client.readdir(day, 0, 0, BIG).expect("READDIR");
    assert_eq!(names(&listed), [".", "..", "a.txt"]);
    assert_eq!((listed[0].ino, listed[1].ino), (day, ROOT));
}

#[test]
fn readdir_resumes_at_each_offset_with_buffers_of_one_or_two_entries() {
    let lib = Library::new();
    let mut client = lib.client();
    let whole = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    // 32 bytes hold one entry of these (a 24-byte dirent and a name of up to 8
    // bytes); 40 still one; 64 two.
    for size in [32, 40, 64] {
        assert_eq!(
            client.list_all(ROOT, size),
            whole,
            "buffers of {size} bytes"
        );
    }
    // Resuming after each entry gives the rest.
    for (i, entry) in whole.iter().enumerate() {
        let rest = client.readdir(ROOT, 0, entry.off, BIG).expect("READDIR");
        assert_eq!(rest, whole[i + 1..], "after {}", entry.name());
    }
    // A buffer too small for `.` gets nothing, and loses nothing.
    assert_eq!(client.readdir(ROOT, 0, 0, 31), Ok(Vec::new()));
}

#[test]
fn readdir_offsets_stay_right_when_entries_come_and_go_between_calls() {
    let lib = Library::new();
    let mut client = lib.client();
    let list = ino(&mut client, ROOT, "list");
    let first = client.readdir(list, 0, 0, 64).expect("READDIR");
    assert_eq!(names(&first), [".", ".."]);
    let second = client.readdir(list, 0, first[1].off, 64).expect("READDIR");
    assert_eq!(names(&second), ["a", "b"]);
    // Between calls: new names before the listing's position ("aa") and after it
    // ("bb", "f"); the entry it stopped at ("b") and one not listed yet ("d") go.
    for name in ["aa", "bb", "f"] {
        make_file(&mut client, list, name, b"");
    }
    client.unlink(list, b"b").expect("UNLINK b");
    client.unlink(list, b"d").expect("UNLINK d");
    let mut rest = Vec::new();
    let mut offset = second[1].off;
    loop {
        let batch = client.readdir(list, 0, offset, 32).expect("READDIR");
        let Some(last) = batch.last() else { break };
        offset = last.off;
        rest.extend(batch);
    }
    assert_eq!(names(&rest), ["bb", "c", "e", "f"]);
}

#[test]
fn readdir_offsets_survive_a_restart() {
    let lib = Library::new();
    let mut before = lib.client();
    let list = ino(&mut before, ROOT, "list");
    let listed = before.readdir(list, 0, 0, 96).expect("READDIR");
    assert_eq!(names(&listed), [".", "..", "a"]);
    let a_offset = listed[2].off;
    // A new server (remembering nothing) resumes from the offset alone.
    let mut after = lib.client();
    let rest = after.readdir(list, 0, a_offset, BIG).expect("READDIR");
    assert_eq!(names(&rest), ["b", "c", "d", "e"]);
    // Unless the entry the offset names has gone meanwhile: that offset is stale.
    after.unlink(list, b"a").expect("UNLINK a");
    let mut fresh = lib.client();
    assert_errno(fresh.readdir(list, 0, a_offset, BIG), libc::EINVAL);
}

#[test]
fn readdir_of_a_file_or_a_missing_node_fails() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(client.readdir(clip, 0, 0, BIG), libc::ENOTDIR);
    assert_errno(client.readdirplus(clip, 0, 0, BIG), libc::ENOTDIR);
    assert_errno(client.readdir(9999, 0, 0, BIG), libc::ENOENT);
}

#[test]
fn readdirplus_gives_each_entry_its_lookup_but_none_for_the_dots() {
    let lib = Library::new();
    let mut client = lib.client();
    let plus = client.readdirplus(ROOT, 0, 0, BIG).expect("READDIRPLUS");
    let dirents: Vec<Listed> = plus.iter().map(|p| p.dirent.clone()).collect();
    check_root_listing(&mut client, &dirents);
    assert_eq!(
        dirents,
        client.readdir(ROOT, 0, 0, BIG).expect("READDIR"),
        "READDIRPLUS lists what READDIR lists"
    );
    for listed in &plus[..2] {
        assert_eq!(
            listed.entry.nodeid,
            0,
            "{}: no entry (the kernel makes none for dots)",
            listed.dirent.name()
        );
    }
    for listed in &plus[2..] {
        let name = listed.dirent.name();
        let looked_up: EntryOut = client.lookup(ROOT, name.as_bytes()).expect("LOOKUP");
        let entry = &listed.entry;
        assert_eq!(entry.nodeid, listed.dirent.ino, "{name}");
        assert_ttl(entry.entry_valid, entry.entry_valid_nsec, name);
        assert_ttl(entry.attr_valid, entry.attr_valid_nsec, name);
        assert_eq!(entry.nodeid, looked_up.nodeid, "{name}");
        assert_eq!(entry.attr.ino, looked_up.attr.ino, "{name}");
        assert_eq!(entry.attr.mode, looked_up.attr.mode, "{name}");
        assert_eq!(entry.attr.size, looked_up.attr.size, "{name}");
        assert_eq!(entry.attr.uid, looked_up.attr.uid, "{name}");
        assert_eq!(entry.attr.mtime, looked_up.attr.mtime, "{name}");
    }
}

#[test]
fn readdirplus_resumes_with_buffers_of_one_entry() {
    let lib = Library::new();
    let mut client = lib.client();
    let whole = client.readdirplus(ROOT, 0, 0, BIG).expect("READDIRPLUS");
    // An entry and a dirent of a name of up to 8 bytes: 128 + 32 bytes.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let batch = client
            .readdirplus(ROOT, 0, offset, 160)
            .expect("READDIRPLUS");
        if batch.is_empty() {
            break;
        }
        assert_eq!(batch.len(), 1, "one entry per 160 bytes");
        offset = batch[0].dirent.off;
        seen.push(batch[0].dirent.clone());
    }
    let expected: Vec<Listed> = whole.into_iter().map(|p| p.dirent).collect();
    assert_eq!(seen, expected);
}

// ---------------------------------------------------------------------------
// OPEN, READ, WRITE, FLUSH, FSYNC, RELEASE
// ---------------------------------------------------------------------------

#[test]
fn open_read_only_reads_and_refuses_writes() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let fh = open(&mut client, clip, O_RDONLY);
    assert_eq!(
        client.read(clip, fh, 0, 10),
        Ok(clip_bytes()[..10].to_vec())
    );
    assert_errno(client.write(clip, fh, 0, b"x"), libc::EBADF);
    // Nothing to flush or sync on a read-only handle; neither fails.
    assert_eq!(client.flush(clip, fh), Ok(()));
    assert_eq!(client.fsync(clip, fh, true), Ok(()));
    assert_eq!(client.release(clip, fh), Ok(()));
    assert_errno(client.release(clip, fh), libc::EBADF);
    assert_errno(client.read(clip, fh, 0, 10), libc::EBADF);
    assert_eq!(fs::read(lib.media("clip.mov")).expect("clip"), clip_bytes());
}

#[test]
fn open_for_writing_writes_to_the_backing_file() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let mut expected = clip_bytes();

    let fh = open(&mut client, clip, O_WRONLY);
    assert_eq!(client.write(clip, fh, 10, b"XYZ"), Ok(3));
    expected[10..13].copy_from_slice(b"XYZ");
    assert_eq!(client.fsync(clip, fh, false), Ok(()));
    client.release(clip, fh).expect("RELEASE");

    let fh = open(&mut client, clip, O_RDWR);
    assert_eq!(client.read(clip, fh, 8, 7), Ok(expected[8..15].to_vec()));
    assert_eq!(client.write(clip, fh, 0, b"rw"), Ok(2));
    expected[..2].copy_from_slice(b"rw");
    assert_eq!(client.read(clip, fh, 0, 4), Ok(expected[..4].to_vec()));
    client.release(clip, fh).expect("RELEASE");

    // O_APPEND is the kernel's: it sends each write at the end of the file.
    let fh = open(&mut client, clip, O_WRONLY | O_APPEND);
    assert_eq!(client.write(clip, fh, CLIP_SIZE, b"tail"), Ok(4));
    expected.extend_from_slice(b"tail");
    client.release(clip, fh).expect("RELEASE");

    assert_eq!(fs::read(lib.media("clip.mov")).expect("clip"), expected);
    assert_eq!(size_of_node(&mut client, clip), CLIP_SIZE + 4);
}

#[test]
fn open_with_o_trunc_empties_the_file() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let fh = open(&mut client, clip, O_RDWR | O_TRUNC);
    assert_eq!(size_of_node(&mut client, clip), 0);
    assert_eq!(client.read(clip, fh, 0, 10), Ok(Vec::new()));
    client.release(clip, fh).expect("RELEASE");
    assert_eq!(fs::metadata(lib.media("clip.mov")).expect("clip").len(), 0);
}

/// `open(O_RDONLY | O_TRUNC)` truncates on Linux (open(2) asks write permission for
/// `O_TRUNC` whatever the access mode). With `ATOMIC_O_TRUNC` the kernel leaves the
/// truncation to the server and sets its own idea of the size to 0 after the OPEN.
#[test]
fn open_read_only_with_o_trunc_empties_the_file_too() {
    let lib = Library::new();
    let mut client = lib.client();
    let day = ino(&mut client, ROOT, "Day 1");
    let a = ino(&mut client, day, "a.txt");
    let fh = open(&mut client, a, O_RDONLY | O_TRUNC);
    assert_eq!(size_of_node(&mut client, a), 0);
    client.release(a, fh).expect("RELEASE");
    assert_eq!(
        fs::metadata(lib.media("Day 1/a.txt")).expect("a.txt").len(),
        0
    );
}

#[test]
fn open_keeps_the_page_cache_only_of_files_unchanged_since_their_last_open() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let keep = OpenOptions::KEEP_CACHE.bits();
    let first = client.open(clip, O_RDONLY).expect("OPEN");
    assert_eq!(first.open_flags, 0, "first open: nothing cached to keep");
    let second = client.open(clip, O_RDONLY).expect("OPEN");
    assert_eq!(second.open_flags, keep, "unchanged: keep the cache");
    let writer = open(&mut client, clip, O_WRONLY);
    // A write that changes the size, so that the change does not depend on the
    // backing filesystem's timestamp granularity.
    assert_eq!(client.write(clip, writer, CLIP_SIZE, b"more"), Ok(4));
    client.release(clip, writer).expect("RELEASE");
    let third = client.open(clip, O_RDONLY).expect("OPEN");
    assert_eq!(third.open_flags, 0, "changed: drop the cache");
    for fh in [first.fh, second.fh, third.fh] {
        client.release(clip, fh).expect("RELEASE");
    }
}

#[test]
fn open_of_a_folder_or_a_missing_node_fails() {
    let lib = Library::new();
    let mut client = lib.client();
    let day = ino(&mut client, ROOT, "Day 1");
    for flags in [O_RDONLY, O_WRONLY, O_RDWR] {
        assert_errno(client.open(day, flags), libc::EISDIR);
        assert_errno(client.open(ROOT, flags), libc::EISDIR);
    }
    assert_errno(client.open(9999, O_RDONLY), libc::ENOENT);
}

#[test]
fn read_at_offsets_is_short_at_the_end_and_empty_past_it() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let bytes = clip_bytes();
    let fh = open(&mut client, clip, O_RDONLY);
    assert_eq!(client.read(clip, fh, 0, 10), Ok(bytes[..10].to_vec()));
    assert_eq!(client.read(clip, fh, 37, 20), Ok(bytes[37..57].to_vec()));
    assert_eq!(
        client.read(clip, fh, 95, 10),
        Ok(bytes[95..].to_vec()),
        "a short read: the end of the file"
    );
    assert_eq!(client.read(clip, fh, CLIP_SIZE, 10), Ok(Vec::new()));
    assert_eq!(client.read(clip, fh, 1 << 40, 10), Ok(Vec::new()));
    assert_eq!(client.read(clip, fh, 0, 0), Ok(Vec::new()));
    client.release(clip, fh).expect("RELEASE");
    assert_errno(client.read(clip, 9999, 0, 10), libc::EBADF);
}

#[test]
fn writes_and_reads_of_a_mebibyte_at_offsets_beyond_the_end() {
    let lib = Library::new();
    let mut client = lib.client();
    let (entry, opened) = client
        .create(
            ROOT,
            b"big.bin",
            O_CREAT | O_EXCL | O_RDWR,
            S_IFREG | 0o644,
            0o022,
        )
        .expect("CREATE");
    let (big, fh) = (entry.nodeid, opened.fh);
    const MIB: usize = 1 << 20;
    let data: Vec<u8> = (0..2 * MIB as u64).map(|i| pattern_byte(3, i)).collect();
    assert_eq!(client.write(big, fh, 0, &data[..MIB]), Ok(MIB as u32));
    assert_eq!(
        client.write(big, fh, MIB as u64, &data[MIB..]),
        Ok(MIB as u32)
    );
    // Past the end: a hole, then the bytes.
    let far = 5 * MIB as u64;
    assert_eq!(client.write(big, fh, far, b"far"), Ok(3));
    assert_eq!(
        client.read(big, fh, 0, MIB as u32),
        Ok(data[..MIB].to_vec())
    );
    assert_eq!(
        client.read(big, fh, MIB as u64 + 17, MIB as u32),
        Ok(data[MIB + 17..]
            .iter()
            .copied()
            .chain(vec![0; 17])
            .collect::<Vec<u8>>())
    );
    assert_eq!(client.read(big, fh, far - 2, 10), Ok(b"\0\0far".to_vec()));
    client.release(big, fh).expect("RELEASE");
    assert_eq!(size_of_node(&mut client, big), far + 3);
}

// ---------------------------------------------------------------------------
// CREATE, MKDIR
// ---------------------------------------------------------------------------

#[test]
fn create_makes_a_store_file_with_the_mode_asked_less_the_umask() {
    let lib = Library::new();
    let mut client = lib.client();
    let (entry, opened) = client
        .create(
            ROOT,
            b"new.txt",
            O_CREAT | O_EXCL | O_RDWR,
            S_IFREG | 0o666,
            0o022,
        )
        .expect("CREATE");
    assert_ne!(entry.nodeid, 0);
    assert_ne!(opened.fh, 0);
    assert_eq!(opened.open_flags, 0);
    assert_ttl(entry.entry_valid, entry.entry_valid_nsec, "entry");
    assert_ttl(entry.attr_valid, entry.attr_valid_nsec, "attributes");
    assert_eq!(entry.attr.ino, entry.nodeid);
    assert_eq!(entry.attr.mode, S_IFREG | 0o644);
    assert_eq!(entry.attr.size, 0);
    assert_eq!((entry.attr.uid, entry.attr.gid), (client.uid, client.gid));
    assert_eq!(client.write(entry.nodeid, opened.fh, 0, b"new"), Ok(3));
    client.release(entry.nodeid, opened.fh).expect("RELEASE");

    let stored = lib.only_store_file();
    assert_eq!(fs::read(&stored).expect("store file"), b"new");
    assert_eq!(fs::metadata(&stored).expect("stat").mode() & 0o7777, 0o644);
    assert_eq!(ino(&mut client, ROOT, "new.txt"), entry.nodeid);
    let listed = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    assert!(names(&listed).contains(&"new.txt"));

    let (entry, opened) = client
        .create(
            ROOT,
            b"private",
            O_CREAT | O_EXCL | O_WRONLY,
            S_IFREG | 0o777,
            0o027,
        )
        .expect("CREATE");
    assert_eq!(entry.attr.mode, S_IFREG | 0o750);
    client.release(entry.nodeid, opened.fh).expect("RELEASE");
}

#[test]
fn create_gives_the_file_to_the_user_asking() {
    let lib = Library::new();
    let mut client = lib.client();
    if is_root() {
        // Root may give files away: the file is the creator's.
        client.uid = 4321;
        client.gid = 8765;
    }
    let (entry, opened) = client
        .create(
            ROOT,
            b"theirs",
            O_CREAT | O_EXCL | O_RDWR,
            S_IFREG | 0o640,
            0,
        )
        .expect("CREATE");
    assert_eq!((entry.attr.uid, entry.attr.gid), (client.uid, client.gid));
    client.release(entry.nodeid, opened.fh).expect("RELEASE");
    let meta = fs::metadata(lib.only_store_file()).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (client.uid, client.gid));
}

#[test]
fn create_of_an_existing_name() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let flags = O_CREAT | O_RDWR;
    // O_EXCL: EEXIST, for a file or a folder, and nothing is made.
    assert_errno(
        client.create(ROOT, b"clip.mov", flags | O_EXCL, S_IFREG | 0o644, 0),
        libc::EEXIST,
    );
    assert_errno(
        client.create(ROOT, b"empty", flags | O_EXCL, S_IFREG | 0o644, 0),
        libc::EEXIST,
    );
    assert!(lib.store_files().is_empty(), "{:?}", lib.store_files());
    // Without it: the file opened as it is; a folder cannot be.
    let (entry, opened) = client
        .create(ROOT, b"clip.mov", flags, S_IFREG | 0o600, 0)
        .expect("CREATE");
    assert_eq!(entry.nodeid, clip);
    assert_eq!(entry.attr.size, CLIP_SIZE);
    assert_eq!(entry.attr.mode, S_IFREG | CLIP_PERM, "its mode stays");
    assert_eq!(
        client.read(clip, opened.fh, 0, 5),
        Ok(clip_bytes()[..5].to_vec())
    );
    client.release(clip, opened.fh).expect("RELEASE");
    assert_errno(
        client.create(ROOT, b"empty", flags, S_IFREG | 0o644, 0),
        libc::EISDIR,
    );
    // With O_TRUNC: opened and emptied.
    let (entry, opened) = client
        .create(ROOT, b"clip.mov", flags | O_TRUNC, S_IFREG | 0o644, 0)
        .expect("CREATE");
    assert_eq!(entry.attr.size, 0);
    client.release(clip, opened.fh).expect("RELEASE");
    assert_eq!(fs::metadata(lib.media("clip.mov")).expect("clip").len(), 0);
}

#[test]
fn create_of_names_the_catalog_cannot_hold_fails() {
    let lib = Library::new();
    let mut client = lib.client();
    let flags = O_CREAT | O_EXCL | O_RDWR;
    assert_errno(
        client.create(ROOT, b"caf\xe9", flags, S_IFREG | 0o644, 0),
        libc::EINVAL,
    );
    assert_errno(
        client.create(ROOT, &[b'x'; 256], flags, S_IFREG | 0o644, 0),
        libc::ENAMETOOLONG,
    );
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(
        client.create(clip, b"inside", flags, S_IFREG | 0o644, 0),
        libc::ENOTDIR,
    );
    assert!(lib.store_files().is_empty(), "{:?}", lib.store_files());
}

#[test]
fn mkdir_makes_a_folder_once() {
    let lib = Library::new();
    let mut client = lib.client();
    let entry = client
        .mkdir(ROOT, b"made", S_IFDIR | 0o700, 0o022)
        .expect("MKDIR");
    assert_ne!(entry.nodeid, 0);
    assert_ttl(entry.entry_valid, entry.entry_valid_nsec, "entry");
    // Folders are all 0755 and the catalog owner's: the mode asked is ignored.
    assert_eq!(entry.attr.mode, S_IFDIR | 0o755);
    assert_eq!(
        (entry.attr.uid, entry.attr.gid),
        (DIR_OWNER.uid, DIR_OWNER.gid)
    );
    assert_eq!(ino(&mut client, ROOT, "made"), entry.nodeid);
    let listed = client.readdir(entry.nodeid, 0, 0, BIG).expect("READDIR");
    assert_eq!(names(&listed), [".", ".."]);
    assert_eq!((listed[0].ino, listed[1].ino), (entry.nodeid, ROOT));
    assert_errno(
        client.mkdir(ROOT, b"made", S_IFDIR | 0o755, 0),
        libc::EEXIST,
    );
    assert_errno(
        client.mkdir(ROOT, b"clip.mov", S_IFDIR | 0o755, 0),
        libc::EEXIST,
    );
    assert_errno(
        client.mkdir(ROOT, b"\xff", S_IFDIR | 0o755, 0),
        libc::EINVAL,
    );
}

// ---------------------------------------------------------------------------
// RENAME, RENAME2
// ---------------------------------------------------------------------------

#[test]
fn rename2_noreplace_refuses_an_existing_name_and_moves_to_a_new_one() {
    let lib = Library::new();
    let mut client = lib.client();
    let one = make_file(&mut client, ROOT, "one", b"1");
    let two = make_file(&mut client, ROOT, "two", b"2");
    assert_errno(
        client.rename2(ROOT, b"one", ROOT, b"two", RENAME_NOREPLACE),
        libc::EEXIST,
    );
    assert_errno(
        client.rename2(ROOT, b"one", ROOT, b"one", RENAME_NOREPLACE),
        libc::EEXIST,
    );
    assert_eq!(
        (ino(&mut client, ROOT, "one"), ino(&mut client, ROOT, "two")),
        (one, two)
    );
    assert_eq!(
        client.rename2(ROOT, b"one", ROOT, b"three", RENAME_NOREPLACE),
        Ok(())
    );
    assert!(absent(&mut client, ROOT, "one"));
    assert_eq!(ino(&mut client, ROOT, "three"), one);
}

#[test]
fn rename2_exchange_and_whiteout_are_not_supported() {
    let lib = Library::new();
    let mut client = lib.client();
    let one = make_file(&mut client, ROOT, "one", b"1");
    let two = make_file(&mut client, ROOT, "two", b"2");
    for flags in [
        RENAME_EXCHANGE,
        RENAME_WHITEOUT,
        RENAME_EXCHANGE | RENAME_NOREPLACE,
        RENAME_WHITEOUT | RENAME_NOREPLACE,
    ] {
        assert_errno(
            client.rename2(ROOT, b"one", ROOT, b"two", flags),
            libc::EINVAL,
        );
        assert_errno(
            client.rename2(ROOT, b"one", ROOT, b"new", flags),
            libc::EINVAL,
        );
    }
    assert_eq!(
        (ino(&mut client, ROOT, "one"), ino(&mut client, ROOT, "two")),
        (one, two)
    );
    assert!(absent(&mut client, ROOT, "new"));
}

#[test]
fn rename_replaces_a_file_and_onto_itself_changes_nothing() {
    let lib = Library::new();
    let mut client = lib.client();
    let one = make_file(&mut client, ROOT, "one", b"1");
    make_file(&mut client, ROOT, "two", b"2");
    assert_eq!(client.rename2(ROOT, b"one", ROOT, b"two", 0), Ok(()));
    assert!(absent(&mut client, ROOT, "one"));
    assert_eq!(ino(&mut client, ROOT, "two"), one);
    assert_eq!(
        lib.store_files().len(),
        1,
        "the replaced file's bytes are gone"
    );

    let before = client.getattr(one, None).expect("GETATTR").attr;
    let root_before = client.getattr(ROOT, None).expect("GETATTR /").attr;
    assert_eq!(client.rename(ROOT, b"two", ROOT, b"two"), Ok(()));
    assert_eq!(client.rename2(ROOT, b"two", ROOT, b"two", 0), Ok(()));
    assert_eq!(ino(&mut client, ROOT, "two"), one);
    let after = client.getattr(one, None).expect("GETATTR").attr;
    let root_after = client.getattr(ROOT, None).expect("GETATTR /").attr;
    assert_eq!(
        (after.ctime, after.ctimensec),
        (before.ctime, before.ctimensec),
        "a rename onto itself changes nothing"
    );
    assert_eq!(
        (root_after.mtime, root_after.mtimensec),
        (root_before.mtime, root_before.mtimensec)
    );
}

#[test]
fn rename_moves_between_folders() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let day = ino(&mut client, ROOT, "Day 1");
    assert_eq!(client.rename(ROOT, b"clip.mov", day, b"moved.mov"), Ok(()));
    assert!(absent(&mut client, ROOT, "clip.mov"));
    assert_eq!(ino(&mut client, day, "moved.mov"), clip);
    let listed = client.readdir(day, 0, 0, BIG).expect("READDIR");
    assert_eq!(names(&listed), [".", "..", "a.txt", "moved.mov"]);
    // The bytes are the original's, where they were.
    let fh = open(&mut client, clip, O_RDONLY);
    assert_eq!(client.read(clip, fh, 0, 100), Ok(clip_bytes()));
    client.release(clip, fh).expect("RELEASE");
}

#[test]
fn rename_refusals_have_the_errno_of_rename_2() {
    let lib = Library::new();
    let mut client = lib.client();
    let day = ino(&mut client, ROOT, "Day 1");
    let cases: [(&[u8], u64, &[u8], i32); 7] = [
        (b"empty", ROOT, b"Day 1", libc::ENOTEMPTY),
        (b"clip.mov", ROOT, b"empty", libc::EISDIR),
        (b"empty", ROOT, b"clip.mov", libc::ENOTDIR),
        (b"Day 1", day, b"inside", libc::EINVAL),
        (b"nothing", ROOT, b"new", libc::ENOENT),
        (b"clip\xff", ROOT, b"new", libc::ENOENT),
        (b"clip.mov", ROOT, b"new\xff", libc::EINVAL),
    ];
    for (from, to_dir, to, errno) in cases {
        let what = format!(
            "{:?} -> {:?}",
            String::from_utf8_lossy(from),
            String::from_utf8_lossy(to)
        );
        match client.rename2(ROOT, from, to_dir, to, 0) {
            Err(Errno(got)) if got == errno => {}
            other => panic!("{what}: expected {:?}, got {other:?}", Errno(errno)),
        }
    }
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(client.rename2(clip, b"x", ROOT, b"y", 0), libc::ENOTDIR);
    // Nothing moved.
    let listed = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    assert_eq!(
        names(&listed),
        [".", "..", "Day 1", "clip.mov", "empty", "list"]
    );
}

// ---------------------------------------------------------------------------
// UNLINK, RMDIR
// ---------------------------------------------------------------------------

#[test]
fn unlink_and_rmdir_refuse_the_wrong_kind_and_non_empty_folders() {
    let lib = Library::new();
    let mut client = lib.client();
    assert_errno(client.unlink(ROOT, b"Day 1"), libc::EISDIR);
    assert_errno(client.rmdir(ROOT, b"clip.mov"), libc::ENOTDIR);
    assert_errno(client.rmdir(ROOT, b"Day 1"), libc::ENOTEMPTY);
    assert_errno(client.unlink(ROOT, b"nothing"), libc::ENOENT);
    assert_errno(client.rmdir(ROOT, b"nothing"), libc::ENOENT);
    assert_errno(client.unlink(ROOT, b"clip\xff"), libc::ENOENT);
    assert_errno(client.rmdir(ROOT, b"clip\xff"), libc::ENOENT);
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(client.unlink(clip, b"x"), libc::ENOTDIR);
    ino(&mut client, ROOT, "Day 1");
    ino(&mut client, ROOT, "clip.mov");
}

#[test]
fn unlink_and_rmdir_remove_entries_but_never_an_original() {
    let lib = Library::new();
    let mut client = lib.client();
    assert_eq!(client.rmdir(ROOT, b"empty"), Ok(()));
    assert!(absent(&mut client, ROOT, "empty"));
    assert_eq!(client.unlink(ROOT, b"clip.mov"), Ok(()));
    assert!(absent(&mut client, ROOT, "clip.mov"));
    assert_eq!(
        fs::read(lib.media("clip.mov")).expect("the original is kept"),
        clip_bytes()
    );
    make_file(&mut client, ROOT, "made", b"bytes");
    let stored = lib.only_store_file();
    assert_eq!(client.unlink(ROOT, b"made"), Ok(()));
    assert!(!stored.exists(), "the store's bytes go with their node");
    let listed = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    assert_eq!(names(&listed), [".", "..", "Day 1", "list"]);
}

// ---------------------------------------------------------------------------
// SETATTR
// ---------------------------------------------------------------------------

#[test]
fn setattr_size_truncates_and_extends() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let mut args = setattr(SetattrValid::SIZE);
    args.size = 10;
    let out = client.setattr(clip, args).expect("SETATTR size");
    assert_eq!(out.attr.size, 10);
    assert_ttl(out.attr_valid, out.attr_valid_nsec, "attributes");
    assert_eq!(
        fs::read(lib.media("clip.mov")).expect("clip"),
        clip_bytes()[..10].to_vec()
    );
    // Through an open file (ftruncate): FATTR_FH.
    let fh = open(&mut client, clip, O_RDWR);
    let mut args = setattr(SetattrValid::SIZE);
    args.valid |= fuse_backend_rs::abi::fuse_abi::FATTR_FH;
    args.fh = fh;
    args.size = 4096;
    assert_eq!(
        client.setattr(clip, args).expect("SETATTR size").attr.size,
        4096
    );
    client.release(clip, fh).expect("RELEASE");
    assert_eq!(
        fs::metadata(lib.media("clip.mov")).expect("clip").len(),
        4096
    );
    // A folder has no size to set.
    let day = ino(&mut client, ROOT, "Day 1");
    let mut args = setattr(SetattrValid::SIZE);
    args.size = 10;
    assert_errno(client.setattr(day, args), libc::EISDIR);
    assert_errno(
        client.setattr(9999, setattr(SetattrValid::SIZE)),
        libc::ENOENT,
    );
}

#[test]
fn setattr_mtime_sets_the_backing_files_time() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let mut args = setattr(SetattrValid::MTIME);
    args.mtime = 1_500_000_000;
    args.mtimensec = 42;
    let attr = client.setattr(clip, args).expect("SETATTR mtime").attr;
    assert_eq!((attr.mtime, attr.mtimensec), (1_500_000_000, 42));
    assert_eq!(attr.size, CLIP_SIZE);
    let modified = fs::metadata(lib.media("clip.mov"))
        .and_then(|meta| meta.modified())
        .expect("clip mtime");
    assert_eq!(modified, UNIX_EPOCH + Duration::new(1_500_000_000, 42));

    // MTIME_NOW: the server's clock.
    let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("now");
    let attr = client
        .setattr(clip, setattr(SetattrValid::MTIME | SetattrValid::MTIME_NOW))
        .expect("SETATTR mtime now")
        .attr;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).expect("now");
    let set = Duration::new(attr.mtime, attr.mtimensec);
    assert!(
        (before..=after).contains(&set),
        "{set:?} not in {before:?}..{after:?}"
    );

    // A folder's mtime is the catalog's.
    let day = ino(&mut client, ROOT, "Day 1");
    let attr = client
        .setattr(day, args)
        .expect("SETATTR folder mtime")
        .attr;
    assert_eq!((attr.mtime, attr.mtimensec), (1_500_000_000, 42));
    assert_eq!(
        client.getattr(day, None).expect("GETATTR").attr.mtime,
        1_500_000_000
    );
}

#[test]
fn setattr_mode_changes_store_files_and_leaves_originals_and_folders() {
    let lib = Library::new();
    let mut client = lib.client();
    let made = make_file(&mut client, ROOT, "made", b"x");
    let mut args = setattr(SetattrValid::MODE);
    args.mode = S_IFREG | 0o600;
    let attr = client.setattr(made, args).expect("SETATTR mode").attr;
    assert_eq!(attr.mode, S_IFREG | 0o600);
    let stored = lib.only_store_file();
    assert_eq!(fs::metadata(stored).expect("stat").mode() & 0o7777, 0o600);

    // An original keeps its mode, as a folder does; the request is not refused.
    let clip = ino(&mut client, ROOT, "clip.mov");
    let attr = client.setattr(clip, args).expect("SETATTR mode").attr;
    assert_eq!(attr.mode, S_IFREG | CLIP_PERM);
    let meta = fs::metadata(lib.media("clip.mov")).expect("stat");
    assert_eq!(meta.mode() & 0o7777, CLIP_PERM);
    let day = ino(&mut client, ROOT, "Day 1");
    let attr = client.setattr(day, args).expect("SETATTR folder mode").attr;
    assert_eq!(attr.mode, S_IFDIR | 0o755);

    // atime alone: accepted, and nothing to keep.
    let mut args = setattr(SetattrValid::ATIME);
    args.atime = 1;
    let attr = client.setattr(clip, args).expect("SETATTR atime").attr;
    assert_eq!((attr.mtime, attr.mtimensec), CLIP_MTIME);
}

// ---------------------------------------------------------------------------
// What the catalog cannot hold: SYMLINK, MKNOD, LINK
// ---------------------------------------------------------------------------

#[test]
fn symlink_mknod_and_link_are_refused_with_eperm() {
    let lib = Library::new();
    let mut client = lib.client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    assert_errno(client.symlink(ROOT, b"link", b"clip.mov"), libc::EPERM);
    assert_errno(client.mknod(ROOT, b"fifo", S_IFIFO | 0o644, 0), libc::EPERM);
    assert_errno(client.link(clip, ROOT, b"hard"), libc::EPERM);
    for name in ["link", "fifo", "hard"] {
        assert!(absent(&mut client, ROOT, name), "{name}");
    }
}

#[test]
fn mknod_of_a_regular_file_makes_one() {
    let lib = Library::new();
    let mut client = lib.client();
    let made = client
        .mknod(ROOT, b"empty.txt", libc::S_IFREG | 0o640, 0)
        .unwrap();
    assert_eq!(made.attr.mode, libc::S_IFREG | 0o640);
    assert_eq!(made.attr.size, 0);
    assert_eq!(
        client.lookup(ROOT, b"empty.txt").unwrap().nodeid,
        made.nodeid
    );
    assert_errno(
        client.mknod(ROOT, b"empty.txt", libc::S_IFREG | 0o640, 0),
        libc::EEXIST,
    );
}

// ---------------------------------------------------------------------------
// STATFS
// ---------------------------------------------------------------------------

#[test]
fn statfs_is_the_space_of_the_catalogs_filesystem_and_its_node_count() {
    let lib = Library::new();
    let mut client = lib.client();
    let st = client.statfs(ROOT).expect("STATFS");
    let host = rustix::fs::statvfs(lib.path()).expect("statvfs");
    assert_eq!(u64::from(st.bsize), host.f_frsize);
    assert_eq!(u64::from(st.frsize), host.f_frsize);
    assert_eq!(st.blocks, host.f_blocks);
    assert!(st.bavail <= st.bfree && st.bfree <= st.blocks, "{st:?}");
    assert_eq!(st.namelen, 255);
    let max_id: i64 = rusqlite::Connection::open(lib.catalog())
        .and_then(|conn| conn.query_row("SELECT max(id) FROM nodes", [], |row| row.get(0)))
        .expect("max id");
    assert_eq!(st.files - st.ffree, max_id as u64, "{st:?}");
}

// ---------------------------------------------------------------------------
// A read-only catalog
// ---------------------------------------------------------------------------

#[test]
fn a_read_only_config_reads_and_refuses_every_change_with_erofs() {
    let lib = Library::new();
    let mut client = lib.read_only_client();
    let clip = ino(&mut client, ROOT, "clip.mov");
    let day = ino(&mut client, ROOT, "Day 1");
    // No write bits are shown.
    assert_eq!(
        client.getattr(clip, None).expect("GETATTR").attr.mode,
        S_IFREG | 0o440
    );
    assert_eq!(
        client.getattr(day, None).expect("GETATTR").attr.mode,
        S_IFDIR | 0o555
    );
    let fh = open(&mut client, clip, O_RDONLY);
    assert_eq!(client.read(clip, fh, 0, 100), Ok(clip_bytes()));
    client.release(clip, fh).expect("RELEASE");

    for flags in [O_WRONLY, O_RDWR, O_RDWR | O_TRUNC, O_RDONLY | O_TRUNC] {
        assert_errno(client.open(clip, flags), libc::EROFS);
    }
    let create = O_CREAT | O_EXCL | O_RDWR;
    assert_errno(
        client.create(ROOT, b"new", create, S_IFREG | 0o644, 0),
        libc::EROFS,
    );
    assert_errno(client.mkdir(ROOT, b"new", S_IFDIR | 0o755, 0), libc::EROFS);
    assert_errno(client.unlink(ROOT, b"clip.mov"), libc::EROFS);
    assert_errno(client.rmdir(ROOT, b"empty"), libc::EROFS);
    assert_errno(
        client.rename2(ROOT, b"clip.mov", ROOT, b"new", 0),
        libc::EROFS,
    );
    let mut args = setattr(SetattrValid::SIZE);
    args.size = 0;
    assert_errno(client.setattr(clip, args), libc::EROFS);
    let mut args = setattr(SetattrValid::MTIME);
    args.mtime = 1;
    assert_errno(client.setattr(clip, args), libc::EROFS);

    assert_eq!(fs::read(lib.media("clip.mov")).expect("clip"), clip_bytes());
    let listed = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    assert_eq!(
        names(&listed),
        [".", "..", "Day 1", "clip.mov", "empty", "list"]
    );
    assert!(lib.store_files().is_empty());
}

// ---------------------------------------------------------------------------
// Finder's own files
// ---------------------------------------------------------------------------

/// The catalog rows named `name`, read from the catalog file itself.
fn rows_named(lib: &Library, name: &str) -> i64 {
    rusqlite::Connection::open(lib.catalog())
        .expect("open the catalog")
        .query_row(
            "SELECT count(*) FROM nodes WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .expect("count rows")
}

/// Reads all of `ino` (at most [`BIG`] bytes) through a new handle.
fn read_all(client: &mut Client, ino: u64) -> Vec<u8> {
    let fh = open(client, ino, O_RDONLY);
    let bytes = client.read(ino, fh, 0, BIG).expect("READ");
    client.release(ino, fh).expect("RELEASE");
    bytes
}

#[test]
fn finder_files_are_kept_out_of_the_catalog() {
    let lib = Library::new();
    let mut client = lib.client();
    let day = ino(&mut client, ROOT, "Day 1");
    let fork = make_file(&mut client, day, "._clip.mov", b"resource fork");
    let view = make_file(&mut client, ROOT, ".DS_Store", b"view");
    for id in [fork, view] {
        assert!(id > i64::MAX as u64, "{id} is a catalog id");
    }
    assert_eq!(ino(&mut client, day, "._clip.mov"), fork);
    assert_eq!(size_of_node(&mut client, fork), 13);
    assert_eq!(read_all(&mut client, fork), b"resource fork");

    // WRITE, SETATTR and FSYNC record nothing.
    let fh = open(&mut client, view, O_RDWR);
    assert_eq!(client.write(view, fh, 4, b" state"), Ok(6));
    client.fsync(view, fh, false).expect("FSYNC");
    client.release(view, fh).expect("RELEASE");
    let mut args = setattr(SetattrValid::SIZE);
    args.size = 4;
    assert_eq!(client.setattr(view, args).expect("SETATTR").attr.size, 4);
    assert_eq!(read_all(&mut client, view), b"view");

    // Never listed.
    let listed = client.readdir(day, 0, 0, BIG).expect("READDIR");
    assert_eq!(names(&listed), [".", "..", "a.txt"]);
    let plus = client.readdirplus(ROOT, 0, 0, BIG).expect("READDIRPLUS");
    let listed: Vec<Listed> = plus.iter().map(|p| p.dirent.clone()).collect();
    assert_eq!(
        names(&listed),
        [".", "..", "Day 1", "clip.mov", "empty", "list"]
    );

    // Moved between Finder names, never into the catalog.
    assert_eq!(
        client.rename(day, b"._clip.mov", ROOT, b"._moved.mov"),
        Ok(())
    );
    assert!(absent(&mut client, day, "._clip.mov"));
    // The kernel (and an NFS client, through fuse-t) keeps the node it had.
    assert_eq!(size_of_node(&mut client, fork), 13);
    assert_eq!(read_all(&mut client, fork), b"resource fork");
    let moved = ino(&mut client, ROOT, "._moved.mov");
    assert_eq!(read_all(&mut client, moved), b"resource fork");
    assert_errno(
        client.rename(ROOT, b"._moved.mov", ROOT, b"moved.mov"),
        libc::EXDEV,
    );
    assert_errno(
        client.rename(ROOT, b"clip.mov", ROOT, b"._clip.mov"),
        libc::EXDEV,
    );

    // Probe files: there, empty, read-only.
    let probe = ino(&mut client, ROOT, ".metadata_never_index");
    assert_eq!(size_of_node(&mut client, probe), 0);
    assert_eq!(read_all(&mut client, probe), b"");
    assert_errno(client.open(probe, O_RDWR), libc::EPERM);
    assert_errno(client.unlink(ROOT, b".metadata_never_index"), libc::EPERM);

    for name in [".DS_Store", "._clip.mov", "._moved.mov"] {
        assert_eq!(rows_named(&lib, name), 0, "{name}");
    }
    assert!(lib.store_files().is_empty(), "{:?}", lib.store_files());

    assert_eq!(client.unlink(ROOT, b"._moved.mov"), Ok(()));
    assert_eq!(client.unlink(ROOT, b".DS_Store"), Ok(()));
    assert!(absent(&mut client, ROOT, ".DS_Store"));
    assert_errno(client.getattr(view, None), libc::ENOENT);
    // A folder's Finder files go with it.
    let empty = ino(&mut client, ROOT, "empty");
    make_file(&mut client, empty, ".DS_Store", b"view");
    assert_eq!(client.rmdir(ROOT, b"empty"), Ok(()));
    assert!(!lib.store().join(format!("finder/{empty}")).exists());
}

#[test]
fn finder_files_can_be_kept_in_the_catalog() {
    let lib = Library::new();
    let mut config = lib.config();
    config.finder_files = markbase_vfs::finder::FinderFiles::InCatalog;
    let mut client = lib.client_with(config, false);
    for name in ["._clip.mov", ".DS_Store"] {
        let id = make_file(&mut client, ROOT, name, b"finder");
        assert!(id <= i64::MAX as u64, "{name}: {id}");
        assert_eq!(rows_named(&lib, name), 1, "{name}");
    }
    let listed = client.readdir(ROOT, 0, 0, BIG).expect("READDIR");
    assert!(names(&listed).contains(&"._clip.mov"));
    assert_eq!(
        client.rename(ROOT, b"._clip.mov", ROOT, b"clip2.mov"),
        Ok(())
    );
}
