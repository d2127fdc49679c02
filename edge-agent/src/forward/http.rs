//! The HTTPS link to `central-api`: `POST /api/v1/ingest` with a bincode [`PunchBatch`], answered by a bincode
//! [`BatchAck`]; `POST /api/v1/status` with a bincode [`AgentStatus`].
//!
//! reqwest with rustls only (never OpenSSL); the server is checked against the configured CA bundle, or the CA pinned
//! by its SHA-256 (`ca_fingerprint`, [`super::pin`]), else the built-in web roots, and a client certificate is
//! presented when configured. Only a 200 whose body decodes as a `BatchAck`
//! is an answer; a 2xx without one, a 4xx, a 5xx or a transport error is not, and the batch stays buffered.

use std::path::PathBuf;
use std::time::Duration;

use protocol::{AgentStatus, BatchAck, Encoding, PunchBatch};
use reqwest::StatusCode;

use super::ForwardError;

/// Largest response body read, so a misbehaving server cannot make the agent allocate without bound.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct HttpLinkOptions {
    /// The central service's base URL, such as `https://central.example.com`.
    pub base_url: String,
    pub token: String,
    /// PEM bundle of CAs to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Trust the chain whose CA certificate (sent by central) has this SHA-256 instead ([`super::pin`]).
    pub ca_fingerprint: Option<[u8; 32]>,
    /// PEM client certificate (chain), optionally with its key in the same file.
    pub client_cert: Option<PathBuf>,
    /// PEM key for `client_cert`, when not in the same file.
    pub client_key: Option<PathBuf>,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpLink {
    client: reqwest::Client,
    ingest_url: String,
    status_url: String,
    inbox_url: String,
    token: String,
    request_timeout: Duration,
}

