//! The fuse-t helper handshake ([`Mount::with_helper`]), tested on Linux with a fake
//! helper (`tests/fake-go-nfsv4`) that speaks go-nfsv4's protocol: socket pairs in
//! `_FUSE_COMMFD`/`_FUSE_MONFD`, `mount` on the monitor socket answered by a 4-byte
//! status, `unmount` later. In `relay` mode it mounts a real kernel FUSE filesystem
//! and carries its requests to markbase over the comm socket, as go-nfsv4 carries NFS
//! calls; its other modes fail in each way a helper can.
//!
//! Every scenario must end in a verified mount or a clear error, and leave nothing
//! behind: no helper process (reaped, not a zombie), no mount, no markbase thread.
//! Scenarios run one at a time (one lock) so that the thread check sees only theirs.
//!
//! Needs root, python3 and /dev/fuse; skipped without them, except with
//! `MARKBASE_REQUIRE_ALL=1`.

#![cfg(target_os = "linux")]

use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use markbase_fuse::{
    HelperConfig, HelperError, INSTALL_LOCATIONS, Mount, MountError, MountOptions, locate_helper,
    mount_at, user_helper_location,
};
use markbase_testkit::{pattern_byte, require_fuse, require_tool, write_pattern_file};
use markbase_vfs::{Vfs, VfsConfig, import::ImportOptions};
use tempfile::TempDir;

/// The fake helper.
const FAKE_HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake-go-nfsv4");

/// The volume name passed to the helper.
const VOLUME: &str = "markbase-test";

/// Thread names (as `/proc` shows them, at most 15 bytes) this crate starts: request
/// threads, the helper's output readers, the verifying `stat`.
const OUR_THREADS: &[&str] = &["markbase-fuse-", "markbase-helper", "markbase-probe"];

/// Request threads per mount.
const THREADS: usize = 2;

/// A file read concurrently in 1 MiB direct reads, and its size.
const BIG_FILE: &str = "clip.mov";
const BIG_SIZE: u64 = 8 << 20;

/// One scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Whether the fake helper can run here: it mounts FUSE (root, /dev/fuse) and is Python.
fn fake_helper_can_run() -> bool {
    require_fuse() && require_tool("python3").is_some()
}

/// A catalog of a small imported tree, an empty mount point, and the fake helper's
/// pid file, all in one temporary directory.
struct Scenario {
    dir: TempDir,
    /// The imported tree.
    source: PathBuf,
    /// Canonical.
    mountpoint: PathBuf,
    pidfile: PathBuf,
    vfs: Arc<Vfs>,
    _serial: MutexGuard<'static, ()>,
}

impl Scenario {
    fn new() -> Self {
        Self::with_config(|_| {})
    }

    fn with_config(adjust: impl FnOnce(&mut VfsConfig)) -> Self {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("source");
        fs::create_dir_all(source.join("music/live")).unwrap();
        fs::create_dir_all(source.join("empty")).unwrap();
        fs::write(source.join("readme.txt"), b"hello through fuse-t\n").unwrap();
        fs::write(source.join("music/live/nothing.txt"), b"").unwrap();
        write_pattern_file(&source.join("music/track.flac"), 300_001, 7).unwrap();
        write_pattern_file(&source.join("music/live/set.mp3"), 70_000, 8).unwrap();
        // Read by several threads at once in 1 MiB requests: concurrent large replies.
        write_pattern_file(&source.join(BIG_FILE), BIG_SIZE, 9).unwrap();
        let catalog = dir.path().join("warren.sqlite");
        let stats = markbase_vfs::import::import(&source, &catalog, &ImportOptions::default())
            .expect("import the test tree");
        assert!(
            stats.skipped.is_empty(),
            "import skipped {:?}",
            stats.skipped
        );
        let mut config = VfsConfig::new(&catalog);
        adjust(&mut config);
        let vfs = Arc::new(Vfs::open(config).expect("open the catalog"));
        let mountpoint = dir.path().join("mnt");
        fs::create_dir(&mountpoint).unwrap();
        let mountpoint = mountpoint.canonicalize().unwrap();
        let pidfile = dir.path().join("helper.pid");
        Self {
            dir,
            source,
            mountpoint,
            pidfile,
            vfs,
            _serial: serial,
        }
    }

