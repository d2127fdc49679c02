//! What the Hikvision and Dahua simulators share: HTTP digest authentication checked the way the terminals do
//! (a `401` with a fresh nonce, then the `Authorization` answer recomputed with the `digest_auth` crate and
//! compared), and a hub of open event streams that events are pushed into and that can be dropped at will.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use digest_auth::{AuthContext, AuthorizationHeader, HttpMethod};
use rand::Rng;
use tokio::sync::mpsc;

/// The credentials a simulated device accepts, and the nonces it handed out.
#[derive(Debug)]
pub struct DigestGate {
    realm: String,
    user: String,
    password: Mutex<String>,
    nonces: Mutex<HashSet<String>>,
    /// Requests refused with credentials that did not match (not counting the first, credential-less one).
    pub failures: AtomicUsize,
}

impl DigestGate {
    pub fn new(realm: &str, user: &str, password: &str) -> Self {
        Self {
            realm: realm.to_owned(),
            user: user.to_owned(),
            password: Mutex::new(password.to_owned()),
            nonces: Mutex::new(HashSet::new()),
            failures: AtomicUsize::new(0),
        }
    }

    /// Changes the password (the device's administrator changed it).
    pub fn set_password(&self, password: &str) {
        *self.password.lock().unwrap_or_else(|p| p.into_inner()) = password.to_owned();
    }

    /// `None` when the request carries a valid answer to one of our challenges; else the `401` to send.
    pub fn check(&self, method: &Method, uri: &str, headers: &HeaderMap) -> Option<Response> {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Some(self.challenge());
        };
        if self.valid(method, uri, value) {
            return None;
        }
        self.failures.fetch_add(1, Ordering::SeqCst);
        Some(self.challenge())
    }

    fn valid(&self, method: &Method, uri: &str, value: &str) -> bool {
        let Ok(mut answer) = AuthorizationHeader::parse(value) else { return false };
        let known = self.nonces.lock().unwrap_or_else(|p| p.into_inner()).contains(&answer.nonce);
        if !known || answer.username != self.user || answer.uri != uri || answer.realm != self.realm {
            return false;
        }
        let received = answer.response.clone();
        let password = self.password.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let context = AuthContext::new_with_method(
            self.user.as_str(),
            password.as_str(),
            uri,
            None::<&[u8]>,
            HttpMethod::from(method.as_str().to_owned()),
        );
        answer.digest(&context);
        answer.response == received
    }

    fn challenge(&self) -> Response {
        let nonce = format!("{:032x}", rand::rng().random::<u128>());
        self.nonces.lock().unwrap_or_else(|p| p.into_inner()).insert(nonce.clone());
        let value = format!(r#"Digest realm="{}", qop="auth", nonce="{nonce}", algorithm="MD5""#, self.realm);
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, value)], "Unauthorized").into_response()
    }
}

/// The open event streams of a simulated device.
#[derive(Debug, Default)]
pub struct StreamHub {
    senders: Mutex<Vec<mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>>,
    /// Streams opened so far.
    pub opened: AtomicUsize,
}

impl StreamHub {
    /// A new stream body of `content_type`, starting with `first` (may be empty).
    pub fn open(&self, content_type: &str, first: Bytes) -> Response {
        let (tx, rx) = mpsc::unbounded_channel();
        if !first.is_empty() {
            let _ = tx.send(Ok(first));
        }
        self.lock().push(tx);
        self.opened.fetch_add(1, Ordering::SeqCst);
        let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        ([(header::CONTENT_TYPE, content_type.to_owned())], Body::from_stream(body)).into_response()
    }

    /// Sends bytes to every open stream (closed ones are forgotten).
    pub fn send(&self, bytes: &Bytes) {
        self.lock().retain(|tx| tx.send(Ok(bytes.clone())).is_ok());
    }

    /// Breaks every open stream mid-connection (the client sees the body fail).
    pub fn drop_all(&self) {
        for tx in self.lock().drain(..) {
            let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated drop")));
        }
    }

    /// Streams currently open.
    pub fn open_count(&self) -> usize {
        let mut senders = self.lock();
        senders.retain(|tx| !tx.is_closed());
        senders.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A part of a multipart stream: delimiter, headers with the length, body, line break.
pub fn part(boundary: &str, content_type: &str, body: &[u8]) -> Bytes {
    let mut out =
        format!("--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Shared handle type of the simulators' state.
pub type Shared<T> = Arc<Mutex<T>>;
