//! `markbase serve`: the catalog over WebDAV.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::{Context, bail};
use markbase_dav::{Access, Credentials, DavServer};
use markbase_vfs::Vfs;

use crate::cli::{Listen, ServeArgs};

/// Serves `vfs` on `args.listen` until SIGINT or SIGTERM.
pub fn serve(vfs: Vfs, args: &ServeArgs) -> anyhow::Result<()> {
    let addresses = resolve(&args.listen)?;
    let access = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => Access::Basic(Credentials::from_password_file(user, file)?),
        _ => {
            let reachable = addresses.iter().find(|address| !address.ip().is_loopback());
            if let Some(reachable) = reachable.filter(|_| !args.allow_anonymous) {
                bail!(
                    "refusing to serve {} ({reachable}) to other machines without authentication; pass --user NAME --password-file FILE, listen on 127.0.0.1, or pass --allow-anonymous",
                    args.listen
                );
            }
            Access::Anonymous
        }
    };
    let vfs = Arc::new(vfs);
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    let anonymous = matches!(access, Access::Anonymous);
    runtime()?.block_on(async {
        let server = bind(vfs, &args.listen, &addresses, access).await?;
        let address = server.local_addr()?;
        let stop = stop_signal()?;
        eprintln!(
            "markbase: serving {catalog} at http://{address}/{}; Ctrl-C stops",
            if read_only { " (read-only)" } else { "" }
        );
        if anonymous {
            eprintln!("markbase: {}", anonymous_warning(address, read_only));
        }
        server.run(stop).await;
        eprintln!("markbase: stopped serving");
        Ok(())
    })
}

/// What a server without `--user` lets others do, said when it starts.
fn anonymous_warning(address: SocketAddr, read_only: bool) -> String {
    let who = if address.ip().is_loopback() {
        "every user of this machine".to_owned()
    } else {
        format!("anyone who can reach {address}")
    };
    let can = if read_only {
        "read the whole library"
    } else {
        "read, change and delete anything in the library"
    };
    format!(
        "warning: no --user, so {who} can {can} without a password; \
         --user NAME --password-file FILE requires one"
    )
}

/// The addresses `listen` stands for: itself, or what its host name resolves to.
fn resolve(listen: &Listen) -> anyhow::Result<Vec<SocketAddr>> {
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

/// Binds the first of `addresses` that can be bound.
async fn bind(
    vfs: Arc<Vfs>,
    listen: &Listen,
    addresses: &[SocketAddr],
    access: Access,
) -> anyhow::Result<DavServer> {
    let mut failed = Vec::new();
    for address in addresses {
        match DavServer::bind(Arc::clone(&vfs), *address, access.clone()).await {
            Ok(server) => return Ok(server),
            Err(err) => failed.push(format!("{address}: {err}")),
        }
    }
    match addresses {
        [address] if address.to_string() == listen.to_string() => {
            bail!("cannot listen on {}", failed.join("; "))
        }
        _ => bail!("cannot listen on {listen} ({})", failed.join("; ")),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Watches SIGINT and SIGTERM from now on (so that one sent as soon as the server
/// says it is serving stops it cleanly); the future completes on either.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
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
