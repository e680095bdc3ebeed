//! The `markbase` binary, driven as a user would: real catalogs, real files, exit codes.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_fails_with, markbase, run};
use markbase_testkit::{RawCatalog, is_root, require_tool, write_pattern_file};

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// A library of a few files, imported into `dir/warren.sqlite`.
fn imported_library(dir: &Path) -> PathBuf {
    let media = dir.join("media");
    fs::create_dir_all(media.join("Day 1/Ton")).unwrap();
    write_pattern_file(&media.join("Day 1/clip.mov"), 3 << 20, 7).unwrap();
    write_pattern_file(&media.join("Day 1/Ton/täglich ☀.wav"), 1000, 8).unwrap();
    fs::write(media.join("notes.txt"), "take 3 is the one\n").unwrap();
    let catalog = dir.join("warren.sqlite");
    let out = run(markbase()
        .arg("import")
        .arg(&media)
        .arg("--catalog")
        .arg(&catalog));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("2 dirs and 3 files added"),
        "{}",
        stdout(&out)
    );
    catalog
}

#[test]
fn import_then_browse_and_read_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());

    let ls = run(markbase().args(["ls", "/"]).arg("--catalog").arg(&catalog));
    assert_eq!(stdout(&ls), "Day 1/\nnotes.txt\n");

    let long = run(markbase()
        .arg("--catalog")
        .arg(&catalog)
        .args(["ls", "-l", "/Day 1"]));
    let text = stdout(&long);
    assert!(text.contains(&(3u64 << 20).to_string()), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('d') && l.ends_with("Ton/")),
        "{text}"
    );

    let cat = run(markbase()
        .args(["cat", "/Day 1/clip.mov", "--catalog"])
        .arg(&catalog));
    assert!(cat.status.success());
    assert_eq!(
        cat.stdout,
        fs::read(dir.path().join("media/Day 1/clip.mov")).unwrap()
    );

    let stat = run(markbase()
        .args(["stat", "/Day 1/Ton/täglich ☀.wav"])
        .env("MARKBASE_CATALOG", &catalog));
    let text = stdout(&stat);
    assert!(text.contains("size: 1000"), "{text}");
    assert!(text.contains("(file)"), "{text}");

    let resolve = run(markbase()
        .args(["resolve", "/notes.txt"])
        .arg("--catalog")
        .arg(&catalog));
    let text = stdout(&resolve);
    assert!(text.contains("served by alias #1"), "{text}");
    assert!(text.contains(&dir.path().join("media/notes.txt").display().to_string()));
}

