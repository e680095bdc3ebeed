//! Write throughput: `Vfs::write` into a file made by `Vfs::create`, against a plain
//! `pwrite` into a plain file on the same disk, in the same run; and small files created,
//! written and released per second, against plain files.
//!
//! Each part works in a scratch space under `target/bench-data/` (`write-small/`, then
//! `write/`), made afresh and removed when the part is done: an empty catalog, its store
//! `warren-store/` (where `Vfs::create` puts a new file's bytes) and `plain/` for the
//! baselines, all on one filesystem. The small files come first (see below why).
//!
//! - `write/vfs/{cached,synced}`: one 4 GiB file written sequentially in 4 MiB chunks
//!   from one reused buffer, in alternation with the same through plain `pwrite`:
//!   - Vfs: `Vfs::create` (exclusive) in the root, `Vfs::write` of every chunk through a
//!     [`VecSource`] (one `pwrite` straight out of the buffer), `Vfs::release` (which
//!     records the size and mtime in the catalog);
//!   - pwrite: `open(O_CREAT | O_EXCL)` in `plain/`, `FileExt::write_at` of the same
//!     buffer, `close`.
//!   - `synced` ends each pass with `fdatasync` before the close: `Vfs::fsync(handle,
//!     true)` (which also commits the catalog durably) and `File::sync_data`. `cached`
//!     stops when the bytes are in the page cache (4 GiB is past the kernel's
//!     background writeback threshold, so writeback runs during the pass).
//!
//!   Each criterion iteration is a *pair*: a Vfs pass (the time criterion gets) and a
//!   pwrite pass (the baseline), in alternating order. The time of one 4 GiB pass here
//!   varies by 2-5x with what the machine did just before: writeback, and memory the
//!   VM's host took back (free page reporting) and must fault in again, which makes a
//!   pass after an idle pause several times slower. Only passes run side by side,
//!   alike, compare fairly, so the figures that count are the per-pair ratios and their
//!   median, printed after the group and written to `target/bench-data/write-paired.txt`
//!   for `scripts/bench` (the criterion warm-up pair is left out). The writing thread's
//!   user CPU time per pass (`getrusage`, RUSAGE_THREAD) is reported too: it is where
//!   the Vfs's own overhead would show, and waiting for the disk or the host does not
//!   blur it (its resolution is a few ms).
//!
//!   Every pass is set up alike, outside the measured time: the previous file was
//!   deleted (`Vfs::unlink` removes the store file; `remove_file` the plain one) and the
//!   filesystem is synced (`syncfs`), so each pass starts with no dirty page. The disk
//!   holds one 4 GiB file at a time. Each criterion sample is one pair, so criterion
//!   warns that it cannot complete 10 samples in the target time: that is by design (it
//!   takes 10 samples, plus one warm-up). Throughput in bytes. Target: Vfs at least 0.95
//!   of pwrite.
//!
//! - `write_small/{vfs,plain}/4KiB`: a batch of 10,000 files of 4 KiB each:
//!   `Vfs::create` (exclusive) + `Vfs::write` + `Vfs::release` of each, in a new catalog
//!   directory per batch, against `File::create` + `write_all` + `close` of each in
//!   `plain/small/`. The Vfs puts every new file's bytes in its one flat store
//!   directory, so the baseline does the same filesystem work: all its files in one
//!   directory, under names no earlier batch used. Throughput in files.
//!   Target: at least 10,000 files/s.
//!
//!   Small files are not deleted between batches, only when the part is done: on an
//!   ext4 without a journal (as here) the kernel does not reuse an inode freed in the
//!   last minutes and, on each create in such a block group, scans past every one of
//!   them (`recently_deleted()` in `find_inode_bit()`): creates after a mass delete get
//!   10-20x slower, on whichever side comes next. So this part runs first and removes
//!   its files before the 4 GiB part, and its directories are spread over the disk
//!   (`chattr +T` on `write-small/`), away from where other programs just deleted. That
//!   cannot help when this benchmark runs again within ~4 minutes: ext4 then puts the
//!   new files in the block groups the last run emptied (the emptiest), and both sides
//!   slow down. The plain baseline shows it (here it makes 30,000-45,000 files/s when
//!   the disk is quiet); `scripts/bench` flags a baseline under 15,000 files/s.
//!   A part holds at most ~320,000 files of 4 KiB (1.3 GB) until it is done.
//!
//!   Criterion measures the two sides in separate time windows; a paired check runs
//!   first, alternating batches of both sides, and its median ratio is written to
//!   `write-paired.txt` too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use markbase_benches::{
    SMALL_FILE_SIZE, SMALL_FILES_PER_BATCH, VecSource, WRITE_CHUNK, WRITE_FILE_SIZE, WriteFixture,
    data_dir, open_deleted_files, open_vfs, pwrite_full, sync_filesystem, thread_cpu_times,
    write_fixture,
};
use markbase_vfs::{NodeId, Vfs};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// The streamed file's name, in the catalog's root and in `plain/`.
const STREAM: &str = "stream.mov";

