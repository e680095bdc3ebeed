//! Stateless I/O by node (`read_node`, `write_node`, `commit_node`): correct bytes at
//! any offset, one file kept open across calls, closed when idle or pushed out (and a
//! writer's size and mtime recorded then), never served once the catalog or the disk
//! no longer leads to it, safe under concurrent calls; and the core's read-ahead, seen
//! in the page cache.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CATALOG, CHILD_OK, child_arg, config, expect_err, raw_catalog, reopen, write_file};
use markbase_testkit::{RawCatalog, pattern_byte, write_pattern_file};
use markbase_vfs::{
    NodeId, Vfs, VfsConfig, VfsError, namespace::RenameMode, node_files::NodeFileStats,
};

const MIB: u64 = 1 << 20;

fn id(raw: u64) -> NodeId {
    NodeId::new(raw).unwrap()
}

/// A catalog whose node 2, `clip.mov`, is aliased to `media/clip.mov`: a pattern file of
/// `size` bytes (seed 1) outside the store.
fn clip_catalog(dir: &Path, size: u64) -> (RawCatalog, PathBuf) {
    let raw = raw_catalog(dir);
    std::fs::create_dir(dir.join("media")).unwrap();
    let alias = dir.join("media/clip.mov");
    write_pattern_file(&alias, size, 1).unwrap();
    raw.file(2, 1, "clip.mov", &["media/clip.mov"]).unwrap();
    (raw, alias)
}

/// The size and mtime the catalog records for node `node`.
fn recorded(catalog: &Path, node: NodeId) -> (u64, i64) {
    let conn = rusqlite::Connection::open(catalog).unwrap();
    conn.query_row(
        "SELECT size, mtime_ns FROM nodes WHERE id = ?1",
        [node.get() as i64],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
    )
    .unwrap()
}

/// A file's mtime in ns, as the core records it.
fn mtime_ns(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}

/// The only file in the store (where files created through the Vfs keep their bytes).
fn store_file(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = walkdir(dir.join("warren-store"));
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().unwrap()
}

fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Waits (at most 10 s) until `done` holds.
#[track_caller]
fn eventually(what: &str, done: impl FnMut() -> bool) {
    assert!(within_10s(done), "{what}: still not so after 10 s");
}

fn stats(vfs: &Vfs) -> (usize, u64) {
    let NodeFileStats { open, opened, .. } = vfs.node_file_stats();
    (open, opened)
}

#[test]
fn reads_and_writes_land_at_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, alias) = clip_catalog(dir.path(), 3 * MIB + 77);
    let vfs = common::open(&raw.path);
    let clip = id(2);

    for offset in [0, 1, 4095, MIB - 3, 3 * MIB] {
        let mut buf = vec![0; 10_000];
        let n = vfs.read_node_at(clip, offset, &mut buf).unwrap();
        assert_eq!(n as u64, (3 * MIB + 77 - offset).min(10_000), "at {offset}");
        for (i, byte) in buf[..n].iter().enumerate() {
            assert_eq!(
                *byte,
                pattern_byte(1, offset + i as u64),
                "byte {i} at {offset}"
            );
        }
    }
    let mut buf = [0u8; 16];
    assert_eq!(
        vfs.read_node_at(clip, 10 * MIB, &mut buf).unwrap(),
        0,
        "past the end"
    );
    // The zero-copy form: a slice sink takes what it has room for.
    let mut small = [0u8; 5];
    assert_eq!(vfs.read_node(clip, 100, 4096, &mut small[..]).unwrap(), 5);
    assert_eq!(
        small.to_vec(),
        (100..105).map(|o| pattern_byte(1, o)).collect::<Vec<_>>()
    );

    // In place, past the end (leaving a hole of zeros), and from a source.
    assert_eq!(vfs.write_node_at(clip, 10, b"hello").unwrap(), 5);
    let end = 3 * MIB + 77;
    assert_eq!(vfs.write_node_at(clip, end + 100, b"tail").unwrap(), 4);
    let mut source = *b"sourced bytes";
    assert_eq!(
        vfs.write_node(clip, 2 * MIB, 7, &mut source[..]).unwrap(),
        7
    );

    let on_disk = std::fs::read(&alias).unwrap();
    assert_eq!(on_disk.len() as u64, end + 104);
    assert_eq!(&on_disk[10..15], b"hello");
    assert_eq!(&on_disk[2 * MIB as usize..2 * MIB as usize + 7], b"sourced");
    assert!(
        on_disk[end as usize..end as usize + 100]
            .iter()
            .all(|b| *b == 0)
    );
    assert_eq!(&on_disk[end as usize + 100..], b"tail");
    // Reads through the node see the writes, whichever file serves them.
    let mut back = vec![0; 20];
    vfs.read_node_at(clip, 5, &mut back).unwrap();
    assert_eq!(&back[5..10], b"hello");
    assert_eq!(back[0], pattern_byte(1, 5));
    assert_eq!(vfs.getattr(clip).unwrap().size, end + 104);
}

