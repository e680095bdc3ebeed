//! Crash test: a child process creates files, writes patterned bytes and fsyncs
//! some of them, announcing each fsync that returned; the parent kills it with
//! SIGKILL at random points, round after round on the same catalog. After each
//! kill a fresh `Vfs` must find every announced file with exactly its bytes (and
//! its size recorded), and the consistency check may report nothing but leftovers
//! of unsynced work, which the repair clears.
//!
//! The random delays come from a seed printed at the start; set
//! `MARKBASE_CRASH_SEED` to replay one.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{CATALOG, CHILD_ENV, child_arg, within};
use markbase_testkit::pattern_byte;
use markbase_vfs::{
    NodeId, Vfs,
    check::{OrphanAction, Repair},
};

const TEST: &str = "synced_files_survive_sigkill_and_check_finds_only_unsynced_leftovers";
const ROUNDS: u64 = 8;
const READY: &str = "CRASH-CHILD-READY";
const SYNCED: &str = "SYNCED";
/// A child that is never killed stops by itself after this long (and the test fails).
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

/// splitmix64: small, seedable, good enough to pick delays and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The pattern seed of file `index` of round `round`.
fn file_seed(round: u64, index: u64) -> u64 {
    round * 1_000_003 + index
}

/// The child's side: writes files until it is killed.
fn write_until_killed(arg: &str) {
    let mut parts = arg.split('|');
    let dir = PathBuf::from(parts.next().unwrap());
    let round: u64 = parts.next().unwrap().parse().unwrap();
    let mut rng = Rng(parts.next().unwrap().parse().unwrap());
    let vfs = Vfs::open(common::config(&dir.join(CATALOG))).unwrap();
    let sub = vfs
        .mkdir(NodeId::ROOT, &format!("round-{round}"))
        .unwrap()
        .id;
    println!("\n{READY}");
    // Every other round writes mostly tiny files, so that kills often land in a create,
    // a commit or an unlink rather than in the middle of the bytes.
    let tiny = round % 2 == 1;
    let started = Instant::now();
    let mut out = std::io::stdout();
    for index in 0.. {
        if started.elapsed() > CHILD_LIFETIME {
            return;
        }
        let name = format!("f{index}.mov");
        let (_, handle) = vfs.create(sub, &name, true).unwrap();
        let len = match rng.below(4) {
            0 => rng.below(100),
            _ if tiny => rng.below(4096),
            _ => rng.below(1 << 20),
        };
        let chunk = 1 + rng.below(256 << 10);
        let seed = file_seed(round, index);
        let mut offset = 0;
        while offset < len {
            let n = chunk.min(len - offset);
            let bytes: Vec<u8> = (offset..offset + n)
                .map(|i| pattern_byte(seed, i))
                .collect();
            vfs.write_at(handle, offset, &bytes).unwrap();
            offset += n;
        }
        match rng.below(4) {
            0 => {} // never synced
            kind => {
                vfs.fsync(handle, kind == 1).unwrap();
                writeln!(out, "{SYNCED} round-{round}/{name} {len}").unwrap();
                out.flush().unwrap();
            }
        }
        vfs.release(handle).unwrap();
        // Scratch files: created, written, renamed and unlinked, so that kills also
        // land between a removed row and its removed bytes.
        if rng.below(3) == 0 {
            let scratch = format!("scratch{index}.tmp");
            let (_, handle) = vfs.create(sub, &scratch, true).unwrap();
            vfs.write_at(handle, 0, &vec![7u8; rng.below(64 << 10) as usize])
                .unwrap();
            vfs.release(handle).unwrap();
            vfs.rename(
                sub,
                &scratch,
                sub,
                "scratch.renamed",
                markbase_vfs::namespace::RenameMode::Replace,
            )
            .unwrap();
            if rng.below(2) == 0 {
                vfs.unlink(sub, "scratch.renamed").unwrap();
            }
        }
    }
}

/// What one round's child said before it died.
struct Round {
    synced: Vec<(String, u64)>,
    lines: usize,
}

