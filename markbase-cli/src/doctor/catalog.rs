//! The catalog: does it open, is its schema right, and what fsck says of it.

use std::path::Path;

use markbase_vfs::{Vfs, VfsConfig, VfsError, check::CheckReport, schema::SCHEMA_VERSION};

use super::check::{Check, Status};
use super::quoted;
use super::users::{User, mode_and_owner};
use crate::fsck::repairable;

/// Opens the catalog at `path` read-only and runs fsck's check on it: its line, and
/// the catalog when it opened.
pub fn check(path: &Path, user: &User) -> (Check, Option<Vfs>) {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut config = VfsConfig::new(path);
    config.read_only = true;
    let vfs = match Vfs::open(config) {
        Ok(vfs) => vfs,
        Err(err) => return (refused(&shown, &err, user), None),
    };
    let shown = vfs.catalog_path().to_owned();
    let nodes = match vfs.node_count() {
        Ok(nodes) => nodes,
        Err(err) => {
            let check = Check::new(
                "catalog",
                Status::Fail(ask_for_help()),
                format!(
                    "{}: opens, but its nodes cannot be counted: {err}",
                    shown.display()
                ),
            );
            return (check, Some(vfs));
        }
    };
    let opened = format!(
        "{}: opens, schema version {SCHEMA_VERSION}, {nodes} nodes",
        shown.display()
    );
    let check = match vfs.check() {
        Ok(report) if report.is_clean() => {
            Check::new("catalog", Status::Ok, format!("{opened}; fsck: clean"))
        }
        Ok(report) => Check::new(
            "catalog",
            Status::Warn(fsck_fix(&shown, &report)),
            format!("{opened}; fsck: {}", problems(&report)),
        ),
        Err(err) => Check::new(
            "catalog",
            Status::Warn(format!("`markbase --catalog {} fsck`", quoted(&shown))),
            format!("{opened}; fsck could not run: {err}"),
        ),
    };
    (check, Some(vfs))
}

/// The line of a catalog that does not open: the file, what is wrong, the fix.
fn refused(path: &Path, err: &VfsError, user: &User) -> Check {
    let at = quoted(path);
    let make_one =
        format!("make one from a folder of media with `markbase --catalog {at} import DIR`");
    let (detail, fix) = match err {
        VfsError::CatalogMissing(_) => (
            String::from("does not exist"),
            format!(
                "{make_one}, or name an existing catalog with --catalog PATH (or MARKBASE_CATALOG)"
            ),
        ),
        VfsError::CatalogUnreadable { cause, .. } => {
            let owner = std::fs::metadata(path)
                .map(|meta| format!("; {}", mode_and_owner(&meta)))
                .unwrap_or_default();
            (
                format!("cannot be read by user {} ({cause}{owner})", user.name),
                format!(
                    "let {} read and write it (`sudo chown {} {at}`), or run markbase as its owner",
                    user.name, user.name
                ),
            )
        }
        VfsError::CatalogReadOnly { reason, .. } => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            let owners = [path, dir]
                .iter()
                .filter_map(|file| {
                    let meta = std::fs::metadata(file).ok()?;
                    Some(format!("{}: {}", file.display(), mode_and_owner(&meta)))
                })
                .collect::<Vec<_>>()
                .join("; ");
            (
                format!(
                    "cannot be written by user {} ({reason}; {owners})",
                    user.name
                ),
                format!(
                    "let {} write it and its directory, where SQLite keeps its journal \
                     (`sudo chown {} {at} {}`), or run markbase as their owner",
                    user.name,
                    user.name,
                    quoted(dir)
                ),
            )
        }
        VfsError::CatalogDirectoryReadOnly { path: catalog } => {
            // The error's path is canonical: its directory is never empty.
            let dir = catalog.parent().unwrap_or(Path::new("/"));
            let owner = std::fs::metadata(dir)
                .map(|meta| format!(" ({})", mode_and_owner(&meta)))
                .unwrap_or_default();
            (
                format!(
                    "cannot be opened by user {}: it is in WAL mode, and SQLite must create its \
                     -shm file in {}{owner}, which they may not write",
                    user.name,
                    dir.display()
                ),
                format!(
                    "let {} write {} (`sudo chown {} {}`), or run markbase as its owner",
                    user.name,
                    quoted(dir),
                    user.name,
                    quoted(dir)
                ),
            )
        }
        VfsError::NotACatalog { reason, .. } => (
            format!("is not a catalog: not a usable SQLite database ({reason})"),
            format!(
                "name the right file with --catalog PATH; if this was your catalog it is damaged: \
                 restore it from a backup, or {make_one}"
            ),
        ),
        VfsError::Schema { problem, .. } if problem.contains("newer") => {
            (problem.clone(), String::from("upgrade markbase"))
        }
        VfsError::Schema { problem, .. } => (
            format!("is not a MarkBase schema-v{SCHEMA_VERSION} catalog: {problem}"),
            format!("name a MarkBase catalog with --catalog PATH, or {make_one}"),
        ),
        VfsError::CatalogBusy { .. } => (
            String::from("is locked by another program writing it"),
            String::from("let that program finish, or stop it, then run `markbase doctor` again"),
        ),
        other => (format!("does not open: {other}"), ask_for_help()),
    };
    Check::new(
        "catalog",
        Status::Fail(fix),
        format!("{}: {detail}", path.display()),
    )
}

/// What fsck found, counted by kind.
fn problems(report: &CheckReport) -> String {
    let mut kinds = Vec::new();
    for (count, what) in [
        (report.dangling.len(), "dangling node(s)"),
        (report.orphans.len(), "orphan store file(s)"),
        (report.unreachable.len(), "unreachable row(s)"),
    ] {
        if count > 0 {
            kinds.push(format!("{count} {what}"));
        }
    }
    format!("{} problem(s): {}", report.problems(), kinds.join(", "))
}

/// How to see and fix what fsck found.
fn fsck_fix(path: &Path, report: &CheckReport) -> String {
    let fsck = format!("markbase --catalog {} fsck", quoted(path));
    let fixed = repairable(report);
    if fixed > 0 {
        format!("`{fsck}` lists them; `{fsck} --repair` fixes {fixed} of them")
    } else {
        format!("`{fsck}` lists them; bring the files back, or correct the catalog's rows")
    }
}

/// The fix for what doctor cannot explain.
fn ask_for_help() -> String {
    String::from("run `markbase -vv doctor` and send its output when asking for help")
}
