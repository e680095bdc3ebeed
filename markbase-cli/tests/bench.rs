//! `markbase bench`, run as a user would: on small tmpfs and ramfs mounts of its own, on
//! a real markbase FUSE mount, interrupted, and refused. No test asserts a speed: only
//! that the figures agree with each other and that nothing is left behind.
//!
//! Tests that mount need root (and `/dev/fuse` for the markbase mount); without them
//! they skip, or fail under `MARKBASE_REQUIRE_ALL=1`.

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::daemon::{Daemon, Detach};
use common::{assert_fails_with, exit_within, markbase, run, stderr};
use markbase_testkit::{cannot_run, is_root, require_fuse, write_pattern_file};
use serde_json::Value;
use tempfile::TempDir;

/// A temp dir, and what the test mounted in it (detached before the dir goes).
struct Scratch {
    mounts: Vec<Detach>,
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            mounts: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Mounts a filesystem of `fstype` (`tmpfs`, `ramfs`) with `options` on a new
    /// directory `name`; `None` (the test skips) when not root.
    fn mount(&mut self, name: &str, fstype: &str, options: &str) -> Option<PathBuf> {
        if !is_root() {
            cannot_run(&format!("mounting a {fstype} needs root"));
            return None;
        }
        let dir = self.dir.path().join(name);
        fs::create_dir(&dir).unwrap();
        let out = run(Command::new("mount")
            .args(["-t", fstype, "-o", options, "markbase-test"])
            .arg(&dir));
        assert!(out.status.success(), "mount -t {fstype}: {}", stderr(&out));
        self.mounts.push(Detach(dir.clone()));
        Some(dir)
    }

    /// A catalog of one small clip, `/clip.mov`, in the scratch dir.
    fn catalog_of_one_clip(&self) -> PathBuf {
        let media = self.dir.path().join("media");
        fs::create_dir(&media).unwrap();
        write_pattern_file(&media.join("clip.mov"), 4096, 3).unwrap();
        let catalog = self.dir.path().join("warren.sqlite");
        let out = run(markbase()
            .arg("--catalog")
            .arg(&catalog)
            .arg("import")
            .arg(&media));
        assert!(out.status.success(), "import: {}", stderr(&out));
        catalog
    }

