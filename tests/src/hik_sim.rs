//! A simulated Hikvision face terminal speaking ISAPI as the public descriptions give it: digest authentication,
//! `deviceInfo` and `time` in XML, user counts in JSON, the event search `POST /ISAPI/AccessControl/AcsEvent` with
//! an `AcsEventCond` window and `searchResultPosition` paging capped at `page_cap` per answer
//! (`responseStatusStrg` `MORE` / `OK` / `NO MATCH`), and the `alertStream` (`multipart/mixed`, one JSON part per
//! event followed by a JPEG part, as face terminals send with picture upload on).
//!
//! Every face authentication is followed in the log by the door's lock-open event (minor 21), which is not
//! attendance but takes a serial number. Tests can wipe the log and restart the numbering (a reset), break the open
//! streams, refuse new ones, change the password, and build a model without history search.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use protocol::PunchKey;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::terminal_sim::{part, DigestGate, StreamHub};

/// The boundary of the simulated `alertStream`.
pub const BOUNDARY: &str = "MIME_boundary";
/// Minor code of a face authentication pass, and of the lock opening after it.
pub const FACE_PASS: u32 = 0x4b;
pub const LOCK_OPEN: u32 = 0x15;

/// How the simulated terminal is built.
#[derive(Debug, Clone)]
pub struct HikSimConfig {
    pub serial: String,
    pub model: String,
    pub user: String,
    pub password: String,
    pub zone: Tz,
    /// Most events in one search answer (the device's `maxResults` cap).
    pub page_cap: usize,
    /// `false`: the search answers `notSupport`.
    pub history_supported: bool,
    /// Seconds the device clock is ahead.
    pub clock_offset_secs: i64,
    pub users: u32,
}

impl Default for HikSimConfig {
    fn default() -> Self {
        Self {
            serial: "DS-K1T671M-SIM0001".into(),
            model: "DS-K1T671M".into(),
            user: "admin".into(),
            password: "Hik12345".into(),
            zone: chrono_tz::Asia::Kolkata,
            page_cap: 30,
            history_supported: true,
            clock_offset_secs: 0,
            users: 25,
        }
    }
}

/// One event in the device log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HikEvent {
    pub serial_no: u64,
    pub at: DateTime<Utc>,
    pub major: u32,
    pub minor: u32,
    pub employee: Option<String>,
    pub status: Option<&'static str>,
}

#[derive(Debug)]
struct Log {
    events: Vec<HikEvent>,
    next_serial: u64,
    last_time: DateTime<Utc>,
    made: usize,
    refuse_streams: bool,
    searches: usize,
    served: usize,
}

#[derive(Debug)]
struct Inner {
    config: HikSimConfig,
    log: Mutex<Log>,
    gate: DigestGate,
    hub: StreamHub,
}

/// A running simulated terminal.
#[derive(Debug, Clone)]
pub struct HikSim {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    stop: CancellationToken,
    https: bool,
}

const STATUSES: [&str; 2] = ["checkIn", "checkOut"];

