//! `markbase`: the command-line front of MarkBase VFS.

mod backend;
mod background;
mod bench;
mod browse;
mod cli;
mod data_dir;
mod demo;
mod doctor;
mod fsck;
mod import;
mod logging;
mod mount;
mod mounts;
mod registry;
mod serve;
mod status;

use std::process::ExitCode;

use markbase_vfs::{Vfs, VfsConfig, VfsError, finder::FinderFiles};

use cli::{Cli, Command};

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = cli::parse();
    // A background mount's serving process logs to its file: at least what it did.
    let serves_for_parent =
        matches!(&cli.command, Command::Mount(args) if args.serve_for_parent.is_some());
    logging::init(if serves_for_parent {
        cli.verbose.max(1)
    } else {
        cli.verbose
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<bench::Interrupted>() {
            Some(interrupted) => {
                eprintln!("markbase: {interrupted}");
                ExitCode::from(130)
            }
            None => {
                eprintln!("markbase: error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let open_with = |configure: &dyn Fn(&mut VfsConfig)| {
        let mut config = VfsConfig::new(&cli.catalog);
        configure(&mut config);
        Vfs::open(config)
    };
    let open_with = |configure: &dyn Fn(&mut VfsConfig)| match open_with(configure) {
        Err(err @ VfsError::CatalogMissing(_)) => Err(anyhow::anyhow!(
            "{err} (pass --catalog PATH or set MARKBASE_CATALOG; `markbase import DIR` makes one)"
        )),
        other => Ok(other?),
    };
    let open = || open_with(&|_| {});
    match cli.command {
        Command::Import(args) => import::run(&args, &cli.catalog),
        Command::Ls(args) => browse::ls(&open()?, &args),
        Command::Stat(args) => browse::stat(&open()?, &args.path),
        Command::Cat(args) => browse::cat(&open()?, &args.paths),
        Command::Resolve(args) => browse::resolve(&open()?, &args.path),
        Command::Fsck(args) => fsck::run(&open()?, &args),
        Command::Demo(args) => demo::run(&args),
        Command::Mount(args) if !args.serves() => background::mount(&args),
        Command::Mount(args) => mount::mount(
            open_with(&|config| config.read_only = args.read_only)?,
            &args,
        ),
        Command::Umount(args) => mount::umount(&args),
        Command::Mounts(args) => mounts::run(&args),
        Command::Doctor(args) => doctor::run(&cli.catalog, &args),
        Command::Bench(args) => bench::run(&args, open),
        Command::Serve(args) => {
            let protocol = args.protocol();
            let served = protocol.served();
            let vfs = open_with(&|config| {
                config.read_only = served.read_only;
                if served.finder_files_in_catalog {
                    config.finder_files = FinderFiles::InCatalog;
                }
            })?;
            serve::serve(vfs, &protocol)
        }
    }
}

/// Dies quietly of SIGPIPE when stdout is closed early (`markbase cat x | head`),
/// as other command-line tools do.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