    /// A script that runs the fake helper in `mode`, with `env` added.
    fn fake_helper(&self, mode: &str, env: &[(&str, &str)]) -> PathBuf {
        let mut script = format!(
            "#!/bin/sh\nexport FAKE_HELPER_MODE='{mode}'\nexport FAKE_HELPER_PIDFILE='{}'\n\
             export FAKE_HELPER_LOG='{}'\n",
            self.pidfile.display(),
            self.log().display()
        );
        for (name, value) in env {
            script.push_str(&format!("export {name}='{value}'\n"));
        }
        script.push_str(&format!("exec '{FAKE_HELPER}' \"$@\"\n"));
        let path = self.dir.path().join(format!("go-nfsv4-{mode}"));
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Everything the fake helper printed.
    fn log(&self) -> PathBuf {
        self.dir.path().join("helper.log")
    }

    /// The output files markbase gave the helper (`markbase-go-nfsv4-*.log`).
    fn output_files(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("markbase-go-nfsv4-"))
            })
            .collect()
    }

    /// Mount options for `helper`.
    fn options(&self, helper: &Path, status_timeout: Duration) -> MountOptions {
        MountOptions {
            threads: NonZeroUsize::new(THREADS).unwrap(),
            helper: HelperConfig {
                path: Some(helper.to_path_buf()),
                volume_name: VOLUME.into(),
                status_timeout,
                verify_timeout: Duration::from_secs(5),
                browse: true,
                log_dir: self.dir.path().to_path_buf(),
                backend: None,
            },
            ..MountOptions::default()
        }
    }

    /// Mounts through `helper`; the result and how long it took.
    fn mount(
        &self,
        helper: &Path,
        status_timeout: Duration,
    ) -> (Result<Mount, MountError>, Duration) {
        let started = Instant::now();
        let result = Mount::with_helper(
            Arc::clone(&self.vfs),
            &self.mountpoint,
            &self.options(helper, status_timeout),
        );
        (result, started.elapsed())
    }

    /// Mounts through the fake helper in `mode`, which must fail.
    fn mount_fails(&self, mode: &str, env: &[(&str, &str)]) -> (HelperError, PathBuf) {
        let helper = self.fake_helper(mode, env);
        let (result, took) = self.mount(&helper, Duration::from_secs(10));
        let err = helper_error(result);
        assert!(
            took < Duration::from_secs(10),
            "{mode}: the failed mount took {took:?}"
        );
        (err, helper)
    }

    /// The fake helper's pid, once it has started.
    fn helper_pid(&self) -> Option<libc::pid_t> {
        let text = fs::read_to_string(&self.pidfile).ok()?;
        Some(text.trim().parse().expect("a pid in the pid file"))
    }

    /// Nothing left behind: the helper is gone and reaped, nothing is mounted on the
    /// mount point (which is the empty directory it was), no markbase thread runs.
    fn assert_clean(&self) {
        if let Some(pid) = self.helper_pid() {
            assert!(
                !process_exists(pid),
                "the fake helper (pid {pid}) is still there (running or a zombie)"
            );
        }
        let mounted = mount_at(&self.mountpoint).expect("read the mount table");
        assert_eq!(
            mounted,
            None,
            "still mounted on {}",
            self.mountpoint.display()
        );
        // Other test processes may have mounts of their own: only this scenario's count.
        let dir = self.dir.path().canonicalize().unwrap();
        let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in table.lines() {
            assert!(
                !line.contains(&format!(" {}/", dir.display())),
                "a mount is left in the scenario's directory: {line}"
            );
        }
        let parent = fs::metadata(self.mountpoint.parent().unwrap()).unwrap();
        let point = fs::metadata(&self.mountpoint).unwrap();
        assert_eq!(
            point.dev(),
            parent.dev(),
            "the mount point is on another device"
        );
        assert_eq!(fs::read_dir(&self.mountpoint).unwrap().count(), 0);
        assert_threads_end();
    }
}