/// The baseline's small files' directory in `plain/`.
const SMALL_DIR: &str = "small";

/// Alternating pairs of batches of the paired check of small files.
const SMALL_PAIRS: usize = 5;

/// The streaming variants: label, and whether each pass ends with `fdatasync`.
const STREAM_VARIANTS: [(&str, bool); 2] = [("cached", false), ("synced", true)];

/// How long a measured pass took: wall clock, and CPU time of the writing thread.
#[derive(Clone, Copy)]
struct Pass {
    wall: Duration,
    user: Duration,
    sys: Duration,
}

/// Measures one pass.
struct Stopwatch {
    wall: Instant,
    user: Duration,
    sys: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        let (user, sys) = thread_cpu_times();
        Self {
            wall: Instant::now(),
            user,
            sys,
        }
    }

    fn stop(self) -> Pass {
        let wall = self.wall.elapsed();
        let (user, sys) = thread_cpu_times();
        Pass {
            wall,
            user: user.saturating_sub(self.user),
            sys: sys.saturating_sub(self.sys),
        }
    }
}

/// One Vfs pass and one pwrite pass, run back to back.
#[derive(Clone, Copy)]
struct Pair {
    vfs: Pass,
    pwrite: Pass,
}

/// What every pass needs.
struct Setup {
    fixture: WriteFixture,
    vfs: Vfs,
    /// A second, read-only connection to the catalog, to check what release recorded.
    catalog: Connection,
    /// The 4 MiB chunk.
    chunk: VecSource,
    /// The 4 KiB content of a small file.
    small: VecSource,
    small_names: Vec<String>,
    /// Batches of small files written so far, by either side (names are never reused).
    small_batches: usize,
}