#[test]
fn one_file_serves_every_call_on_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = clip_catalog(dir.path(), 4 * MIB);
    let vfs = common::open(&raw.path);
    let mut buf = vec![0; 64 << 10];
    for i in 0..64 {
        vfs.read_node_at(id(2), i * (64 << 10), &mut buf).unwrap();
    }
    assert_eq!(stats(&vfs), (1, 1), "64 reads, one file opened");
    assert_eq!(vfs.open_handles(), 0, "no handle is involved");

    // The first write replaces the reader by a writer, which serves reads as well.
    vfs.write_node_at(id(2), 0, b"x").unwrap();
    for i in 0..8 {
        vfs.read_node_at(id(2), i, &mut buf[..1]).unwrap();
        vfs.write_node_at(id(2), i, b"y").unwrap();
    }
    assert_eq!(stats(&vfs), (1, 2));
    vfs.commit_node(id(2)).unwrap();
    vfs.read_node_at(id(2), 0, &mut buf[..1]).unwrap();
    assert_eq!(stats(&vfs), (1, 2), "a commit keeps the file");
}

#[test]
fn a_kept_file_is_checked_against_its_alias_path_once_per_attr_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (_, alias) = clip_catalog(dir.path(), MIB);
    let replace_alias = |seed: u64| {
        let new = dir.path().join("media/new.mov");
        write_pattern_file(&new, MIB, seed).unwrap();
        std::fs::rename(&new, &alias).unwrap();
    };
    let first_byte = |vfs: &Vfs| {
        let mut byte = [0];
        vfs.read_node_at(id(2), 0, &mut byte).unwrap();
        byte[0]
    };

    // Trusted for an hour: the file opened by the first read keeps serving.
    let vfs = reopen(dir.path(), |c| c.attr_ttl = Duration::from_secs(3600));
    assert_eq!(first_byte(&vfs), pattern_byte(1, 0));
    replace_alias(2);
    assert_eq!(first_byte(&vfs), pattern_byte(1, 0), "the same open file");
    assert_eq!(stats(&vfs), (1, 1));
    drop(vfs);

    // Never trusted: the next call sees the new file at the path.
    let vfs = reopen(dir.path(), |c| c.attr_ttl = Duration::ZERO);
    assert_eq!(first_byte(&vfs), pattern_byte(2, 0));
    replace_alias(3);
    assert_eq!(first_byte(&vfs), pattern_byte(3, 0));
    assert_eq!(stats(&vfs), (1, 2));
    // Gone from the disk: the node can no longer be read, and says why.
    std::fs::remove_file(&alias).unwrap();
    let err = expect_err(vfs.read_node_at(id(2), 0, &mut [0]));
    assert!(matches!(err, VfsError::NoUsableAlias { .. }), "{err:?}");
    assert_eq!(stats(&vfs).0, 0);
}

#[test]
fn an_idle_writer_is_closed_and_its_size_and_mtime_recorded() {
    let dir = tempfile::tempdir().unwrap();
    raw_catalog(dir.path());
    let vfs = reopen(dir.path(), |c| {
        c.node_file_idle = Duration::from_millis(200)
    });
    let node = write_file(&vfs, NodeId::ROOT, "grows.mov", b"");
    let catalog = dir.path().join(CATALOG);
    assert_eq!(recorded(&catalog, node).0, 0);

    vfs.write_node_at(node, 0, &[7; 5000]).unwrap();
    vfs.write_node_at(node, 5000, &[8; 3000]).unwrap();
    assert_eq!(
        recorded(&catalog, node).0,
        0,
        "not recorded while the writer is in use"
    );
    assert_eq!(stats(&vfs).0, 1);

    // No call is made: the cache's own thread closes the writer, and records it.
    eventually("the idle writer closed", || {
        recorded(&catalog, node).0 == 8000
    });
    assert_eq!(stats(&vfs).0, 0);
    let file = store_file(dir.path());
    assert_eq!(recorded(&catalog, node), (8000, mtime_ns(&file)));

    // A later call opens the file again.
    let mut buf = [0; 2];
    vfs.read_node_at(node, 4999, &mut buf).unwrap();
    assert_eq!(buf, [7, 8]);
    assert_eq!(stats(&vfs), (1, 2));
}