impl Drop for Scenario {
    /// After a failed assertion: the helper's log is shown, and no helper and no
    /// mount survive the test.
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(log) = fs::read_to_string(self.log())
        {
            eprintln!("the fake helper's log:\n{log}");
        }
        if let Some(pid) = self.helper_pid() {
            // SAFETY: kill has no memory-safety requirements.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        while let Ok(Some(_)) = mount_at(&self.mountpoint) {
            if markbase_fuse::unmount_path(&self.mountpoint, true).is_err() {
                break;
            }
        }
    }
}

/// Whether `pid` exists, zombies included.
fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks; no memory-safety requirements.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    let err = io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ESRCH),
        "kill({pid}, 0): {err}"
    );
    false
}

/// This process's threads started by markbase-fuse.
fn our_threads() -> Vec<String> {
    let mut names = Vec::new();
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(comm) = fs::read_to_string(task.path().join("comm")) {
            let comm = comm.trim_end();
            if OUR_THREADS.iter().any(|prefix| comm.starts_with(prefix)) {
                names.push(comm.to_string());
            }
        }
    }
    names.sort();
    names
}

/// Every markbase thread ends (within a moment: an OS thread outlives its work briefly).
#[track_caller]
fn assert_threads_end() {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = our_threads();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "threads left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The helper error of a mount that must have failed with one.
#[track_caller]
fn helper_error(result: Result<Mount, MountError>) -> HelperError {
    match result {
        Err(MountError::Helper(err)) => err,
        Err(other) => panic!("expected a helper error, got {other:?} ({other})"),
        Ok(mount) => {
            let at = mount.mountpoint().display().to_string();
            drop(mount);
            panic!("expected a helper error, got a verified mount on {at}")
        }
    }
}

/// Asserts that `lines` has a line containing `part`.
#[track_caller]
fn assert_said(lines: &[String], part: &str) {
    assert!(
        lines.iter().any(|line| line.contains(part)),
        "the helper's output {lines:#?} lacks {part:?}"
    );
}

/// Asserts that `err`'s message contains each of `parts`.
#[track_caller]
fn assert_message(err: &HelperError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} lacks {part:?} ({err:?})"
        );
    }
}

/// Every file and directory below `source` reads the same below `mounted`.
fn assert_same_tree(source: &Path, mounted: &Path) -> usize {
    let names = |dir: &Path| {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("list {}: {err}", dir.display()))
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(mounted),
        names(source),
        "listing of {}",
        mounted.display()
    );
    let mut files = 0;
    for name in names(source) {
        let (from, seen) = (source.join(&name), mounted.join(&name));
        if from.is_dir() {
            assert!(fs::metadata(&seen).unwrap().is_dir(), "{}", seen.display());
            files += assert_same_tree(&from, &seen);
        } else {
            let want = fs::read(&from).unwrap();
            let got =
                fs::read(&seen).unwrap_or_else(|err| panic!("read {}: {err}", seen.display()));
            assert!(
                got == want,
                "{}: {} bytes read, {} expected, or they differ",
                seen.display(),
                got.len(),
                want.len()
            );
            assert_eq!(fs::metadata(&seen).unwrap().len(), want.len() as u64);
            files += 1;
        }
    }
    files
}

