//! `markbase serve nfs`: the catalog over NFSv3.

use std::sync::Arc;

use anyhow::bail;
use markbase_nfs::NfsServer;
use markbase_vfs::Vfs;

use super::{bind_first, resolve, runtime, stop_signal};
use crate::cli::NfsArgs;

/// Serves `vfs` over NFSv3 on `args.listen` until SIGINT or SIGTERM.
pub fn serve(vfs: Vfs, args: &NfsArgs) -> anyhow::Result<()> {
    let addresses = resolve(&args.listen)?;
    let vfs = Arc::new(vfs);
    let catalog = vfs.catalog_path().display().to_string();
    let read_only = vfs.config().read_only;
    let runtime = runtime()?;
    runtime.block_on(async {
        let bound = bind_first(&addresses, |address| {
            NfsServer::bind(Arc::clone(&vfs), address, args.allow.clone())
        })
        .await;
        // Each error names its address.
        let server = match bound {
            Ok(server) => server,
            Err(failed) => {
                let failed: Vec<String> = failed.iter().map(|(_, err)| err.to_string()).collect();
                bail!("{}", failed.join("; "));
            }
        };
        let address = server.local_addr();
        let stop = stop_signal()?;
        eprintln!(
            "markbase: serving {catalog} over NFSv3 at {address}{}; Ctrl-C stops",
            if read_only { " (read-only)" } else { "" }
        );
        eprintln!("markbase: {}", mount_hint(address));
        server.run(stop).await;
        Ok(())
    })?;
    // Requests still running finish or are dropped within the deadline; each COMMIT
    // answered is on disk, and dropping the catalog records what was written since.
    runtime.shutdown_timeout(std::time::Duration::from_secs(3));
    drop(vfs);
    eprintln!("markbase: stopped serving");
    Ok(())
}

/// How a client mounts the server at `address`.
fn mount_hint(address: std::net::SocketAddr) -> String {
    let (host, port) = (address.ip(), address.port());
    let host = if host.is_ipv6() {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let options = format!("vers=3,tcp,port={port},mountport={port}");
    format!(
        "mount with: mount_nfs -o {options},nolocks,rsize=1048576,wsize=1048576 {host}:/ DIR (macOS), \
         mount -t nfs -o {options},nolock {host}:/ DIR (Linux)"
    )
}
