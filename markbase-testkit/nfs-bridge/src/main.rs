//! `nfs-fuse-bridge`: mounts an NFSv3 export on a directory through FUSE, for tests on
//! machines whose kernel has no NFS client.
//!
//! It MOUNTs the export, mounts FUSE on the directory, and only then goes to the
//! background ([`daemon`]), so that it returns like `mount_nfs`. Every FUSE request is
//! forwarded to the server ([`fs`]) over one connection ([`remote`]). The served
//! process ends when the directory is unmounted, or unmounts it (lazily) and ends
//! when the server stops answering.

#[cfg(target_os = "linux")]
mod attr;
#[cfg(target_os = "linux")]
mod daemon;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod fs;
#[cfg(target_os = "linux")]
mod inodes;
#[cfg(target_os = "linux")]
mod remote;
#[cfg(target_os = "linux")]
mod session;
#[cfg(target_os = "linux")]
mod stream;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Mounts an NFSv3 export on MOUNTPOINT through FUSE and returns once it is mounted;
/// a background process serves it until it is unmounted.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The server's NFS port.
    #[arg(long)]
    port: u16,
    /// The server's MOUNT port.
    #[arg(long)]
    mount_port: u16,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The exported path.
    #[arg(long, default_value = "/")]
    export: String,
    /// Where the background process logs (`NFS_FUSE_BRIDGE_LOG` sets the level,
    /// `warn` by default); nowhere without it.
    #[arg(long, env = "NFS_FUSE_BRIDGE_LOG_FILE")]
    log_file: Option<PathBuf>,
    /// A file to write the background process's id to, once mounted.
    #[arg(long, env = "NFS_FUSE_BRIDGE_PID_FILE")]
    pid_file: Option<PathBuf>,
    /// An existing directory to mount on.
    mountpoint: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NFS_FUSE_BRIDGE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    run(&cli)
}

#[cfg(not(target_os = "linux"))]
fn run(_: &Cli) -> ExitCode {
    eprintln!("nfs-fuse-bridge: only Linux is supported (it serves /dev/fuse)");
    ExitCode::FAILURE
}

#[cfg(target_os = "linux")]
use linux::run;

#[cfg(target_os = "linux")]
mod linux {
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Context as _;

    use crate::Cli;
    use crate::daemon;
    use crate::fs::BridgeFs;
    use crate::remote::{Export, Remote};
    use crate::session::Session;

    /// How often the served process checks that the server still answers.
    const PING_INTERVAL: Duration = Duration::from_secs(1);

    /// Mounts in a forked child and serves; the parent exits inside [`daemon::fork`].
    pub fn run(cli: &Cli) -> ExitCode {
        let report = match daemon::fork() {
            Ok(report) => report,
            Err(err) => {
                eprintln!("nfs-fuse-bridge: {err:#}");
                return ExitCode::FAILURE;
            }
        };
        let (remote, session) = match mount(cli) {
            Ok(mounted) => mounted,
            Err(err) => return report.failed(&err),
        };
        if let Err(err) = report.ready(cli.log_file.as_deref()) {
            tracing::error!("{err:#}");
            session.detach();
            return ExitCode::FAILURE;
        }
        serve(&remote, session)
    }

    /// MOUNTs the export and mounts FUSE, checked; the pid file is written last.
    fn mount(cli: &Cli) -> anyhow::Result<(Arc<Remote>, Session)> {
        let export = Export {
            host: cli.host,
            port: cli.port,
            mount_port: cli.mount_port,
            path: cli.export.clone(),
        };
        let remote = Arc::new(Remote::mount(&export)?);
        let root = remote
            .getattr(remote.root())
            .context("cannot get the attributes of the export's root")?;
        let fs = BridgeFs::new(Arc::clone(&remote), root.fileid);
        let session = Session::mount(fs, &cli.mountpoint)?.check_served()?;
        if let Some(path) = &cli.pid_file {
            let written = std::fs::write(path, format!("{}\n", std::process::id()))
                .with_context(|| format!("cannot write the pid file {}", path.display()));
            if let Err(err) = written {
                session.detach();
                return Err(err);
            }
        }
        Ok((remote, session))
    }

    /// Serves until the mount is unmounted (success) or the server stops answering
    /// (the mount is then detached, and the exit is a failure).
    fn serve(remote: &Remote, session: Session) -> ExitCode {
        loop {
            if session.wait_ended(PING_INTERVAL) {
                tracing::info!("unmounted");
                return ExitCode::SUCCESS;
            }
            if let Err(err) = remote.ping() {
                tracing::error!("the NFS server does not answer ({err}): unmounting");
                session.detach();
                return ExitCode::FAILURE;
            }
        }
    }
}
