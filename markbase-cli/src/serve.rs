//! `markbase serve`: the catalog over WebDAV.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use markbase_dav::{Access, Credentials, DavServer};
use markbase_vfs::Vfs;
use tokio::sync::oneshot;

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

/// A server running on its own thread (loopback, no authentication), until stopped.
pub struct Background {
    /// Where it listens.
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Background {
    /// Serves `vfs` on `address` from a thread of its own.
    pub fn start(vfs: Arc<Vfs>, address: SocketAddr) -> anyhow::Result<Self> {
        let runtime = runtime()?;
        let server = runtime
            .block_on(DavServer::bind(vfs, address, Access::Anonymous))
            .with_context(|| format!("cannot listen on {address}"))?;
        let address = server.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("markbase-serve".into())
            .spawn(move || {
                runtime.block_on(server.run(async {
                    let _ = stopped.await;
                }));
            })
            .context("cannot start the WebDAV server thread")?;
        Ok(Self {
            address,
            stop,
            thread,
        })
    }

    /// Stops accepting, gives running requests their grace, and waits for the end.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the WebDAV server thread panicked");
        }
    }
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