/// The success case: the helper mounts a filesystem that carries markbase's answers;
/// the mount is verified, serves the catalog, and unmounting ends everything.
#[test]
fn relay_mount_is_verified_serves_the_catalog_and_unmounts() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::new();
    let helper = scenario.fake_helper("relay", &[]);
    let (result, took) = scenario.mount(&helper, Duration::from_secs(10));
    let mount = result.unwrap_or_else(|err| panic!("mount through the fake helper: {err}"));
    assert!(took < Duration::from_secs(10), "mounting took {took:?}");
    assert_eq!(mount.mountpoint(), scenario.mountpoint);
    let pid = scenario.helper_pid().expect("the helper wrote its pid");
    assert!(process_exists(pid), "the helper exited while mounted");
    // In a session of its own: a Ctrl-C of our terminal (our process group) does not
    // reach it, and it stays until it is told to unmount.
    // SAFETY: getsid, getpgid and getpgrp have no memory-safety requirements.
    let (session, group, ours) =
        unsafe { (libc::getsid(pid), libc::getpgid(pid), libc::getpgrp()) };
    assert_eq!(session, pid, "the helper leads its own session");
    assert_ne!(group, ours, "the helper is in our process group");

    // Mounted by the helper, and every FUSE request of it answered by markbase.
    let entry = mount_at(&scenario.mountpoint).unwrap().expect("mounted");
    assert_eq!(entry.fstype, "fuse.fakehelper");
    assert_eq!(entry.source, "fake-go-nfsv4");
    assert_eq!(assert_same_tree(&scenario.source, &scenario.mountpoint), 5);
    read_concurrently_in_large_requests(&scenario.mountpoint.join(BIG_FILE));
    assert!(
        !mount.wait_ended(Duration::ZERO),
        "the mount ended by itself"
    );
    let threads = our_threads();
    assert_eq!(
        threads
            .iter()
            .filter(|name| name.starts_with("markbase-fuse-"))
            .count(),
        // Each request thread has a thread sending its replies.
        2 * THREADS,
        "request threads while mounted: {threads:?}"
    );

    assert_eq!(
        scenario.output_files().len(),
        1,
        "the helper's output goes to a file"
    );
    let started = Instant::now();
    mount.unmount().expect("unmount");
    let took = started.elapsed();
    assert!(
        scenario.output_files().is_empty(),
        "a mount that ended well leaves no output file"
    );
    // Through the helper: it unmounts and exits on request, nothing needs killing.
    assert!(
        took < Duration::from_millis(2500),
        "unmounting took {took:?}"
    );
    scenario.assert_clean();
}

/// Reads `path` (made by `write_pattern_file` with seed 9) from 4 threads at once,
/// each in 1 MiB `O_DIRECT` reads, so that 1 MiB replies travel the socket
/// concurrently, and checks every byte.
fn read_concurrently_in_large_requests(path: &Path) {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const CHUNK: usize = 1 << 20;
    std::thread::scope(|scope| {
        for reader in 0..4u64 {
            scope.spawn(move || {
                let file = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .expect("open with O_DIRECT");
                let mut buf = vec![0u8; CHUNK];
                // Three passes each: enough concurrent replies that interleaving shows.
                for round in 0..3 * (BIG_SIZE / CHUNK as u64) {
                    // Each reader walks the file from another start.
                    let offset = ((round + reader * 2) % (BIG_SIZE / CHUNK as u64)) * CHUNK as u64;
                    let n = file.read_at(&mut buf, offset).expect("direct read");
                    assert_eq!(n, CHUNK, "short read at {offset}");
                    for (i, byte) in buf.iter().enumerate() {
                        let at = offset + i as u64;
                        assert_eq!(
                            *byte,
                            pattern_byte(9, at),
                            "byte {at} of {}",
                            path.display()
                        );
                    }
                }
            });
        }
    });
}