#[test]
fn a_full_cache_closes_the_least_recently_used_file() {
    let dir = tempfile::tempdir().unwrap();
    raw_catalog(dir.path());
    let vfs = reopen(dir.path(), |c| {
        c.node_file_cache = std::num::NonZeroUsize::new(2).unwrap();
    });
    let nodes: Vec<_> = (0..3)
        .map(|i| write_file(&vfs, NodeId::ROOT, &format!("f{i}"), b""))
        .collect();
    let catalog = dir.path().join(CATALOG);
    vfs.write_node_at(nodes[0], 0, &[1; 100]).unwrap();
    vfs.write_node_at(nodes[1], 0, &[1; 200]).unwrap();
    vfs.read_node_at(nodes[0], 0, &mut [0]).unwrap(); // nodes[1] is now the oldest
    vfs.write_node_at(nodes[2], 0, &[1; 300]).unwrap();
    assert_eq!(stats(&vfs), (2, 3));
    assert_eq!(recorded(&catalog, nodes[1]).0, 200, "pushed out, recorded");
    assert_eq!(recorded(&catalog, nodes[0]).0, 0, "still open");
    assert_eq!(recorded(&catalog, nodes[2]).0, 0, "still open");

    // Dropping the Vfs closes the rest the same way.
    drop(vfs);
    assert_eq!(recorded(&catalog, nodes[0]).0, 100);
    assert_eq!(recorded(&catalog, nodes[2]).0, 300);
}

#[test]
fn commit_syncs_and_records_even_after_the_writer_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    raw_catalog(dir.path());
    let vfs = reopen(dir.path(), |c| c.node_file_idle = Duration::from_millis(50));
    let node = write_file(&vfs, NodeId::ROOT, "clip.mov", b"");
    let catalog = dir.path().join(CATALOG);

    vfs.write_node_at(node, 0, &[1; 4096]).unwrap();
    vfs.commit_node(node).unwrap();
    let file = store_file(dir.path());
    assert_eq!(recorded(&catalog, node), (4096, mtime_ns(&file)));

    vfs.write_node_at(node, 4096, &[2; 4096]).unwrap();
    eventually("the idle writer closed", || stats(&vfs).0 == 0);
    // The commit that follows syncs through a file of its own, and records again.
    vfs.commit_node(node).unwrap();
    assert_eq!(recorded(&catalog, node), (8192, mtime_ns(&file)));
}

const CRASH_TEST: &str = "a_commit_survives_the_process_and_an_uncommitted_write_is_not_recorded";

#[test]
fn a_commit_survives_the_process_and_an_uncommitted_write_is_not_recorded() {
    if let Some(arg) = child_arg() {
        // The child: write two files, commit one, and die without closing anything.
        let (catalog, committed, uncommitted) = {
            let mut parts = arg.split('|');
            let catalog = PathBuf::from(parts.next().unwrap());
            let mut node = || id(parts.next().unwrap().parse().unwrap());
            (catalog, node(), node())
        };
        let vfs = Vfs::open(config(&catalog)).unwrap();
        vfs.write_node_at(committed, 0, &[5; 10_000]).unwrap();
        vfs.write_node_at(uncommitted, 0, &[6; 20_000]).unwrap();
        vfs.commit_node(committed).unwrap();
        println!("\n{CHILD_OK}");
        // Exits without dropping anything: no close records the other writer.
        std::process::exit(3);
    }
    let dir = tempfile::tempdir().unwrap();
    let catalog = raw_catalog(dir.path()).path;
    let vfs = common::open(&catalog);
    let committed = write_file(&vfs, NodeId::ROOT, "committed", b"");
    let uncommitted = write_file(&vfs, NodeId::ROOT, "uncommitted", b"");
    drop(vfs);

    let arg = format!("{}|{committed}|{uncommitted}", catalog.display());
    let output = common::run_child(CRASH_TEST, &arg, false, dir.path()).unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "the child exits without closing"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(CHILD_OK),
        "the child did its work: {stdout}"
    );

    assert_eq!(recorded(&catalog, committed).0, 10_000);
    assert_eq!(
        recorded(&catalog, uncommitted).0,
        0,
        "never committed nor closed"
    );
    // The bytes are there all the same (the alias's real size wins).
    let vfs = common::open(&catalog);
    assert_eq!(vfs.getattr(uncommitted).unwrap().size, 20_000);
    assert_eq!(common::read_all(&vfs, committed), vec![5; 10_000]);
}

