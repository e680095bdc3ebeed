//! Command-line arguments.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::bench::Format;

/// Subcommands that read no catalog: `--catalog` is left out of their help and
/// refused on their command line.
const WITHOUT_CATALOG: [&str; 3] = ["demo", "umount", "mounts"];

/// Where `markbase serve webdav` listens unless `--listen` says otherwise.
pub const WEBDAV_LISTEN: &str = "127.0.0.1:4918";

/// Where `markbase serve nfs` listens unless `--listen` says otherwise.
pub const NFS_LISTEN: &str = "127.0.0.1:2049";

/// Parses the command line; a usage error exits with its message and status 2.
pub fn parse() -> Cli {
    let mut command = Cli::command();
    // A global option reaches every subcommand that lacks one of its name, so these
    // get a hidden copy of their own.
    let catalog = command
        .get_arguments()
        .find(|arg| arg.get_id() == "catalog")
        .expect("--catalog is defined")
        .clone()
        .hide(true);
    for name in WITHOUT_CATALOG {
        command = command.mut_subcommand(name, |sub| sub.arg(catalog.clone()));
    }
    let matches = command.get_matches_mut();
    if let Some((name, sub)) = matches.subcommand()
        && WITHOUT_CATALOG.contains(&name)
        && sub.value_source("catalog") == Some(ValueSource::CommandLine)
    {
        let message =
            format!("`markbase {name}` reads no catalog, so --catalog has no meaning here");
        command
            .find_subcommand_mut(name)
            .expect("the subcommand just parsed")
            .error(ErrorKind::ArgumentConflict, message)
            .exit();
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Command::Bench(args) = &cli.command {
        let frame = args.frame_size.unwrap_or(args.format.frame_bytes());
        if args.file_size < frame {
            let message = format!(
                "--file-size {} is smaller than one frame ({frame} bytes)",
                args.file_size
            );
            command
                .find_subcommand_mut("bench")
                .expect("bench is a subcommand")
                .error(ErrorKind::ValueValidation, message)
                .exit();
        }
    }
    cli
}

/// MarkBase VFS: a media-library catalog (warren.sqlite) as a real filesystem.
#[derive(Debug, Parser)]
#[command(name = "markbase", version, about, propagate_version = true)]
pub struct Cli {
    /// The catalog file (of every command but demo, umount and bench).
    #[arg(
        long,
        global = true,
        env = "MARKBASE_CATALOG",
        default_value = "warren.sqlite",
        value_name = "PATH"
    )]
    pub catalog: PathBuf,

    /// More log output on stderr (-v info, -vv debug, -vvv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build or update the catalog from a folder tree (files become nodes whose alias is
    /// their absolute path).
    Import(ImportArgs),
    /// List a directory of the catalog.
    Ls(LsArgs),
    /// Show a node's attributes.
    Stat(PathArg),
    /// Write files' bytes to stdout.
    Cat(CatArgs),
    /// Say which alias serves a file, and why every other alias was skipped.
    Resolve(PathArg),
    /// Check the catalog against the files: nodes whose bytes are gone, store files no
    /// node names; `--repair` fixes them (run it while nothing else writes the library).
    Fsck(FsckArgs),
    /// Make a demo library with its catalog (or reuse the one made before), show its
    /// tree and a resolution, then serve and mount it until Ctrl-C.
    Demo(DemoArgs),
    /// Mount the catalog on an empty directory. It returns once the mount is verified,
    /// serving it in the background until `markbase umount` (with -f, in the foreground
    /// until Ctrl-C or SIGTERM too).
    Mount(MountArgs),
    /// Unmount a markbase mount; also clears a dead mount whose server was killed.
    Umount(UmountArgs),
    /// List this machine's markbase mounts: where, which catalog, how, since when, and
    /// whether each answers.
    Mounts(MountsArgs),
    /// Serve the catalog over WebDAV (the default) or NFSv3, in the foreground until
    /// Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Check what mounting and serving need on this machine, one line per check, with
    /// the fix for each failure: the catalog, the store's free space, /dev/fuse,
    /// fusermount3, fuse-t, the NFS client, the mount point, the serve ports.
    Doctor(DoctorArgs),
    /// Test a directory's speed as video tools do: write one file of video frames past
    /// the page cache, read it back, check it, remove it, and report MB/s, latency and
    /// dropped frames.
    Bench(BenchArgs),
}

/// `markbase doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The directory to be mounted on, checked too when given.
    pub mountpoint: Option<PathBuf>,
    /// Print one JSON document instead of the checklist.
    #[arg(long)]
    pub json: bool,
}

