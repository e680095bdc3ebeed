//! [`Stream`]: the TCP connection the NFS client talks over.
//!
//! It is nfs3_client's own tokio stream, except that the end of the stream is an
//! error: nfs3_client 0.9.1 reads a reply with a `read_exact` that loops forever
//! (without yielding) on a read of 0 bytes, so a server that closed the connection
//! would otherwise hang the caller instead of failing its call.

use std::io;
use std::net::SocketAddr;

use nfs3_client::io::{AsyncRead, AsyncWrite};
use nfs3_client::net::Connector;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use tokio::net::TcpStream;

/// A TCP connection whose reads fail at the end of the stream.
pub struct Stream(TokioIo<TcpStream>);

impl AsyncRead for Stream {
    async fn async_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.async_read(buf).await? {
            0 if !buf.is_empty() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            read => Ok(read),
        }
    }
}

impl AsyncWrite for Stream {
    async fn async_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.async_write(buf).await
    }
}

/// Connects [`Stream`]s.
pub struct StreamConnector;

impl Connector for StreamConnector {
    type Connection = Stream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Stream> {
        TokioConnector.connect(addr).await.map(Stream)
    }

    /// Not used: the bridge connects from any port (privileged ports take root and
    /// servers such as nfs3_server do not ask for them).
    async fn connect_with_port(&self, _: SocketAddr, _: u16) -> io::Result<Stream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "connecting from a chosen port is not supported",
        ))
    }
}
