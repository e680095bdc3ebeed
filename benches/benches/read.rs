//! Read throughput: `Vfs::read` against a plain `pread` of the same file, in the same run.
//!
//! A 1 GiB pattern file is imported into a catalog. Each iteration reads the whole
//! file sequentially, at 128 KiB or 1 MiB per call, into one reused buffer:
//!
//! - `vfs/<size>`: `Vfs::read` on an open handle, into a [`VecSink`] (one `pread`
//!   straight into the buffer, no copy);
//! - `pread/<size>`: `FileExt::read_at` on the same file, into the same buffer.
//!
//! The page cache is warm for both (the file is read once before measuring), so
//! this measures the core's per-read overhead, not the disk. Target: Vfs at least
//! 0.95 of pread.
//!
//! Two more views, because criterion measures each benchmark in its own time window:
//!
//! - a paired check, printed before the benchmarks (and written to
//!   `target/bench-data/read-paired.txt`): alternating full passes of both paths,
//!   median of the per-pair ratios, which a burst of other work on the machine
//!   cannot bias towards one side;
//! - `read_small/{vfs,pread}/4KiB`: single 4 KiB reads, where the per-call cost of
//!   the Vfs path is not hidden behind the copy.

use std::fs::File;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use markbase_benches::{
    VecSink, data_dir, open_vfs, pread_full, pread_pass, read_fixture, warm_page_cache,
};
use markbase_testkit::pattern_byte;
use markbase_vfs::{Vfs, handles::FileHandle};

const READ_SIZES: [(usize, &str); 2] = [(128 << 10, "128KiB"), (1 << 20, "1MiB")];

/// Read size and span of the per-call overhead benchmark.
const SMALL: usize = 4096;
const SMALL_SPAN: u64 = 64 << 20;

/// Alternating passes of the paired check, per read size.
const PAIRED_PASSES: usize = 15;

/// Reads the whole file through the Vfs, `size` bytes per call; returns the first byte of
/// the last read.
fn vfs_pass(
    vfs: &Vfs,
    handle: FileHandle,
    file_size: u64,
    size: usize,
    sink: &mut VecSink,
) -> Option<u8> {
    let mut total = 0u64;
    let mut offset = 0;
    while offset < file_size {
        sink.clear();
        total += vfs.read(handle, offset, size, sink).expect("vfs read") as u64;
        offset += size as u64;
    }
    assert_eq!(total, file_size);
    sink.filled().first().copied()
}

fn read_throughput(c: &mut Criterion) {
    let mut paired = String::new();
    let fixture = read_fixture();
    let warmed = warm_page_cache(&fixture.file).expect("warm the page cache");
    assert_eq!(warmed, fixture.size);

    let vfs = open_vfs(&fixture.catalog);
    let attr = vfs
        .lookup_path(fixture.catalog_path)
        .expect("the imported file");
    assert_eq!(attr.size, fixture.size);
    let handle = vfs.open_file(attr.id).expect("open through the vfs");
    let plain = File::open(&fixture.file).expect("open the file directly");

    let max = READ_SIZES.iter().map(|(size, _)| *size).max().unwrap_or(0);
    let mut sink = VecSink::new(max);

    // Both paths must return the file's bytes before their speed means anything.
    for offset in [0, fixture.size / 2 + 12_345] {
        sink.clear();
        let n = vfs.read(handle, offset, 4096, &mut sink).expect("vfs read");
        assert_eq!(n, 4096);
        assert!(
            sink.filled()
                .iter()
                .enumerate()
                .all(|(i, b)| *b == pattern_byte(7, offset + i as u64))
        );
    }

    // Criterion measures each benchmark in its own time window, so a burst of other
    // work on the machine lands on one side only. This paired check alternates full
    // passes of both paths and prints the median of the per-pair ratios.
    for (size, label) in READ_SIZES {
        let mut ratios = Vec::with_capacity(PAIRED_PASSES);
        for _ in 0..PAIRED_PASSES {
            let started = Instant::now();
            vfs_pass(&vfs, handle, fixture.size, size, &mut sink);
            let vfs_time = started.elapsed();
            let started = Instant::now();
            pread_pass(&plain, fixture.size, &mut sink.buffer_mut()[..size]);
            let pread_time = started.elapsed();
            ratios.push(pread_time.as_secs_f64() / vfs_time.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        let line = format!(
            "read paired {label}: vfs/pread throughput ratio {:.3} (median of {PAIRED_PASSES} \
             alternating 1 GiB passes; min {:.3}, max {:.3})",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        );
        println!("{line}");
        paired.push_str(&line);
        paired.push('\n');
    }
    std::fs::write(data_dir().join("read-paired.txt"), &paired).expect("write read-paired.txt");

    let mut group = c.benchmark_group("read");
    group
        .throughput(Throughput::Bytes(fixture.size))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));

    for (size, label) in READ_SIZES {
        group.bench_function(BenchmarkId::new("vfs", label), |b| {
            b.iter(|| black_box(vfs_pass(&vfs, handle, fixture.size, size, &mut sink)))
        });
        group.bench_function(BenchmarkId::new("pread", label), |b| {
            b.iter(|| {
                black_box(pread_pass(
                    &plain,
                    fixture.size,
                    &mut sink.buffer_mut()[..size],
                ))
            })
        });
    }
    group.finish();

    // The fixed cost of a call, where the copy does not hide it: one 4 KiB read per
    // iteration, walking the first 64 MiB of the file.
    let mut small = c.benchmark_group("read_small");
    small
        .throughput(Throughput::Bytes(SMALL as u64))
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut offset = 0u64;
    small.bench_function(BenchmarkId::new("vfs", "4KiB"), |b| {
        b.iter(|| {
            offset = (offset + SMALL as u64) % SMALL_SPAN;
            sink.clear();
            black_box(
                vfs.read(handle, offset, SMALL, &mut sink)
                    .expect("vfs read"),
            )
        })
    });
    small.bench_function(BenchmarkId::new("pread", "4KiB"), |b| {
        b.iter(|| {
            offset = (offset + SMALL as u64) % SMALL_SPAN;
            let buf = &mut sink.buffer_mut()[..SMALL];
            black_box(pread_full(&plain, buf, offset).expect("pread"))
        })
    });
    small.finish();
    vfs.release(handle).expect("release");
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = read_throughput
}
criterion_main!(benches);