/// `markbase bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The directory to test: a markbase mount, or any directory.
    #[arg(required_unless_present = "backend")]
    pub dir: Option<PathBuf>,
    /// Instead of DIR: mount the catalog this way (`all`: each way this machine
    /// offers, in turn), bench each mount and the store's own directory, and show them
    /// in one table, fastest first: which way to mount.
    #[arg(long, value_enum, conflicts_with_all = ["dir", "compare"])]
    pub backend: Option<BenchBackend>,
    /// The video format streamed: its frame size and rate.
    #[arg(long, value_enum, default_value_t = Format::ProRes422Hq4k)]
    pub format: Format,
    /// Bytes of one frame instead of the format's (such as 1MiB or 500k).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub frame_size: Option<u64>,
    /// Frames per second instead of the format's.
    #[arg(long, value_name = "N", value_parser = parse_fps)]
    pub target_fps: Option<f64>,
    /// Size of the test file (it needs this and 5% more free).
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = parse_size)]
    pub file_size: u64,
    /// Stop writing after this long (such as 30s), if the file is not full before.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Let the page cache in (by default it is bypassed: O_DIRECT, F_NOCACHE on macOS).
    #[arg(long)]
    pub cached: bool,
    /// Test this directory too, after DIR, and show each figure's ratio DIR/RAWDIR.
    #[arg(long, value_name = "RAWDIR")]
    pub compare: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the chart (SVG) here (default: a file named by the time in
    /// $XDG_DATA_HOME/markbase/bench, or ~/.local/share/markbase/bench).
    #[arg(long, value_name = "FILE", conflicts_with = "no_chart")]
    pub chart: Option<PathBuf>,
    /// Write no chart.
    #[arg(long)]
    pub no_chart: bool,
}

/// The mounts `markbase bench --backend` tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// Every way this machine offers (those it cannot use are named, with why).
    All,
    /// The kernel's FUSE: /dev/fuse (Linux).
    Fuse,
    /// fuse-t's helper (macOS; on Linux when FUSE_NFSSRV_PATH names one).
    #[value(name = "fuse-t")]
    FuseT,
    /// markbase's NFSv3 server, mounted by the system's NFS client.
    Nfs,
}

/// A size of at least one byte: `1MiB`, `500k` (10^3), `4GiB`, `1048576`.
fn parse_size(text: &str) -> Result<u64, String> {
    match parse_size::parse_size(text) {
        Ok(0) => Err("must be at least one byte".into()),
        Ok(size) => Ok(size),
        Err(err) => Err(format!("{err} (sizes look like 1MiB, 500k or 4GiB)")),
    }
}

/// A frame rate above 0, such as 24 or 29.97.
fn parse_fps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fps) if fps.is_finite() && fps > 0.0 => Ok(fps),
        _ => Err("must be a number of frames per second above 0, such as 24 or 29.97".into()),
    }
}

/// A duration above 0, such as 30s or 2m.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than 0".into()),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
}

/// `markbase serve [webdav|nfs]`: a bare `markbase serve` is WebDAV.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// The protocol.
    #[command(subcommand)]
    protocol: Option<ServeProtocol>,
    /// WebDAV's options, for a bare `markbase serve`.
    #[command(flatten)]
    webdav: WebDavArgs,
}

impl ServeArgs {
    /// The protocol asked for, with its options.
    pub fn protocol(self) -> ServeProtocol {
        self.protocol.unwrap_or(ServeProtocol::Webdav(self.webdav))
    }
}

/// The protocols `markbase serve` speaks.
#[derive(Debug, Subcommand)]
pub enum ServeProtocol {
    /// Serve over WebDAV (the default): for Finder's Connect to Server, davfs2, rclone.
    Webdav(WebDavArgs),
    /// Serve over NFSv3, NFS and MOUNT on one port (no rpcbind): for macOS's
    /// `mount_nfs` and other machines' NFS clients.
    Nfs(NfsArgs),
}

impl ServeProtocol {
    /// What every protocol serves of the catalog.
    pub fn served(&self) -> &Served {
        match self {
            Self::Webdav(args) => &args.served,
            Self::Nfs(args) => &args.served,
        }
    }
}

/// How the catalog is served, whatever the protocol.
#[derive(Clone, Debug, Args)]
pub struct Served {
    /// Refuse every change.
    #[arg(long)]
    pub read_only: bool,
    /// Keep Finder's `._*` and `.DS_Store` files in the catalog like any other file
    /// (by default they are kept aside, in the store's `finder/` directory).
    #[arg(long)]
    pub finder_files_in_catalog: bool,
}

