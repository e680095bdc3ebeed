//! `markbase import DIR`: building a catalog from a folder, with a progress display.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use markbase_vfs::import::{ImportOptions, ImportStats, import};

/// Skipped entries listed after an import; the rest are counted.
const SKIPS_SHOWN: usize = 20;

/// Imports `args.dir` into `catalog` and prints what happened.
pub fn run(args: &crate::cli::ImportArgs, catalog: &Path) -> Result<()> {
    let stats = import_with_progress(&args.dir, catalog, &args.into)?;
    report(&stats, catalog);
    Ok(())
}

/// Imports `dir` into the catalog directory `into`, showing a spinner with running totals.
pub fn import_with_progress(dir: &Path, catalog: &Path, into: &str) -> Result<ImportStats> {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} importing {msg} [{elapsed}]")
            .expect("the template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress = |stats: &ImportStats| {
        if stats.entries().is_multiple_of(256) {
            bar.set_message(format!(
                "{} entries, {}",
                stats.entries(),
                HumanBytes(stats.bytes)
            ));
        }
    };
    let mut options = ImportOptions::default();
    options.into = into.to_owned();
    options.progress = Some(&progress);
    let stats = import(dir, catalog, &options)
        .with_context(|| format!("importing {} into {}", dir.display(), catalog.display()));
    bar.finish_and_clear();
    stats
}

fn report(stats: &ImportStats, catalog: &Path) {
    println!(
        "{}: {} dirs and {} files added, {} files updated, {} unchanged, {} skipped ({} in files)",
        catalog.display(),
        stats.dirs_added,
        stats.files_added,
        stats.files_updated,
        stats.unchanged,
        stats.skipped.len(),
        HumanBytes(stats.bytes)
    );
    for skip in stats.skipped.iter().take(SKIPS_SHOWN) {
        println!("  skipped {}: {}", skip.path.display(), skip.reason);
    }
    if stats.skipped.len() > SKIPS_SHOWN {
        println!(
            "  ... and {} more skipped",
            stats.skipped.len() - SKIPS_SHOWN
        );
    }
}