#[test]
fn a_node_removed_by_another_program_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, alias) = clip_catalog(dir.path(), MIB);
    let vfs = common::open(&raw.path);
    vfs.read_node_at(id(2), 0, &mut [0; 100]).unwrap();
    vfs.write_node_at(id(2), 0, b"written").unwrap();

    let other = rusqlite::Connection::open(&raw.path).unwrap();
    other.execute("DELETE FROM nodes WHERE id = 2", []).unwrap();
    for err in [
        expect_err(vfs.read_node_at(id(2), 0, &mut [0; 100])),
        expect_err(vfs.write_node_at(id(2), 0, b"more")),
        expect_err(vfs.commit_node(id(2))),
    ] {
        assert!(matches!(err, VfsError::NotFound(_)), "{err:?}");
        assert_eq!(err.errno(), libc::ENOENT);
    }
    assert_eq!(stats(&vfs).0, 0, "its file was discarded");
    assert_eq!(&std::fs::read(&alias).unwrap()[..7], b"written");
}

#[test]
fn a_node_given_other_aliases_by_another_program_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = clip_catalog(dir.path(), MIB);
    write_pattern_file(&dir.path().join("media/other.mov"), MIB, 9).unwrap();
    let vfs = common::open(&raw.path);
    let mut byte = [0];
    vfs.read_node_at(id(2), 1, &mut byte).unwrap();
    assert_eq!(byte[0], pattern_byte(1, 1));

    let other = rusqlite::Connection::open(&raw.path).unwrap();
    other
        .execute(
            "UPDATE nodes SET aliases_json = '[\"media/other.mov\"]' WHERE id = 2",
            [],
        )
        .unwrap();
    vfs.read_node_at(id(2), 1, &mut byte).unwrap();
    assert_eq!(byte[0], pattern_byte(9, 1), "the new alias serves");
    assert_eq!(stats(&vfs), (1, 2));

    // A change elsewhere in the catalog keeps the file.
    other
        .execute(
            "INSERT INTO nodes (parent_id, name, kind) VALUES (1, 'd', 'dir')",
            [],
        )
        .unwrap();
    vfs.read_node_at(id(2), 1, &mut byte).unwrap();
    assert_eq!(stats(&vfs), (1, 2));
}

#[test]
fn a_node_removed_through_the_vfs_closes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let a = write_file(&vfs, NodeId::ROOT, "a", b"aaaa");
    let b = write_file(&vfs, NodeId::ROOT, "b", b"bbbb");
    vfs.write_node_at(a, 0, b"A").unwrap();
    vfs.read_node_at(b, 0, &mut [0]).unwrap();
    assert_eq!(stats(&vfs).0, 2);

    vfs.unlink(NodeId::ROOT, "a").unwrap();
    assert_eq!(stats(&vfs).0, 1);
    assert!(matches!(
        expect_err(vfs.read_node_at(a, 0, &mut [0])),
        VfsError::NotFound(_)
    ));
    // A rename that replaces `b` removes it too; the moved node keeps its file.
    let c = write_file(&vfs, NodeId::ROOT, "c", b"cccc");
    vfs.read_node_at(c, 0, &mut [0]).unwrap();
    vfs.rename(NodeId::ROOT, "c", NodeId::ROOT, "b", RenameMode::Replace)
        .unwrap();
    assert_eq!(stats(&vfs), (1, 3));
    let mut buf = [0; 4];
    vfs.read_node_at(c, 0, &mut buf).unwrap();
    assert_eq!(&buf, b"cccc");
    assert_eq!(stats(&vfs), (1, 3));
}