impl Setup {
    /// A fresh scratch space `target/bench-data/<name>` and a Vfs on its catalog.
    fn new(name: &str) -> Self {
        let fixture = write_fixture(name);
        let vfs = open_vfs(&fixture.catalog);
        let catalog =
            Connection::open_with_flags(&fixture.catalog, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the catalog read-only");
        Self {
            fixture,
            vfs,
            catalog,
            chunk: VecSource::new(WRITE_CHUNK),
            small: VecSource::new(SMALL_FILE_SIZE),
            small_names: (0..SMALL_FILES_PER_BATCH)
                .map(|i| format!("f{i:05}.bin"))
                .collect(),
            small_batches: 0,
        }
    }

    /// The size the catalog records for `name` in the root, if it has such a node.
    fn recorded_size(&self, name: &str) -> Option<u64> {
        self.catalog
            .query_row(
                "SELECT size FROM nodes WHERE parent_id = 1 AND name = ?1",
                [name],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .expect("query the catalog")
            .map(|size| size as u64)
    }

    /// The files in the store directory.
    fn store_files(&self) -> usize {
        match std::fs::read_dir(self.fixture.dir.join("warren-store")) {
            Ok(entries) => entries.count(),
            Err(_) => 0,
        }
    }

    /// Nothing of an earlier 4 GiB pass is left: no file in the store or `plain/`, no
    /// descriptor on a deleted file, no node but the root.
    fn assert_clean(&self) {
        assert_eq!(self.store_files(), 0, "store files left behind");
        let plain = std::fs::read_dir(&self.fixture.plain)
            .expect("list plain/")
            .count();
        assert_eq!(plain, 0, "plain files left behind");
        assert_eq!(open_deleted_files(), 0, "a deleted file is still open");
        let nodes: i64 = self
            .catalog
            .query_row("SELECT count(*) FROM nodes", [], |row| row.get(0))
            .expect("count nodes");
        assert_eq!(nodes, 1, "nodes left behind in the catalog");
    }

    /// Quiets the disk before a measured pass: no dirty page of an earlier one is left.
    fn quiesce(&self) {
        sync_filesystem(&self.fixture.dir).expect("syncfs");
    }

    /// One 4 GiB file through the Vfs: create, write every chunk, (fdatasync), release.
    fn vfs_stream(&mut self, synced: bool) -> Pass {
        self.quiesce();
        let vfs = &self.vfs;
        let watch = Stopwatch::start();
        let (_, handle) = vfs.create(NodeId::ROOT, STREAM, true).expect("Vfs::create");
        let mut offset = 0;
        while offset < WRITE_FILE_SIZE {
            let len = WRITE_CHUNK.min((WRITE_FILE_SIZE - offset) as usize);
            let n = vfs
                .write(handle, offset, len, &mut self.chunk)
                .expect("Vfs::write");
            assert!(n > 0, "Vfs::write wrote nothing at offset {offset}");
            offset += n as u64;
        }
        if synced {
            vfs.fsync(handle, true).expect("Vfs::fsync");
        }
        vfs.release(handle).expect("Vfs::release");
        let pass = watch.stop();
        assert_eq!(self.recorded_size(STREAM), Some(WRITE_FILE_SIZE));
        vfs.unlink(NodeId::ROOT, STREAM).expect("Vfs::unlink");
        pass
    }

    /// One 4 GiB plain file: open(O_CREAT | O_EXCL), pwrite every chunk, (fdatasync), close.
    fn pwrite_stream(&self, synced: bool) -> Pass {
        self.quiesce();
        let path = self.fixture.plain.join(STREAM);
        let buf = self.chunk.buffer();
        let watch = Stopwatch::start();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create the plain file");
        let mut offset = 0;
        while offset < WRITE_FILE_SIZE {
            let len = WRITE_CHUNK.min((WRITE_FILE_SIZE - offset) as usize);
            pwrite_full(&file, &buf[..len], offset).expect("pwrite");
            offset += len as u64;
        }
        if synced {
            file.sync_data().expect("fdatasync");
        }
        drop(file);
        let pass = watch.stop();
        let size = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(size, WRITE_FILE_SIZE);
        std::fs::remove_file(&path).expect("remove the plain file");
        pass
    }

    /// A Vfs pass and a pwrite pass; the Vfs goes first when `vfs_first`.
    fn stream_pair(&mut self, synced: bool, vfs_first: bool) -> Pair {
        if vfs_first {
            let vfs = self.vfs_stream(synced);
            Pair {
                vfs,
                pwrite: self.pwrite_stream(synced),
            }
        } else {
            let pwrite = self.pwrite_stream(synced);
            Pair {
                vfs: self.vfs_stream(synced),
                pwrite,
            }
        }
    }

    /// 10,000 small files through the Vfs, in a new catalog directory.
    fn vfs_small_batch(&mut self) -> Duration {
        self.small_batches += 1;
        let vfs = &self.vfs;
        let dir_name = format!("small-{:03}", self.small_batches);
        let dir = vfs.mkdir(NodeId::ROOT, &dir_name).expect("Vfs::mkdir").id;
        self.quiesce();
        let started = Instant::now();
        for name in &self.small_names {
            let (_, handle) = vfs.create(dir, name, true).expect("Vfs::create");
            let n = vfs
                .write(handle, 0, SMALL_FILE_SIZE, &mut self.small)
                .expect("Vfs::write");
            assert_eq!(n, SMALL_FILE_SIZE);
            vfs.release(handle).expect("Vfs::release");
        }
        started.elapsed()
    }

    /// 10,000 small plain files in `plain/small/`, under new names.
    fn plain_small_batch(&mut self) -> Duration {
        self.small_batches += 1;
        let dir = self.fixture.plain.join(SMALL_DIR);
        std::fs::create_dir_all(&dir).expect("create the plain directory");
        let paths: Vec<PathBuf> = self
            .small_names
            .iter()
            .map(|name| dir.join(format!("b{:03}-{name}", self.small_batches)))
            .collect();
        self.quiesce();
        let buf = self.small.buffer();
        let started = Instant::now();
        for path in &paths {
            let mut file = File::create(path).expect("File::create");
            file.write_all(buf).expect("write");
            drop(file);
        }
        started.elapsed()
    }

    /// Both paths must write the right bytes, and record them, before their speed means
    /// anything.
    fn check(&mut self) {
        let name = "check.bin";
        let (_, handle) = self
            .vfs
            .create(NodeId::ROOT, name, true)
            .expect("Vfs::create");
        let len = 100_000;
        for offset in [0, 1 << 20] {
            let n = self
                .vfs
                .write(handle, offset, len, &mut self.chunk)
                .expect("Vfs::write");
            assert_eq!(n, len);
        }
        self.vfs.release(handle).expect("Vfs::release");
        let size = (1 << 20) + len as u64;
        assert_eq!(
            self.recorded_size(name),
            Some(size),
            "release records the size"
        );
        let attr = self.vfs.lookup(NodeId::ROOT, name).expect("lookup");
        assert_eq!(attr.size, size);
        let handle = self.vfs.open_file(attr.id).expect("open_file");
        let mut back = vec![0; len];
        for offset in [0, 1 << 20] {
            let n = self
                .vfs
                .read_at(handle, offset, &mut back)
                .expect("read_at");
            assert_eq!(n, len);
            assert!(
                back == self.chunk.buffer()[..len],
                "bytes differ at {offset}"
            );
        }
        self.vfs.release(handle).expect("release");
        assert_eq!(self.store_files(), 1, "the bytes are in the store");
        self.vfs.unlink(NodeId::ROOT, name).expect("Vfs::unlink");
        self.assert_clean();
    }

    /// Removes everything the run made (the catalog, the store, the plain files).
    fn remove(self) {
        assert_eq!(open_deleted_files(), 0, "a deleted file is still open");
        let dir = self.fixture.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).expect("remove the write benchmark's files");
        sync_filesystem(&data_dir()).expect("syncfs");
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    let mid = median(values);
    (mid, values[0], values[values.len() - 1])
}

/// The paired figures of one streaming variant: a line for `write-paired.txt`.
fn stream_report(label: &str, pairs: &[Pair]) -> String {
    let gib = |pass: &Pass| WRITE_FILE_SIZE as f64 / pass.wall.as_secs_f64() / (1u64 << 30) as f64;
    let ms = |time: Duration| time.as_secs_f64() * 1e3;
    let column = |f: &dyn Fn(&Pair) -> f64| -> Vec<f64> { pairs.iter().map(f).collect() };
    let (ratio, min, max) = spread(&mut column(&|p| {
        p.pwrite.wall.as_secs_f64() / p.vfs.wall.as_secs_f64()
    }));
    let mut vfs_rates = column(&|p| gib(&p.vfs));
    let mut pwrite_rates = column(&|p| gib(&p.pwrite));
    let total = |f: &dyn Fn(&Pair) -> Duration| pairs.iter().map(f).sum::<Duration>();
    let pooled = total(&|p| p.pwrite.wall).as_secs_f64() / total(&|p| p.vfs.wall).as_secs_f64();
    let (user_extra, user_min, user_max) =
        spread(&mut column(&|p| ms(p.vfs.user) - ms(p.pwrite.user)));
    let mut vfs_user = column(&|p| ms(p.vfs.user));
    let mut vfs_sys = column(&|p| ms(p.vfs.sys));
    let mut pwrite_sys = column(&|p| ms(p.pwrite.sys));
    format!(
        "write paired {label}: vfs/pwrite throughput ratio {ratio:.3} (median of {} \
         alternating 4 GiB pairs; min {min:.3}, max {max:.3}; total time pwrite/vfs \
         {pooled:.3}); vfs {:.2} GiB/s, pwrite {:.2} GiB/s (medians); writing thread \
         per pass: user CPU vfs {:.1} ms, vfs minus pwrite {user_extra:+.1} ms (min \
         {user_min:+.1}, max {user_max:+.1}); system CPU vfs {:.0} ms, pwrite {:.0} ms",
        pairs.len(),
        median(&mut vfs_rates),
        median(&mut pwrite_rates),
        median(&mut vfs_user),
        median(&mut vfs_sys),
        median(&mut pwrite_sys),
    )
}

/// Alternating batches of small files of both paths; a line for `write-paired.txt`.
fn paired_small(setup: &mut Setup) -> String {
    let per_second = |time: Duration| SMALL_FILES_PER_BATCH as f64 / time.as_secs_f64();
    let (mut ratios, mut vfs_rates, mut plain_rates) = (vec![], vec![], vec![]);
    for pair in 0..SMALL_PAIRS {
        let (vfs, plain) = if pair % 2 == 0 {
            let vfs = setup.vfs_small_batch();
            (vfs, setup.plain_small_batch())
        } else {
            let plain = setup.plain_small_batch();
            (setup.vfs_small_batch(), plain)
        };
        ratios.push(plain.as_secs_f64() / vfs.as_secs_f64());
        vfs_rates.push(per_second(vfs));
        plain_rates.push(per_second(plain));
    }
    let (ratio, min, max) = spread(&mut ratios);
    let line = format!(
        "write paired small 4KiB: vfs/plain files/s ratio {ratio:.3} (median of \
         {SMALL_PAIRS} alternating batches of {SMALL_FILES_PER_BATCH}; min {min:.3}, \
         max {max:.3}); vfs {:.0} files/s, plain {:.0} files/s (medians)",
        median(&mut vfs_rates),
        median(&mut plain_rates),
    );
    println!("{line}");
    line + "\n"
}

fn write_throughput(c: &mut Criterion) {
    let started = Instant::now();
    let paired_file = data_dir().join("write-paired.txt");
    // Nothing stale from an earlier run if this one stops half-way.
    let _ = std::fs::remove_file(&paired_file);

    // Small files first, removed before the long 4 GiB part (see the module comment).
    let mut setup = Setup::new("write-small");
    setup.check();
    let mut report = paired_small(&mut setup);
    let mut small = c.benchmark_group("write_small");
    small
        .throughput(Throughput::Elements(SMALL_FILES_PER_BATCH as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    small.bench_function(BenchmarkId::new("vfs", "4KiB"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| setup.vfs_small_batch()).sum())
    });
    small.bench_function(BenchmarkId::new("plain", "4KiB"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| setup.plain_small_batch()).sum())
    });
    small.finish();
    setup.remove();
    std::fs::write(&paired_file, &report).expect("write write-paired.txt");

