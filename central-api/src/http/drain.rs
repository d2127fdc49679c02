//! Reading out a request body the handler left unread, so a refusal reaches a client that is still sending.
//!
//! A route may answer before it reads the body: a bad token (401), a forbidden site (403), a declared length over the
//! limit (413). hyper then closes the connection with the client's bytes still unread, the kernel resets it, and a
//! client still writing sees "broken pipe" or "connection reset" instead of the answer. Like a web server's lingering
//! close, [`drain_unread`] gets the unread body back when the handler drops it and reads it to its end in the
//! background while the answer is written, so the connection closes (or is kept alive) cleanly. What it reads is
//! bounded by [`DRAIN_LIMIT_BYTES`] and [`DRAIN_TIME`]; past either it gives up and the connection closes as before.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::oneshot;

/// The most bytes read and discarded after an answer (a client sending more gets the connection closed).
pub const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// The longest time spent reading a body out after an answer.
pub const DRAIN_TIME: Duration = Duration::from_secs(30);

/// The middleware (see the module docs).
pub async fn drain_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (back, returned) = oneshot::channel();
    let body = Body::new(Returning { inner: Some(body), back: Some(back) });
    let response = next.run(Request::from_parts(parts, body)).await;
    // The handler has finished with the request by now, unless it handed the body to a task of its own; then the
    // body goes back to nobody and is dropped wherever that task ends.
    let mut returned = returned;
    if let Ok(rest) = returned.try_recv() {
        tokio::spawn(read_out(rest));
    }
    response
}

/// Reads `body` to its end (within the bounds) and discards it.
async fn read_out(mut body: Body) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut read: u64 = 0;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > DRAIN_LIMIT_BYTES {
                    tracing::debug!(read, "unread request body over the drain limit; closing");
                    return;
                }
            }
            Ok(Some(Err(_)) | None) => return,
            Err(_) => {
                tracing::debug!(read, "unread request body still arriving after the drain time; closing");
                return;
            }
        }
    }
}

/// A request body that hands itself back through `back` when dropped before its end.
struct Returning {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Body>>,
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(|| http_body::SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(inner), Some(back)) = (self.inner.take(), self.back.take()) {
            if !inner.is_end_stream() {
                // The middleware may be gone already (a handler that outlived its request); then the body is dropped.
                let _ = back.send(inner);
            }
        }
    }
}
