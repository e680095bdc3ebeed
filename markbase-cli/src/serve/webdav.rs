//! `markbase serve [webdav]`: the catalog over WebDAV.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;
use markbase_dav::{Access, Credentials, DavServer};
use markbase_vfs::Vfs;

use super::{bind_first, resolve, runtime, stop_signal};
use crate::cli::{Listen, WebDavArgs};

/// Serves `vfs` on `args.listen` until SIGINT or SIGTERM.
pub fn serve(vfs: Vfs, args: &WebDavArgs) -> anyhow::Result<()> {
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

/// Binds the first of `addresses` that can be bound.
async fn bind(
    vfs: Arc<Vfs>,
    listen: &Listen,
    addresses: &[SocketAddr],
    access: Access,
) -> anyhow::Result<DavServer> {
    let failed = match bind_first(addresses, |address| {
        DavServer::bind(Arc::clone(&vfs), address, access.clone())
    })
    .await
    {
        Ok(server) => return Ok(server),
        Err(failed) => failed
            .iter()
            .map(|(address, err)| format!("{address}: {err}"))
            .collect::<Vec<_>>(),
    };
    match addresses {
        [address] if address.to_string() == listen.to_string() => {
            bail!("cannot listen on {}", failed.join("; "))
        }
        _ => bail!("cannot listen on {listen} ({})", failed.join("; ")),
    }
}
