//! [`GuardedBody`]: a request body that may not outgrow the store nor stall.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// More bytes than the store has room for.
    #[error("the request body exceeds the {0} bytes the store has free")]
    TooLarge(u64),
    /// No bytes for too long.
    #[error("no part of the request body arrived for {0:?}")]
    Stalled(Duration),
    /// The connection failed.
    #[error("reading the request body: {0}")]
    Client(#[from] hyper::Error),
}

/// A body of at most `limit` bytes whose parts must come at most `idle` apart. A PUT
/// whose body fails is an upload that never completes, so nothing of it is kept.
pub(crate) struct GuardedBody {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl GuardedBody {
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
                    }
                    this.remaining -= len;
                }
                this.deadline.as_mut().reset(Instant::now() + this.idle);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled(this.idle)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
