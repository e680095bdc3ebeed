//! FUSE messages over the helper's stream socket: read one request, answer it.
//!
//! fuse-backend-rs's own fuse-t channel spins forever holding its lock once the
//! socket reaches end of file, and cannot be woken; this loop ends on end of file,
//! so shutting the socket down stops every thread.
//!
//! A request larger than the session takes (a helper that ignored its `--rwsize`) is
//! read past and answered with EIO alone; only a length no request can have ends
//! the channel.
//!
//! Replies do not go to the socket directly. fuse-backend-rs writes each with one
//! unlocked `writev`, and a stream socket splits a send that does not fit its free
//! buffer (Linux splits anything above about 36 KiB), so two large replies from
//! different threads could interleave and break the stream. Each request thread
//! writes its replies into its own pipe instead, and a forwarding thread sends each
//! reply whole, one at a time.

use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{FuseBuf, FuseDevWriter, Reader};
use parking_lot::Mutex;

use crate::fs::MarkbaseFs;

/// Size of a FUSE request header (`fuse_in_header`); its first field is the message length.
const IN_HEADER: usize = 40;

/// Size of a FUSE reply header (`fuse_out_header`); its first field is the message length.
const OUT_HEADER: usize = 16;

/// The largest request skipped and answered alone when it does not fit the buffer:
/// longer, the stream is taken for broken.
const MAX_SKIPPED: usize = 64 << 20;

/// What the helper sent next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// A request of this many bytes, in the buffer.
    Request(usize),
    /// A request too large for the buffer (the helper ignored the `--rwsize` it was
    /// given), read past: it is answered with an error, the channel goes on.
    TooLarge {
        /// Its length.
        len: usize,
        /// Its `unique`, which the error answers.
        unique: u64,
    },
    /// The end of the stream.
    End,
}

/// The largest write the session takes: 256 pages (the max write fuse-backend-rs
/// negotiates), which the helper is told as its `--rwsize`.
pub(crate) fn max_write() -> usize {
    256 * rustix::param::page_size()
}

/// The largest request: [`max_write`] bytes of data plus a header page.
pub(crate) fn buffer_size() -> usize {
    max_write() + 4096
}

/// The socket to the helper: one reader and one sender at a time, so that
/// messages are never split between threads.
pub(crate) struct Channel {
    socket: UnixStream,
    reading: Mutex<()>,
    sending: Mutex<()>,
}

impl Channel {
    /// The channel over `socket` (on macOS, made with `SO_NOSIGPIPE`).
    pub fn new(socket: UnixStream) -> Self {
        Self {
            socket,
            reading: Mutex::new(()),
            sending: Mutex::new(()),
        }
    }

