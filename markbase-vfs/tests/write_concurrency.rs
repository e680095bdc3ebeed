//! Many threads on one shared `Vfs`: writers and readers on different files at
//! once, two handles on one file, concurrent creates of distinct names and of the
//! same name. Every file ends with exactly its bytes, the catalog agrees (read by
//! a fresh `Vfs`), and no stray store file is left.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::within;
use markbase_testkit::pattern_byte;
use markbase_vfs::{NodeId, Vfs, handles::FileHandle, write::SetAttr};

const WRITERS: u64 = 8;
const READERS: u64 = 8;
const CHUNK: u64 = 64 << 10;
const CHUNKS: u64 = 24;

fn shared_vfs(dir: &Path) -> Arc<Vfs> {
    Arc::new(common::open(&common::raw_catalog(dir).path))
}

fn chunk(seed: u64, offset: u64, len: u64) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| pattern_byte(seed, i))
        .collect()
}

fn store_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("warren-store"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[track_caller]
fn assert_clean(vfs: &Vfs) {
    let report = vfs.check().unwrap();
    assert!(report.is_clean(), "check() found {report:?}");
}

/// Writer `w` makes `/w{w}.mov`: chunks in a scrambled order, some through `write`,
/// some through `write_at`, with a flush and an fsync on the way.
fn writer(vfs: &Vfs, w: u64) {
    let name = format!("w{w}.mov");
    let (attr, handle) = vfs.create(NodeId::ROOT, &name, true).unwrap();
    for k in 0..CHUNKS {
        // Odd writers go front to back; even ones in a scrambled order (holes first).
        let c = if w % 2 == 1 { k } else { (k * 7 + w) % CHUNKS };
        let offset = c * CHUNK;
        let mut bytes = chunk(w, offset, CHUNK);
        let n = if k.is_multiple_of(2) {
            vfs.write_at(handle, offset, &bytes).unwrap()
        } else {
            vfs.write(handle, offset, bytes.len(), &mut bytes[..])
                .unwrap()
        };
        assert_eq!(n as u64, CHUNK);
        match k {
            8 => vfs.flush(handle).unwrap(),
            16 => vfs.fsync(handle, w.is_multiple_of(3)).unwrap(),
            _ => {}
        }
    }
    vfs.release(handle).unwrap();
    assert_eq!(vfs.getattr(attr.id).unwrap().size, CHUNK * CHUNKS);
}

/// Reader: until the writers are done, lists the root, and reads whatever writer
/// files exist, checking that every byte read is either the writer's byte or a
/// hole not yet written (zero); after the writers are done, every byte is theirs.
fn reader(vfs: &Vfs, r: u64, done: &AtomicBool) -> u64 {
    let mut reads = 0;
    let mut buf = vec![0u8; 100_003];
    loop {
        let finished = done.load(Ordering::Acquire);
        let listed = common::names(vfs, NodeId::ROOT);
        for w in 0..WRITERS {
            let name = format!("w{w}.mov");
            let Ok(attr) = vfs.lookup(NodeId::ROOT, &name) else {
                assert!(!finished, "{name} missing after the writers finished");
                continue;
            };
            assert!(
                listed.contains(&name) || !finished,
                "{name} found by lookup but not listed: {listed:?}"
            );
            let handle = vfs.open_file(attr.id).unwrap();
            let mut offset = (r * 4099) % (CHUNK * CHUNKS);
            loop {
                let n = vfs.read_at(handle, offset, &mut buf).unwrap();
                reads += 1;
                for (i, byte) in buf[..n].iter().enumerate() {
                    let at = offset + i as u64;
                    let want = pattern_byte(w, at);
                    assert!(
                        *byte == want || (!finished && *byte == 0),
                        "reader {r}: {name} byte {at} is {byte}, not {want}"
                    );
                }
                if n == 0 {
                    break;
                }
                offset += n as u64;
            }
            if finished {
                assert_eq!(offset, CHUNK * CHUNKS, "reader {r}: {name} ends early");
            }
            vfs.release(handle).unwrap();
        }
        if finished {
            return reads;
        }
    }
}

#[test]
fn writers_and_readers_on_different_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = shared_vfs(dir.path());
    let catalog = vfs.catalog_path().to_owned();
    let v = Arc::clone(&vfs);
    within(
        Duration::from_secs(120),
        "8 writers and 8 readers",
        move || {
            let done = Arc::new(AtomicBool::new(false));
            let readers: Vec<_> = (0..READERS)
                .map(|r| {
                    let (vfs, done) = (Arc::clone(&v), Arc::clone(&done));
                    std::thread::spawn(move || reader(&vfs, r, &done))
                })
                .collect();
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let vfs = Arc::clone(&v);
                    std::thread::spawn(move || writer(&vfs, w))
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Release);
            for r in readers {
                assert!(r.join().unwrap() > 0);
            }
        },
    );
    assert_eq!(vfs.open_handles(), 0);

    // A fresh Vfs reads the catalog: every file, its recorded size, every byte.
    let fresh = common::open(&catalog);
    let mut expected: Vec<String> = (0..WRITERS).map(|w| format!("w{w}.mov")).collect();
    expected.sort();
    assert_eq!(common::names(&fresh, NodeId::ROOT), expected);
    for w in 0..WRITERS {
        let attr = fresh.lookup(NodeId::ROOT, &format!("w{w}.mov")).unwrap();
        assert_eq!(fresh.node(attr.id).unwrap().recorded_size, CHUNK * CHUNKS);
        assert_eq!(
            common::read_all(&fresh, attr.id),
            chunk(w, 0, CHUNK * CHUNKS),
            "w{w}.mov"
        );
    }
    assert_eq!(store_files(dir.path()), WRITERS as usize);
    assert_clean(&fresh);
}

