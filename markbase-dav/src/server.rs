//! [`DavServer`]: HTTP/1.1 on hyper, one task per connection, a bounded shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dav_server::body::Body;
use dav_server::{DavConfig, DavHandler};
use http::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use markbase_vfs::Vfs;
use tokio::net::TcpListener;

use crate::auth::Access;
use crate::body::GuardedBody;
use crate::etags::ReplyBody;
use crate::fs::MarkbaseDavFs;
use crate::guard;
use crate::locks::ExpiringLocks;

/// Bytes read from a file per GET body chunk.
const READ_CHUNK: usize = 1 << 20;

/// Largest request head (request line and headers).
const MAX_HEADER_BYTES: usize = 64 << 10;

/// How long a client may take to send its request head, unless set with
/// [`DavServer::with_header_timeout`].
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long running requests may go on once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a request body may stall before the request fails, unless set with
/// [`DavServer::with_body_idle`].
pub const DEFAULT_BODY_IDLE: Duration = Duration::from_secs(60);

/// A WebDAV server over one catalog, bound to one address.
pub struct DavServer {
    listener: TcpListener,
    service: Arc<Service>,
    header_timeout: Duration,
}

/// What every request needs.
struct Service {
    vfs: Arc<Vfs>,
    handler: DavHandler,
    access: Access,
    body_idle: Duration,
}

impl DavServer {
    /// Binds `address` and prepares to serve `vfs` (read-only if it was opened so) to
    /// those `access` admits.
    ///
    /// A read-only server takes no locks (LOCK gets 405 and OPTIONS does not offer it):
    /// that is how macOS Finder tells a read-only volume, which it then mounts
    /// read-only instead of failing each copy into it.
    ///
    /// A GET of a folder (what a browser sends) gets an HTML page listing its entries
    /// (but those whose names start with `.`) as links, so that a browser can look
    /// around and download; WebDAV clients list folders with PROPFIND.
    pub async fn bind(vfs: Arc<Vfs>, address: SocketAddr, access: Access) -> io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let builder = DavHandler::builder()
            .filesystem(Box::new(MarkbaseDavFs::new(Arc::clone(&vfs))))
            .read_buf_size(READ_CHUNK)
            .autoindex(true);
        let builder = if vfs.config().read_only {
            builder
        } else {
            builder.locksystem(Box::new(ExpiringLocks::new()))
        };
        let handler = builder.build_handler();
        Ok(Self {
            listener,
            service: Arc::new(Service {
                vfs,
                handler,
                access,
                body_idle: DEFAULT_BODY_IDLE,
            }),
            header_timeout: HEADER_TIMEOUT,
        })
    }

    /// Fails a request whose body stalls for `idle` (default 60 s).
    pub fn with_body_idle(mut self, idle: Duration) -> Self {
        if let Some(service) = Arc::get_mut(&mut self.service) {
            service.body_idle = idle;
        }
        self
    }

    /// Drops a connection whose request head (request line and headers) takes longer
    /// than `timeout` to arrive (default 30 s): a client that sends a request slowly,
    /// byte by byte, cannot hold a connection open for ever.
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// The address the server listens on (the port, when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and gives running
    /// requests 5 seconds to finish before they are cut.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.serve_connection(&graceful, stream, peer),
                    Err(err) => {
                        // Out of descriptors and the like: wait a little, go on.
                        tracing::warn!("accepting a connection failed: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => tracing::debug!("every connection finished"),
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("requests still running after {SHUTDOWN_GRACE:?} were cut");
            }
        }
    }

    fn serve_connection(
        &self,
        graceful: &GracefulShutdown,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
    ) {
        let service = Arc::clone(&self.service);
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let service = Arc::clone(&service);
            async move {
                let (method, uri) = (request.method().clone(), request.uri().clone());
                let started = std::time::Instant::now();
                let response = service.respond(request).await;
                // Time to the response head; a body may still be on its way.
                tracing::info!(
                    "{peer} {method} {uri} -> {} in {:.1?}",
                    response.status().as_u16(),
                    started.elapsed()
                );
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .max_header_size(MAX_HEADER_BYTES)
            .header_read_timeout(self.header_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("connection from {peer}: {err}");
            }
        });
    }
}

impl Service {
    async fn respond(&self, request: hyper::Request<Incoming>) -> Response<ReplyBody> {
        let propfind = request.method().as_str() == "PROPFIND";
        let mut response = self.dav_response(request).await;
        if propfind && response.status() == http::StatusCode::MULTI_STATUS {
            // Quoting changes the length.
            response.headers_mut().remove(http::header::CONTENT_LENGTH);
            response.map(ReplyBody::multistatus)
        } else {
            response.map(ReplyBody::plain)
        }
    }

    async fn dav_response(&self, request: hyper::Request<Incoming>) -> Response<Body> {
        let user = match self.access.check(&request) {
            Ok(user) => user,
            Err(unauthorized) => return unauthorized.response(),
        };
        if let Some(refused) = guard::refuse(&request) {
            return refused;
        }
        // Only a PUT body can be large: dav-server reads others whole, up to 64 KiB.
        let free = if request.method() == http::Method::PUT {
            self.free_bytes()
        } else {
            u64::MAX
        };
        if let Some(refused) = guard::refuse_upload(&request, free) {
            return refused;
        }
        let request = request.map(|body| GuardedBody::new(body, free, self.body_idle));
        match user {
            None => self.handler.handle(request).await,
            // Locks are owned by the user who took them.
            Some(user) => {
                let config = DavConfig::new().principal(user);
                self.handler.handle_with(config, request).await
            }
        }
    }

    /// Bytes the store's filesystem has free (no limit when it cannot say).
    fn free_bytes(&self) -> u64 {
        self.vfs.statfs().map_or(u64::MAX, |fs| {
            fs.blocks_available.saturating_mul(fs.block_size)
        })
    }
}
