//! Test fixtures shared by the workspace's tests and benchmarks: deterministic
//! file contents, hand-written catalogs (including broken ones), and the rule
//! for tests that need an outside tool (and how their skips are recorded).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// The byte at `offset` of a pattern file made with `seed`: cheap to compute, differs
/// between seeds and offsets, so a misplaced or foreign byte is always noticed.
pub fn pattern_byte(seed: u64, offset: u64) -> u8 {
    let x = (offset ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 56) as u8 ^ (offset as u8)
}

/// Writes a pattern file of `size` bytes made with `seed`.
pub fn write_pattern_file(path: &Path, size: u64, seed: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < size {
        let n = chunk.len().min((size - offset) as usize);
        for (i, byte) in chunk[..n].iter_mut().enumerate() {
            *byte = pattern_byte(seed, offset + i as u64);
        }
        out.write_all(&chunk[..n])?;
        offset += n as u64;
    }
    out.flush()
}

/// Whether the process runs as root (permission tests need another user then).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The variable that names the file where skipped tests are recorded, one line each;
/// `scripts/test` sets it and lists what was skipped when it ends.
pub const SKIP_LOG_ENV: &str = "MARKBASE_SKIP_LOG";

/// Finds `tool` on `PATH`. When it is absent the test cannot run: with
/// `MARKBASE_REQUIRE_ALL=1` (CI) that is a failure naming the tool, otherwise the
/// skip is reported ([`cannot_run`]) and `None` tells the test to return.
#[track_caller]
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        cannot_run(&format!("tool `{tool}` is not installed"));
    }
    found
}

/// Says that the calling test cannot run here, for `reason` (a missing tool, no
/// root): with `MARKBASE_REQUIRE_ALL=1` (CI) that is a failure naming the reason;
/// otherwise the test is reported as skipped ([`skip`]), and should then return.
#[track_caller]
pub fn cannot_run(reason: &str) {
    if std::env::var("MARKBASE_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("cannot run: {reason} (MARKBASE_REQUIRE_ALL=1); run scripts/test as root");
    }
    skip(reason);
}

/// Reports that the calling test skips its checks, for `reason`: on stderr, and as a
/// line (the test's file, line and name, and the reason) appended to the file
/// [`SKIP_LOG_ENV`] names, so that a run that passed says what it did not test.
#[track_caller]
pub fn skip(reason: &str) {
    let at = std::panic::Location::caller();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    eprintln!("skipping: {reason}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        let line = format!("{}:{} {test}: {reason}\n", at.file(), at.line());
        // One write of one line to a file opened for appending: lines of tests
        // running at once do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            panic!(
                "cannot record the skip in {}: {err}",
                Path::new(&log).display()
            );
        }
    }
}

/// A catalog written row by row with plain SQL, so tests can build the broken
/// catalogs that the core must refuse or skip.
pub struct RawCatalog {
    /// The catalog file.
    pub path: PathBuf,
    /// An open connection to it.
    pub conn: Connection,
}

impl RawCatalog {
    /// Creates `path` by running `schema_sql` (for example `markbase_vfs::schema::SCHEMA_SQL`).
    pub fn create(path: &Path, schema_sql: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(schema_sql)?;
        Ok(Self {
            path: path.to_owned(),
            conn,
        })
    }

    /// Inserts a row with every column given.
    pub fn insert(
        &self,
        id: i64,
        parent: Option<i64>,
        name: &str,
        kind: &str,
        size: i64,
        aliases_json: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO nodes (id, parent_id, name, kind, size, mtime_ns, aliases_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
            params![id, parent, name, kind, size, aliases_json],
        )?;
        Ok(())
    }

    /// Inserts a directory row.
    pub fn dir(&self, id: i64, parent: i64, name: &str) -> rusqlite::Result<()> {
        self.insert(id, Some(parent), name, "dir", 0, "[]")
    }

    /// Inserts a file row whose aliases are `aliases` (as a JSON array of strings).
    pub fn file(&self, id: i64, parent: i64, name: &str, aliases: &[&str]) -> rusqlite::Result<()> {
        let json = format!(
            "[{}]",
            aliases
                .iter()
                .map(|a| format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.insert(id, Some(parent), name, "file", 0, &json)
    }
}

/// Whether this process may mount FUSE filesystems itself: it runs as root and can
/// open `/dev/fuse`. When it cannot, the test cannot run: with `MARKBASE_REQUIRE_ALL=1`
/// (CI) that is a failure naming the reason, otherwise the skip is reported
/// ([`cannot_run`]) and `false` tells the test to return.
#[track_caller]
pub fn require_fuse() -> bool {
    let reason = if !is_root() {
        String::from("mounting needs root")
    } else {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
        {
            Ok(_) => return true,
            Err(err) => format!("/dev/fuse cannot be opened ({err})"),
        }
    };
    cannot_run(&format!("cannot mount FUSE: {reason}"));
    false
}

/// Runs `command` to its end with stdin closed and its output captured, killing it
/// and failing the test if it takes over `limit`: a command stuck on a mount (or a
/// `markbase mount` that wrongly stays in the foreground) fails instead of stalling.
#[track_caller]
pub fn run_within(
    command: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::process::Stdio;
    let what = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|err| panic!("{what}: {err}")),
        Err(_) => {
            // SAFETY: signalling our own child, which has not been reaped (its waiter
            // is still waiting).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// Where `got` first differs from `expected`: the first unequal index, or the shorter
/// length when one is a prefix of the other; `None` when they are equal. Lets a test
/// report a mismatch of megabytes or of 100,000 names in one line.
pub fn first_difference<T: PartialEq>(got: &[T], expected: &[T]) -> Option<usize> {
    if got == expected {
        return None;
    }
    Some(
        got.iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len())),
    )
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: a rename that fails with `EEXIST` rather
/// than replace what `to` names (Linux).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))
    };
    let (from, to) = (path(from)?, path(to)?);
    // SAFETY: both are valid NUL-terminated paths for the duration of the call, and
    // AT_FDCWD needs no descriptor.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Detaches (lazily unmounts) whatever is mounted at exactly `path`, if anything: the
/// last resort of a test that failed while something was mounted (Linux).
#[cfg(target_os = "linux")]
pub fn detach_mount(path: &Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let Ok(raw) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `raw` is a valid NUL-terminated path for the duration of the call. A
    // path that is no mount point gets EINVAL and nothing happens.
    unsafe { libc::umount2(raw.as_ptr(), libc::MNT_DETACH) };
}
