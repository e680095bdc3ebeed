//! `markbase serve`: the catalog over WebDAV.

use std::sync::Arc;

use anyhow::{Context, bail};
use markbase_dav::{Access, Credentials, DavServer};
use markbase_vfs::Vfs;

use crate::cli::ServeArgs;

/// Serves `vfs` on `args.listen` until SIGINT or SIGTERM.
pub fn serve(vfs: Vfs, args: &ServeArgs) -> anyhow::Result<()> {
    let access = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => Access::Basic(Credentials::from_password_file(user, file)?),
        _ if args.listen.ip().is_loopback() || args.allow_anonymous => Access::Anonymous,
        _ => bail!(
            "refusing to serve {} to other machines without authentication; pass --user NAME --password-file FILE, listen on 127.0.0.1, or pass --allow-anonymous",
            args.listen
        ),
    };
    let vfs = Arc::new(vfs);
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    runtime()?.block_on(async {
        let server = DavServer::bind(vfs, args.listen, access)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = server.local_addr()?;
        eprintln!(
            "markbase: serving {catalog} at http://{address}/{}; Ctrl-C stops",
            if read_only { " (read-only)" } else { "" }
        );
        server.run(stop_signal()).await;
        eprintln!("markbase: stopped serving");
        Ok(())
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!("cannot watch SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