/// A read-only catalog is mounted read-only: the helper gets `-r`.
#[test]
fn read_only_catalog_passes_r_to_the_helper() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::with_config(|config| config.read_only = true);
    let helper = scenario.fake_helper("relay", &[]);
    let (result, _) = scenario.mount(&helper, Duration::from_secs(10));
    let mount = result.unwrap_or_else(|err| panic!("mount through the fake helper: {err}"));
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = scenario.mountpoint.to_str().unwrap();
    let line = table
        .lines()
        .find(|line| line.split(' ').nth(4) == Some(point))
        .expect("the mount in mountinfo");
    let options = line.split(' ').nth(5).unwrap();
    assert!(
        options.split(',').any(|option| option == "ro"),
        "mount options {options}"
    );
    assert_eq!(
        fs::read(scenario.mountpoint.join("readme.txt")).unwrap(),
        b"hello through fuse-t\n"
    );
    let err = fs::write(scenario.mountpoint.join("new.txt"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    mount.unmount().expect("unmount");
    scenario.assert_clean();
}

/// Mounts through a fake helper that `env` makes require one flag, with `options` set
/// as `ask` says (`what` names the mount in a failure), then mounts without asking: the
/// fake must refuse a command line without the flag, as libfuse sends it only when
/// asked.
fn assert_flag_passed_only_when_asked(
    env: (&str, &str),
    ask: impl FnOnce(&mut MountOptions),
    what: &str,
) {
    let scenario = Scenario::new();
    let helper = scenario.fake_helper("relay", &[env]);
    let mut options = scenario.options(&helper, Duration::from_secs(10));
    ask(&mut options);
    let mount = Mount::with_helper(Arc::clone(&scenario.vfs), &scenario.mountpoint, &options)
        .unwrap_or_else(|err| panic!("{what} through the fake helper: {err}"));
    mount.unmount().expect("unmount");

    // Not asked for, given to a helper that expects the flag: it is missing.
    let (result, _) = scenario.mount(&helper, Duration::from_secs(10));
    let err = helper_error(result);
    assert_message(&err, &["exited with code 64"]);
    let said = fs::read_to_string(scenario.log()).unwrap();
    assert!(said.contains("where libfuse gives"), "{said}");
    scenario.assert_clean();
}

/// A volume hidden from Finder's sidebar gets `--dontbrowse=true`, as libfuse sends it
/// for `-o nobrowse`; a shown one (the default) does not, or the fake refuses it.
#[test]
fn dontbrowse_is_passed_only_for_a_hidden_volume() {
    if !fake_helper_can_run() {
        return;
    }
    assert_flag_passed_only_when_asked(
        ("FAKE_HELPER_NOBROWSE", "1"),
        |options| options.helper.browse = false,
        "a hidden volume",
    );
}

/// fuse-t's `--backend` is passed, after the other flags as libfuse passes it for
/// `-o backend=smb`, only when asked for; the fake refuses a command line without it.
#[test]
fn the_fuse_t_backend_is_passed_only_when_asked_for() {
    if !fake_helper_can_run() {
        return;
    }
    assert_flag_passed_only_when_asked(
        ("FAKE_HELPER_BACKEND", "smb"),
        |options| options.helper.backend = Some(markbase_fuse::FuseTBackend::Smb),
        "an SMB-backed mount",
    );
}

/// The helper dies while mounted: the mount reports its end, and unmounting clears
/// the dead mount.
#[test]
fn helper_death_ends_the_mount() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::new();
    let helper = scenario.fake_helper("relay", &[]);
    let (result, _) = scenario.mount(&helper, Duration::from_secs(10));
    let mount = result.unwrap_or_else(|err| panic!("mount through the fake helper: {err}"));
    let pid = scenario.helper_pid().expect("the helper wrote its pid");
    // SAFETY: kill has no memory-safety requirements.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(
        mount.wait_ended(Duration::from_secs(5)),
        "the request threads still run 5 s after the helper was killed"
    );
    mount.unmount().expect("unmount after the helper died");
    scenario.assert_clean();
}

/// Mounts through the fake helper in `mode`, which reports success: the mount must be
/// refused as not visible, for a reason containing `why`, and leave nothing behind.
fn assert_not_visible(mode: &str, why: &str) {
    let scenario = Scenario::new();
    let (err, helper) = scenario.mount_fails(mode, &[]);
    let HelperError::NotVisible {
        path,
        mountpoint,
        reason,
        output,
    } = &err
    else {
        panic!("expected NotVisible, got {err:?}");
    };
    assert_eq!(path, &helper);
    assert_eq!(mountpoint, &scenario.mountpoint);
    assert!(reason.contains(why), "{reason}");
    assert_said(output, &format!("mode {mode}"));
    assert_message(
        &err,
        &[
            "reported success, but",
            &scenario.mountpoint.display().to_string(),
            "is not mounted",
            reason,
        ],
    );
    scenario.assert_clean();
}

