//! Response bodies with `getetag` as RFC 4918 wants it: the quoted entity-tag the
//! ETag header sends (`"n3-0-1"`), as Apache and rclone write it. dav-server writes
//! it bare in PROPFIND replies, so a client comparing the two would see every file
//! as changed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use dav_server::body::Body;
use http_body::Frame;

const OPEN: &[u8] = b"<D:getetag>";
const CLOSE: &[u8] = b"</D:getetag>";
/// The end of one entry of a multistatus reply: no element spans it.
const ENTRY_END: &[u8] = b"</D:response>";

/// A dav-server response body, with PROPFIND replies' `getetag` quoted on the way.
pub(crate) struct ReplyBody {
    inner: Body,
    /// A multistatus reply's bytes not yet passed on (at most one entry), when
    /// rewriting.
    pending: Option<BytesMut>,
    /// Whether `inner` has ended (it must not be polled again).
    ended: bool,
}

impl ReplyBody {
    /// `inner` as it is.
    pub fn plain(inner: Body) -> Self {
        Self {
            inner,
            pending: None,
            ended: false,
        }
    }

    /// `inner`, a multistatus reply, with its `getetag` values quoted.
    pub fn multistatus(inner: Body) -> Self {
        Self {
            inner,
            pending: Some(BytesMut::new()),
            ended: false,
        }
    }
}

impl http_body::Body for ReplyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let Some(pending) = this.pending.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx);
        };
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        pending.extend_from_slice(&data);
                        // Pass on every whole entry; keep what may end in a cut element.
                        if let Some(end) = rfind(pending, ENTRY_END) {
                            let entries = pending.split_to(end + ENTRY_END.len());
                            return Poll::Ready(Some(Ok(Frame::data(quote_etags(&entries)))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    this.ended = true;
                    if !pending.is_empty() {
                        let rest = pending.split();
                        return Poll::Ready(Some(Ok(Frame::data(quote_etags(&rest)))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.pending {
            Some(pending) => self.ended && pending.is_empty(),
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.pending {
            // Quoting changes the length.
            Some(_) => http_body::SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// `xml` with every bare `getetag` value quoted.
fn quote_etags(xml: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(start) = find(rest, OPEN) {
        let value_at = start + OPEN.len();
        let Some(len) = find(&rest[value_at..], CLOSE) else {
            break;
        };
        let value = &rest[value_at..value_at + len];
        out.extend_from_slice(&rest[..value_at]);
        if value.first() == Some(&b'"') || value.starts_with(b"W/\"") {
            out.extend_from_slice(value);
        } else {
            out.extend_from_slice(b"\"");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\"");
        }
        rest = &rest[value_at + len..];
    }
    out.extend_from_slice(rest);
    out.freeze()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_etags_are_quoted_and_quoted_ones_kept() {
        let xml = b"<D:response><D:getetag>n3-0-1</D:getetag></D:response>\
            <D:response><D:getetag>\"q\"</D:getetag><D:getetag>W/\"w\"</D:getetag></D:response>\
            <D:getetag></D:getetag>";
        assert_eq!(
            &quote_etags(xml)[..],
            &b"<D:response><D:getetag>\"n3-0-1\"</D:getetag></D:response>\
            <D:response><D:getetag>\"q\"</D:getetag><D:getetag>W/\"w\"</D:getetag></D:response>\
            <D:getetag>\"\"</D:getetag>"[..]
        );
        // An element cut at the end is left as it is.
        assert_eq!(&quote_etags(b"a<D:getetag>n3")[..], b"a<D:getetag>n3");
    }
}
