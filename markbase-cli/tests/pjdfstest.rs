//! POSIX conformance: pjdfstest (the Rust rewrite) run against a real `markbase mount`,
//! its results held against the checked-in list of the cases markbase is known to fail
//! and why, `tests/pjdfstest/expected-failures.toml`. A failure not on the list fails
//! this test, and so does a listed case that passes now: the list stays true and
//! shrinks as markbase grows.
//!
//! Needs root, `/dev/fuse` and `pjdfstest` of the list's version on `PATH` (scripts/test
//! installs it); without them the test skips, or fails under `MARKBASE_REQUIRE_ALL=1`.

#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, SHUTDOWN_LIMIT};
use common::{markbase, run, stderr};
use markbase_testkit::{cannot_run, require_fuse, require_tool, run_within};
use serde::Deserialize;

/// The expected failures, as the messages name it.
const LIST_NAME: &str = "markbase-cli/tests/pjdfstest/expected-failures.toml";
const LIST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/pjdfstest/expected-failures.toml"
);
/// pjdfstest's configuration: features, naptime, the users it switches to.
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/pjdfstest/pjdfstest.toml"
);
/// Where pjdfstest's whole output is kept after a run.
const OUTPUT: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/pjdfstest-output.txt");
/// A whole run takes seconds; this only stops a run stuck on a broken mount.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// `expected-failures.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailures {
    /// The pjdfstest version whose case names the groups list.
    pjdfstest_version: String,
    #[serde(default)]
    group: Vec<Group>,
}

/// Cases that fail for one reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    reason: String,
    tests: Vec<String>,
    /// Its cases pass in some runs and fail in others (a race the reason names, not
    /// markbase's to decide): passing is then no disagreement, failing is expected.
    #[serde(default)]
    varies: bool,
}

impl ExpectedFailures {
    fn load() -> Self {
        let text = fs::read_to_string(LIST).unwrap_or_else(|err| panic!("{LIST}: {err}"));
        toml::from_str(&text).unwrap_or_else(|err| panic!("{LIST_NAME}: {err}"))
    }

    /// Each listed case and its group, and the list's own faults (a case in two
    /// groups, a group without a reason or without cases).
    fn by_case(&self) -> (BTreeMap<&str, &Group>, Vec<String>) {
        let mut cases = BTreeMap::new();
        let mut faults = Vec::new();
        for group in &self.group {
            if group.reason.trim().is_empty() {
                faults.push(format!(
                    "group `{}` has no reason: say why these cases fail",
                    group.name
                ));
            }
            if group.tests.is_empty() {
                faults.push(format!(
                    "group `{}` has no tests left: remove the group",
                    group.name
                ));
            }
            for test in &group.tests {
                if let Some(other) = cases.insert(test.as_str(), group) {
                    faults.push(format!(
                        "\"{test}\" is in groups `{}` and `{}`: keep it in the one whose \
                         reason it fails for first",
                        other.name, group.name
                    ));
                }
            }
        }
        (cases, faults)
    }
}

/// How one pjdfstest case ended, with what pjdfstest said about it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// The `Summary:` line's counts.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    failed: usize,
    skipped: usize,
    passed: usize,
    total: usize,
}

/// pjdfstest's output (with `NO_COLOR`): one line per case, `NAME<spaces>ok`, `FAILED`
/// or `skipped`; after a failure its panic message (which may span lines), after a
/// skip its reasons, each indented; at the end a `Summary:` line. The cases in the
/// order they ran, and the summary; `Err` when the output is not of that shape.
fn parse_output(stdout: &str) -> Result<(Vec<(String, Outcome)>, Summary), String> {
    let mut cases: Vec<(String, Outcome)> = Vec::new();
    let mut summary = None;
    for raw in stdout.lines() {
        let line = strip_ansi(raw);
        if let Some(counts) = line.strip_prefix("Summary: ") {
            summary = Some(parse_summary(counts).ok_or_else(|| format!("unreadable {line:?}"))?);
            continue;
        }
        let case_line = (!line.starts_with(char::is_whitespace))
            .then(|| line.split_once(' '))
            .flatten()
            .filter(|(name, _)| name.contains("::"))
            .and_then(|(name, status)| {
                let outcome = match status.trim() {
                    "ok" | "PASSED UNEXPECTEDLY" => Outcome::Passed,
                    "FAILED" | "failed as expected" => Outcome::Failed(String::new()),
                    "skipped" => Outcome::Skipped(String::new()),
                    _ => return None,
                };
                Some((name.to_owned(), outcome))
            });
        if let Some(case) = case_line {
            cases.push(case);
            continue;
        }
        // A failure's message or a skip's reasons; anything else (the `Error:` line
        // after the summary) says nothing about a case.
        let detail = line.strip_prefix('\t').unwrap_or(&line).trim_end();
        if let Some((_, Outcome::Failed(text) | Outcome::Skipped(text))) = cases.last_mut()
            && !detail.is_empty()
            && summary.is_none()
        {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(detail);
        }
    }
    let summary = summary.ok_or("no `Summary:` line: pjdfstest did not finish")?;
    let count = |f: fn(&Outcome) -> bool| cases.iter().filter(|(_, o)| f(o)).count();
    let read = Summary {
        failed: count(|o| matches!(o, Outcome::Failed(_))),
        skipped: count(|o| matches!(o, Outcome::Skipped(_))),
        passed: count(|o| matches!(o, Outcome::Passed)),
        total: cases.len(),
    };
    if read != summary {
        return Err(format!(
            "the cases read ({read:?}) do not add up to pjdfstest's summary ({summary:?})"
        ));
    }
    Ok((cases, summary))
}