impl HikSim {
    /// Starts on a random loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(config: HikSimConfig) -> anyhow::Result<Self> {
        Self::start_on(config, "127.0.0.1:0".parse()?).await
    }

    /// Starts on `addr`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start_on(config: HikSimConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_inner(config, addr, None).await
    }

    /// Starts on a random loopback port serving HTTPS with `tls` (reach it as `https://localhost:<port>`).
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start_tls(config: HikSimConfig, tls: rustls::ServerConfig) -> anyhow::Result<Self> {
        Self::start_inner(config, "127.0.0.1:0".parse()?, Some(tls)).await
    }

    async fn start_inner(
        config: HikSimConfig,
        addr: SocketAddr,
        tls: Option<rustls::ServerConfig>,
    ) -> anyhow::Result<Self> {
        let gate = DigestGate::new(&config.model, &config.user, &config.password);
        let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
        let log = Log {
            events: Vec::new(),
            next_serial: 1,
            last_time: now - Duration::days(1),
            made: 0,
            refuse_streams: false,
            searches: 0,
            served: 0,
        };
        let inner = Arc::new(Inner { config, log: Mutex::new(log), gate, hub: StreamHub::default() });
        let app = Router::new()
            .route("/ISAPI/System/deviceInfo", get(device_info))
            .route("/ISAPI/System/time", get(time))
            .route("/ISAPI/AccessControl/UserInfo/Count", get(user_count))
            .route("/ISAPI/AccessControl/UserInfo/capabilities", get(user_capabilities))
            .route("/ISAPI/AccessControl/AcsEvent", post(search))
            .route("/ISAPI/Event/notification/alertStream", get(alert_stream))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let until = stop.clone();
        let https = tls.is_some();
        match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
            }),
            Some(tls) => tokio::spawn(async move {
                let listener = crate::tls::TlsListener::new(listener, tls);
                let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
            }),
        };
        Ok(Self { inner, addr, stop, https })
    }

    /// The base URL.
    pub fn url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn config(&self) -> &HikSimConfig {
        &self.inner.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` face authentications already in the log, spread over the past (each followed by its lock event).
    pub fn preload(&self, n: usize) -> Vec<HikEvent> {
        let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
        let start = now - Duration::seconds(10 * (n as i64 + 1));
        let mut log = self.lock();
        log.last_time = log.last_time.max(start);
        let made: Vec<HikEvent> =
            (0..n).map(|_| Self::make(&mut log, &self.inner.config, Duration::seconds(10))).collect();
        made
    }

    /// `n` face authentications happening now; pushed to the open streams unless `silently`.
    pub fn punch(&self, n: usize, silently: bool) -> Vec<HikEvent> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (event, lock_event) = {
                let mut log = self.lock();
                let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
                let step = if log.last_time < now { now - log.last_time } else { Duration::seconds(1) };
                let event = Self::make(&mut log, &self.inner.config, step);
                let lock_event = log.events.last().cloned();
                (event, lock_event)
            };
            if !silently {
                self.push(&event, true);
                if let Some(lock_event) = lock_event {
                    self.push(&lock_event, false);
                }
            }
            out.push(event);
        }
        out
    }

    /// Appends an authentication at `last_time + step` and its lock event; returns the authentication.
    fn make(log: &mut Log, config: &HikSimConfig, step: Duration) -> HikEvent {
        let at = log.last_time + step;
        log.last_time = at;
        let n = log.made;
        log.made += 1;
        let employee = format!("{}", 1001 + (n as u32 % config.users.max(1)));
        let event = HikEvent {
            serial_no: log.next_serial,
            at,
            major: 5,
            minor: FACE_PASS,
            employee: Some(employee),
            status: Some(STATUSES[n % 2]),
        };
        let lock_event =
            HikEvent { serial_no: log.next_serial + 1, at, major: 5, minor: LOCK_OPEN, employee: None, status: None };
        log.next_serial += 2;
        log.events.push(event.clone());
        log.events.push(lock_event);
        event
    }

    fn push(&self, event: &HikEvent, picture: bool) {
        let body = serde_json::to_vec(&alert_json(event, &self.inner.config)).unwrap_or_default();
        let mut bytes = part(BOUNDARY, "application/json; charset=\"UTF-8\"", &body).to_vec();
        if picture {
            bytes.extend_from_slice(&part(BOUNDARY, "image/jpeg", &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]));
        }
        self.inner.hub.send(&Bytes::from(bytes));
    }

    /// Wipes the log and restarts the serial numbers at 1 (a factory reset, or a replaced unit).
    pub fn reset_numbering(&self) {
        let mut log = self.lock();
        log.events.clear();
        log.next_serial = 1;
    }

    /// Breaks every open event stream.
    pub fn drop_streams(&self) {
        self.inner.hub.drop_all();
    }

    /// Makes new stream requests fail with 503 (or work again).
    pub fn refuse_streams(&self, refuse: bool) {
        self.lock().refuse_streams = refuse;
    }

    pub fn open_streams(&self) -> usize {
        self.inner.hub.open_count()
    }

    pub fn streams_opened(&self) -> usize {
        self.inner.hub.opened.load(Ordering::SeqCst)
    }

    /// Changes the password the device accepts.
    pub fn set_password(&self, password: &str) {
        self.inner.gate.set_password(password);
    }

    /// Requests refused for wrong credentials.
    pub fn auth_failures(&self) -> usize {
        self.inner.gate.failures.load(Ordering::SeqCst)
    }

    /// `(search requests, InfoList entries served)` so far.
    pub fn search_stats(&self) -> (usize, usize) {
        let log = self.lock();
        (log.searches, log.served)
    }

    /// Every authentication ever made (including those wiped by a reset).
    pub fn made(&self) -> usize {
        self.lock().made
    }

    /// The punch keys of `events` as the agent must file them.
    pub fn keys(&self, events: &[HikEvent]) -> HashSet<PunchKey> {
        let serial = self.inner.config.serial.parse().expect("a valid serial");
        events
            .iter()
            .filter_map(|e| {
                let pin = e.employee.as_ref()?.parse().ok()?;
                Some(PunchKey::of(&serial, &pin, e.at.with_timezone(&self.inner.config.zone).naive_local()))
            })
            .collect()
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.inner.hub.drop_all();
        self.stop.cancel();
    }
}

fn local_text(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn info_json(e: &HikEvent, zone: Tz) -> Value {
    let mut entry = json!({"major": e.major, "minor": e.minor, "time": local_text(e.at, zone), "cardType": 1,
        "cardReaderNo": 1, "doorNo": 1, "serialNo": e.serial_no, "type": 0, "netUser": "", "remoteHostAddr": "0.0.0.0"});
    if let Some(employee) = &e.employee {
        entry["employeeNoString"] = json!(employee);
        entry["name"] = json!(format!("Person {employee}"));
        entry["currentVerifyMode"] = json!("cardOrFace");
        entry["userType"] = json!("normal");
        entry["mask"] = json!("no");
        entry["pictureURL"] = json!(format!("http://127.0.0.1/LOCALS/pic/acsLinkCap/{}.jpeg@WEB", e.serial_no));
    } else {
        entry["currentVerifyMode"] = json!("invalid");
    }
    if let Some(status) = e.status {
        entry["attendanceStatus"] = json!(status);
        entry["label"] = json!(if status == "checkIn" { "Check In" } else { "Check Out" });
    }
    entry
}

fn alert_json(e: &HikEvent, config: &HikSimConfig) -> Value {
    let mut event = json!({"deviceName": "Face Terminal", "majorEventType": e.major, "subEventType": e.minor,
        "cardReaderNo": 1, "doorNo": 1, "serialNo": e.serial_no, "frontSerialNo": e.serial_no.saturating_sub(1),
        "currentVerifyMode": "cardOrFace", "picturesNumber": 1});
    if let Some(employee) = &e.employee {
        event["employeeNoString"] = json!(employee);
        event["name"] = json!(format!("Person {employee}"));
        event["userType"] = json!("normal");
    }
    if let Some(status) = e.status {
        event["attendanceStatus"] = json!(status);
    }
    json!({"ipAddress": "127.0.0.1", "portNo": 80, "protocol": "HTTP", "macAddress": "44:47:cc:00:00:01",
        "channelID": 1, "dateTime": local_text(e.at, config.zone), "activePostCount": 1,
        "eventType": "AccessControllerEvent", "eventState": "active", "eventDescription": "Access Controller Event",
        "AccessControllerEvent": event})
}

type Shared = State<Arc<Inner>>;

fn xml(body: String) -> Response {
    ([("content-type", "application/xml; charset=\"UTF-8\"")], body).into_response()
}

fn status_json(code: StatusCode, status_code: u32, status: &str, sub: &str) -> Response {
    let body = json!({"requestURL": "", "statusCode": status_code, "statusString": status, "subStatusCode": sub,
        "errorCode": 1_073_741_825u64, "errorMsg": sub});
    (code, [("content-type", "application/json; charset=\"UTF-8\"")], body.to_string()).into_response()
}

async fn device_info(State(s): Shared, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    let c = &s.config;
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInfo version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\
         <deviceName>Face Terminal</deviceName><deviceID>255</deviceID><model>{}</model><serialNumber>{}</serialNumber>\
         <macAddress>44:47:cc:00:00:01</macAddress><firmwareVersion>V3.2.30</firmwareVersion>\
         <firmwareReleasedDate>build 220107</firmwareReleasedDate><deviceType>ACS</deviceType></DeviceInfo>",
        c.model, c.serial
    ))
}

async fn time(State(s): Shared, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    let now = Utc::now() + Duration::seconds(s.config.clock_offset_secs);
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Time version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\
         <timeMode>manual</timeMode><localTime>{}</localTime><timeZone>CST-5:30:00</timeZone></Time>",
        local_text(now, s.config.zone)
    ))
}

async fn user_count(State(s): Shared, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    let users = s.config.users;
    axum::Json(json!({"UserInfoCount": {"userNumber": users, "bindFaceUserNumber": users}})).into_response()
}

async fn user_capabilities(
    State(s): Shared,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    axum::Json(json!({"UserInfo": {"supportFunction": {"@opt": "post,delete,put,get,setUp"}, "maxRecordNum": 3000}}))
        .into_response()
}

async fn search(
    State(s): Shared,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    if !s.config.history_supported {
        return status_json(StatusCode::FORBIDDEN, 4, "Invalid Operation", "notSupport");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return status_json(StatusCode::BAD_REQUEST, 6, "Invalid Content", "badJsonFormat");
    };
    let cond = &request["AcsEventCond"];
    let time = |key: &str| cond[key].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
    let (Some(id), Some(position), Some(max), Some(start), Some(end)) = (
        cond["searchID"].as_str(),
        cond["searchResultPosition"].as_u64(),
        cond["maxResults"].as_u64(),
        time("startTime"),
        time("endTime"),
    ) else {
        return status_json(StatusCode::BAD_REQUEST, 6, "Invalid Content", "badParameters");
    };
    let (major, minor) = (cond["major"].as_u64().unwrap_or(0), cond["minor"].as_u64().unwrap_or(0));
    let mut log = s.log.lock().unwrap_or_else(|p| p.into_inner());
    let matched: Vec<&HikEvent> = log
        .events
        .iter()
        .filter(|e| e.at >= start && e.at <= end)
        .filter(|e| major == 0 || u64::from(e.major) == major)
        .filter(|e| minor == 0 || u64::from(e.minor) == minor)
        .collect();
    let total = matched.len();
    let from = usize::try_from(position).unwrap_or(usize::MAX).min(total);
    let take = usize::try_from(max).unwrap_or(usize::MAX).min(s.config.page_cap).max(1);
    let page: Vec<Value> = matched[from..].iter().take(take).map(|e| info_json(e, s.config.zone)).collect();
    let status = if total == 0 {
        "NO MATCH"
    } else if from + page.len() < total {
        "MORE"
    } else {
        "OK"
    };
    let served = page.len();
    let mut answer = json!({"AcsEvent": {"searchID": id, "responseStatusStrg": status, "numOfMatches": served,
        "totalMatches": total}});
    if !page.is_empty() {
        answer["AcsEvent"]["InfoList"] = Value::Array(page);
    }
    log.searches += 1;
    log.served += served;
    axum::Json(answer).into_response()
}

async fn alert_stream(State(s): Shared, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    if s.log.lock().unwrap_or_else(|p| p.into_inner()).refuse_streams {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    s.hub.open(&format!("multipart/mixed; boundary={BOUNDARY}"), Bytes::new())
}