    let mut setup = Setup::new("write");
    setup.check();
    let mut group = c.benchmark_group("write");
    group
        .throughput(Throughput::Bytes(WRITE_FILE_SIZE))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        // One warm-up pair, then one pair per sample (see the module comment).
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for (label, synced) in STREAM_VARIANTS {
        let mut pairs: Vec<Pair> = Vec::new();
        group.bench_function(BenchmarkId::new("vfs", label), |b| {
            b.iter_custom(|iters| {
                let mut vfs_time = Duration::ZERO;
                for _ in 0..iters {
                    let pair = setup.stream_pair(synced, pairs.len() % 2 == 1);
                    vfs_time += pair.vfs.wall;
                    pairs.push(pair);
                }
                vfs_time
            })
        });
        // The first pair is criterion's warm-up; none ran if a filter skipped the group.
        let measured = pairs.get(1..).unwrap_or_default();
        if !measured.is_empty() {
            let line = stream_report(label, measured);
            println!("{line}");
            report.push_str(&line);
            report.push('\n');
            std::fs::write(&paired_file, &report).expect("write write-paired.txt");
        }
        setup.assert_clean();
    }
    group.finish();
    setup.remove();
    eprintln!(
        "write benchmarks took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = write_throughput
}
criterion_main!(benches);