/// Status 0 with a foreign filesystem on the mount point: not ours, refused, and
/// what the helper mounted is taken off again.
#[test]
fn foreign_filesystem_is_not_accepted() {
    if !fake_helper_can_run() {
        return;
    }
    assert_not_visible("tmpfs", "never asked markbase for its root");
}

/// Status 0 and nothing mounted: the failure of the original report.
#[test]
fn success_without_a_mount_is_not_visible() {
    if !fake_helper_can_run() {
        return;
    }
    assert_not_visible("nothing", "still the directory it was before");
}

/// A non-zero status is reported with the helper's own words.
#[test]
fn failed_status_is_reported_with_the_helpers_output() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::new();
    let (err, helper) = scenario.mount_fails("status", &[("FAKE_HELPER_STATUS", "13")]);
    let HelperError::Status {
        path,
        status,
        output,
    } = &err
    else {
        panic!("expected Status, got {err:?}");
    };
    assert_eq!(path, &helper);
    assert_eq!(*status, 13);
    assert_said(output, "mount_nfs: can't mount: Permission denied");
    // The command line it got, as go-nfsv4 gets it.
    assert_said(
        output,
        &format!(
            "args ['--volname', '{VOLUME}', '--rwsize={}', '--noatime=true', '{}']",
            256 * rustix::param::page_size(),
            scenario.mountpoint.display()
        ),
    );
    assert_message(
        &err,
        &[
            &helper.display().to_string(),
            "reported mount status 13 (Permission denied",
            "mount_nfs: can't mount: Permission denied",
        ],
    );
    // The whole output is kept for the user to read.
    let kept = scenario.output_files();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        fs::read_to_string(&kept[0])
            .unwrap()
            .contains("Permission denied")
    );
    scenario.assert_clean();
}

/// A helper that exits before answering: its exit code and output are reported.
#[test]
fn helper_exit_is_reported_with_code_and_output() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::new();
    let (err, helper) = scenario.mount_fails("exit", &[]);
    let HelperError::Exited { path, exit, output } = &err else {
        panic!("expected Exited, got {err:?}");
    };
    assert_eq!(path, &helper);
    assert_eq!(exit, "exited with code 3");
    assert_said(output, "panic: the NFS server cannot start");
    assert_message(
        &err,
        &[
            "exited with code 3 before answering the mount request",
            "panic: the NFS server cannot start",
        ],
    );
    scenario.assert_clean();
}

/// A helper that never answers: given up after the status timeout, and killed.
#[test]
fn silent_helper_times_out_and_is_stopped() {
    if !fake_helper_can_run() {
        return;
    }
    let scenario = Scenario::new();
    let helper = scenario.fake_helper("silent", &[]);
    let limit = Duration::from_secs(2);
    let (result, took) = scenario.mount(&helper, limit);
    let err = helper_error(result);
    let HelperError::NoStatus {
        path,
        limit: reported,
        output,
    } = &err
    else {
        panic!("expected NoStatus, got {err:?}");
    };
    assert_eq!(path, &helper);
    assert_eq!(*reported, limit);
    assert_said(output, "not answering");
    assert_message(&err, &["sent no mount status within 2s", "not answering"]);
    // The timeout, then at most the 5 s the helper is given to stop.
    assert!(took >= limit, "gave up after {took:?}");
    assert!(
        took < limit + Duration::from_secs(6),
        "gave up after {took:?}"
    );
    scenario.assert_clean();
}