/// `245 failed, 14 skipped, 139 passed, 0 expected failures, 398 total`, where expected
/// failures count as failed (this test gives pjdfstest no list of its own).
fn parse_summary(counts: &str) -> Option<Summary> {
    let mut summary = Summary::default();
    for part in counts.split(", ") {
        let (n, what) = part.split_once(' ')?;
        let n: usize = n.parse().ok()?;
        match what {
            "failed" | "expected failures" => summary.failed += n,
            "skipped" => summary.skipped += n,
            "passed" => summary.passed += n,
            "total" => summary.total = n,
            _ => return None,
        }
    }
    Some(summary)
}

/// Drops the colour escapes (`ESC [ ... m`) in case pjdfstest prints them after all.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What disagrees between the run and the list, each saying which line of the list to
/// add or remove.
fn compare(list: &ExpectedFailures, cases: &[(String, Outcome)]) -> Vec<String> {
    let (listed, mut problems) = list.by_case();
    for (name, outcome) in cases {
        let group = listed.get(name.as_str());
        match (outcome, group) {
            (Outcome::Failed(message), None) => problems.push(format!(
                "`{name}` failed, and is not an expected failure. pjdfstest said:\n{}\n  \
                 If markbase should pass it, that is a bug to fix; if it cannot, add this line \
                 to the tests of the group whose reason it fails for (or to a new group):\n    \"{name}\",",
                indent(message)
            )),
            (Outcome::Passed, Some(group)) if !group.varies => problems.push(format!(
                "\"{name}\", (group `{}`) now passes: remove it from the list",
                group.name
            )),
            (Outcome::Skipped(why), Some(group)) => problems.push(format!(
                "\"{name}\", (group `{}`) was skipped ({}), so it is not an expected failure: \
                 remove it from the list",
                group.name,
                why.replace('\n', "; ")
            )),
            _ => {}
        }
    }
    for (name, group) in &listed {
        if !cases.iter().any(|(case, _)| case == name) {
            problems.push(format!(
                "\"{name}\", (group `{}`) is not a case of pjdfstest {}: remove it from the list",
                group.name, list.pjdfstest_version
            ));
        }
    }
    problems
}

