//! `markbase fsck`: the catalog against the files, and the repair.

use std::io::{self, Write};

use anyhow::{Result, bail};
use markbase_vfs::{CheckReport, OrphanAction, Repair, Vfs};

use crate::cli::{FsckArgs, Orphans};

/// Checks, prints what is wrong, repairs when asked; fails while problems remain.
pub fn run(vfs: &Vfs, args: &FsckArgs) -> Result<()> {
    let report = vfs.check()?;
    let mut out = io::stdout().lock();
    write_report(&report, &mut out)?;
    if report.is_clean() {
        writeln!(out, "{}: clean", vfs.catalog_path().display())?;
        return Ok(out.flush()?);
    }
    if !args.repair {
        out.flush()?;
        bail!(
            "{} problem(s) found; run `markbase fsck --repair [--orphans adopt|remove]`",
            report.dangling.len() + report.orphans.len()
        );
    }
    let mut repair = Repair::default();
    repair.drop_dangling_store_nodes = true;
    repair.orphans = match args.orphans {
        Orphans::Keep => OrphanAction::Keep,
        Orphans::Adopt => OrphanAction::Adopt,
        Orphans::Remove => OrphanAction::Remove,
    };
    let done = vfs.repair(&report, repair)?;
    for id in &done.dropped {
        writeln!(out, "removed node {id}")?;
    }
    for (path, id) in &done.adopted {
        writeln!(
            out,
            "adopted {} as node {id} in /lost+found",
            path.display()
        )?;
    }
    for path in &done.removed {
        writeln!(out, "deleted {}", path.display())?;
    }
    let after = vfs.check()?;
    if after.is_clean() {
        writeln!(out, "{}: clean", vfs.catalog_path().display())?;
        return Ok(out.flush()?);
    }
    out.flush()?;
    bail!(
        "{} problem(s) remain: nodes whose bytes live outside the store are never removed, \
         and orphans are kept unless --orphans says otherwise",
        after.dangling.len() + after.orphans.len()
    )
}

fn write_report(report: &CheckReport, out: &mut impl Write) -> io::Result<()> {
    for node in &report.dangling {
        let place = if node.in_store {
            "store"
        } else {
            "outside the store"
        };
        writeln!(
            out,
            "dangling node {} {}: every alias is gone ({place}): {}",
            node.id,
            node.path,
            node.aliases.join(", ")
        )?;
    }
    for path in &report.orphans {
        writeln!(
            out,
            "orphan store file {} (no node names it)",
            path.display()
        )?;
    }
    Ok(())
}