impl HttpLink {
    /// # Errors
    /// [`ForwardError::Setup`] when a certificate file cannot be read or parsed.
    pub fn new(options: HttpLinkOptions) -> Result<Self, ForwardError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("edge-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &options.ca_file {
            let pem = read(ca_file)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ForwardError::Setup(format!("CA file {}: {e}", ca_file.display())))?;
            if certs.is_empty() {
                return Err(ForwardError::Setup(format!("CA file {} holds no certificate", ca_file.display())));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pin) = options.ca_fingerprint {
            let client = match &options.client_cert {
                Some(cert_file) => Some(client_identity(cert_file, options.client_key.as_ref())?),
                None => None,
            };
            let tls = super::pin::client_config(pin, client).map_err(ForwardError::Setup)?;
            builder = builder.use_preconfigured_tls(tls);
        } else if let Some(cert_file) = &options.client_cert {
            let mut pem = read(cert_file)?;
            if let Some(key_file) = &options.client_key {
                pem.push(b'\n');
                pem.extend_from_slice(&read(key_file)?);
            }
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ForwardError::Setup(format!("client certificate {}: {e}", cert_file.display())))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| ForwardError::Setup(format!("HTTP client: {e}")))?;
        let base = options.base_url.trim_end_matches('/');
        Ok(Self {
            client,
            ingest_url: format!("{base}/api/v1/ingest"),
            status_url: format!("{base}/api/v1/status"),
            inbox_url: format!("{base}/api/v1/agent/inbox"),
            token: options.token,
            request_timeout: options.request_timeout,
        })
    }

    /// Sends one batch and returns the central service's answer.
    ///
    /// # Errors
    /// See [`ForwardError`]; none of them acknowledges anything.
    pub async fn send_batch(&self, batch: &PunchBatch) -> Result<BatchAck, ForwardError> {
        let body = protocol::encode(batch, Encoding::Bincode).map_err(|e| ForwardError::Encode(e.to_string()))?;
        let response = self.post(&self.ingest_url, body).await?;
        let status = response.status();
        let bytes = read_limited(response, MAX_RESPONSE_BYTES).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &bytes));
        }
        protocol::decode::<BatchAck>(&bytes, Encoding::Bincode)
            .map_err(|e| ForwardError::BadAck(format!("200 from ingest without a valid acknowledgement: {e}")))
    }

    /// Sends a status envelope.
    ///
    /// # Errors
    /// See [`ForwardError`].
    pub async fn send_status(&self, status: &AgentStatus) -> Result<(), ForwardError> {
        let body = protocol::encode(status, Encoding::Bincode).map_err(|e| ForwardError::Encode(e.to_string()))?;
        let response = self.post(&self.status_url, body).await?;
        let code = response.status();
        if code.is_success() {
            return Ok(());
        }
        let bytes = read_limited(response, MAX_RESPONSE_BYTES).await?;
        Err(refusal(code, &bytes))
    }

    /// Asks central for the agent's commands and, when it runs another version (`config_version`; `None` when not
    /// managed) or `force` is set, its configuration; central holds the request up to `wait` when it has nothing.
    ///
    /// # Errors
    /// See [`ForwardError`].
    pub async fn poll_inbox(
        &self,
        config_version: Option<u64>,
        force: bool,
        wait: Duration,
    ) -> Result<protocol::AgentInbox, ForwardError> {
        let mut query = vec![("wait_secs", wait.as_secs().to_string())];
        if let Some(version) = config_version {
            query.push(("config_version", version.to_string()));
        }
        if force {
            query.push(("force_config", "true".to_owned()));
        }
        let url = &self.inbox_url;
        let response = self
            .client
            .get(url)
            .query(&query)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, Encoding::BINCODE_CONTENT_TYPE)
            .timeout(wait + self.request_timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ForwardError::Timeout(format!("GET {url}: {e}"))
                } else {
                    ForwardError::Transport(format!("GET {url}: {}", error_chain(&e)))
                }
            })?;
        let status = response.status();
        let bytes = read_limited(response, protocol::limits::MAX_ENVELOPE_BYTES).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &bytes));
        }
        protocol::decode::<protocol::AgentInbox>(&bytes, Encoding::Bincode)
            .map_err(|e| ForwardError::BadAck(format!("200 from the inbox without a valid inbox: {e}")))
    }

    async fn post(&self, url: &str, body: Vec<u8>) -> Result<reqwest::Response, ForwardError> {
        self.client
            .post(url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, Encoding::BINCODE_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ForwardError::Timeout(format!("POST {url}: {e}"))
                } else {
                    ForwardError::Transport(format!("POST {url}: {}", error_chain(&e)))
                }
            })
    }
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ForwardError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ForwardError::Transport(format!("reading answer: {e}")))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ForwardError::BadAck(format!("answer longer than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a non-200 answer into an error: 400/401/403/413/422 carry `{"code","message"}` and are refusals (see
/// `Forwarder` for which are permanent), the rest are server trouble.
fn refusal(status: StatusCode, body: &[u8]) -> ForwardError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: String,
        message: String,
    }
    let text = || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    match status {
        StatusCode::BAD_REQUEST
        | StatusCode::FORBIDDEN
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNAUTHORIZED
        | StatusCode::UNPROCESSABLE_ENTITY => {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
                Ok(parsed) => (parsed.code, parsed.message),
                Err(_) => (String::new(), text()),
            };
            ForwardError::Refused { status: status.as_u16(), code, message }
        }
        _ => ForwardError::Server { status: status.as_u16(), body: text() },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ForwardError> {
    std::fs::read(path).map_err(|e| ForwardError::Setup(format!("cannot read {}: {e}", path.display())))
}

/// A client certificate chain and its key (from the same file when `key_file` is absent), for a rustls configuration.
fn client_identity(
    cert_file: &PathBuf,
    key_file: Option<&PathBuf>,
) -> Result<(Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>), ForwardError>
{
    let bad = |path: &PathBuf, e: &dyn std::fmt::Display| {
        ForwardError::Setup(format!("client certificate {}: {e}", path.display()))
    };
    let pem = read(cert_file)?;
    let certs =
        rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>().map_err(|e| bad(cert_file, &e))?;
    let key_path = key_file.unwrap_or(cert_file);
    let key_pem = read(key_path)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| bad(key_path, &e))?
        .ok_or_else(|| bad(key_path, &"holds no private key"))?;
    Ok((certs, key))
}
