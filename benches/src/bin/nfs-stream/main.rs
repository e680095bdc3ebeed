//! `nfs-stream`: streams one file through an NFSv3 server over TCP, with several 1 MiB calls
//! in flight per connection as the macOS client keeps them, and prints the throughput.
//!
//! It speaks ONC RPC itself (record marking, xids matched to replies in any order) with the
//! XDR types of `nfs3_types`; `nfs3_client` waits for each reply before the next call.
//!
//! `read`: MOUNTPROC3_MNT of `--export` on `--mount-port` (AUTH_UNIX, the caller's uid and
//! gid), LOOKUP along `--path`, GETATTR, then READ of the whole file. `write`: the same up to
//! the parent directory, CREATE (UNCHECKED, truncating), WRITE of `--size` bytes UNSTABLE,
//! then COMMIT, then GETATTR to check the size. `remove`: the same up to the parent
//! directory, then REMOVE (to clean up after a write; prints nothing). Every reply's status
//! and byte count is checked; data read is dropped as it comes. The time runs from the first
//! READ or WRITE to the last reply (the COMMIT's, for a write); a read or write prints one
//! line:
//!
//! ```text
//! bytes=4294967296 seconds=3.912 mbps=1097.9
//! ```
//!
//! with MB/s of 10^6 bytes. On any failure it exits 1 with a message naming the procedure
//! and its status.

mod nfs;
mod rpc;
mod stream;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::{Parser, ValueEnum};
use nfs3_types::nfs3::nfs_fh3;
use nfs3_types::rpc::opaque_auth;

use crate::rpc::{Connection, unix_credentials};
use crate::stream::Plan;

/// Streams one file through an NFSv3 server with several calls in flight and prints
/// `bytes=N seconds=S mbps=X` (MB = 10^6 bytes).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// `read` the whole file, `write` --size bytes to it (created or truncated), or
    /// `remove` it.
    mode: Mode,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The NFS service's TCP port.
    #[arg(long)]
    port: u16,
    /// The MOUNT service's TCP port [default: --port].
    #[arg(long)]
    mount_port: Option<u16>,
    /// The exported directory to mount.
    #[arg(long, default_value = "/")]
    export: String,
    /// The file, relative to the export, '/' between components.
    #[arg(long)]
    path: String,
    /// Calls in flight per connection.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    depth: u32,
    /// Bytes per READ or WRITE call (at most the server's rtmax or wtmax).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    block: u32,
    /// Bytes to write (write only).
    #[arg(long, required_if_eq("mode", "write"))]
    size: Option<u64>,
    /// TCP connections, each streaming its own contiguous share of the file.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    connections: u32,
}

/// Which way the data goes.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Read,
    Write,
    Remove,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nfs-stream: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Mounts and streams (or removes) as `args` says.
fn run(args: &Args) -> Result<()> {
    let cred = unix_credentials();
    let mount_port = args.mount_port.unwrap_or(args.port);
    let root = nfs::mount(
        &mut Connection::connect(&args.host, mount_port, cred.clone())?,
        &args.export,
    )?;
    let mut conns = connect(args, &cred)?;
    match args.mode {
        Mode::Read => read(args, &mut conns, root),
        Mode::Write => write(args, &mut conns, root),
        Mode::Remove => {
            let (parent, name) = split_parent(&args.path)?;
            let dir = nfs::lookup_path(&mut conns[0], root, parent)?;
            nfs::remove(&mut conns[0], dir, name)
        }
    }
}

/// `args.connections` connections to the NFS service.
fn connect(args: &Args, cred: &opaque_auth<'static>) -> Result<Vec<Connection>> {
    (0..args.connections)
        .map(|_| Connection::connect(&args.host, args.port, cred.clone()))
        .collect()
}

/// READs the file at `args.path` under `root` and prints how fast.
fn read(args: &Args, conns: &mut [Connection], root: nfs_fh3) -> Result<()> {
    let (rtmax, _) = nfs::transfer_limits(&mut conns[0], &root)?;
    ensure!(
        args.block <= rtmax,
        "--block {} is over the server's rtmax of {rtmax} bytes",
        args.block
    );
    let file = nfs::lookup_path(&mut conns[0], root, &args.path)?;
    let size = nfs::file_size(&mut conns[0], &file).with_context(|| format!("{:?}", args.path))?;
    let plan = plan(args, &file, size);
    let started = Instant::now();
    stream::read(conns, &plan)?;
    report(size, started.elapsed().as_secs_f64());
    Ok(())
}

/// Creates the file at `args.path` under `root`, WRITEs `--size` bytes to it, COMMITs, and
/// prints how fast (COMMIT included).
fn write(args: &Args, conns: &mut [Connection], root: nfs_fh3) -> Result<()> {
    let size = args.size.context("write needs --size")?;
    let (_, wtmax) = nfs::transfer_limits(&mut conns[0], &root)?;
    ensure!(
        args.block <= wtmax,
        "--block {} is over the server's wtmax of {wtmax} bytes",
        args.block
    );
    let (parent, name) = split_parent(&args.path)?;
    let dir = nfs::lookup_path(&mut conns[0], root, parent)?;
    let file = nfs::create(&mut conns[0], dir, name)?;
    let plan = plan(args, &file, size);
    let data = pattern(args.block as usize);
    let started = Instant::now();
    let mut verifier = stream::write(conns, &plan, &data)?;
    let committed = nfs::commit(&mut conns[0], &file)?;
    let seconds = started.elapsed().as_secs_f64();
    stream::same_verifier(&mut verifier, committed).context("NFSPROC3_COMMIT")?;
    let written = nfs::file_size(&mut conns[0], &file)?;
    ensure!(
        written == size,
        "wrote {size} bytes but the file has {written}"
    );
    report(size, seconds);
    Ok(())
}

/// Prints the one line of results: `bytes=N seconds=S mbps=X`.
fn report(bytes: u64, seconds: f64) {
    println!(
        "bytes={bytes} seconds={seconds:.3} mbps={:.1}",
        bytes as f64 / seconds / 1e6
    );
}

fn plan<'a>(args: &Args, file: &'a nfs_fh3, size: u64) -> Plan<'a> {
    Plan {
        file,
        size,
        block: args.block,
        depth: args.depth as usize,
    }
}

/// The parent directory (maybe "") and the name of `path`.
fn split_parent(path: &str) -> Result<(&str, &str)> {
    let path = path.trim_end_matches('/');
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    ensure!(!name.is_empty(), "--path {path:?} names no file");
    Ok((parent, name))
}

/// `len` bytes of xorshift noise, so that nothing on the way can compress or skip them.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parent_takes_the_last_component() {
        assert_eq!(split_parent("a/b/c.bin").expect("a path"), ("a/b", "c.bin"));
        assert_eq!(split_parent("c.bin").expect("a name"), ("", "c.bin"));
        assert_eq!(
            split_parent("a/c.bin/").expect("a trailing slash"),
            ("a", "c.bin")
        );
        split_parent("").expect_err("no name");
    }

    #[test]
    fn the_pattern_is_not_constant() {
        let data = pattern(4096);
        assert_eq!(data.len(), 4096);
        assert!(data.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