#[test]
fn wrong_nodes_and_read_only_filesystems_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    clip_catalog(dir.path(), 100);
    let vfs = reopen(dir.path(), |_| {});
    let err = expect_err(vfs.read_node_at(NodeId::ROOT, 0, &mut [0]));
    assert_eq!(err.errno(), libc::EISDIR, "{err}");
    let err = expect_err(vfs.write_node_at(id(99), 0, b"x"));
    assert_eq!(err.errno(), libc::ENOENT, "{err}");
    drop(vfs);

    let vfs = reopen(dir.path(), |c| c.read_only = true);
    let mut buf = [0; 100];
    assert_eq!(vfs.read_node_at(id(2), 0, &mut buf).unwrap(), 100);
    for err in [
        expect_err(vfs.write_node_at(id(2), 0, b"x")),
        expect_err(vfs.commit_node(id(2))),
    ] {
        assert_eq!(err.errno(), libc::EROFS, "{err}");
    }
}

/// A block of a file written by the concurrency tests: `BLOCK` bytes of `tag`'s pattern.
const BLOCK: usize = 16 << 10;

fn block(tag: u64, index: u64) -> Vec<u8> {
    (0..BLOCK as u64)
        .map(|i| pattern_byte(tag, index * BLOCK as u64 + i))
        .collect()
}