/// `markbase serve webdav`.
#[derive(Clone, Debug, Args)]
pub struct WebDavArgs {
    /// Address (or host name) and port to listen on.
    #[arg(long, default_value = WEBDAV_LISTEN, value_name = "HOST:PORT")]
    pub listen: Listen,
    /// Admit only this user (HTTP Basic authentication); needs --password-file.
    #[arg(long, value_name = "NAME", requires = "password_file")]
    pub user: Option<String>,
    /// The file whose first line is the user's password.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<std::path::PathBuf>,
    /// Serve on an address other machines can reach without authentication.
    #[arg(long, conflicts_with = "user")]
    pub allow_anonymous: bool,
    /// What is served.
    #[command(flatten)]
    pub served: Served,
}

/// `markbase serve nfs`.
#[derive(Clone, Debug, Args)]
pub struct NfsArgs {
    /// Address (or host name) and port to listen on, for NFS and MOUNT both.
    #[arg(long, default_value = NFS_LISTEN, value_name = "HOST:PORT")]
    pub listen: Listen,
    /// Serve clients of this network too (CIDR, such as 192.168.1.0/24; repeatable).
    /// Needed to listen on an address other machines reach; clients from elsewhere
    /// are disconnected. NFS has no passwords: files are served as this process's
    /// user to every allowed client.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<ipnet::IpNet>,
    /// What is served.
    #[command(flatten)]
    pub served: Served,
}

