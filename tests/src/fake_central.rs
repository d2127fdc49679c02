//! A stand-in for `central-api`'s ingest and status endpoints, for testing and benchmarking the agent's HTTPS
//! forwarder before (and independently of) the real central service.
//!
//! It speaks the real contract (bincode `PunchBatch` in, bincode `BatchAck` out, JSON `{"code","message"}` for 4xx)
//! and can be told to misbehave: fail with 500, stall, reject, refuse, or answer 200 without an acknowledgement. It
//! records which punch keys it "stored", so a test can check that every punch arrived and none was lost.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use protocol::{AgentStatus, BatchAck, Encoding, PunchBatch, PunchKey, RejectionKind};
use tokio_util::sync::CancellationToken;

/// How the fake answers the next ingest requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Store and acknowledge.
    Ack,
    /// HTTP 500.
    ServerError,
    /// Never answer (the client's timeout fires).
    Stall,
    /// 200 with a `Rejected` acknowledgement of kind `retry`.
    Reject(String),
    /// 200 with a `Rejected` acknowledgement of the given kind.
    RejectAs(RejectionKind, String),
    /// This HTTP status with a JSON error body.
    Refuse(u16, String),
    /// 403 with a JSON error body.
    Forbidden(String),
    /// 200 with a body that is not an acknowledgement.
    OkWithoutAck,
    /// Store the batch, then fail with 500: central committed but the agent never hears it.
    StoreThenFail,
}

/// One batch as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: usize,
    pub acknowledged: bool,
}

#[derive(Default)]
struct Inner {
    behaviour: Option<Behaviour>,
    received: Vec<Received>,
    stored: HashSet<PunchKey>,
    deliveries: u64,
    statuses: Vec<AgentStatus>,
    /// Requests to paths it does not serve ("METHOD /path"), answered 404 as a central without them would.
    unknown: Vec<String>,
}

struct Shared {
    token: String,
    record_batches: bool,
    inner: Mutex<Inner>,
}

/// A running fake central; stops when dropped.
pub struct FakeCentral {
    addr: SocketAddr,
    url: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl FakeCentral {
    /// Starts on a free port, acknowledging, expecting `token`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(token: &str) -> anyhow::Result<Self> {
        Self::start_with(token, true).await
    }

    /// As [`FakeCentral::start`]; `record_batches = false` keeps only keys and counts (for million-punch benches).
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start_with(token: &str, record_batches: bool) -> anyhow::Result<Self> {
        Self::start_inner(token, record_batches, None).await
    }

    /// As [`FakeCentral::start`], over TLS with `config` (see [`crate::tls`]); the URL is `https://localhost:<port>`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start_tls(token: &str, config: rustls::ServerConfig) -> anyhow::Result<Self> {
        Self::start_inner(token, true, Some(config)).await
    }

    async fn start_inner(token: &str, record_batches: bool, tls: Option<rustls::ServerConfig>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { token: token.to_owned(), record_batches, inner: Mutex::default() });
        let router = Router::new()
            .route("/api/v1/ingest", post(ingest))
            .route("/api/v1/status", post(status))
            .fallback(unknown)
            .layer(axum::extract::DefaultBodyLimit::max(protocol::limits::MAX_ENVELOPE_BYTES))
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let serve_stop = stop.clone().cancelled_owned();
        let scheme = if tls.is_some() { "https" } else { "http" };
        match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, router).with_graceful_shutdown(serve_stop).await;
            }),
            Some(config) => tokio::spawn(async move {
                let listener = crate::tls::TlsListener::new(listener, config);
                let _ = axum::serve(listener, router).with_graceful_shutdown(serve_stop).await;
            }),
        };
        let host = if scheme == "https" { "localhost".to_owned() } else { addr.ip().to_string() };
        Ok(Self { addr, url: format!("{scheme}://{host}:{}", addr.port()), shared, stop })
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The requests to paths it does not serve, as "METHOD /path", in order.
    pub fn unknown_requests(&self) -> Vec<String> {
        self.lock().unknown.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.lock().behaviour = Some(behaviour);
    }

    /// Every batch received, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Distinct punch keys stored.
    pub fn stored_keys(&self) -> HashSet<PunchKey> {
        self.lock().stored.clone()
    }

    pub fn stored_count(&self) -> usize {
        self.lock().stored.len()
    }

    /// Punches received in stored batches, counting re-deliveries.
    pub fn deliveries(&self) -> u64 {
        self.lock().deliveries
    }

    pub fn statuses(&self) -> Vec<AgentStatus> {
        self.lock().statuses.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeCentral {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer {}", shared.token).as_str())
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "code": code, "message": message }))).into_response()
}

async fn ingest(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&shared, &headers) {
        // As central answers a token it does not know.
        return json_error(StatusCode::UNAUTHORIZED, "bad_token", "unknown agent token");
    }
    let batch: PunchBatch = match protocol::decode(&body, Encoding::Bincode) {
        Ok(batch) => batch,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_batch", &e.to_string()),
    };
    let behaviour = shared.inner.lock().unwrap_or_else(|p| p.into_inner()).behaviour.clone().unwrap_or(Behaviour::Ack);
    let store = matches!(behaviour, Behaviour::Ack | Behaviour::StoreThenFail);
    {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        if shared.record_batches {
            inner.received.push(Received {
                first_seq: batch.first_seq,
                last_seq: batch.last_seq,
                count: batch.punches.len(),
                acknowledged: behaviour == Behaviour::Ack,
            });
        }
        if store {
            inner.deliveries += batch.punches.len() as u64;
            for item in &batch.punches {
                inner.stored.insert(item.punch.key());
            }
        }
    }
    let ack = |outcome: BatchAck| match protocol::encode(&outcome, Encoding::Bincode) {
        Ok(bytes) => (StatusCode::OK, [("content-type", Encoding::BINCODE_CONTENT_TYPE)], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let count = u32::try_from(batch.punches.len()).unwrap_or(u32::MAX);
    match behaviour {
        Behaviour::Ack => ack(BatchAck::stored(&batch, count, 0, 0)),
        Behaviour::ServerError | Behaviour::StoreThenFail => {
            (StatusCode::INTERNAL_SERVER_ERROR, "database unavailable").into_response()
        }
        Behaviour::Stall => {
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Behaviour::Reject(reason) => ack(BatchAck::rejected(&batch, RejectionKind::Retry, reason)),
        Behaviour::RejectAs(kind, reason) => ack(BatchAck::rejected(&batch, kind, reason)),
        Behaviour::Refuse(status, message) => {
            json_error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "refused", &message)
        }
        Behaviour::Forbidden(message) => json_error(StatusCode::FORBIDDEN, "agent_disabled", &message),
        Behaviour::OkWithoutAck => (StatusCode::OK, "ok").into_response(),
    }
}

async fn status(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&shared, &headers) {
        return json_error(StatusCode::FORBIDDEN, "bad_token", "unknown agent token");
    }
    match protocol::decode::<AgentStatus>(&body, Encoding::Bincode) {
        Ok(status) => {
            shared.inner.lock().unwrap_or_else(|p| p.into_inner()).statuses.push(status);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "bad_status", &e.to_string()),
    }
}

/// Any path it does not serve: recorded, then 404 with a plain body (as an older central, or any web server, answers).
async fn unknown(State(shared): State<Arc<Shared>>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    shared.inner.lock().unwrap_or_else(|p| p.into_inner()).unknown.push(format!("{method} {}", uri.path()));
    (StatusCode::NOT_FOUND, "not found").into_response()
}