/// Two write handles on one file, in two threads taking turns: each sees the
/// other's latest chunk through its own handle before writing the next one.
#[test]
fn two_handles_on_one_file_see_each_others_writes_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = shared_vfs(dir.path());
    let (attr, first) = vfs.create(NodeId::ROOT, "shared.mov", true).unwrap();
    let second = vfs.open_file_rw(attr.id).unwrap();
    let turns = Arc::new(Barrier::new(2));
    const ROUNDS: u64 = 40;
    const SIZE: u64 = 10_000;
    let v = Arc::clone(&vfs);
    within(
        Duration::from_secs(60),
        "two handles taking turns",
        move || {
            let side = |me: u64, handle: FileHandle| {
                let (vfs, turns) = (Arc::clone(&v), Arc::clone(&turns));
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; SIZE as usize];
                    for round in 0..ROUNDS {
                        if round % 2 == me {
                            let bytes = chunk(round, round * SIZE, SIZE);
                            vfs.write_at(handle, round * SIZE, &bytes).unwrap();
                            if round.is_multiple_of(5) {
                                // Extended through one handle (a hole the next round fills),
                                // seen by the other.
                                vfs.setattr(
                                    attr.id,
                                    SetAttr::size((round + 2) * SIZE),
                                    Some(handle),
                                )
                                .unwrap();
                            }
                        }
                        turns.wait();
                        if round % 2 != me {
                            let n = vfs.read_at(handle, round * SIZE, &mut buf).unwrap();
                            assert_eq!(n as u64, SIZE, "round {round}: the other's chunk is short");
                            assert!(
                                buf == chunk(round, round * SIZE, SIZE),
                                "round {round}: handle {me} does not see the other's write"
                            );
                            let extended = round.is_multiple_of(5);
                            let size = vfs.getattr(attr.id).unwrap().size;
                            let want = if extended { round + 2 } else { round + 1 } * SIZE;
                            assert_eq!(size, want, "round {round}: size seen by handle {me}");
                            if extended {
                                let n = vfs.read_at(handle, (round + 1) * SIZE, &mut buf).unwrap();
                                assert_eq!(n as u64, SIZE);
                                assert!(buf.iter().all(|b| *b == 0), "round {round}: the hole");
                            }
                        }
                        turns.wait();
                    }
                })
            };
            let a = side(0, first);
            let b = side(1, second);
            a.join().unwrap();
            b.join().unwrap();
        },
    );
    vfs.release(first).unwrap();
    vfs.release(second).unwrap();
    let bytes = common::read_all(&vfs, attr.id);
    let expected: Vec<u8> = (0..ROUNDS)
        .flat_map(|round| chunk(round, round * SIZE, SIZE))
        .collect();
    assert!(
        bytes == expected,
        "the file does not hold both handles' chunks"
    );
    assert_eq!(vfs.node(attr.id).unwrap().recorded_size, ROUNDS * SIZE);
}

