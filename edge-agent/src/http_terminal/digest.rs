//! One HTTP(S) connection pool to one terminal, with digest authentication (RFC 7616 / 2617) computed by the
//! `digest_auth` crate: the first request goes out without credentials, the `401` challenge is kept and answered on
//! every later request (the nonce count rising), and a fresh challenge is taken when the device changes its nonce.
//!
//! A second `401` straight after answering a fresh challenge means the credentials are wrong
//! ([`HttpError::Unauthorized`]); nothing retries it here, since terminals lock an account after a few failures.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

/// Where and how to reach the device.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `http://host[:port]` or `https://host[:port]`, no path.
    pub base_url: Url,
    pub user: String,
    pub password: String,
    /// Bound on connecting and on every ordinary request (the event stream has none once it is open).
    pub timeout: Duration,
    /// Accept any certificate (self-signed terminals); off unless configured.
    pub accept_invalid_certs: bool,
    /// PEM bundle of the CA that signed the terminal's certificate.
    pub ca_pem: Option<Vec<u8>>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url} refused the credentials of user {user:?} (HTTP 401{detail})")]
    Unauthorized { url: String, user: String, detail: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url}: the answer is over the limit of {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("HTTP client setup: {0}")]
    Setup(String),
}

impl HttpError {
    /// The device could not be reached or did not answer (as opposed to answering wrongly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

/// A bounded answer: status, content type and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub url: String,
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The client of one terminal.
#[derive(Debug)]
pub struct DigestClient {
    http: reqwest::Client,
    options: ClientOptions,
    challenge: Mutex<Option<WwwAuthenticateHeader>>,
}

impl DigestClient {
    /// Builds the client (no I/O).
    ///
    /// # Errors
    /// [`HttpError::Setup`] for an unusable CA bundle.
    pub fn new(options: ClientOptions) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(options.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .danger_accept_invalid_certs(options.accept_invalid_certs);
        if let Some(pem) = &options.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| HttpError::Setup(format!("CA bundle: {e}")))?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| HttpError::Setup(e.to_string()))?;
        Ok(Self { http, options, challenge: Mutex::new(None) })
    }

    /// The device's base URL.
    pub fn base_url(&self) -> &Url {
        &self.options.base_url
    }

    /// Sends a request and returns the response with any status but an unanswerable `401`. `path_and_query`
    /// starts with `/`. With `stream` the response has no overall time limit (only the wait for its head is bounded).
    ///
    /// # Errors
    /// [`HttpError`] for a connection failure, a timeout, or refused credentials.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Vec<u8>)>,
        stream: bool,
    ) -> Result<reqwest::Response, HttpError> {
        let url = self.url(path_and_query)?;
        // The digest covers the request-target exactly as it goes on the wire.
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut answered_fresh = false;
        for _ in 0..3 {
            let authorization = self.authorization(&method, &target, body.as_ref().map(|b| b.1.as_slice()));
            let sent_credentials = authorization.is_some();
            let mut request = self.http.request(method.clone(), url.clone());
            if !stream {
                request = request.timeout(self.options.timeout);
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some((content_type, bytes)) = &body {
                request = request.header(CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            let response = tokio::time::timeout(self.options.timeout, request.send())
                .await
                .map_err(|_| HttpError::Timeout { url: url.to_string(), timeout: self.options.timeout })?
                .map_err(|e| self.transport_error(&url, &e))?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if sent_credentials && answered_fresh {
                return Err(self.unauthorized(&url, ""));
            }
            let challenge = digest_challenge(&response).map_err(|detail| self.unauthorized(&url, &detail))?;
            *self.lock() = Some(challenge);
            answered_fresh = true;
        }
        Err(self.unauthorized(&url, ""))
    }

    /// Sends a request and reads its whole body, up to `limit` bytes.
    ///
    /// # Errors
    /// As [`DigestClient::send`], plus [`HttpError::TooLarge`] and a broken body.
    pub async fn fetch(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Vec<u8>)>,
        limit: usize,
    ) -> Result<Answer, HttpError> {
        let mut response = self.send(method, path_and_query, body, false).await?;
        let url = response.url().to_string();
        let status = response.status();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|s| s.to_ascii_lowercase());
        let mut collected = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.options.timeout, response.chunk())
                .await
                .map_err(|_| HttpError::Timeout { url: url.clone(), timeout: self.options.timeout })?
                .map_err(|e| self.transport_error(response.url(), &e))?;
            let Some(chunk) = chunk else { break };
            if collected.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { url, limit });
            }
            collected.extend_from_slice(&chunk);
        }
        Ok(Answer { url, status, content_type, body: Bytes::from(collected) })
    }

    fn url(&self, path_and_query: &str) -> Result<Url, HttpError> {
        self.options.base_url.join(path_and_query).map_err(|e| HttpError::Protocol {
            url: format!("{}{path_and_query}", self.options.base_url),
            reason: format!("not a URL: {e}"),
        })
    }

    /// The `Authorization` value answering the kept challenge, if there is one.
    fn authorization(&self, method: &Method, uri: &str, body: Option<&[u8]>) -> Option<HeaderValue> {
        let mut guard = self.lock();
        let challenge = guard.as_mut()?;
        let context = AuthContext::new_with_method(
            self.options.user.as_str(),
            self.options.password.as_str(),
            uri,
            body,
            HttpMethod::from(method.as_str().to_owned()),
        );
        let header = challenge.respond(&context).ok()?;
        HeaderValue::from_str(&header.to_header_string()).ok()
    }

    fn unauthorized(&self, url: &Url, detail: &str) -> HttpError {
        let detail = if detail.is_empty() { String::new() } else { format!("; {detail}") };
        HttpError::Unauthorized { url: url.to_string(), user: self.options.user.clone(), detail }
    }

    fn transport_error(&self, url: &Url, error: &reqwest::Error) -> HttpError {
        if error.is_timeout() {
            return HttpError::Timeout { url: url.to_string(), timeout: self.options.timeout };
        }
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        HttpError::Unreachable { url: url.to_string(), reason }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<WwwAuthenticateHeader>> {
        self.challenge.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The digest challenge of a `401` response, or why there is none.
fn digest_challenge(response: &reqwest::Response) -> Result<WwwAuthenticateHeader, String> {
    let mut offered = Vec::new();
    for value in response.headers().get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        let trimmed = text.trim_start();
        let scheme = trimmed.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if scheme == "digest" {
            let parameters = &trimmed["digest".len()..];
            return WwwAuthenticateHeader::parse(parameters).map_err(|e| format!("unreadable digest challenge: {e}"));
        }
        offered.push(scheme);
    }
    if offered.is_empty() {
        Err("no WWW-Authenticate challenge".into())
    } else {
        Err(format!("the device offers {} authentication, not digest", offered.join(", ")))
    }
}
