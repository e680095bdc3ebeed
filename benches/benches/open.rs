//! `Vfs::open` of a catalog of 1,000,001 nodes (target: under 100 ms), and the resident
//! memory that opening it costs.
//!
//! Criterion cannot measure memory, so before measuring time this bench opens the
//! catalog once and prints the change in `VmRSS` (from `/proc/self/status`):
//!
//! ```text
//! open 1M-node catalog: RSS +X MiB (VmRSS A -> B MiB)
//! ```
//!
//! `anon` is heap and stacks (the `Vfs` itself: pool, connections, caches, helper
//! threads); `file-backed` is mostly SQLite's code paged in on first use, and is small
//! when this same process has just built the catalog. The line is also written to
//! `target/bench-data/open-rss.txt` for `scripts/bench`.
//! Dropping the `Vfs` (closing its connections) is not part of the measured time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use markbase_benches::{
    data_dir, million_fixture, million_nodes, rss_anon_kib, rss_file_kib, rss_kib, trim_heap,
};
use markbase_vfs::{Vfs, VfsConfig};

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

fn open(c: &mut Criterion) {
    let catalog = million_fixture();
    let config = VfsConfig::new(&catalog);

    // Memory: the first open in this process, kept alive while RSS is read.
    trim_heap();
    let before = rss_kib();
    let (anon_before, file_before) = (rss_anon_kib(), rss_file_kib());
    let started = Instant::now();
    let vfs = Vfs::open(config.clone()).expect("open the 1M-node catalog");
    let first_open = started.elapsed();
    let after = rss_kib();
    let (anon_after, file_after) = (rss_anon_kib(), rss_file_kib());
    let files = vfs.statfs().expect("statfs").files;
    assert_eq!(files, million_nodes() as u64, "the catalog has every node");
    // A deep lookup works without any scan having been made.
    let started = Instant::now();
    let clip = vfs
        .lookup_path("/Project 0999/clip 0998.mov")
        .expect("the last file of the catalog");
    let first_lookup = started.elapsed();
    let after_lookup = rss_kib();
    drop(vfs);

    let delta = after as i64 - before as i64;
    let line = format!(
        "open 1M-node catalog: RSS +{:.1} MiB (VmRSS {:.1} -> {:.1} MiB: anon {:+.1} MiB, \
         file-backed {:+.1} MiB; {} nodes; first open {:.2} ms; then lookup_path of a deep \
         node {:.2} ms, RSS {:.1} MiB)",
        mib(delta),
        mib(before as i64),
        mib(after as i64),
        mib(anon_after as i64 - anon_before as i64),
        mib(file_after as i64 - file_before as i64),
        million_nodes(),
        first_open.as_secs_f64() * 1e3,
        first_lookup.as_secs_f64() * 1e3,
        mib(after_lookup as i64),
    );
    println!("{line}");
    std::fs::write(data_dir().join("open-rss.txt"), format!("{line}\n"))
        .expect("write open-rss.txt");
    black_box(clip);

    let mut group = c.benchmark_group("open");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("1M_nodes", |b| {
        // Each Vfs is dropped right after it is timed: keeping a batch of them alive
        // would hold a pool (connections, helper threads) per iteration.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let config = config.clone();
                let started = Instant::now();
                let vfs = Vfs::open(config).expect("open the 1M-node catalog");
                total += started.elapsed();
                drop(black_box(vfs));
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = open
}
criterion_main!(benches);
