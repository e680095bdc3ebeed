//! `markbase fsck`: the catalog against the files, and the repair.

use std::io::{self, Write};

use anyhow::{Result, bail};
use markbase_vfs::{
    Vfs,
    check::{CheckReport, DanglingNode, OrphanAction, Repair},
};

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
        let repairable = repairable(&report);
        if repairable == 0 {
            bail!(
                "{} problem(s) found, none of which --repair fixes: bring the files back, \
                 or correct the catalog's rows",
                report.problems()
            );
        }
        bail!(
            "{} problem(s) found; `markbase fsck --repair [--orphans adopt|remove]` fixes {repairable} of them",
            report.problems()
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
        "{} problem(s) remain: nodes whose bytes live outside the store or are not known \
         to be gone, and rows the root does not reach, are never removed, and orphans are \
         kept unless --orphans says otherwise",
        after.problems()
    )
}

/// How many of `report`'s problems `--repair` fixes: orphan store files, and nodes
/// whose bytes were in the store and are gone.
pub fn repairable(report: &CheckReport) -> usize {
    report.orphans.len()
        + report
            .dangling
            .iter()
            .filter(|node| node.in_store && node.bytes_gone())
            .count()
}

fn write_report(report: &CheckReport, out: &mut impl Write) -> io::Result<()> {
    for node in &report.dangling {
        writeln!(
            out,
            "dangling node {} {}: {}",
            node.id,
            node.path,
            why(node)
        )?;
    }
    for path in &report.orphans {
        writeln!(
            out,
            "orphan store file {} (no node names it)",
            path.display()
        )?;
    }
    for node in &report.unreachable {
        writeln!(out, "unreachable {node}")?;
    }
    Ok(())
}

/// Why no alias serves `node`: every alias with what is there instead.
fn why(node: &DanglingNode) -> String {
    let skipped: Vec<String> = node.skipped.iter().map(ToString::to_string).collect();
    if skipped.is_empty() {
        "it has no aliases".to_owned()
    } else if node.bytes_gone() {
        let place = if node.in_store {
            "store"
        } else {
            "outside the store"
        };
        format!("every alias is gone ({place}): {}", skipped.join("; "))
    } else {
        format!("no alias can serve it: {}", skipped.join("; "))
    }
}