#[test]
fn resolve_names_every_skipped_alias() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());
    let backup = dir.path().join("backup");
    fs::create_dir_all(&backup).unwrap();
    fs::copy(dir.path().join("media/notes.txt"), backup.join("notes.txt")).unwrap();
    let again = run(markbase()
        .arg("import")
        .arg(&backup)
        .arg("--catalog")
        .arg(&catalog));
    assert!(
        stdout(&again).contains("1 files updated"),
        "{}",
        stdout(&again)
    );
    fs::remove_file(dir.path().join("media/notes.txt")).unwrap();

    let resolve = run(markbase()
        .args(["resolve", "/notes.txt"])
        .arg("--catalog")
        .arg(&catalog));
    assert!(resolve.status.success());
    let text = stdout(&resolve);
    assert!(text.contains("skipped alias #1"), "{text}");
    assert!(text.contains("not found"), "{text}");
    assert!(text.contains("served by alias #2"), "{text}");

    fs::remove_file(backup.join("notes.txt")).unwrap();
    let broken = run(markbase()
        .args(["resolve", "/notes.txt"])
        .arg("--catalog")
        .arg(&catalog));
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).contains("alias #2"), "{}", stdout(&broken));
    let cat = run(markbase()
        .args(["cat", "/notes.txt"])
        .arg("--catalog")
        .arg(&catalog));
    assert_fails_with(&cat, "no alias of node");
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());

    let missing = run(markbase()
        .args(["ls", "/"])
        .current_dir(dir.path().join("media")));
    assert_fails_with(&missing, "catalog warren.sqlite does not exist");

    let junk = dir.path().join("junk.sqlite");
    fs::write(&junk, "not a database at all, just text").unwrap();
    assert_fails_with(
        &run(markbase().args(["ls", "--catalog"]).arg(&junk)),
        "does not start with the SQLite header",
    );

    let in_catalog = |args: &[&str]| run(markbase().args(args).arg("--catalog").arg(&catalog));
    assert_fails_with(
        &in_catalog(&["ls", "/Day 1/nope"]),
        "no such file or directory: /Day 1/nope",
    );
    assert_fails_with(&in_catalog(&["cat", "/Day 1"]), "is a directory");
    assert_fails_with(
        &in_catalog(&["stat", "/notes.txt/x"]),
        "not a directory: /notes.txt",
    );
    assert_fails_with(
        &in_catalog(&["ls", "/Day 1/../.."]),
        "invalid path \"/Day 1/../..\": component \"..\": '.' and '..' are not names",
    );
    assert_fails_with(
        &in_catalog(&["import", "/definitely/not/here"]),
        "/definitely/not/here",
    );

    let usage = run(markbase().args(["frobnicate"]));
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn unreadable_catalog_is_named() {
    let Some(setpriv) = require_tool("setpriv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&catalog, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = if is_root() {
        let mut cmd = Command::new(setpriv);
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_markbase"),
        ]);
        cmd
    } else {
        markbase()
    };
    let out = run(cmd.args(["ls", "/", "--catalog"]).arg(&catalog));
    assert_fails_with(&out, "cannot be read");
    assert_fails_with(&out, &catalog.display().to_string());
}