    /// Ends every serving thread: their reads see end of file.
    pub fn shut_down(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Serves requests until the socket ends or breaks, writing the replies into
    /// `replies` for [`Channel::forward`].
    pub fn serve(&self, server: &Server<Arc<MarkbaseFs>>, replies: PipeWriter) {
        let mut request = vec![0u8; buffer_size()];
        let mut reply = vec![0u8; buffer_size()];
        loop {
            let len = match self.next_request(&mut request) {
                Ok(Next::Request(len)) => len,
                Ok(Next::TooLarge { len, unique }) => {
                    tracing::warn!(
                        "the fuse-t helper sent a request of {len} bytes, over the {} this session takes (its --rwsize); answering it with EIO",
                        buffer_size()
                    );
                    if let Err(err) = (&replies).write_all(&error_reply(unique, libc::EIO)) {
                        tracing::error!("cannot answer an oversized FUSE request: {err}");
                    }
                    continue;
                }
                Ok(Next::End) => break,
                Err(err) => {
                    tracing::error!("FUSE channel to the fuse-t helper failed: {err}");
                    self.shut_down();
                    break;
                }
            };
            let reader = match Reader::from_fuse_buffer(FuseBuf::new(&mut request[..len])) {
                Ok(reader) => reader,
                Err(err) => {
                    tracing::error!("unreadable FUSE request: {err}");
                    continue;
                }
            };
            let writer = match FuseDevWriter::<()>::new(replies.as_raw_fd(), &mut reply) {
                Ok(writer) => writer,
                Err(err) => {
                    tracing::error!("cannot build a FUSE reply: {err}");
                    continue;
                }
            };
            if let Err(err) = server.handle_message(reader, writer.into(), None, None) {
                tracing::debug!("FUSE request not answered: {err}");
            }
        }
    }

    /// Sends each reply read from `replies` whole, until the serving thread closes it.
    /// After the socket fails, replies are read and dropped, so that the serving
    /// thread never blocks on a full pipe.
    pub fn forward(&self, mut replies: PipeReader) {
        let mut buf = vec![0u8; buffer_size()];
        let mut socket_ok = true;
        loop {
            let len = match next_reply(&mut replies, &mut buf) {
                Ok(Some(len)) => len,
                Ok(None) => return,
                Err(err) => {
                    tracing::error!("FUSE reply unreadable: {err}");
                    self.shut_down();
                    break;
                }
            };
            if socket_ok && let Err(err) = self.send(&buf[..len]) {
                tracing::debug!("FUSE reply not sent to the fuse-t helper: {err}");
                socket_ok = false;
            }
        }
        // The stream of replies lost its framing: drain it until its writer ends.
        while matches!(replies.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Sends one whole message.
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let _sending = self.sending.lock();
        #[cfg(target_os = "linux")]
        let flags = rustix::net::SendFlags::NOSIGNAL;
        #[cfg(not(target_os = "linux"))]
        let flags = rustix::net::SendFlags::empty();
        let mut sent = 0;
        while sent < message.len() {
            match rustix::net::send(&self.socket, &message[sent..], flags) {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Reads the next request into `buf`, or past it when it does not fit.
    fn next_request(&self, buf: &mut [u8]) -> io::Result<Next> {
        let _reading = self.reading.lock();
        let mut socket = &self.socket;
        read_request(&mut socket, buf)
    }
}

/// Reads one request (a `fuse_in_header` whose first field is the whole request's
/// length, its `unique` at byte 8) into `buf`; one too long for `buf` but not absurd
/// is read past.
fn read_request(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<Next> {
    if !read_all_or_nothing(stream, &mut buf[..IN_HEADER])? {
        return Ok(Next::End);
    }
    let len = u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len > buf.len() && len <= MAX_SKIPPED {
        let unique = u64::from_ne_bytes(buf[8..16].try_into().expect("8 bytes"));
        let rest = (len - IN_HEADER) as u64;
        let skipped = io::copy(&mut stream.take(rest), &mut io::sink())?;
        if skipped < rest {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Next::TooLarge { len, unique });
    }
    check_length(len, IN_HEADER, buf.len(), "request")?;
    stream.read_exact(&mut buf[IN_HEADER..len])?;
    Ok(Next::Request(len))
}

/// A reply with only a header: request `unique` failed with `errno`.
fn error_reply(unique: u64, errno: i32) -> [u8; OUT_HEADER] {
    let mut reply = [0u8; OUT_HEADER];
    reply[..4].copy_from_slice(&(OUT_HEADER as u32).to_ne_bytes());
    reply[4..8].copy_from_slice(&(-errno).to_ne_bytes());
    reply[8..].copy_from_slice(&unique.to_ne_bytes());
    reply
}

/// Reads one whole reply into `buf`; `None` at end of file.
fn next_reply(replies: &mut PipeReader, buf: &mut [u8]) -> io::Result<Option<usize>> {
    read_message(replies, buf, OUT_HEADER, "reply")
}

/// Reads one FUSE message (a `header`-byte header whose first field is the whole
/// message's length) into `buf`; `None` at end of file.
fn read_message(
    stream: &mut impl Read,
    buf: &mut [u8],
    header: usize,
    what: &str,
) -> io::Result<Option<usize>> {
    if !read_all_or_nothing(stream, &mut buf[..header])? {
        return Ok(None);
    }
    let len = u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    check_length(len, header, buf.len(), what)?;
    stream.read_exact(&mut buf[header..len])?;
    Ok(Some(len))
}

/// Fails unless a message of `len` bytes is between its `header` and `max`.
fn check_length(len: usize, header: usize, max: usize, what: &str) -> io::Result<()> {
    if (header..=max).contains(&len) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} of {len} bytes (must be {header} to {max} bytes)"),
        ))
    }
}

/// Fills `buf`; false if the stream ended before its first byte.
fn read_all_or_nothing(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        match stream.read(&mut buf[done..]) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if done == 0 && err.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(false);
            }
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request header of `len` bytes in all, for request `unique`, and its body.
    fn request(len: usize, unique: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        bytes[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        bytes[8..16].copy_from_slice(&unique.to_ne_bytes());
        bytes
    }

    #[test]
    fn a_request_over_the_buffer_is_read_past_and_the_next_one_read() {
        let mut buf = vec![0u8; 4096];
        let mut stream = request(10_000, 7);
        stream.extend(request(100, 8));
        let mut stream = stream.as_slice();
        assert_eq!(
            read_request(&mut stream, &mut buf).unwrap(),
            Next::TooLarge {
                len: 10_000,
                unique: 7
            }
        );
        assert_eq!(
            read_request(&mut stream, &mut buf).unwrap(),
            Next::Request(100)
        );
        assert_eq!(&buf[8..16], &8u64.to_ne_bytes());
        assert_eq!(read_request(&mut stream, &mut buf).unwrap(), Next::End);
    }

    #[test]
    fn an_absurd_or_short_length_breaks_the_stream() {
        let mut buf = vec![0u8; 4096];
        let mut absurd = request(IN_HEADER, 1);
        absurd[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(read_request(&mut absurd.as_slice(), &mut buf).is_err());
        let mut short = request(IN_HEADER, 1);
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(read_request(&mut short.as_slice(), &mut buf).is_err());
        // Cut inside the skipped body.
        let cut = request(10_000, 2);
        assert!(read_request(&mut &cut[..5000], &mut buf).is_err());
    }

    #[test]
    fn the_error_reply_answers_its_request() {
        let reply = error_reply(42, libc::EIO);
        assert_eq!(u32::from_ne_bytes(reply[..4].try_into().unwrap()), 16);
        assert_eq!(
            i32::from_ne_bytes(reply[4..8].try_into().unwrap()),
            -libc::EIO
        );
        assert_eq!(u64::from_ne_bytes(reply[8..].try_into().unwrap()), 42);
    }
}
