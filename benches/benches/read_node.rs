//! Stateless reads by node: `Vfs::read_node` of the read benchmark's 1 GiB file in
//! 1 MiB calls that name the node and an offset (no open, no handle: the core keeps
//! the alias open between calls), against a plain `pread` of the same file, in the
//! same run.
//!
//! - `read_node/{vfs,pread}/1MiB`: the page cache is warm (the file is read once
//!   first), so this measures what a call by node costs over a `pread`: the catalog
//!   change check, the node and node-file lookups, and the read-ahead policy. Target:
//!   Vfs at least 0.95 of pread.
//! - `read_node_cold/{read_ahead,kernel_only}/1MiB`: the file's pages are dropped from
//!   the page cache before each pass (`posix_fadvise(DONTNEED)`, outside the measured
//!   time), then it is read by node through a `Vfs` whose core read-ahead is on
//!   (the kernel asked to read 16 MiB ahead, in 4 MiB steps) or off (the kernel's own
//!   read-ahead only).
//!
//! Criterion measures each benchmark in its own time window, so paired checks run
//! first: alternating passes of both sides, the median of the per-pair ratios and
//! their spread, printed and written to `target/bench-data/read-node-paired.txt` for
//! `scripts/bench`.

use std::fs::File;
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use markbase_benches::{VecSink, data_dir, pread_pass, read_fixture, warm_page_cache};
use markbase_testkit::pattern_byte;
use markbase_vfs::{NodeId, Vfs, VfsConfig};

/// Bytes per call.
const CALL: usize = 1 << 20;

/// Alternating pairs of warm passes.
const WARM_PAIRS: usize = 15;

/// Alternating pairs of cold passes.
const COLD_PAIRS: usize = 8;

/// Reads the whole file by node, [`CALL`] bytes per call; the first byte of the last read.
fn node_pass(vfs: &Vfs, node: NodeId, size: u64, sink: &mut VecSink) -> Option<u8> {
    let mut total = 0u64;
    let mut offset = 0;
    while offset < size {
        sink.clear();
        total += vfs.read_node(node, offset, CALL, sink).expect("read_node") as u64;
        offset += CALL as u64;
    }
    assert_eq!(total, size);
    sink.filled().first().copied()
}

/// Drops the file's pages from the page cache.
fn drop_page_cache(path: &Path) {
    let file = File::open(path).expect("open the file to drop its pages");
    // SAFETY: `file` is an open descriptor for the duration of the call.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise(DONTNEED) of {}", path.display());
}

/// A Vfs over `catalog` with its core read-ahead on or off.
fn open_vfs(catalog: &Path, read_ahead: bool) -> Vfs {
    let mut config = VfsConfig::new(catalog);
    config.read_ahead = read_ahead;
    Vfs::open(config).expect("open the catalog")
}

/// Times `pass`.
fn timed(pass: impl FnOnce()) -> Duration {
    let started = Instant::now();
    pass();
    started.elapsed()
}

/// Median, min and max of `values`.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

/// GiB/s of a pass over `size` bytes that took `time`.
fn gib_per_s(size: u64, time: Duration) -> f64 {
    size as f64 / (1u64 << 30) as f64 / time.as_secs_f64()
}