/// The commands the demo suggests after "Next, try:", each run as a shell runs it
/// (with `path` as PATH): each must succeed; their outputs.
fn run_hints(said: &str, path: &std::ffi::OsStr) -> Vec<String> {
    let hints: Vec<&str> = said
        .lines()
        .skip_while(|line| *line != "Next, try:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert_eq!(hints.len(), 3, "{said}");
    hints
        .iter()
        .map(|hint| {
            let out = run(Command::new("/bin/sh")
                .args(["-c", hint])
                .env_clear()
                .env("PATH", path));
            assert!(out.status.success(), "{hint}: {}", common::stderr(&out));
            stdout(&out)
        })
        .collect()
}

#[test]
fn demo_builds_a_library_with_a_stale_alias_and_keeps_it_as_left() {
    use markbase_vfs::{NodeId, Vfs, VfsConfig};
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let exe = Path::new(env!("CARGO_BIN_EXE_markbase"));
    // Without markbase on PATH, the hints name the binary itself.
    let bare = std::ffi::OsString::from("/usr/bin:/bin");
    let demo_run = |path: &std::ffi::OsStr| {
        let out = run(markbase()
            .args(["demo", "--quick", "--no-mount", "--dir"])
            .arg(&demo)
            .env("PATH", path));
        assert!(out.status.success(), "{}", common::stderr(&out));
        stdout(&out)
    };
    let text = demo_run(&bare);
    assert!(text.contains("Überblick 2026/"), "{text}");
    assert!(text.contains("インタビュー.wav"), "{text}");
    assert!(text.contains("skipped alias #1"), "{text}");
    assert!(text.contains("not found"), "{text}");
    assert!(text.contains("served by alias #2"), "{text}");
    assert!(
        text.contains(&format!("  {} ls -l /Projects --catalog ", exe.display())),
        "{text}"
    );
    assert!(text.contains("markbase is not on your PATH"), "{text}");
    let outputs = run_hints(&text, &bare);
    assert!(outputs[0].contains("Überblick 2026/"), "{outputs:?}");
    assert!(
        outputs[1].starts_with("MarkBase demo library"),
        "{outputs:?}"
    );
    assert!(outputs[2].contains("(file)"), "{outputs:?}");
    let names: Vec<String> = fs::read_dir(&demo)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|name| name.contains("partial")),
        "{names:?}"
    );

    // The catalog it made is a real one: every listed file reads completely.
    let catalog = demo.join("warren.sqlite");
    let cat = run(markbase()
        .args([
            "cat",
            "/Projects/Überblick 2026/A001_C003_0412XY.mov",
            "--catalog",
        ])
        .arg(&catalog));
    assert!(cat.status.success());
    assert_eq!(cat.stdout.len(), 4 << 20);
    assert_eq!(&cat.stdout[4..8], b"ftyp");

    // The user copies a file in (its bytes go to the store) and deletes another.
    let vfs = Vfs::open(VfsConfig::new(&catalog)).unwrap();
    let notes = vfs.lookup_path("/Notes").unwrap().id;
    let (_, handle) = vfs.create(notes, "copied in.txt", true).unwrap();
    vfs.write_at(handle, 0, b"the user's own notes").unwrap();
    vfs.release(handle).unwrap();
    vfs.unlink(NodeId::ROOT, "README.txt").unwrap();
    drop(vfs);

    // A rerun, with markbase on PATH: the library is as the user left it.
    let mut path = exe.parent().unwrap().as_os_str().to_owned();
    path.push(":/usr/bin:/bin");
    let text = demo_run(&path);
    assert!(text.contains("as you left it"), "{text}");
    assert!(text.contains("copied in.txt"), "{text}");
    assert!(!text.contains("README.txt\n"), "{text}");
    assert!(text.contains("served by alias #2"), "{text}");
    assert!(
        text.contains("  markbase ls -l /Projects --catalog "),
        "{text}"
    );
    assert!(!text.contains("not on your PATH"), "{text}");
    let copied = run(markbase()
        .args(["cat", "/Notes/copied in.txt", "--catalog"])
        .arg(&catalog));
    assert_eq!(copied.stdout, b"the user's own notes");
    let fsck = run(markbase().args(["fsck", "--catalog"]).arg(&catalog));
    assert!(
        fsck.status.success(),
        "{}{}",
        stdout(&fsck),
        common::stderr(&fsck)
    );
    assert!(stdout(&fsck).ends_with(": clean\n"), "{}", stdout(&fsck));
    // The README the user deleted stays deleted: its hint now fails, as it should.
    let hint = run(markbase()
        .args(["cat", "/README.txt", "--catalog"])
        .arg(&catalog));
    assert_fails_with(&hint, "/README.txt");

    // Even without the clip it tours, the library is kept.
    let vfs = Vfs::open(VfsConfig::new(&catalog)).unwrap();
    let clip_dir = vfs.lookup_path("/Projects/Überblick 2026").unwrap().id;
    vfs.unlink(clip_dir, "A001_C003_0412XY.mov").unwrap();
    drop(vfs);
    let text = demo_run(&path);
    assert!(text.contains("is no longer in the library"), "{text}");
    assert!(text.contains("copied in.txt"), "{text}");

    let foreign = dir.path().join("foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    let refused = run(markbase()
        .args(["demo", "--quick", "--no-mount", "--dir"])
        .arg(&foreign));
    assert_fails_with(&refused, "was not made by `markbase demo`");
    assert_eq!(
        fs::read_to_string(foreign.join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn fsck_lists_and_repairs_what_a_crash_can_leave() {
    use markbase_vfs::{NodeId, Vfs, VfsConfig};
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());
    // A file created through the filesystem, whose store bytes then vanish.
    let vfs = Vfs::open(VfsConfig::new(&catalog)).unwrap();
    let (attr, handle) = vfs.create(NodeId::ROOT, "rendered.mov", true).unwrap();
    vfs.write_at(handle, 0, b"frames").unwrap();
    vfs.release(handle).unwrap();
    let store_file = vfs.resolve(attr.id).unwrap().outcome.unwrap().path.clone();
    drop(vfs);
    fs::remove_file(&store_file).unwrap();
    // A store file no node names, and an original deleted outside our control.
    let orphan = dir.path().join("warren-store/left-behind.mov");
    fs::write(&orphan, b"orphan bytes").unwrap();
    fs::remove_file(dir.path().join("media/notes.txt")).unwrap();

    let check = run(markbase().arg("fsck").arg("--catalog").arg(&catalog));
    let text = stdout(&check);
    assert!(
        text.contains("/rendered.mov") && text.contains("(store)"),
        "{text}"
    );
    assert!(
        text.contains("/notes.txt") && text.contains("outside the store"),
        "{text}"
    );
    assert!(
        text.contains("orphan store file") && text.contains("left-behind.mov"),
        "{text}"
    );
    assert_fails_with(&check, "3 problem(s) found");

    let repair = run(markbase()
        .args(["fsck", "--repair", "--orphans", "adopt", "--catalog"])
        .arg(&catalog));
    let text = stdout(&repair);
    assert!(text.contains("removed node"), "{text}");
    assert!(text.contains("in /lost+found"), "{text}");
    // The node whose original lives outside the store is never removed.
    assert_fails_with(&repair, "1 problem(s) remain");
    let adopted = run(markbase()
        .args(["cat", "/lost+found/left-behind.mov", "--catalog"])
        .arg(&catalog));
    assert_eq!(adopted.stdout, b"orphan bytes");
    let ls = run(markbase().args(["ls", "/", "--catalog"]).arg(&catalog));
    assert!(!stdout(&ls).contains("rendered.mov"), "{}", stdout(&ls));
}

#[test]
fn fsck_says_what_is_wrong_with_rows_other_programs_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::create_dir(base.join("a-dir")).unwrap();
    let fifo = std::ffi::CString::new(base.join("a-fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fs::write(base.join("fine.txt"), "fine").unwrap();
    let catalog = base.join("warren.sqlite");
    let raw = RawCatalog::create(&catalog, markbase_vfs::schema::SCHEMA_SQL).unwrap();
    raw.insert(2, Some(1), "not-json.mov", "file", 0, "[oops")
        .unwrap();
    raw.file(3, 1, "specials.mov", &["a-fifo", "a-dir"])
        .unwrap();
    raw.file(4, 1, "fine.txt", &["fine.txt"]).unwrap();
    raw.conn
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (10, 11, 'x', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (11, 10, 'y', 'dir');
             INSERT INTO nodes (id, parent_id, name, kind) VALUES (30, 99, 'orphaned', 'dir');",
        )
        .unwrap();
    drop(raw);

    for args in [&["fsck"][..], &["fsck", "--repair", "--orphans", "remove"]] {
        let check = run(markbase().args(args).arg("--catalog").arg(&catalog));
        let lines: Vec<String> = stdout(&check).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 4, "{args:?}: {lines:#?}");
        assert!(
            lines[0].starts_with(
                "dangling node 2 /not-json.mov: no alias can serve it: \
                 aliases_json is not valid JSON ("
            ),
            "{lines:#?}"
        );
        assert_eq!(
            lines[1..],
            [
                "dangling node 3 /specials.mov: no alias can serve it: \
                 alias #1 \"a-fifo\": is a FIFO, not a regular file; \
                 alias #2 \"a-dir\": is a directory",
                "unreachable nodes 10 -> 11 -> 10: a parent_id cycle (each node's parent is the next)",
                "unreachable node 30: its parent_id 99 names no node",
            ]
        );
        let expected = if args.len() == 1 {
            "4 problem(s) found, none of which --repair fixes"
        } else {
            "4 problem(s) remain"
        };
        assert_fails_with(&check, expected);
    }
}

#[test]
fn two_siblings_of_one_name_are_served_and_warned_about_alike_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("low"), "lowest id").unwrap();
    fs::write(dir.path().join("high"), "highest id").unwrap();
    let catalog = dir.path().join("warren.sqlite");
    let schema = markbase_vfs::schema::SCHEMA_SQL.replace(",\n  UNIQUE (parent_id, name)", "");
    let raw = RawCatalog::create(&catalog, &schema).unwrap();
    raw.file(9, 1, "clip.mov", &["high"]).unwrap();
    raw.file(4, 1, "clip.mov", &["low"]).unwrap();
    drop(raw);
    let warning = "directory 1 has two children named \"clip.mov\": serving node 4, hiding node 9";

    let ls = run(markbase()
        .args(["ls", "-l", "/", "--catalog"])
        .arg(&catalog));
    assert!(ls.status.success(), "{}", common::stderr(&ls));
    let text = stdout(&ls);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("-         4 "), "{text}");
    let said = common::stderr(&ls);
    assert_eq!(said.matches(warning).count(), 1, "{said}");

    let cat = run(markbase()
        .args(["cat", "/clip.mov", "--catalog"])
        .arg(&catalog));
    assert_eq!(cat.stdout, b"lowest id");
    let said = common::stderr(&cat);
    assert_eq!(said.matches(warning).count(), 1, "{said}");
}

