//! The server: a listener on one TCP port for NFSv3 and MOUNT, the clients it
//! accepts, and its stop.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use markbase_vfs::Vfs;
use nfs3_server::tcp::{NFSTcp, NFSTcpListener};

use crate::fs::CatalogFs;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {cause}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The system's error.
        cause: io::Error,
    },
    /// The address is one other machines reach, and no client network was allowed.
    #[error(
        "refusing to serve NFS on {0}, which other machines can reach, without --allow: name the client networks (for example --allow 192.168.1.0/24), or listen on 127.0.0.1"
    )]
    Reachable(SocketAddr),
    /// The server needs a multi-threaded tokio runtime (it writes on its own threads).
    #[error("the NFS server needs a multi-threaded tokio runtime")]
    Runtime,
}

/// An NFSv3 server of one catalog, bound and ready to [`run`](NfsServer::run).
pub struct NfsServer {
    listener: NFSTcpListener<CatalogFs>,
    address: SocketAddr,
    mounts: MountsServed,
}

/// How many MOUNT requests a server answered with a handle.
#[derive(Clone, Debug, Default)]
pub struct MountsServed(Arc<AtomicU64>);

impl MountsServed {
    /// The MOUNTs answered so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl NfsServer {
    /// Binds `address` for `vfs`. Clients on the loopback are always served; others
    /// only from the networks of `allowed`, which must name at least one unless
    /// `address` is a loopback one. A client from elsewhere is disconnected as soon
    /// as it connects.
    pub async fn bind(
        vfs: Arc<Vfs>,
        address: SocketAddr,
        allowed: Vec<IpNet>,
    ) -> Result<Self, ServeError> {
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread
        {
            return Err(ServeError::Runtime);
        }
        if !address.ip().is_loopback() && allowed.is_empty() {
            return Err(ServeError::Reachable(address));
        }
        // Handles carry the catalog's id as the server crate's generation: they stay
        // valid across restarts, and those of another catalog are refused.
        let generation = vfs.catalog_id();
        let mut listener = NFSTcpListener::bind_with_generation(
            &address.to_string(),
            CatalogFs::new(vfs),
            generation,
        )
        .await
        .map_err(|cause| ServeError::Bind { address, cause })?;
        let address = SocketAddr::new(listener.get_listen_ip(), listener.get_listen_port());
        listener.set_client_filter(Arc::new(move |client: &SocketAddr| {
            allows(&allowed, client.ip())
        }));
        let mounts = MountsServed::default();
        let (mounted, mut signals) = tokio::sync::mpsc::channel(16);
        listener.set_mount_listener(mounted);
        let counter = mounts.clone();
        tokio::spawn(async move {
            while let Some(mounted) = signals.recv().await {
                if mounted {
                    counter.0.fetch_add(1, Ordering::AcqRel);
                }
            }
        });
        Ok(Self {
            listener,
            address,
            mounts,
        })
    }

    /// The address it listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The MOUNT requests it answered (a mount of it was asked for and got a handle).
    pub fn mounts_served(&self) -> MountsServed {
        self.mounts.clone()
    }

    /// Serves until `stop` completes, then stops taking connections and requests.
    /// Writes acknowledged as committed are already on disk; the core records what
    /// was written since the last COMMIT when the [`Vfs`] is dropped.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::select! {
            served = self.listener.handle_forever() => {
                if let Err(err) = served {
                    tracing::error!("the NFS server stopped accepting connections: {err}");
                }
            }
            () = stop => tracing::info!("stopping the NFS server"),
        }
    }
}

/// Whether a client at `ip` may be served: one on the loopback, or in `allowed`.
fn allows(allowed: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || allowed.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_allowed_networks_are_served_others_not() {
        let allowed: Vec<IpNet> = vec!["192.168.1.0/24".parse().unwrap()];
        assert!(allows(&[], "127.0.0.1".parse().unwrap()));
        assert!(allows(&[], "::1".parse().unwrap()));
        assert!(allows(&allowed, "192.168.1.7".parse().unwrap()));
        assert!(allows(&allowed, "::ffff:192.168.1.7".parse().unwrap()));
        assert!(!allows(&allowed, "192.168.2.7".parse().unwrap()));
        assert!(!allows(&[], "10.0.0.1".parse().unwrap()));
    }
}
