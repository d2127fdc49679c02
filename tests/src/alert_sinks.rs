//! Receivers for alert notifications, run by the tests: [`WebhookSink`], an HTTP server that records every POST
//! (and can answer the next ones with 500), and [`SmtpSink`], aiosmtpd from PyPI (`tests/smtp/sink.py`, an SMTP
//! server we did not write) reporting every message it accepted. [`signature_ok`] checks a webhook's signature
//! independently of central-api's code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// One request the webhook sink received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Whether the sink answered 2xx.
    pub accepted: bool,
}

impl Hook {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct HookState {
    received: Mutex<Vec<Hook>>,
    fail_next: AtomicU32,
}

/// An HTTP server on 127.0.0.1 recording POSTs to `/hook`; stops when dropped.
pub struct WebhookSink {
    addr: SocketAddr,
    state: Arc<HookState>,
    stop: CancellationToken,
}

async fn receive(State(state): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let fail = state.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let hook = Hook { headers, body: body.to_vec(), accepted: !fail };
    state.received.lock().unwrap_or_else(|p| p.into_inner()).push(hook);
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl WebhookSink {
    /// Starts on a free port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(HookState::default());
        let stop = CancellationToken::new();
        let app = Router::new().route("/hook", post(receive)).with_state(state.clone());
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { until.cancelled().await }).await;
        });
        Ok(Self { addr, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next `n` requests with 500.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Hook> {
        self.state.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until an accepted request's JSON satisfies `matches`, and returns it.
    ///
    /// # Errors
    /// When none came within `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<Hook> {
        let start = Instant::now();
        loop {
            if let Some(hook) = self.received().into_iter().find(|h| h.accepted && matches(&h.json())) {
                return Ok(hook);
            }
            if start.elapsed() > within {
                let seen: Vec<String> = self.received().iter().map(|h| h.json().to_string()).collect();
                bail!("no webhook {what} within {within:?}; received: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Whether `hook` carries `X-Alert-Signature: sha256=<hex>` equal to HMAC-SHA256 under `secret` of
/// `<X-Alert-Timestamp>.<body>`.
pub fn signature_ok(hook: &Hook, secret: &str) -> bool {
    let (Some(timestamp), Some(signature)) = (hook.header("x-alert-timestamp"), hook.header("x-alert-signature"))
    else {
        return false;
    };
    let Some(hex_mac) = signature.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex_decode(hex_mac) else { return false };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&hook.body);
    mac.verify_slice(&expected).is_ok()
}

fn hex_decode(text: &str) -> Result<Vec<u8>, ()> {
    if text.len() % 2 != 0 {
        return Err(());
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or(())?, 16).map_err(|_| ())).collect()
}

/// A message the SMTP sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

impl Mail {
    /// The `Subject:` header's value.
    pub fn subject(&self) -> Option<String> {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).map(|s| s.trim().to_owned())
    }
}

/// The Python interpreter that has aiosmtpd.
///
/// # Errors
/// When neither `SMTP_SINK_PYTHON` nor `target/smtp-venv` is there, saying how to create it.
pub fn smtp_python() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SMTP_SINK_PYTHON") {
        return Ok(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/smtp-venv/bin/python");
    if venv.is_file() {
        return Ok(venv);
    }
    bail!(
        "the SMTP sink is not available: SMTP_SINK_PYTHON is not set and {} does not exist. Run `bash .ci/test` (its \
         ensure_smtp_sink step creates it), or: python3 -m venv target/smtp-venv && target/smtp-venv/bin/pip install \
         aiosmtpd==1.4.6",
        venv.display()
    )
}

/// aiosmtpd on 127.0.0.1 with a free port; killed when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    _child: tokio::process::Child,
}

impl SmtpSink {
    /// Starts the sink and waits for its address.
    ///
    /// # Errors
    /// When Python or aiosmtpd is missing, or the sink does not start within 20 s.
    pub async fn start() -> anyhow::Result<Self> {
        let python = smtp_python()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/sink.py");
        let mut child = tokio::process::Command::new(&python)
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the SMTP sink did not start within 20 s")??
            .context("the SMTP sink exited before announcing its address")?;
        let addr: SocketAddr = first
            .strip_prefix("smtp-sink listening on ")
            .with_context(|| format!("unexpected first line {first:?}"))?
            .parse()?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sink = mails.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                let mail = Mail {
                    from: v["from"].as_str().unwrap_or_default().to_owned(),
                    to: v["to"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    data: v["data"].as_str().unwrap_or_default().to_owned(),
                };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(mail);
            }
        });
        Ok(Self { addr, mails, _child: child })
    }

    /// Every message so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for a message whose subject contains `needle`.
    ///
    /// # Errors
    /// When none came within `within`.
    pub async fn wait_for(&self, needle: &str, within: Duration) -> anyhow::Result<Mail> {
        let start = Instant::now();
        loop {
            if let Some(mail) = self.mails().into_iter().find(|m| m.subject().is_some_and(|s| s.contains(needle))) {
                return Ok(mail);
            }
            if start.elapsed() > within {
                let seen: Vec<Option<String>> = self.mails().iter().map(Mail::subject).collect();
                bail!("no e-mail with {needle:?} in its subject within {within:?}; received: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The environment that points central-api's `[alerts.smtp]` at this sink.
    pub fn central_env(&self) -> Vec<(String, String)> {
        vec![
            ("CENTRAL_API_ALERTS__SMTP__HOST".into(), self.addr.ip().to_string()),
            ("CENTRAL_API_ALERTS__SMTP__PORT".into(), self.addr.port().to_string()),
            ("CENTRAL_API_ALERTS__SMTP__TLS".into(), "none".into()),
            ("CENTRAL_API_ALERTS__SMTP__FROM".into(), "Attendance alerts <alerts@central.test>".into()),
        ]
    }
}