#[test]
fn help_shows_every_command_and_catalog_only_where_it_means_something() {
    let help = stdout(&run(markbase().arg("--help")));
    let summary = help.lines().next().unwrap();
    for command in ["import", "browse", "check", "mount", "serve", "demo"] {
        assert!(summary.contains(command), "{summary}");
    }
    for command in ["ls", "import", "fsck", "mount", "serve"] {
        let help = stdout(&run(markbase().args([command, "--help"])));
        assert!(help.contains("--catalog <PATH>"), "{command}: {help}");
    }
    for (command, rest) in [("demo", "--no-mount"), ("umount", "/mnt")] {
        let help = stdout(&run(markbase().args([command, "--help"])));
        assert!(!help.contains("--catalog"), "{command}: {help}");
        for args in [
            &[command, "--catalog", "x.sqlite", rest][..],
            &["--catalog", "x.sqlite", command, rest],
        ] {
            let out = run(markbase().args(args));
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let said = common::stderr(&out);
            assert!(
                said.contains(&format!(
                    "`markbase {command}` reads no catalog, so --catalog has no meaning here"
                )),
                "{said}"
            );
        }
    }
    // The variable, set for the other commands, does not get in the way.
    let out = run(markbase()
        .args(["umount", "/no/such/mount/point"])
        .env("MARKBASE_CATALOG", "x.sqlite"));
    assert_fails_with(&out, "/no/such/mount/point");
}