/// A helper path that does not exist: named, and nothing is started.
#[test]
fn missing_helper_is_named() {
    let scenario = Scenario::new();
    let helper = scenario.dir.path().join("no-such-go-nfsv4");
    let (result, _) = scenario.mount(&helper, Duration::from_secs(10));
    let err = helper_error(result);
    let HelperError::Missing { looked } = &err else {
        panic!("expected Missing, got {err:?}");
    };
    let helper = helper.display().to_string();
    assert_eq!(looked.len(), 1, "{looked:?}");
    assert!(looked[0].contains(&helper), "{looked:?}");
    assert_message(&err, &["go-nfsv4 was not found", &helper, "fuse-t"]);
    assert_eq!(scenario.helper_pid(), None);
    scenario.assert_clean();
}

/// A helper that is not an executable file is refused before it is run.
#[test]
fn non_executable_helper_is_refused() {
    let scenario = Scenario::new();
    let file = scenario.dir.path().join("go-nfsv4");
    fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let directory = scenario.dir.path().join("go-nfsv4.d");
    fs::create_dir(&directory).unwrap();
    for helper in [file, directory] {
        let (result, _) = scenario.mount(&helper, Duration::from_secs(10));
        let err = helper_error(result);
        let HelperError::NotExecutable(path) = &err else {
            panic!(
                "expected NotExecutable for {}, got {err:?}",
                helper.display()
            );
        };
        assert_eq!(path, &helper);
        assert_message(&err, &[&helper.display().to_string(), "is not executable"]);
    }
    scenario.assert_clean();
}

/// Without a path, the helper is looked for where fuse-t's libfuse looks (the user's
/// own install, then /usr/local/bin), then where fuse-t's package and Homebrew put it;
/// when none holds it, the error lists each, and FUSE_NFSSRV_PATH.
#[test]
fn locate_without_install_lists_every_location() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let user = user_helper_location().expect("HOME is set");
    if let Some(installed) = INSTALL_LOCATIONS
        .iter()
        .map(PathBuf::from)
        .chain([user.clone()])
        .find(|path| path.exists())
    {
        markbase_testkit::skip(&format!(
            "fuse-t's helper is installed here ({})",
            installed.display()
        ));
        return;
    }
    let err = locate_helper(None).expect_err("no helper is installed");
    let HelperError::Missing { looked } = &err else {
        panic!("expected Missing, got {err:?}");
    };
    assert_eq!(looked.len(), 2 + INSTALL_LOCATIONS.len(), "{looked:?}");
    assert!(looked[0].contains("FUSE_NFSSRV_PATH"), "{looked:?}");
    assert_eq!(
        Path::new(&looked[1]),
        user,
        "the user's install comes first"
    );
    assert_eq!(&looked[2..], INSTALL_LOCATIONS);
    assert_eq!(INSTALL_LOCATIONS[0], "/usr/local/bin/go-nfsv4");
    let mut parts = vec!["FUSE_NFSSRV_PATH", user.to_str().unwrap()];
    parts.extend(INSTALL_LOCATIONS);
    assert_message(&err, &parts);
}

/// A helper installed for the user alone (`$HOME/.fuse-t/usr/local/bin/go-nfsv4`) is
/// found without FUSE_NFSSRV_PATH.
#[test]
fn a_per_user_install_is_found() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let home = tempfile::tempdir().unwrap();
    let helper = home.path().join(".fuse-t/usr/local/bin/go-nfsv4");
    fs::create_dir_all(helper.parent().unwrap()).unwrap();
    fs::write(&helper, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let saved = std::env::var_os("HOME");
    // SAFETY: the tests of this file that read the environment hold SERIAL, and
    // std's own environment lock orders this against the processes they start.
    unsafe { std::env::set_var("HOME", home.path()) };
    let found = locate_helper(None);
    // SAFETY: as above.
    unsafe {
        match &saved {
            Some(home) => std::env::set_var("HOME", home),
            None => std::env::remove_var("HOME"),
        }
    }
    assert_eq!(found.expect("the user's helper"), helper);
}
