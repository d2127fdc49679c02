//! The HTTP side of the push receiver (axum): routes, query strings, status codes. Plain HTTP on the LAN, as the
//! devices speak it; bind it to the interface the terminals reach.
//!
//! | request                                  | answer                                                       |
//! |------------------------------------------|--------------------------------------------------------------|
//! | `GET /iclock/cdata?SN=..&options=all`    | the options block with the stored stamps                     |
//! | `POST /iclock/cdata?SN=..&table=T&Stamp=`| `OK` once stored; 503 when the buffer refuses (device retries) |
//! | `GET /iclock/getrequest?SN=..`           | `C:<id>:<command>` lines, or `OK`                            |
//! | `POST /iclock/devicecmd?SN=..`           | `OK`; results recorded                                       |
//! | `GET /iclock/ping?SN=..`                 | `OK`                                                         |
//!
//! An unknown serial gets 403, a body over the limit 413; neither is `OK`, so nothing is lost on the device.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::receiver::{AdmsReceiver, Reply};
use crate::sink::PunchSink;

/// Most query parameters read from one request.
const MAX_QUERY_PAIRS: usize = 32;
/// Longest query string read.
const MAX_QUERY_BYTES: usize = 4096;

/// The receiver's routes.
pub fn router<S: PunchSink>(receiver: Arc<AdmsReceiver<S>>) -> Router {
    let limit = receiver.options().max_body_bytes;
    Router::new()
        .route("/iclock/cdata", get(handshake::<S>).post(upload::<S>))
        .route("/iclock/getrequest", get(getrequest::<S>))
        .route("/iclock/devicecmd", axum::routing::post(devicecmd::<S>))
        .route("/iclock/ping", get(ping::<S>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(receiver)
}

/// Serves the receiver on `listener` until `shutdown`.
///
/// # Errors
/// When serving fails.
pub async fn serve<S: PunchSink>(
    listener: TcpListener,
    receiver: Arc<AdmsReceiver<S>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(receiver).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The `key=value` pairs of a query string, percent-decoded, at most [`MAX_QUERY_PAIRS`].
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    let query = query.get(..MAX_QUERY_BYTES).unwrap_or(query);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_QUERY_PAIRS)
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn new(raw: Option<String>) -> Self {
        Self(raw.as_deref().map(query_pairs).unwrap_or_default())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn unknown() -> Response {
    text(StatusCode::FORBIDDEN, "ERROR: device not registered at this site".into())
}

fn reply(reply: Reply) -> Response {
    match reply {
        Reply::Text(body) => text(StatusCode::OK, body),
        Reply::UnknownDevice => unknown(),
        Reply::Retry(message) => text(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

async fn handshake<S: PunchSink>(
    State(r): State<Arc<AdmsReceiver<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw);
    let Some(device) = r.device(query.get("SN"), peer.ip(), "cdata") else { return unknown() };
    match r.handshake(&device).await {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("ERROR: {e}")),
    }
}

async fn upload<S: PunchSink>(
    State(r): State<Arc<AdmsReceiver<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let query = Query::new(raw);
    let Some(device) = r.device(query.get("SN"), peer.ip(), "cdata") else { return unknown() };
    let table = query.get("table").unwrap_or("").to_ascii_uppercase();
    let stamp = query.get("Stamp").or_else(|| query.get("OpStamp")).and_then(|s| s.trim().parse::<u64>().ok());
    reply(r.upload(&device, &table, stamp, &body).await)
}

async fn getrequest<S: PunchSink>(
    State(r): State<Arc<AdmsReceiver<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw);
    let Some(device) = r.device(query.get("SN"), peer.ip(), "getrequest") else { return unknown() };
    text(StatusCode::OK, r.poll(&device, query.get("INFO")))
}

async fn devicecmd<S: PunchSink>(
    State(r): State<Arc<AdmsReceiver<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let query = Query::new(raw);
    let Some(device) = r.device(query.get("SN"), peer.ip(), "devicecmd") else { return unknown() };
    text(StatusCode::OK, r.command_results(&device, &body))
}

async fn ping<S: PunchSink>(
    State(r): State<Arc<AdmsReceiver<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw);
    match r.device(query.get("SN"), peer.ip(), "ping") {
        Some(_) => text(StatusCode::OK, "OK".into()),
        None => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded_and_bounded() {
        let pairs = query_pairs("SN=OIN7030067&table=ATTLOG&Stamp=9999&INFO=Ver%206.60,12,3,400&flag");
        assert_eq!(pairs[0], ("SN".into(), "OIN7030067".into()));
        assert_eq!(pairs[3], ("INFO".into(), "Ver 6.60,12,3,400".into()));
        assert_eq!(pairs[4], ("flag".into(), String::new()));
        assert_eq!(query_pairs("a=%zz&b=%4").iter().map(|p| p.1.as_str()).collect::<Vec<_>>(), ["%zz", "%4"]);
        assert_eq!(query_pairs(&"a=b&".repeat(100)).len(), MAX_QUERY_PAIRS);
    }
}
