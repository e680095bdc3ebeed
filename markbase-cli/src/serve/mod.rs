//! `markbase serve`: the catalog over WebDAV or NFS, in the foreground.

mod nfs;
mod webdav;

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{Context, bail};
use markbase_vfs::Vfs;

use crate::cli::{Listen, ServeProtocol};

/// Serves `vfs` as `protocol` says until SIGINT or SIGTERM.
pub fn serve(vfs: Vfs, protocol: &ServeProtocol) -> anyhow::Result<()> {
    match protocol {
        ServeProtocol::Webdav(args) => webdav::serve(vfs, args),
        ServeProtocol::Nfs(args) => nfs::serve(vfs, args),
    }
}

/// The addresses `listen` stands for: itself, or what its host name resolves to.
pub(super) fn resolve(listen: &Listen) -> anyhow::Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = (listen.host.as_str(), listen.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {:?} (in --listen {listen})", listen.host))?
        .collect();
    if addresses.is_empty() {
        bail!(
            "{:?} (in --listen {listen}) resolves to no address",
            listen.host
        );
    }
    Ok(addresses)
}

/// The server `bind` makes on the first of `addresses` it can bind; when none, every
/// address with its error.
pub(super) async fn bind_first<S, E, F>(
    addresses: &[SocketAddr],
    mut bind: impl FnMut(SocketAddr) -> F,
) -> Result<S, Vec<(SocketAddr, E)>>
where
    F: std::future::Future<Output = Result<S, E>>,
{
    let mut failed = Vec::new();
    for address in addresses {
        match bind(*address).await {
            Ok(server) => return Ok(server),
            Err(err) => failed.push((*address, err)),
        }
    }
    Err(failed)
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Watches SIGINT and SIGTERM from now on (so that one sent as soon as the server
/// says it is serving stops it cleanly); the future completes on either.
pub(super) fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