#[test]
fn concurrent_creates_of_distinct_names_in_one_directory_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = shared_vfs(dir.path());
    let folder = vfs.mkdir(NodeId::ROOT, "inbox").unwrap().id;
    const THREADS: u64 = 8;
    const EACH: u64 = 25;
    let v = Arc::clone(&vfs);
    let inos = within(Duration::from_secs(60), "concurrent creates", move || {
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (vfs, start) = (Arc::clone(&v), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    (0..EACH)
                        .map(|i| {
                            let name = format!("t{t}-{i}.mov");
                            let (attr, h) = vfs.create(folder, &name, true).unwrap();
                            vfs.write_at(h, 0, name.as_bytes()).unwrap();
                            vfs.release(h).unwrap();
                            attr.id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    let distinct: HashSet<NodeId> = inos.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        (THREADS * EACH) as usize,
        "two creates got one id"
    );
    let listed: BTreeSet<String> = common::names(&vfs, folder).into_iter().collect();
    let expected: BTreeSet<String> = (0..THREADS)
        .flat_map(|t| (0..EACH).map(move |i| format!("t{t}-{i}.mov")))
        .collect();
    assert_eq!(listed, expected);
    for name in &expected {
        let attr = vfs.lookup(folder, name).unwrap();
        assert_eq!(common::read_all(&vfs, attr.id), name.as_bytes());
    }
    assert_eq!(store_files(dir.path()), (THREADS * EACH) as usize);
    assert_clean(&vfs);
}

#[test]
fn concurrent_creates_of_the_same_name_one_wins_exclusively() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = shared_vfs(dir.path());
    const THREADS: usize = 8;
    const NAMES: usize = 20;
    let v = Arc::clone(&vfs);
    within(Duration::from_secs(60), "racing creates", move || {
        for round in 0..NAMES {
            let exclusive = round.is_multiple_of(2);
            let name = format!("race{round}.mov");
            let start = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (vfs, start, name) = (Arc::clone(&v), Arc::clone(&start), name.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let outcome = vfs.create(NodeId::ROOT, &name, exclusive);
                        if let Ok((_, h)) = &outcome {
                            vfs.write_at(*h, t as u64, &[b'a' + t as u8]).unwrap();
                            vfs.release(*h).unwrap();
                        }
                        outcome.map(|(attr, _)| attr.id)
                    })
                })
                .collect();
            let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let winners: HashSet<NodeId> = outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok().copied())
                .collect();
            assert_eq!(winners.len(), 1, "{name}: {outcomes:?}");
            if exclusive {
                let wins = outcomes.iter().filter(|o| o.is_ok()).count();
                assert_eq!(wins, 1, "{name}: {wins} exclusive creates succeeded");
                for err in outcomes.iter().filter_map(|o| o.as_ref().err()) {
                    assert_eq!(err.errno(), libc::EEXIST, "{name}: {err}");
                    assert!(err.to_string().contains(&name), "{err}");
                }
            } else {
                // Not exclusive: everyone opens the one file that won.
                assert!(outcomes.iter().all(|o| o.is_ok()), "{name}: {outcomes:?}");
            }
            let attr = v.lookup(NodeId::ROOT, &name).unwrap();
            assert!(winners.contains(&attr.id));
        }
    });
    assert_eq!(common::names(&vfs, NodeId::ROOT).len(), NAMES);
    // Losers' store files are gone: one store file per node.
    assert_eq!(store_files(dir.path()), NAMES);
    assert_clean(&vfs);
    assert_eq!(vfs.open_handles(), 0);
}