/// `markbase cat` writes every byte, in order, to whatever its output is: a pipe (the
/// kernel copies), a file, a file opened for appending, with several files in a row.
#[test]
fn cat_writes_every_byte_to_a_pipe_a_file_and_an_appended_file() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = imported_library(dir.path());
    let clip = fs::read(dir.path().join("media/Day 1/clip.mov")).unwrap();
    let notes = fs::read(dir.path().join("media/notes.txt")).unwrap();
    let both: Vec<u8> = [clip.as_slice(), notes.as_slice()].concat();
    let cat = |out: std::process::Stdio| {
        markbase()
            .arg("--catalog")
            .arg(&catalog)
            .args(["cat", "/Day 1/clip.mov", "/notes.txt"])
            .stdout(out)
            .status()
            .unwrap()
    };

    let piped = run(markbase().arg("--catalog").arg(&catalog).args([
        "cat",
        "/Day 1/clip.mov",
        "/notes.txt",
    ]));
    assert!(piped.status.success());
    assert!(piped.stdout == both, "through a pipe");

    let file = dir.path().join("out.bin");
    assert!(cat(fs::File::create(&file).unwrap().into()).success());
    assert!(fs::read(&file).unwrap() == both, "into a file");

    let appended = dir.path().join("appended.bin");
    fs::write(&appended, b"before\n").unwrap();
    let out = fs::OpenOptions::new().append(true).open(&appended).unwrap();
    assert!(cat(out.into()).success());
    assert!(
        fs::read(&appended).unwrap() == [b"before\n".as_slice(), &both].concat(),
        "appended"
    );
}