/// Where `markbase serve` listens: a host (an IP address, IPv6 in brackets, or a name
/// to resolve) and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The address or name, without brackets.
    pub host: String,
    /// The port (0: any free one).
    pub port: u16,
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(address) = text.parse::<std::net::SocketAddr>() {
            return Ok(Self {
                host: address.ip().to_string(),
                port: address.port(),
            });
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or("expected HOST:PORT, such as 127.0.0.1:4918 or localhost:4918")?;
        let port = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port number (0 to 65535)"))?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            Some(_) => return Err(format!("{host} is not an IPv6 address")),
            None if host.contains(':') => {
                return Err(format!("an IPv6 address goes in brackets: [{host}]:{port}"));
            }
            None if host.is_empty() => return Err("the host is missing before the port".into()),
            None => host,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `markbase mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// An existing empty directory.
    pub mountpoint: PathBuf,
    /// Refuse every change (EROFS).
    #[arg(long)]
    pub read_only: bool,
    /// Request threads.
    #[arg(long, default_value_t = NonZeroUsize::new(4).expect("non-zero"), value_name = "N")]
    pub threads: NonZeroUsize,
    /// Let the kernel gather writes in its page cache before sending them (Linux):
    /// faster small writes, but a crash loses what it had not sent.
    #[arg(long)]
    pub writeback_cache: bool,
    /// Whether the kernel reads and writes files itself, at the disk's speed, without
    /// asking markbase for their bytes (Linux 6.9+ FUSE passthrough, as root): `auto`
    /// where it can (-v says whether it did), `on` (the kernel's FUSE alone is tried,
    /// and a mount that cannot pass through fails, saying why), or `off`. Not with
    /// --writeback-cache.
    #[arg(long, value_enum, default_value_t = Passthrough::Auto, env = "MARKBASE_PASSTHROUGH")]
    pub passthrough: Passthrough,
    /// Let every user of the machine reach the mount, not only the one mounting it
    /// (each file keeps the owner and mode of the file that holds its bytes, and the
    /// kernel checks them). Unprivileged users need `user_allow_other` in /etc/fuse.conf.
    #[arg(long)]
    pub allow_other: bool,
    /// How the mount is made: `auto` (on Linux /dev/fuse, then NFS; on macOS the
    /// built-in NFS client, then fuse-t), `fuse` (the kernel's /dev/fuse, Linux),
    /// `fuse-t` (fuse-t's helper; on Linux too when FUSE_NFSSRV_PATH names one), or
    /// `nfs` (markbase's NFSv3 server on a loopback port, mounted with the system's
    /// `mount_nfs`: nothing to install on a Mac).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// When the mount is made through fuse-t: the protocol its helper serves macOS
    /// (fuse-t's own `--backend`; its default is nfs, and its maintainer suggests smb
    /// where NFS is slow).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub fuse_t_backend: Option<FuseTBackend>,
    /// With `--backend nfs`: how long the system's mount command may take.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub mount_timeout: std::time::Duration,
    /// Stay in the foreground, logging on stderr, until unmounted, Ctrl-C or SIGTERM.
    #[arg(short, long)]
    pub foreground: bool,
    /// Where a background mount logs (default: a new file in the data directory's
    /// `logs/`, $XDG_DATA_HOME/markbase or ~/.local/share/markbase).
    #[arg(long, value_name = "FILE", conflicts_with = "foreground")]
    pub log_file: Option<PathBuf>,
    /// Set by a background mount's first process on the one it starts to serve: serve
    /// in the foreground, report through stdout, and log to this file.
    #[arg(long = &SERVE_FOR_PARENT[2..], value_name = "LOG", hide = true)]
    pub serve_for_parent: Option<PathBuf>,
}

/// The hidden option that makes `markbase mount` the serving half of a background mount.
pub const SERVE_FOR_PARENT: &str = "--serve-for-parent";

impl MountArgs {
    /// Whether this process serves the mount itself (rather than starting one that does).
    pub fn serves(&self) -> bool {
        self.foreground || self.serve_for_parent.is_some()
    }
}

/// `markbase mounts`.
#[derive(Debug, Args)]
pub struct MountsArgs {
    /// One JSON document on stdout, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The ways `markbase mount` mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The first way this machine offers that works.
    Auto,
    /// The kernel's FUSE: /dev/fuse (Linux).
    Fuse,
    /// fuse-t's helper, a local NFS server relaying FUSE messages (macOS).
    #[value(name = "fuse-t")]
    FuseT,
    /// markbase's NFSv3 server, mounted by the system's NFS client.
    Nfs,
}

/// `--passthrough`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Passthrough {
    /// Where the kernel offers it and markbase may use it.
    Auto,
    /// Always; a mount that cannot fails.
    On,
    /// Never.
    Off,
}

impl From<Passthrough> for markbase_fuse::PassthroughMode {
    fn from(mode: Passthrough) -> Self {
        match mode {
            Passthrough::Auto => Self::Auto,
            Passthrough::On => Self::On,
            Passthrough::Off => Self::Off,
        }
    }
}

/// What fuse-t's helper serves macOS with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FuseTBackend {
    /// NFSv4, mounted by mount_nfs (fuse-t's default).
    Nfs,
    /// SMB, mounted by mount_smbfs.
    Smb,
}

impl From<FuseTBackend> for markbase_fuse::FuseTBackend {
    fn from(backend: FuseTBackend) -> Self {
        match backend {
            FuseTBackend::Nfs => Self::Nfs,
            FuseTBackend::Smb => Self::Smb,
        }
    }
}

/// `markbase umount`.
#[derive(Debug, Args)]
pub struct UmountArgs {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// Detach a busy mount at once; it goes away when the last program using it is done.
    #[arg(long)]
    pub lazy: bool,
}

/// `markbase fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Remove nodes whose bytes were in the store and are gone, and apply `--orphans`.
    #[arg(long)]
    pub repair: bool,
    /// With `--repair`: what to do with store files that no node names.
    #[arg(long, value_enum, default_value_t = Orphans::Keep, requires = "repair")]
    pub orphans: Orphans,
}

/// What `fsck --repair` does with orphan store files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Orphans {
    /// Leave them where they are.
    Keep,
    /// Give each a node in /lost+found.
    Adopt,
    /// Delete them.
    Remove,
}

/// `markbase import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The folder whose contents are imported.
    pub dir: PathBuf,
    /// The catalog directory that receives them (created when missing).
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub into: String,
}

/// `markbase ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// A path in the catalog.
    #[arg(default_value = "/")]
    pub path: String,
    /// Long format: kind, node id, size and modification time.
    #[arg(short, long)]
    pub long: bool,
}

/// A single catalog path.
#[derive(Debug, Args)]
pub struct PathArg {
    /// A path in the catalog, such as `/Projects/clip.mov`.
    pub path: String,
}

/// `markbase cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Paths in the catalog.
    #[arg(required = true)]
    pub paths: Vec<String>,
}

/// `markbase demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo library and its catalog go
    /// (default: $XDG_DATA_HOME/markbase/demo, or ~/.local/share/markbase/demo).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep every generated file under 4 MiB (a quick demo, for tests).
    #[arg(long)]
    pub quick: bool,
    /// Only make and show the library; do not mount or serve it.
    #[arg(long)]
    pub no_mount: bool,
}
