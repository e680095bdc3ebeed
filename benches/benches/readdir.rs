//! Listing a 100,000-entry directory completely through the `readdir` callback.
//!
//! Each iteration is one full listing from offset 0, with a callback that accepts
//! every entry (as an adapter with an unbounded buffer would). Throughput is in
//! entries.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use markbase_benches::{BIG_DIR_ENTRIES, dir_id, meta_fixture, open_vfs};

fn readdir(c: &mut Criterion) {
    let fixture = meta_fixture();
    let vfs = open_vfs(&fixture.catalog);
    let big = dir_id(&vfs, "/big");

    let list = || {
        let mut count = 0usize;
        let mut last = 0u64;
        vfs.readdir(big, 0, |entry| {
            count += 1;
            last = entry.offset;
            true
        })
        .expect("readdir");
        (count, last)
    };
    assert_eq!(list().0, BIG_DIR_ENTRIES, "the listing is complete");

    let mut group = c.benchmark_group("readdir");
    group
        .throughput(Throughput::Elements(BIG_DIR_ENTRIES as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("100k", |b| {
        b.iter(|| {
            let (count, last) = list();
            assert_eq!(count, BIG_DIR_ENTRIES);
            black_box(last)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = readdir
}
criterion_main!(benches);