/// Runs one child, kills it with SIGKILL at a random point, and returns what it announced.
fn run_round(dir: &Path, round: u64, rng: &mut Rng) -> Round {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{}|{round}|{}", dir.display(), rng.next()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the writer child");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut lines = Vec::new();
    let wait_for = |lines: &mut Vec<String>, what: &dyn Fn(&str) -> bool, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let found = what(&line);
                    lines.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    };
    let ready = wait_for(&mut lines, &|line| line == READY, Duration::from_secs(20));
    // Kill at a random point: right away, or after some fsyncs returned, plus a delay.
    let syncs = rng.below(5);
    let mut seen = 0;
    if ready {
        for _ in 0..syncs {
            if !wait_for(
                &mut lines,
                &|line| line.starts_with(SYNCED),
                Duration::from_secs(20),
            ) {
                break;
            }
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.below(60)));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let stderr = errors.join().unwrap();
    assert!(
        ready && still_running && status.signal() == Some(libc::SIGKILL),
        "round {round}: the writer child failed before it was killed \
         (ready: {ready}, {seen}/{syncs} syncs seen, {status}):\nstdout:\n{}\nstderr:\n{stderr}",
        lines.join("\n")
    );
    let synced = lines
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix(SYNCED)?.trim();
            let (path, len) = rest.rsplit_once(' ')?;
            Some((path.to_owned(), len.parse().unwrap()))
        })
        .collect();
    Round {
        synced,
        lines: lines.len(),
    }
}

/// Opens the catalog afresh and checks everything that was announced as synced, then the
/// consistency report, then the repair.
fn verify(dir: &Path, synced: &BTreeMap<String, u64>, round: u64) {
    let vfs = Vfs::open(common::config(&dir.join(CATALOG))).unwrap_or_else(|err| {
        panic!("round {round}: the catalog does not open after the kill: {err}")
    });
    let check_synced = |vfs: &Vfs, when: &str| {
        for (path, len) in synced {
            let attr = vfs.lookup_path(&format!("/{path}")).unwrap_or_else(|err| {
                panic!("round {round}, {when}: synced file {path} is gone: {err}")
            });
            assert_eq!(
                attr.size, *len,
                "round {round}, {when}: size of synced {path}"
            );
            assert_eq!(
                vfs.node(attr.id).unwrap().recorded_size,
                *len,
                "round {round}, {when}: the catalog's size of synced {path}"
            );
            let (r, i) = path
                .strip_prefix("round-")
                .and_then(|rest| rest.split_once("/f"))
                .and_then(|(r, rest)| {
                    Some((r.parse().ok()?, rest.strip_suffix(".mov")?.parse().ok()?))
                })
                .unwrap();
            let bytes = common::read_all(vfs, attr.id);
            let seed = file_seed(r, i);
            if let Some(bad) = (0..bytes.len()).find(|&k| bytes[k] != pattern_byte(seed, k as u64))
            {
                panic!("round {round}, {when}: synced {path} has a wrong byte at offset {bad}");
            }
        }
    };
    check_synced(&vfs, "after the kill");

    let report = vfs.check().unwrap();
    for node in &report.dangling {
        let path = node.path.trim_start_matches('/');
        assert!(
            !synced.contains_key(path),
            "round {round}: synced file {path} is reported dangling: {node:?}"
        );
        assert!(
            node.in_store,
            "round {round}: a dangling node outside the store: {node:?}"
        );
    }
    let store = vfs.catalog_path().parent().unwrap().join("warren-store");
    for orphan in &report.orphans {
        assert_eq!(
            orphan.parent(),
            Some(store.as_path()),
            "round {round}: an orphan outside the store"
        );
    }
    let mut repair = Repair::default();
    repair.drop_dangling_store_nodes = true;
    repair.orphans = OrphanAction::Remove;
    let done = vfs.repair(&report, repair).unwrap();
    assert_eq!(
        done.dropped.len(),
        report.dangling.len(),
        "round {round}: {done:?}"
    );
    assert_eq!(done.removed, report.orphans, "round {round}");
    let after = vfs.check().unwrap();
    assert!(
        after.is_clean(),
        "round {round}: check() after the repair still finds {after:?}"
    );
    check_synced(&vfs, "after the repair");
}

#[test]
fn synced_files_survive_sigkill_and_check_finds_only_unsynced_leftovers() {
    if let Some(arg) = child_arg() {
        write_until_killed(&arg);
        return;
    }
    let seed = std::env::var("MARKBASE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed: MARKBASE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    drop(common::raw_catalog(dir.path()));
    let dir_path = dir.path().to_owned();
    within(Duration::from_secs(120), "the crash rounds", move || {
        let mut synced = BTreeMap::new();
        let mut lines = 0;
        for round in 0..ROUNDS {
            let outcome = run_round(&dir_path, round, &mut rng);
            lines += outcome.lines;
            synced.extend(outcome.synced);
            verify(&dir_path, &synced, round);
        }
        assert!(
            !synced.is_empty(),
            "no fsync returned in {ROUNDS} rounds ({lines} lines): the test proved nothing"
        );
        println!("{} synced files survived {ROUNDS} kills", synced.len());
    });
}