    /// Where the default chart goes (XDG_DATA_HOME of the runs).
    fn data_home(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// `markbase bench ARGS...` with XDG_DATA_HOME in the scratch dir.
    fn bench(&self, args: &[&str]) -> Output {
        run(markbase()
            .env("XDG_DATA_HOME", self.data_home())
            .arg("bench")
            .args(args))
    }

    /// `markbase bench ARGS... --json`, which must succeed; its report.
    fn bench_json(&self, args: &[&str]) -> Value {
        let out = self.bench(&[args, &["--json"]].concat());
        assert!(out.status.success(), "bench: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn num(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {value:#}"))
}

/// Asserts that a run's figures agree with each other and with the settings.
#[track_caller]
fn assert_consistent(report: &Value, run: &Value) {
    let frame = num(run, "/frame_bytes");
    assert!(frame > 0.0, "{run:#}");
    assert!(num(run, "/write/frames") > 0.0, "{run:#}");
    assert!(num(run, "/write/bytes") <= num(report, "/settings/file_bytes"));
    assert_eq!(num(run, "/write/bytes"), num(run, "/write/frames") * frame);
    assert_eq!(num(run, "/read/bytes"), num(run, "/write/bytes"));
    assert_eq!(num(run, "/read/frames"), num(run, "/write/frames"));
    let fps = num(report, "/settings/fps");
    assert!(
        (num(run, "/need_mb_per_s") - frame * fps / 1e6).abs() < 1e-6,
        "{run:#}"
    );
    for phase in ["write", "read"] {
        let at = |field: &str| num(run, &format!("/{phase}/{field}"));
        let seconds = at("seconds");
        assert!(seconds > 0.0, "{run:#}");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(
            close(at("mb_per_s"), at("bytes") / seconds / 1e6),
            "{run:#}"
        );
        assert!(close(at("frames_per_s"), at("frames") / seconds), "{run:#}");
        assert!(at("fsync_seconds") <= seconds, "{run:#}");
        let (p50, p99, max) = (
            at("latency_ms/p50"),
            at("latency_ms/p99"),
            at("latency_ms/max"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{run:#}");
        assert!(max <= seconds * 1e3, "{run:#}");
        assert!(at("dropped_frames") <= at("frames"), "{run:#}");
    }
    let need = num(run, "/need_mb_per_s");
    let pass = num(run, "/write/mb_per_s") >= need
        && num(run, "/read/mb_per_s") >= need
        && num(run, "/write/dropped_frames") == 0.0
        && num(run, "/read/dropped_frames") == 0.0;
    assert_eq!(run["verdict"]["pass"], pass, "{run:#}");
    assert_eq!(
        run["verdict"]["reasons"].as_array().unwrap().is_empty(),
        pass
    );
    let note = run["cache_note"].as_str().unwrap();
    if run["cache_bypassed"] == true {
        assert_eq!(frame % 4096.0, 0.0, "O_DIRECT frames are whole pages");
        assert_eq!(note, "O_DIRECT");
    } else {
        assert!(note.starts_with("page cache used: "), "{note}");
    }
}

/// Asserts that `dir` holds nothing (the test file is gone).
#[track_caller]
fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

/// Parses the chart as XML: an `svg` root with a polyline per series at least, and a
/// legend naming each of `series`.
#[track_caller]
fn assert_chart(path: &Path, series: &[&str]) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|err| panic!("chart {}: {err}", path.display()));
    let root = xmltree::Element::parse(text.as_bytes()).expect("the chart is XML");
    assert_eq!(root.name, "svg");
    fn walk<'a>(element: &'a xmltree::Element, found: &mut Vec<&'a xmltree::Element>) {
        found.push(element);
        for child in element
            .children
            .iter()
            .filter_map(xmltree::XMLNode::as_element)
        {
            walk(child, found);
        }
    }
    let mut elements = Vec::new();
    walk(&root, &mut elements);
    let lines = elements
        .iter()
        .filter(|e| e.name == "polyline" || e.name == "path")
        .count();
    assert!(lines >= series.len(), "{lines} lines in {}", path.display());
    let texts: Vec<String> = elements
        .iter()
        .filter(|e| e.name == "text")
        .filter_map(|e| e.get_text())
        .map(|t| t.trim().to_owned())
        .collect();
    for name in series {
        assert!(
            texts.iter().any(|t| t == name),
            "no legend {name:?} in {texts:?}"
        );
    }
}

#[test]
fn a_tmpfs_run_reports_consistent_figures_and_leaves_nothing() {
    let mut scratch = Scratch::new();
    let Some(dir) = scratch.mount("tmpfs", "tmpfs", "size=64m") else {
        return;
    };
    let report = scratch.bench_json(&[
        path_arg(&dir),
        "--frame-size",
        "1MiB",
        "--file-size",
        "16MiB",
    ]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_consistent(&report, run);
    assert_eq!(num(run, "/write/frames"), 16.0);
    assert_eq!(run["dir"], path_arg(&dir));
    assert_empty(&dir);
    // tmpfs takes O_DIRECT since Linux 6.6 and refused it before.
    if run["cache_bypassed"] == false {
        assert!(run["cache_note"].as_str().unwrap().contains("O_DIRECT"));
    }
    // The chart went to the data dir by default, and the report names it.
    let chart = PathBuf::from(report["chart"].as_str().unwrap());
    assert!(
        chart.starts_with(scratch.data_home().join("markbase/bench")),
        "{chart:?}"
    );
    assert_chart(&chart, &["dir write", "dir read"]);

    // The table, with its chart where asked.
    let chart = scratch.dir.path().join("chart.svg");
    let out = scratch.bench(&[
        path_arg(&dir),
        "--format",
        "prores-4444-4k",
        "--file-size",
        "12MiB",
        "--chart",
        path_arg(&chart),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "prores-4444-4k",
        "write MB/s",
        "read latency p99 ms",
        "verdict",
        "reaches 600 MB/s",
        "10^6 bytes/s",
        &format!("chart: {}", chart.display()),
    ] {
        assert!(table.contains(needle), "{needle:?} missing in:\n{table}");
    }
    assert_chart(&chart, &["dir write", "dir read"]);
    assert_empty(&dir);

    // No chart at all.
    let report = scratch.bench_json(&[path_arg(&dir), "--file-size", "8MiB", "--no-chart"]);
    assert_eq!(report["chart"], Value::Null);
    assert_empty(&dir);

    // --duration stops the writing long before 48 million one-byte writes.
    let report = scratch.bench_json(&[
        path_arg(&dir),
        "--cached",
        "--frame-size",
        "1",
        "--file-size",
        "48MB",
        "--duration",
        "300ms",
        "--no-chart",
    ]);
    let run = &report["runs"][0];
    assert_consistent(&report, run);
    assert_eq!(num(&report, "/settings/duration_seconds"), 0.3);
    assert!(num(run, "/write/frames") < 48e6, "{run:#}");
    assert_eq!(run["cache_note"], "page cache used: --cached was given");
    assert_empty(&dir);
}

#[test]
fn where_o_direct_is_refused_the_page_cache_is_used_and_said() {
    let mut scratch = Scratch::new();
    // ramfs has no O_DIRECT (EINVAL) and reports no size.
    let Some(dir) = scratch.mount("ramfs", "ramfs", "mode=755") else {
        return;
    };
    let out = scratch.bench(&[
        path_arg(&dir),
        "--frame-size",
        "1000k",
        "--file-size",
        "10MB",
        "--no-chart",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("free space is not checked"),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &report["runs"][0];
    assert_consistent(&report, run);
    assert_eq!(run["cache_bypassed"], false);
    let note = run["cache_note"].as_str().unwrap();
    assert!(note.contains("refused O_DIRECT"), "{note}");
    // Not rounded up: the frames are as asked.
    assert_eq!(num(run, "/frame_bytes"), 1_000_000.0);
    assert_eq!(num(run, "/write/frames"), 10.0);
    assert_empty(&dir);

    let out = scratch.bench(&[path_arg(&dir), "--file-size", "8MiB", "--no-chart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("dir: page cache used: the filesystem refused O_DIRECT"),
        "{table}"
    );
}

#[test]
fn a_markbase_mount_takes_o_direct_and_keeps_no_test_file() {
    if !require_fuse() {
        return;
    }
    let scratch = Scratch::new();
    let catalog = scratch.catalog_of_one_clip();
    let mnt = scratch.dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut daemon = Daemon::start(&catalog, &mnt, scratch.dir.path(), &[]);
    daemon.wait_mounted();

    let chart = scratch.dir.path().join("mount.svg");
    let report = scratch.bench_json(&[
        path_arg(&mnt),
        "--frame-size",
        "1MiB",
        "--file-size",
        "8MiB",
        "--chart",
        path_arg(&chart),
    ]);
    let run = &report["runs"][0];
    assert_consistent(&report, run);
    assert_eq!(run["cache_bypassed"], true, "{run:#}");
    assert_eq!(num(run, "/write/bytes"), 8.0 * 1024.0 * 1024.0);
    assert_chart(&chart, &["dir write", "dir read"]);
    let names: Vec<_> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["clip.mov"], "the mount holds {names:?}");
    daemon.stop_with(libc::SIGTERM);
}

#[test]
fn too_little_free_space_is_refused_before_writing() {
    let mut scratch = Scratch::new();
    let Some(dir) = scratch.mount("small", "tmpfs", "size=16m") else {
        return;
    };
    let out = scratch.bench(&[path_arg(&dir), "--file-size", "64MiB"]);
    assert_fails_with(&out, &dir.display().to_string());
    assert_fails_with(&out, "16.00 MiB free");
    assert_fails_with(&out, "--file-size");
    assert_empty(&dir);
    assert!(!scratch.data_home().exists(), "no chart for a refused run");
}

#[test]
fn ctrl_c_and_sigterm_remove_the_test_file() {
    let mut scratch = Scratch::new();
    // Room for the file that would be written; tmpfs uses memory only as it fills.
    let Some(dir) = scratch.mount("tmpfs", "tmpfs", "size=4g") else {
        return;
    };
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // One-byte cached writes: this would take an hour.
        let mut child = markbase()
            .env("XDG_DATA_HOME", scratch.data_home())
            .arg("bench")
            .arg(&dir)
            .args(["--cached", "--frame-size", "1", "--file-size", "3GiB"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let file = dir.join(format!("markbase-bench-{}.tmp", child.id()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !file.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "no test file {}",
                file.display()
            );
            assert!(child.try_wait().unwrap().is_none(), "bench ended early");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        common::signal(&child, signal);
        let status = exit_within(&mut child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("still running 10 s after signal {signal}"));
        let mut said = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
        assert!(!status.success(), "{status}; {said}");
        assert_eq!(status.code(), Some(130), "{said}");
        assert!(
            said.contains(&format!("interrupted; removed {}", file.display())),
            "{said}"
        );
        assert!(!file.exists());
        assert_empty(&dir);
    }
}

#[test]
fn compare_benches_both_dirs_in_one_report_with_ratios() {
    let mut scratch = Scratch::new();
    let (Some(one), Some(two)) = (
        scratch.mount("one", "tmpfs", "size=32m"),
        scratch.mount("two", "tmpfs", "size=32m"),
    ) else {
        return;
    };
    let chart = scratch.dir.path().join("compare.svg");
    let report = scratch.bench_json(&[
        path_arg(&one),
        "--compare",
        path_arg(&two),
        "--frame-size",
        "512KiB",
        "--file-size",
        "8MiB",
        "--target-fps",
        "29.97",
        "--chart",
        path_arg(&chart),
    ]);
    assert_eq!(num(&report, "/settings/fps"), 29.97);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let by_label = |label: &str| {
        runs.iter()
            .find(|r| r["label"] == label)
            .unwrap_or_else(|| panic!("no run {label}: {report:#}"))
    };
    let (dir, raw) = (by_label("dir"), by_label("raw"));
    assert_eq!(dir["dir"], path_arg(&one));
    assert_eq!(raw["dir"], path_arg(&two));
    for run in runs {
        assert_consistent(&report, run);
    }
    // Fastest (by the slower direction) first.
    let slower = |r: &Value| num(r, "/write/mb_per_s").min(num(r, "/read/mb_per_s"));
    assert!(slower(&runs[0]) >= slower(&runs[1]));
    assert_eq!(report["baseline"], "raw");
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 1);
    assert_eq!(ratios[0]["label"], "dir");
    assert_eq!(ratios[0]["baseline"], "raw");
    for figure in ["write_mb_per_s", "read_mb_per_s", "read_p99_ms"] {
        let (pointer, field) = match figure {
            "write_mb_per_s" => ("/write/mb_per_s", figure),
            "read_mb_per_s" => ("/read/mb_per_s", figure),
            _ => ("/read/latency_ms/p99", figure),
        };
        let expected = num(dir, pointer) / num(raw, pointer);
        let got = num(&ratios[0], &format!("/figures/{field}"));
        assert!(
            (got - expected).abs() < 1e-9 * expected,
            "{figure}: {got} vs {expected}"
        );
    }
    assert_chart(&chart, &["dir write", "dir read", "raw write", "raw read"]);
    assert_empty(&one);
    assert_empty(&two);

    let out = scratch.bench(&[
        path_arg(&one),
        "--compare",
        path_arg(&two),
        "--file-size",
        "8MiB",
        "--no-chart",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().any(|l| l.trim_end().ends_with("dir/raw")),
        "{table}"
    );
}

/// `--backend all`: the catalog mounted each way this machine offers (here the kernel's
/// FUSE, fuse-t through the fake helper and NFS through the fake mount_nfs and its
/// bridge), each benched, then the store's own directory: one report, fastest first,
/// and nothing left mounted or written.
#[test]
fn backend_all_benches_each_way_in_and_the_store() {
    if !require_fuse() {
        return;
    }
    let Some((fake_mount_nfs, bridge)) = common::fake_mount_nfs() else {
        return;
    };
    let scratch = Scratch::new();
    let catalog = scratch.catalog_of_one_clip();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(markbase()
        .env("XDG_DATA_HOME", scratch.data_home())
        .env(
            markbase_fuse::HELPER_ENV,
            root.join("markbase-fuse/tests/fake-go-nfsv4"),
        )
        .env(markbase_nfs::MOUNT_COMMAND_ENV, &fake_mount_nfs)
        .env("NFS_FUSE_BRIDGE", &bridge)
        .arg("--catalog")
        .arg(&catalog)
        .args([
            "bench",
            "--backend",
            "all",
            "--frame-size",
            "1MiB",
            "--file-size",
            "8MiB",
        ])
        .args(["--no-chart", "--json"]));
    assert!(out.status.success(), "bench: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = report["runs"].as_array().unwrap();
    let mut labels: Vec<&str> = runs.iter().map(|r| r["label"].as_str().unwrap()).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["fuse", "fuse-t", "nfs", "raw"], "{}", stderr(&out));
    for run in runs {
        assert_consistent(&report, run);
    }
    let slower = |r: &Value| num(r, "/write/mb_per_s").min(num(r, "/read/mb_per_s"));
    assert!(
        runs.windows(2)
            .all(|pair| slower(&pair[0]) >= slower(&pair[1]))
    );
    assert_eq!(report["baseline"], "raw");
    assert_eq!(report["ratios"].as_array().unwrap().len(), 3);

    // Every mount is off and its temporary mount point gone; nothing was left in the
    // catalog or the store.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for run in runs.iter().filter(|r| r["label"] != "raw") {
        let point = run["dir"].as_str().unwrap();
        assert!(!mounts.contains(point), "{point} is still mounted");
        assert!(!Path::new(point).exists(), "{point} is left behind");
    }
    let ls = run(markbase().arg("--catalog").arg(&catalog).args(["ls", "/"]));
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "clip.mov");
    let store = runs.iter().find(|r| r["label"] == "raw").unwrap()["dir"]
        .as_str()
        .unwrap();
    assert!(
        fs::read_dir(store).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("markbase-bench-")
        }),
        "a test file is left in the store"
    );

    // A way asked for by name that cannot mount fails, naming it.
    let out = run(markbase()
        .env(
            markbase_fuse::HELPER_ENV,
            scratch.dir.path().join("no-helper"),
        )
        .arg("--catalog")
        .arg(&catalog)
        .args(["bench", "--backend", "fuse-t", "--no-chart"]));
    assert_fails_with(&out, "no-helper");
}

#[test]
fn bad_directories_and_arguments_are_refused() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let nowhere = dir.join("nowhere");
    let out = scratch.bench(&[path_arg(&nowhere)]);
    assert_fails_with(&out, &format!("{}: no such directory", nowhere.display()));

    let file = dir.join("file");
    fs::write(&file, "x").unwrap();
    let out = scratch.bench(&[path_arg(&file)]);
    assert_fails_with(&out, &format!("{} is not a directory", file.display()));

    let dir_arg = path_arg(dir);
    for (args, needle) in [
        (&["--frame-size", "0"][..], "--frame-size"),
        (&["--frame-size", "lots"], "--frame-size"),
        (&["--target-fps", "0"], "--target-fps"),
        (&["--duration", "0s"], "--duration"),
        (&["--file-size", "1MiB"], "smaller than one frame"),
        (
            &["--frame-size", "2MB", "--file-size", "1MB"],
            "smaller than one frame",
        ),
        (&["--chart", "x.svg", "--no-chart"], "--no-chart"),
        (&["--backend", "all"], "cannot be used with"),
    ] {
        let out = scratch.bench(&[&[dir_arg][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let out = scratch.bench(&[dir_arg, "--format", "prores-9000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for name in [
        "prores-422-hq-4k",
        "prores-4444-4k",
        "prores-422-hq-8k",
        "uncompressed-10bit-4k",
        "uncompressed-10bit-8k",
    ] {
        assert!(stderr(&out).contains(name), "{}", stderr(&out));
    }
    // Nothing was written anywhere.
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["file"]);
}
