//! [`Background`]: a [`DavServer`] on a thread and runtime of its own, for programs
//! (and tests) that keep their own thread for something else.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use markbase_vfs::Vfs;
use tokio::sync::oneshot;

use crate::auth::Access;
use crate::server::DavServer;

/// A server running on its own thread until [`Background::stop`] or drop.
pub struct Background {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Binds `address` and serves `vfs` to those `access` admits from a new thread, with
    /// the server's settings chosen by `configure` (`|server| server` for the defaults,
    /// `|server| server.with_header_timeout(timeout)`, ...).
    pub fn start(
        vfs: Arc<Vfs>,
        address: SocketAddr,
        access: Access,
        configure: impl FnOnce(DavServer) -> DavServer,
    ) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let server = configure(runtime.block_on(DavServer::bind(vfs, address, access))?);
        let address = server.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("markbase-serve".into())
            .spawn(move || {
                runtime.block_on(server.run(async {
                    let _ = stopped.await;
                }));
            })?;
        Ok(Self {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens (the port, when bound to port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, gives running requests their grace, and waits for the end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the WebDAV server thread panicked");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shut_down();
    }
}
