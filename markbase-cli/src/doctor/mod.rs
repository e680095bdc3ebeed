//! `markbase doctor`: a checklist of what mounting and serving need on this machine,
//! one line per check, each failure with its fix.
//!
//! It succeeds only when the default way to mount is ready: the catalog opens, the
//! default backend's requirements are met, and the mount point (if given) can be
//! mounted on. Warnings and information never fail it.

mod backends;
mod catalog;
mod check;
mod mountpoint;
mod ports;
mod store;
mod system;
mod users;

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use markbase_fuse::MountOptions;
use serde::Serialize;

use crate::backend::{self, Machine};
use crate::cli::{Backend, DoctorArgs};
use check::{Check, JsonCheck};
use users::User;

/// Runs every check and prints them (as JSON with `--json`); fails when one failed.
pub fn run(catalog: &Path, args: &DoctorArgs) -> anyhow::Result<()> {
    let checks = checks(catalog, args.mountpoint.as_deref());
    let failed = checks.iter().filter(|check| check.is_fail()).count();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            version: env!("CARGO_PKG_VERSION"),
            ok: failed == 0,
            checks: checks.iter().map(Check::json).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for check in &checks {
            writeln!(out, "{}", check.line())?;
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!("{failed} check(s) failed; each FAIL line says how to fix it");
    }
    Ok(())
}

/// What `--json` prints.
#[derive(Serialize)]
struct Report<'a> {
    /// markbase's version.
    version: &'static str,
    /// Whether no check failed (the exit status is 0).
    ok: bool,
    /// Every check, in the checklist's order.
    checks: Vec<JsonCheck<'a>>,
}

/// Every check, in order: markbase and the user, the catalog and its store, each
/// backend's requirements, the mount point, the serve ports, and the default backend.
fn checks(catalog: &Path, mountpoint: Option<&Path>) -> Vec<Check> {
    let user = User::current();
    let mut checks = vec![system::version(), system::user(&user)];
    let (opened, vfs) = catalog::check(catalog, &user);
    checks.push(opened);
    checks.push(store::check(vfs.as_ref(), &user));
    drop(vfs);

    // The machine as `markbase mount` sees it, with the same fuse-t helper.
    let machine = Machine::probe(MountOptions::default().helper.path.as_deref());
    let plan = backend::plan(Backend::Auto, &machine);
    let default = plan.tries.first().map(|(way, _)| *way);
    let requirements = backends::checks(&machine, default, &user);
    let summary = backends::summary(&plan, machine.macos, &requirements);
    checks.extend(requirements.into_iter().map(|(_, check)| check));

    if let Some(dir) = mountpoint {
        checks.push(mountpoint::check(dir, &user));
    }
    checks.extend(ports::checks());
    checks.push(summary);
    checks
}

/// `path` as a shell word: as it is when it needs no quoting, else in single quotes.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(quoted(Path::new("/mnt/x")), "/mnt/x");
        assert_eq!(quoted(Path::new("/Volumes/My Disk")), "'/Volumes/My Disk'");
        assert_eq!(quoted(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}