#[test]
fn concurrent_readers_and_writers_share_one_node() {
    const THREADS: u64 = 8;
    const BLOCKS: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = clip_catalog(dir.path(), BLOCKS * 2 * BLOCK as u64);
    let vfs = Arc::new(common::open(&raw.path));
    // The writers rewrite the even blocks; the readers read the odd ones, which stay.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let vfs = Arc::clone(&vfs);
            std::thread::spawn(move || {
                let mut buf = vec![0; BLOCK];
                for round in 0..4 {
                    for index in (t..BLOCKS).step_by(THREADS as usize) {
                        let even = index * 2;
                        let data = block(100 + round, even);
                        vfs.write_node_at(id(2), even * BLOCK as u64, &data)
                            .unwrap();
                        let odd = index * 2 + 1;
                        let n = vfs
                            .read_node_at(id(2), odd * BLOCK as u64, &mut buf)
                            .unwrap();
                        assert_eq!(n, BLOCK);
                        assert!(buf == block(1, odd), "block {odd} read wrong");
                    }
                    if t == 0 {
                        vfs.commit_node(id(2)).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    vfs.commit_node(id(2)).unwrap();
    let mut buf = vec![0; BLOCK];
    for index in 0..BLOCKS * 2 {
        vfs.read_node_at(id(2), index * BLOCK as u64, &mut buf)
            .unwrap();
        let expected = if index % 2 == 0 {
            block(103, index)
        } else {
            block(1, index)
        };
        assert!(buf == expected, "block {index}");
    }
    let (open, opened) = stats(&vfs);
    assert_eq!(open, 1);
    assert!(
        opened <= 2,
        "a reader, then one writer: {opened} files opened"
    );
    assert_eq!(recorded(&raw.path, id(2)).0, BLOCKS * 2 * BLOCK as u64);
}

#[test]
fn concurrent_calls_on_more_nodes_than_the_cache_holds() {
    const NODES: u64 = 12;
    const THREADS: u64 = 4;
    const BLOCKS: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    raw_catalog(dir.path());
    let vfs = Arc::new(reopen(dir.path(), |c: &mut VfsConfig| {
        c.node_file_cache = std::num::NonZeroUsize::new(3).unwrap();
    }));
    let nodes: Arc<Vec<_>> = Arc::new(
        (0..NODES)
            .map(|i| write_file(&vfs, NodeId::ROOT, &format!("n{i}"), b""))
            .collect(),
    );
    // Thread t writes block b of every node when b % THREADS == t, and reads back what
    // it wrote, hopping from node to node so that files are pushed out all the time.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (vfs, nodes) = (Arc::clone(&vfs), Arc::clone(&nodes));
            std::thread::spawn(move || {
                let mut buf = vec![0; BLOCK];
                for b in (t..BLOCKS).step_by(THREADS as usize) {
                    for (n, node) in nodes.iter().enumerate() {
                        let data = block(n as u64, b);
                        vfs.write_node_at(*node, b * BLOCK as u64, &data).unwrap();
                        vfs.read_node_at(*node, b * BLOCK as u64, &mut buf).unwrap();
                        assert!(buf == data, "node {n} block {b}");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(stats(&vfs).0 <= 3);
    for (n, node) in nodes.iter().enumerate() {
        vfs.commit_node(*node).unwrap();
        assert_eq!(
            recorded(&dir.path().join(CATALOG), *node).0,
            BLOCKS * BLOCK as u64
        );
        let bytes = common::read_all(&vfs, *node);
        for b in 0..BLOCKS {
            let range = (b as usize * BLOCK)..((b as usize + 1) * BLOCK);
            assert!(bytes[range] == block(n as u64, b)[..], "node {n} block {b}");
        }
    }
}

/// Whether the page at `offset` of `path` is in the page cache (`mincore`).
fn resident(path: &Path, offset: u64) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    let page = 4096;
    // SAFETY: a read-only shared mapping of one page of an open file, unmapped below;
    // mincore writes one byte per page into `vec`.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            offset as libc::off_t,
        );
        assert_ne!(addr, libc::MAP_FAILED, "mmap {}", path.display());
        let mut vec = [0u8; 1];
        let rc = libc::mincore(addr, page, vec.as_mut_ptr() as _);
        libc::munmap(addr, page);
        assert_eq!(rc, 0, "mincore");
        vec[0] & 1 == 1
    }
}

/// Writes a 32 MiB file, syncs it and drops it from the page cache. `false` (and a
/// printed reason) when its pages cannot be dropped here (tmpfs, say).
#[track_caller]
fn cold_file(path: &Path) -> bool {
    write_pattern_file(path, 32 * MIB, 4).unwrap();
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    if resident(path, 18 * MIB) {
        markbase_testkit::skip("the page cache of a file in a temp dir cannot be dropped here");
        return false;
    }
    true
}

/// The page 18 MiB into a file read 1 MiB at a time from its start, three times: the
/// third read asks for 16 MiB past its end. Far beyond what the kernel reads ahead on
/// its own after 3 MiB.
const FAR: u64 = 18 * MIB;

#[test]
fn sequential_reads_of_a_handle_have_the_kernel_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (_, alias) = clip_catalog(dir.path(), 0);
    let mut buf = vec![0; MIB as usize];
    // Three reads from the start of a file out of the page cache (each case starts
    // from a cold file: what one case read must not be taken for the next one's).
    let read_three = |read_ahead: bool, buf: &mut [u8]| {
        let vfs = reopen(dir.path(), |c| c.read_ahead = read_ahead);
        let handle = vfs.open_file(id(2)).unwrap();
        for i in 0..3 {
            vfs.read_at(handle, i * MIB, buf).unwrap();
        }
        (vfs, handle)
    };
    if !cold_file(&alias) {
        return;
    }
    let (vfs, handle) = read_three(false, &mut buf);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!resident(&alias, FAR), "nothing asked for so far ahead");
    vfs.release(handle).unwrap();

    // Read-ahead is advice the kernel may pass over on a loaded machine: three cold
    // tries, each given 10 s.
    let read_ahead_seen = (0..3).any(|_| {
        assert!(cold_file(&alias), "the page cache was dropped before");
        let (vfs, handle) = read_three(true, &mut buf);
        let seen = within_10s(|| resident(&alias, FAR));
        vfs.release(handle).unwrap();
        seen
    });
    assert!(read_ahead_seen, "the window was not read ahead in 3 tries");
}

/// Whether `done` holds within 10 s.
fn within_10s(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn sequential_reads_by_node_have_the_kernel_read_ahead_and_a_seek_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let (_, alias) = clip_catalog(dir.path(), 0);
    if !cold_file(&alias) {
        return;
    }
    let mut buf = vec![0; MIB as usize];
    // Read-ahead is advice the kernel may pass over on a loaded machine: three cold
    // tries, each given 10 s.
    let read_ahead_seen = (0..3).any(|attempt| {
        if attempt > 0 {
            assert!(cold_file(&alias), "the page cache was dropped before");
        }
        let vfs = reopen(dir.path(), |_| {});
        // Two reads in sequence, then a seek: no run of three yet.
        for offset in [0, MIB, 8 * MIB] {
            vfs.read_node_at(id(2), offset, &mut buf).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(!resident(&alias, FAR), "a seek starts the run again");
        for offset in [9 * MIB, 10 * MIB] {
            vfs.read_node_at(id(2), offset, &mut buf).unwrap();
        }
        within_10s(|| resident(&alias, 26 * MIB))
    });
    assert!(read_ahead_seen, "the window was not read ahead in 3 tries");
}