fn read_node(c: &mut Criterion) {
    let fixture = read_fixture();
    let warmed = warm_page_cache(&fixture.file).expect("warm the page cache");
    assert_eq!(warmed, fixture.size);
    let vfs = open_vfs(&fixture.catalog, true);
    let kernel_only = open_vfs(&fixture.catalog, false);
    let node = vfs
        .lookup_path(fixture.catalog_path)
        .expect("the imported file")
        .id;
    let plain = File::open(&fixture.file).expect("open the file directly");
    let mut sink = VecSink::new(CALL);
    let size = fixture.size;

    // The bytes must be right before their speed means anything.
    for offset in [0, size / 2 + 12_345] {
        sink.clear();
        assert_eq!(vfs.read_node(node, offset, 4096, &mut sink).unwrap(), 4096);
        assert!(
            sink.filled()
                .iter()
                .enumerate()
                .all(|(i, b)| *b == pattern_byte(7, offset + i as u64))
        );
    }

    let mut report = String::new();
    let mut line = |text: String| {
        println!("{text}");
        report.push_str(&text);
        report.push('\n');
    };

    // Warm: alternating passes, the node first in even pairs.
    let (mut ratios, mut node_speeds, mut pread_speeds) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..WARM_PAIRS {
        let mut node_time = Duration::ZERO;
        let mut pread_time = Duration::ZERO;
        for side in [pair % 2, 1 - pair % 2] {
            if side == 0 {
                node_time = timed(|| {
                    black_box(node_pass(&vfs, node, size, &mut sink));
                })
            } else {
                pread_time = timed(|| {
                    black_box(pread_pass(&plain, size, &mut sink.buffer_mut()[..CALL]));
                })
            }
        }
        ratios.push(pread_time.as_secs_f64() / node_time.as_secs_f64());
        node_speeds.push(gib_per_s(size, node_time));
        pread_speeds.push(gib_per_s(size, pread_time));
    }
    let (ratio, min, max) = spread(&mut ratios);
    let (node_speed, ..) = spread(&mut node_speeds);
    let (pread_speed, ..) = spread(&mut pread_speeds);
    line(format!(
        "read_node paired warm 1MiB: node/pread throughput ratio {ratio:.3} (median of \
         {WARM_PAIRS} alternating 1 GiB passes; min {min:.3}, max {max:.3}); \
         node {node_speed:.2} GiB/s, pread {pread_speed:.2} GiB/s (medians)"
    ));

    // Cold: the page cache dropped before every pass.
    let (mut ratios, mut ahead_speeds, mut kernel_speeds) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..COLD_PAIRS {
        let mut ahead_time = Duration::ZERO;
        let mut kernel_time = Duration::ZERO;
        for side in [pair % 2, 1 - pair % 2] {
            drop_page_cache(&fixture.file);
            if side == 0 {
                ahead_time = timed(|| {
                    black_box(node_pass(&vfs, node, size, &mut sink));
                })
            } else {
                kernel_time = timed(|| {
                    black_box(node_pass(&kernel_only, node, size, &mut sink));
                })
            }
        }
        ratios.push(kernel_time.as_secs_f64() / ahead_time.as_secs_f64());
        ahead_speeds.push(gib_per_s(size, ahead_time));
        kernel_speeds.push(gib_per_s(size, kernel_time));
    }
    let (ratio, min, max) = spread(&mut ratios);
    let (ahead, ahead_min, ahead_max) = spread(&mut ahead_speeds);
    let (kernel, kernel_min, kernel_max) = spread(&mut kernel_speeds);
    line(format!(
        "read_node paired cold 1MiB: read_ahead/kernel_only throughput ratio {ratio:.3} \
         (median of {COLD_PAIRS} alternating 1 GiB passes; min {min:.3}, max {max:.3}); \
         read_ahead {ahead:.2} GiB/s ({ahead_min:.2} .. {ahead_max:.2}), kernel_only \
         {kernel:.2} GiB/s ({kernel_min:.2} .. {kernel_max:.2})"
    ));
    std::fs::write(data_dir().join("read-node-paired.txt"), &report)
        .expect("write read-node-paired.txt");

    warm_page_cache(&fixture.file).expect("warm the page cache");
    let mut group = c.benchmark_group("read_node");
    group
        .throughput(Throughput::Bytes(size))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function(BenchmarkId::new("vfs", "1MiB"), |b| {
        b.iter(|| black_box(node_pass(&vfs, node, size, &mut sink)))
    });
    group.bench_function(BenchmarkId::new("pread", "1MiB"), |b| {
        b.iter(|| black_box(pread_pass(&plain, size, &mut sink.buffer_mut()[..CALL])))
    });
    group.finish();

    let mut cold = c.benchmark_group("read_node_cold");
    cold.throughput(Throughput::Bytes(size))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for (label, vfs) in [("read_ahead", &vfs), ("kernel_only", &kernel_only)] {
        cold.bench_function(BenchmarkId::new(label, "1MiB"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        drop_page_cache(&fixture.file);
                        timed(|| {
                            black_box(node_pass(vfs, node, size, &mut sink));
                        })
                    })
                    .sum()
            })
        });
    }
    cold.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = read_node
}
criterion_main!(benches);