fn indent(text: &str) -> String {
    let text = if text.is_empty() { "(nothing)" } else { text };
    text.lines()
        .map(|line| format!("    | {line}\n"))
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The first ancestor of `path` that other users cannot search, if any: pjdfstest's
/// cases that switch to its dummy users must reach the mount.
fn unsearchable_ancestor(path: &Path) -> Option<(std::path::PathBuf, u32)> {
    path.ancestors().find_map(|dir| {
        let mode = fs::metadata(dir).ok()?.permissions().mode();
        (mode & 0o001 == 0).then(|| (dir.to_owned(), mode & 0o7777))
    })
}

#[test]
fn pjdfstest_fails_only_where_the_list_says_why() {
    let list = ExpectedFailures::load();
    if !require_fuse() {
        return;
    }
    let Some(pjdfstest) = require_tool("pjdfstest") else {
        return;
    };
    let version = run(Command::new(&pjdfstest).arg("--version"));
    let version = String::from_utf8_lossy(&version.stdout);
    let version = version.trim().trim_start_matches("pjdfstest ").to_owned();
    if version != list.pjdfstest_version {
        return cannot_run(&format!(
            "pjdfstest {version} is installed, but {LIST_NAME} lists the cases of pjdfstest {}",
            list.pjdfstest_version
        ));
    }

    // An empty catalog, mounted on `mnt`; `other` is the second filesystem that the
    // EXDEV cases rename and link across (the disk under the temp dir).
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (empty, mnt, other) = (
        dir.path().join("empty"),
        dir.path().join("mnt"),
        dir.path().join("other"),
    );
    for d in [&empty, &mnt, &other] {
        fs::create_dir(d).unwrap();
    }
    if let Some((blocked, mode)) = unsearchable_ancestor(&mnt) {
        return cannot_run(&format!(
            "other users cannot search {} (mode {mode:o}), so pjdfstest's cases that switch \
             users could not reach the mount; set TMPDIR to a directory everyone can search",
            blocked.display()
        ));
    }
    let catalog = dir.path().join("warren.sqlite");
    let import = run(markbase()
        .arg("--catalog")
        .arg(&catalog)
        .arg("import")
        .arg(&empty));
    assert!(import.status.success(), "import: {}", stderr(&import));
    // pjdfstest switches to other users, who must reach the mount.
    let mut daemon = Daemon::start(&catalog, &mnt, dir.path(), &["--allow-other"]);
    daemon.wait_mounted();

    let started = Instant::now();
    let output = run_within(
        Command::new(&pjdfstest)
            .arg("-c")
            .arg(CONFIG)
            .arg("-p")
            .arg(&mnt)
            .arg("-s")
            .arg(&other)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("CLICOLOR_FORCE"),
        RUN_LIMIT,
    );
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let _ = fs::write(OUTPUT, &*stdout);

    // The mount ends cleanly, and the catalog pjdfstest worked on is consistent.
    let umount = run(markbase().arg("umount").arg(&mnt));
    assert!(
        umount.status.success(),
        "markbase umount: {}",
        stderr(&umount)
    );
    let (status, _) = daemon.wait_exit(SHUTDOWN_LIMIT + Duration::from_secs(1));
    assert_eq!(
        status.code(),
        Some(0),
        "markbase mount: {status}; {}",
        daemon.stderr()
    );
    let fsck = run(markbase().arg("--catalog").arg(&catalog).arg("fsck"));
    assert!(
        fsck.status.success(),
        "markbase fsck after pjdfstest: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        stderr(&fsck)
    );

    let (cases, summary) = parse_output(&stdout).unwrap_or_else(|err| {
        panic!(
            "pjdfstest (exit {}) gave output this test cannot read: {err}\nstderr: {}\nstdout: {OUTPUT}",
            output.status,
            stderr(&output)
        )
    });
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "pjdfstest exited with {}: {}",
        output.status,
        stderr(&output)
    );
    let (listed, _) = list.by_case();
    let mut by_group = BTreeMap::<&str, usize>::new();
    let mut unlisted = 0;
    for (name, outcome) in &cases {
        if matches!(outcome, Outcome::Failed(_)) {
            match listed.get(name.as_str()) {
                Some(group) => *by_group.entry(group.name.as_str()).or_default() += 1,
                None => unlisted += 1,
            }
        }
    }
    let mut report = format!(
        "pjdfstest {version} on markbase mount, in {took:.1?}: {} cases, {} passed, {} failed, {} skipped\n  failed by group:",
        summary.total, summary.passed, summary.failed, summary.skipped
    );
    for group in &list.group {
        let n = by_group.get(group.name.as_str()).copied().unwrap_or(0);
        let _ = write!(report, " {} {n},", group.name);
    }
    let _ = write!(report, " not listed {unlisted}\n  whole output: {OUTPUT}");
    eprintln!("{report}");

    let problems = compare(&list, &cases);
    if !problems.is_empty() {
        let mut message = format!(
            "{report}\n{} disagreement(s) with {LIST_NAME}:\n",
            problems.len()
        );
        for (i, problem) in problems.iter().enumerate() {
            let _ = writeln!(message, "{}. {problem}", i + 1);
        }
        panic!("{message}");
    }
}

/// The checked-in list is well formed whether or not pjdfstest is installed.
#[test]
fn the_expected_failures_list_is_well_formed() {
    let list = ExpectedFailures::load();
    assert!(!list.pjdfstest_version.is_empty());
    let (_, faults) = list.by_case();
    assert!(faults.is_empty(), "{LIST_NAME}:\n{}", faults.join("\n"));
}

const SAMPLE: &str = "\
chmod::change_perm::regular                                               FAILED
\tassertion `left == right` failed
  left: 420
 right: 73
unlink::remove_type::regular                                                  ok
link::erofs_named                                                        skipped
\tRemounts (allow_remount) are not allowed in the configuration file
mkfifo::eloop_comp                                                        FAILED
\tcalled `Result::unwrap()` on an `Err` value: ENOSYS

