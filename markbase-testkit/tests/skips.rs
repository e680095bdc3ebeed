//! Skips are recorded: a test that cannot run appends a line naming itself and the
//! reason to the file `MARKBASE_SKIP_LOG` names, and fails instead under
//! `MARKBASE_REQUIRE_ALL=1`. Checked in child processes of this test binary.

use std::process::Command;

use markbase_testkit::{SKIP_LOG_ENV, require_tool, run_within};

/// Set in the child: it then calls `require_tool` for a tool that does not exist.
const CHILD: &str = "MARKBASE_TESTKIT_SKIP_CHILD";

#[test]
fn a_missing_tool_is_recorded_as_a_skip_or_fails_when_all_must_run() {
    if std::env::var_os(CHILD).is_some() {
        assert!(require_tool("no-such-tool-for-markbase").is_none());
        println!("CHILD-RETURNED");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skips");
    let child = |require_all: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "a_missing_tool_is_recorded_as_a_skip_or_fails_when_all_must_run",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env(SKIP_LOG_ENV, &log)
            .env_remove("MARKBASE_REQUIRE_ALL");
        if require_all {
            command.env("MARKBASE_REQUIRE_ALL", "1");
        }
        run_within(&mut command, std::time::Duration::from_secs(60))
    };
    for _ in 0..2 {
        let out = child(false);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("CHILD-RETURNED"));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("skipping: tool `no-such-tool-for-markbase` is not installed"),
            "{out:?}"
        );
    }
    let recorded = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 2, "{recorded}");
    let line = lines[0];
    assert_eq!(lines[1], line);
    assert!(
        line.starts_with("markbase-testkit/tests/skips.rs:"),
        "{line}"
    );
    assert!(
        line.ends_with(
            " a_missing_tool_is_recorded_as_a_skip_or_fails_when_all_must_run: \
             tool `no-such-tool-for-markbase` is not installed"
        ),
        "{line}"
    );

    let out = child(true);
    assert!(!out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(
            "cannot run: tool `no-such-tool-for-markbase` is not installed (MARKBASE_REQUIRE_ALL=1)"
        ),
        "{said}"
    );
    assert!(!said.contains("CHILD-RETURNED"), "{said}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), recorded);
}
