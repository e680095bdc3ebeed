//! Metadata operations per second on one thread.
//!
//! - `metadata_warm/{files,dirs}`: one `lookup` + `getattr` pair per iteration, cycling
//!   over 1,000 names that were all looked up before measuring, with the default
//!   configuration. Target: at least 1,000,000 pairs/s.
//!   The file names each have their own alias file; `getattr` of a file reports its
//!   alias's live size, so this includes whatever the core does to know it.
//! - `metadata_warm/files_fdcache2048`: the same files with `open_file_cache` raised
//!   to 2,048 so that every resolved alias of the working set stays cached (a
//!   diagnostic: the default cache holds 256).
//! - `metadata_cold/*`: one `lookup` per iteration that cannot be served from the
//!   core's caches. Rather than a fresh `Vfs` per lookup (which would measure `open`),
//!   the caches are shrunk to 64 entries and the names are cycled in order over a
//!   working set far larger than that, so every lookup misses the lookup and node
//!   caches and queries SQLite (the parent directory stays cached: it is used by every
//!   lookup). SQLite's own page cache and the OS page cache are warm.
//!   - `files_100k`: over the 100,000 files of `/big`; the file's attributes also need
//!     its alias resolved (open + fstat of the alias file), as in real use.
//!   - `dirs_1000`: over 1,000 directories, which have no alias: SQLite alone.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use markbase_benches::{MetaFixture, dir_id, meta_fixture};
use markbase_vfs::{NodeId, Vfs, VfsConfig};

fn config(catalog: &std::path::Path, tweak: impl FnOnce(&mut VfsConfig)) -> Vfs {
    let mut config = VfsConfig::new(catalog);
    tweak(&mut config);
    Vfs::open(config).expect("open the metadata catalog")
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

/// Benchmarks one `lookup` + `getattr` pair, cycling over `names` in `dir`.
fn bench_pairs(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    vfs: &Vfs,
    dir: NodeId,
    names: &[String],
) {
    // Warm every cache the pair can use.
    for _ in 0..2 {
        for name in names {
            let attr = vfs.lookup(dir, name).expect("lookup");
            vfs.getattr(attr.id).expect("getattr");
        }
    }
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            let name = &names[next];
            next = if next + 1 == names.len() { 0 } else { next + 1 };
            let attr = vfs.lookup(dir, name).expect("lookup");
            let again = vfs.getattr(attr.id).expect("getattr");
            black_box((attr.size, again.mtime_ns))
        })
    });
}

/// Benchmarks one `lookup` per iteration, cycling over `names` in `dir`.
fn bench_lookups(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    vfs: &Vfs,
    dir: NodeId,
    names: &[String],
) {
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            let name = &names[next];
            next = if next + 1 == names.len() { 0 } else { next + 1 };
            black_box(vfs.lookup(dir, name).expect("lookup").size)
        })
    });
}

fn metadata(c: &mut Criterion) {
    let fixture = meta_fixture();
    let files = MetaFixture::warm_file_names();
    let dirs = MetaFixture::warm_dir_names();

    let mut warm = c.benchmark_group("metadata_warm");
    warm.throughput(Throughput::Elements(1))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        let vfs = config(&fixture.catalog, |_| {});
        let warm_files = dir_id(&vfs, "/warm-files");
        let warm_dirs = dir_id(&vfs, "/warm-dirs");
        bench_pairs(&mut warm, "files", &vfs, warm_files, &files);
        bench_pairs(&mut warm, "dirs", &vfs, warm_dirs, &dirs);
    }
    {
        let vfs = config(&fixture.catalog, |c| c.open_file_cache = nz(2_048));
        let warm_files = dir_id(&vfs, "/warm-files");
        bench_pairs(&mut warm, "files_fdcache2048", &vfs, warm_files, &files);
    }
    warm.finish();

    let mut cold = c.benchmark_group("metadata_cold");
    cold.throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        // Caches of 64 entries against working sets of 100,000 and 1,000 names
        // visited in order: every lookup misses and goes to SQLite.
        let vfs = config(&fixture.catalog, |c| {
            c.node_cache = nz(64);
            c.lookup_cache = nz(64);
        });
        let big = dir_id(&vfs, "/big");
        let warm_dirs = dir_id(&vfs, "/warm-dirs");
        bench_lookups(
            &mut cold,
            "files_100k",
            &vfs,
            big,
            &MetaFixture::big_names(),
        );
        bench_lookups(&mut cold, "dirs_1000", &vfs, warm_dirs, &dirs);
    }
    cold.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = metadata
}
criterion_main!(benches);
