//! Reading the catalog from a terminal: `ls`, `stat`, `cat`, `resolve`, and the tree view.

use std::io::{self, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use indicatif::HumanBytes;
use markbase_vfs::handles::ReadSink;
use markbase_vfs::{FileAttr, NodeId, NodeKind, Vfs, node::system_time_from_ns, readdir::DirEntry};

/// Buffer size for `cat`.
const CAT_BUFFER: usize = 1 << 20;

/// `markbase ls PATH [-l]`.
pub fn ls(vfs: &Vfs, args: &crate::cli::LsArgs) -> Result<()> {
    let attr = vfs.lookup_path(&args.path)?;
    let mut out = io::stdout().lock();
    if attr.kind == NodeKind::File {
        let name = args.path.trim_end_matches('/');
        return write_entry(&mut out, name, attr, args.long);
    }
    for (entry, attr) in list(vfs, attr.id)? {
        write_entry(&mut out, &entry.name, attr, args.long)?;
    }
    Ok(out.flush()?)
}

fn write_entry(out: &mut impl Write, name: &str, attr: FileAttr, long: bool) -> Result<()> {
    let suffix = if attr.kind == NodeKind::Dir { "/" } else { "" };
    if long {
        let kind = if attr.kind == NodeKind::Dir { 'd' } else { '-' };
        writeln!(
            out,
            "{kind} {:>9} {:>12} {}  {name}{suffix}",
            attr.id,
            attr.size,
            format_time(attr.mtime_ns)
        )?;
    } else {
        writeln!(out, "{name}{suffix}")?;
    }
    Ok(())
}

/// Every entry of directory `dir` with its attributes, in listing order.
pub fn list(vfs: &Vfs, dir: NodeId) -> Result<Vec<(DirEntry, FileAttr)>> {
    let mut entries = Vec::new();
    vfs.readdir_plus(dir, 0, |entry, attr| {
        entries.push((entry.clone(), *attr));
        true
    })?;
    Ok(entries)
}

/// `markbase stat PATH`.
pub fn stat(vfs: &Vfs, path: &str) -> Result<()> {
    let attr = vfs.lookup_path(path)?;
    let node = vfs.node(attr.id)?;
    let mut out = io::stdout().lock();
    writeln!(out, "  path: {}", vfs.path_of(attr.id)?)?;
    writeln!(out, "  node: {} ({})", attr.id, attr.kind)?;
    if let Some(parent) = node.parent {
        writeln!(out, "parent: {parent}")?;
    }
    writeln!(out, "  size: {} ({})", attr.size, HumanBytes(attr.size))?;
    if attr.kind == NodeKind::File && attr.size != node.recorded_size {
        writeln!(out, "        the catalog records {}", node.recorded_size)?;
    }
    writeln!(out, "blocks: {} (512 bytes)", attr.blocks)?;
    writeln!(out, " mtime: {}", format_time(attr.mtime_ns))?;
    writeln!(out, " ctime: {}", format_time(attr.ctime_ns))?;
    writeln!(out, "  mode: {:o}", attr.perm)?;
    writeln!(out, " owner: uid {} gid {}", attr.owner.uid, attr.owner.gid)?;
    Ok(out.flush()?)
}

/// `markbase cat PATH...`.
pub fn cat(vfs: &Vfs, paths: &[String]) -> Result<()> {
    let stdout = io::stdout().lock();
    let mut sink = CatSink {
        out: stdout.as_fd(),
        buf: vec![0u8; CAT_BUFFER],
        #[cfg(target_os = "linux")]
        kernel_copy: true,
    };
    for path in paths {
        let attr = vfs.lookup_path(path)?;
        let handle = vfs.open_file(attr.id)?;
        let copied = copy_out(vfs, handle, &mut sink);
        vfs.release(handle)?;
        copied.with_context(|| format!("copying {path}"))?;
    }
    Ok(())
}

/// Copies the open file `handle` to `sink`, to its end.
fn copy_out(
    vfs: &Vfs,
    handle: markbase_vfs::handles::FileHandle,
    sink: &mut CatSink,
) -> Result<()> {
    let mut offset = 0u64;
    loop {
        let n = vfs.read(handle, offset, CAT_BUFFER, sink)?;
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

/// Where `cat` puts a file's bytes: standard output, written straight to its
/// descriptor (Rust's stdout is line-buffered: it scanned every block for newlines and
/// split its writes). On Linux the kernel copies them from the file itself
/// (`sendfile`, to a pipe, a file or a socket); where it cannot, they are read into
/// `buf` and written.
struct CatSink<'a> {
    out: std::os::fd::BorrowedFd<'a>,
    buf: Vec<u8>,
    /// Whether `sendfile` is still worth trying.
    #[cfg(target_os = "linux")]
    kernel_copy: bool,
}

impl ReadSink for CatSink<'_> {
    fn read_from(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.kernel_copy {
            let mut from = offset;
            match rustix::fs::sendfile(self.out, file, Some(&mut from), len) {
                Ok(sent) => return Ok(sent),
                // The output takes no sendfile (a terminal in some modes, a file
                // opened for appending): copy through the buffer from now on.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                    self.kernel_copy = false;
                }
                Err(err) => return Err(err.into()),
            }
        }
        let len = len.min(self.buf.len());
        let read = std::os::unix::fs::FileExt::read_at(file, &mut self.buf[..len], offset)?;
        write_all(self.out, &self.buf[..read])?;
        Ok(read)
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<usize> {
        write_all(self.out, bytes)?;
        Ok(bytes.len())
    }
}

/// Writes all of `bytes` to `out`, unbuffered.
fn write_all(out: std::os::fd::BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        match rustix::io::write(out, &bytes[written..]) {
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// `markbase resolve PATH`.
pub fn resolve(vfs: &Vfs, path: &str) -> Result<()> {
    let attr = vfs.lookup_path(path)?;
    let mut out = io::stdout().lock();
    write_resolution(vfs, attr.id, &mut out)?;
    Ok(out.flush()?)
}

/// Writes which alias serves file `ino` and why each other was skipped.
/// Fails, after writing the report, when no alias can be read.
pub fn write_resolution(vfs: &Vfs, ino: NodeId, out: &mut impl Write) -> Result<()> {
    let resolution = vfs.resolve(ino)?;
    let path = vfs.path_of(ino)?;
    writeln!(out, "{path} (node {ino})")?;
    let (skipped, served) = match &resolution.outcome {
        Ok(backing) => (&backing.skipped, Some(backing)),
        Err(skipped) => (skipped, None),
    };
    for skip in skipped {
        writeln!(out, "  skipped {skip}")?;
    }
    match served {
        Some(backing) => {
            writeln!(
                out,
                "  served by alias #{}: {} ({})",
                backing.index + 1,
                backing.path.display(),
                HumanBytes(backing.stat.size)
            )?;
            Ok(())
        }
        None => {
            out.flush()?;
            anyhow::bail!("{path}: no alias can be read")
        }
    }
}

/// Writes the tree below `dir` with sizes, like `tree`.
pub fn write_tree(vfs: &Vfs, dir: NodeId, prefix: &str, out: &mut impl Write) -> Result<()> {
    let entries = list(vfs, dir)?;
    for (i, (entry, attr)) in entries.iter().enumerate() {
        let last = i + 1 == entries.len();
        let (branch, indent) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        match entry.kind {
            NodeKind::Dir => {
                writeln!(out, "{prefix}{branch}{}/", entry.name)?;
                write_tree(vfs, entry.id, &format!("{prefix}{indent}"), out)?;
            }
            NodeKind::File => {
                writeln!(
                    out,
                    "{prefix}{branch}{}  ({})",
                    entry.name,
                    HumanBytes(attr.size)
                )?;
            }
        }
    }
    Ok(())
}

fn format_time(ns: i64) -> String {
    humantime::format_rfc3339_seconds(system_time_from_ns(ns)).to_string()
}