Summary: 2 failed, 1 skipped, 1 passed, 0 expected failures, 4 total
Error: Some tests have failed
";

#[test]
fn pjdfstest_output_is_read_case_by_case() {
    let (cases, summary) = parse_output(SAMPLE).unwrap();
    assert_eq!(
        summary,
        Summary {
            failed: 2,
            skipped: 1,
            passed: 1,
            total: 4
        }
    );
    assert_eq!(
        cases,
        [
            (
                "chmod::change_perm::regular".to_owned(),
                Outcome::Failed(
                    "assertion `left == right` failed\n  left: 420\n right: 73".to_owned()
                )
            ),
            ("unlink::remove_type::regular".to_owned(), Outcome::Passed),
            (
                "link::erofs_named".to_owned(),
                Outcome::Skipped(
                    "Remounts (allow_remount) are not allowed in the configuration file".to_owned()
                )
            ),
            (
                "mkfifo::eloop_comp".to_owned(),
                Outcome::Failed("called `Result::unwrap()` on an `Err` value: ENOSYS".to_owned())
            ),
        ]
    );
    let coloured = "\u{1b}[34mfoo::bar\u{1b}[0m      \u{1b}[32mok\u{1b}[0m\n\u{1b}[1mSummary\u{1b}[0m: 0 failed, 0 skipped, 1 passed, 0 expected failures, 1 total\n";
    assert_eq!(
        parse_output(coloured).unwrap().0,
        [("foo::bar".to_owned(), Outcome::Passed)]
    );
    assert!(
        parse_output("foo::bar   ok\n")
            .unwrap_err()
            .contains("Summary")
    );
    let short =
        "foo::bar   ok\nSummary: 0 failed, 0 skipped, 2 passed, 0 expected failures, 2 total\n";
    assert!(parse_output(short).unwrap_err().contains("do not add up"));
}

#[test]
fn each_disagreement_names_the_line_to_add_or_remove() {
    let list: ExpectedFailures = toml::from_str(
        r#"
        pjdfstest_version = "0.2.2"
        [[group]]
        name = "modes"
        reason = "no modes"
        tests = ["chmod::change_perm::regular", "unlink::remove_type::regular", "gone::case"]
        [[group]]
        name = "remounts"
        reason = "no remounts"
        tests = ["link::erofs_named"]
        "#,
    )
    .unwrap();
    let (cases, _) = parse_output(SAMPLE).unwrap();
    let problems = compare(&list, &cases);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with(
        "\"unlink::remove_type::regular\", (group `modes`) now passes: remove it from the list"
    ));
    assert!(
        problems[1].contains("\"link::erofs_named\", (group `remounts`) was skipped (Remounts")
    );
    assert!(problems[2].starts_with("`mkfifo::eloop_comp` failed, and is not an expected failure"));
    assert!(problems[2].contains("    | called `Result::unwrap()` on an `Err` value: ENOSYS"));
    assert!(problems[2].ends_with("\n    \"mkfifo::eloop_comp\","));
    assert!(
        problems[3].contains("\"gone::case\", (group `modes`) is not a case of pjdfstest 0.2.2")
    );

    // A case of a group whose outcome varies may pass; it must still exist.
    let varies: ExpectedFailures = toml::from_str(
        r#"
        pjdfstest_version = "0.2.2"
        [[group]]
        name = "racy"
        reason = "a race"
        varies = true
        tests = ["unlink::remove_type::regular", "gone::case"]
        "#,
    )
    .unwrap();
    let problems = compare(&varies, &cases);
    assert!(
        !problems.iter().any(|p| p.contains("now passes")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"gone::case\", (group `racy`) is not a case"))
    );

    let twice: ExpectedFailures = toml::from_str(
        r#"
        pjdfstest_version = "0.2.2"
        [[group]]
        name = "a"
        reason = "x"
        tests = ["one::case"]
        [[group]]
        name = "b"
        reason = ""
        tests = ["one::case"]
        [[group]]
        name = "c"
        reason = "done"
        tests = []
        "#,
    )
    .unwrap();
    let (_, faults) = twice.by_case();
    assert_eq!(faults.len(), 3, "{faults:#?}");
    assert!(faults.iter().any(|f| f.contains("group `b` has no reason")));
    assert!(
        faults
            .iter()
            .any(|f| f.contains("is in groups `a` and `b`"))
    );
    assert!(
        faults
            .iter()
            .any(|f| f.contains("group `c` has no tests left: remove the group"))
    );
}
