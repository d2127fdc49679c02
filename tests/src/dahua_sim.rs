//! A simulated Dahua access terminal speaking the HTTP CGI API as the public descriptions give it: digest
//! authentication, `key=value` answers from `magicBox.cgi` and `global.cgi`, the access records of
//! `recordFinder.cgi?action=find&name=AccessControlCardRec` between `StartTime` and `EndTime` (epoch seconds),
//! oldest first, at most `min(count, page_cap)` (`found=N` then `records[i].Field=value`), and the realtime
//! `eventManager.cgi?action=attach&codes=[AccessControl]` stream (`multipart/x-mixed-replace`, `Heartbeat` parts at
//! the requested interval, `Code=AccessControl;action=Pulse;index=0;data={...}` parts).
//!
//! Every face access is followed by a remote door opening (method 4, no person), which is a record but not
//! attendance. Tests can wipe the records and restart `RecNo` (a reset), break or refuse streams, change the
//! password, and build a model without record search.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use protocol::PunchKey;
use tokio_util::sync::CancellationToken;

use crate::terminal_sim::{part, DigestGate, StreamHub};

/// The boundary of the simulated event stream.
pub const BOUNDARY: &str = "myboundary";
/// `Method` of a face recognition and of a remote opening.
pub const FACE: u32 = 15;
pub const REMOTE: u32 = 4;

/// How the simulated terminal is built.
#[derive(Debug, Clone)]
pub struct DahuaSimConfig {
    pub serial: String,
    pub model: String,
    pub user: String,
    pub password: String,
    pub zone: Tz,
    /// Most records one find returns.
    pub page_cap: usize,
    /// `false`: `recordFinder` answers `Error` / `Bad Request!`.
    pub history_supported: bool,
    pub clock_offset_secs: i64,
    pub users: u32,
}

impl Default for DahuaSimConfig {
    fn default() -> Self {
        Self {
            serial: "7F0A1B2PAG00001".into(),
            model: "ASI7213X".into(),
            user: "admin".into(),
            password: "Dahua12345".into(),
            zone: chrono_tz::Asia::Kolkata,
            page_cap: 20,
            history_supported: true,
            clock_offset_secs: 0,
            users: 25,
        }
    }
}

/// One access record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DahuaRecord {
    pub rec_no: u64,
    pub at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub method: u32,
    pub status: u32,
    pub direction: &'static str,
    pub attendance_state: u32,
}

#[derive(Debug)]
struct Log {
    records: Vec<DahuaRecord>,
    next_rec_no: u64,
    last_time: DateTime<Utc>,
    made: usize,
    refuse_streams: bool,
    finds: usize,
    served: usize,
}

#[derive(Debug)]
struct Inner {
    config: DahuaSimConfig,
    log: Mutex<Log>,
    gate: DigestGate,
    hub: StreamHub,
}

/// A running simulated terminal.
#[derive(Debug, Clone)]
pub struct DahuaSim {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl DahuaSim {
    /// Starts on a random loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(config: DahuaSimConfig) -> anyhow::Result<Self> {
        Self::start_on(config, "127.0.0.1:0".parse()?).await
    }

    /// Starts on `addr`; heartbeats go to every open stream every second it asked for.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start_on(config: DahuaSimConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        let gate = DigestGate::new(&format!("Login to {}", config.serial), &config.user, &config.password);
        let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
        let log = Log {
            records: Vec::new(),
            next_rec_no: 1,
            last_time: now - Duration::days(1),
            made: 0,
            refuse_streams: false,
            finds: 0,
            served: 0,
        };
        let inner = Arc::new(Inner { config, log: Mutex::new(log), gate, hub: StreamHub::default() });
        let app = Router::new()
            .route("/cgi-bin/magicBox.cgi", get(magic_box))
            .route("/cgi-bin/global.cgi", get(global))
            .route("/cgi-bin/AccessUser.cgi", get(access_user))
            .route("/cgi-bin/recordFinder.cgi", get(record_finder))
            .route("/cgi-bin/eventManager.cgi", get(event_manager))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
        });
        let beat = inner.clone();
        let until = stop.clone();
        tokio::spawn(async move {
            let heartbeat = part(BOUNDARY, "text/plain", b"Heartbeat");
            loop {
                tokio::select! {
                    () = until.cancelled() => return,
                    () = tokio::time::sleep(StdDuration::from_secs(1)) => beat.hub.send(&heartbeat),
                }
            }
        });
        Ok(Self { inner, addr, stop })
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &DahuaSimConfig {
        &self.inner.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` face accesses already recorded, spread over the past (each followed by a remote opening).
    pub fn preload(&self, n: usize) -> Vec<DahuaRecord> {
        let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
        let start = now - Duration::seconds(10 * (n as i64 + 1));
        let mut log = self.lock();
        log.last_time = log.last_time.max(start);
        (0..n).map(|_| Self::make(&mut log, &self.inner.config, Duration::seconds(10)).0).collect()
    }

    /// `n` face accesses happening now; pushed to the open streams unless `silently`.
    pub fn punch(&self, n: usize, silently: bool) -> Vec<DahuaRecord> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (record, remote) = {
                let mut log = self.lock();
                let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_default();
                let step = if log.last_time < now { now - log.last_time } else { Duration::seconds(1) };
                Self::make(&mut log, &self.inner.config, step)
            };
            if !silently {
                self.inner.hub.send(&event_part(&record));
                self.inner.hub.send(&event_part(&remote));
            }
            out.push(record);
        }
        out
    }

    fn make(log: &mut Log, config: &DahuaSimConfig, step: Duration) -> (DahuaRecord, DahuaRecord) {
        let at = log.last_time + step;
        log.last_time = at;
        let n = log.made;
        log.made += 1;
        let record = DahuaRecord {
            rec_no: log.next_rec_no,
            at,
            user_id: Some(format!("{}", 2001 + (n as u32 % config.users.max(1)))),
            method: FACE,
            status: 1,
            direction: if n % 2 == 0 { "Entry" } else { "Exit" },
            attendance_state: if n % 2 == 0 { 1 } else { 4 },
        };
        let remote = DahuaRecord {
            rec_no: log.next_rec_no + 1,
            at,
            user_id: None,
            method: REMOTE,
            status: 1,
            direction: "Entry",
            attendance_state: 0,
        };
        log.next_rec_no += 2;
        log.records.push(record.clone());
        log.records.push(remote.clone());
        (record, remote)
    }

    /// Wipes the records and restarts `RecNo` at 1.
    pub fn reset_numbering(&self) {
        let mut log = self.lock();
        log.records.clear();
        log.next_rec_no = 1;
    }

    /// Breaks every open event stream.
    pub fn drop_streams(&self) {
        self.inner.hub.drop_all();
    }

    /// Makes new attach requests fail with 503 (or work again).
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

    /// `(finds, records served)` so far.
    pub fn search_stats(&self) -> (usize, usize) {
        let log = self.lock();
        (log.finds, log.served)
    }

    /// The punch keys of `records` as the agent must file them.
    pub fn keys(&self, records: &[DahuaRecord]) -> HashSet<PunchKey> {
        let serial = self.inner.config.serial.parse().expect("a valid serial");
        records
            .iter()
            .filter_map(|r| {
                let pin = r.user_id.as_ref()?.parse().ok()?;
                Some(PunchKey::of(&serial, &pin, r.at.with_timezone(&self.inner.config.zone).naive_local()))
            })
            .collect()
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.inner.hub.drop_all();
        self.stop.cancel();
    }
}

fn event_part(r: &DahuaRecord) -> Bytes {
    let data = serde_json::json!({
        "CardNo": "", "CardType": null, "Door": 0, "ErrorCode": 0, "Method": r.method, "Name": "OpenDoor",
        "ReaderID": "1", "RecNo": r.rec_no, "Status": r.status, "Type": r.direction, "UTC": r.at.timestamp(),
        "UserID": r.user_id.clone().unwrap_or_default(), "UserType": 0, "AttendanceState": r.attendance_state,
        "CardName": r.user_id.as_ref().map(|u| format!("Person {u}")).unwrap_or_default(), "Similarity": 93,
    });
    let pretty = serde_json::to_string_pretty(&data).unwrap_or_default();
    part(BOUNDARY, "text/plain", format!("Code=AccessControl;action=Pulse;index=0;data={pretty}").as_bytes())
}

type Shared = State<Arc<Inner>>;
type Params = Query<HashMap<String, String>>;

fn text(body: String) -> Response {
    ([("content-type", "text/plain;charset=utf-8")], body).into_response()
}

fn bad_request() -> Response {
    (StatusCode::BAD_REQUEST, [("content-type", "text/plain;charset=utf-8")], "Error\r\nBad Request!\r\n")
        .into_response()
}

async fn magic_box(
    State(s): Shared,
    Query(q): Params,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    let c = &s.config;
    match q.get("action").map(String::as_str) {
        Some("getSystemInfo") => text(format!(
            "appAutoStart=true\r\ndeviceType={}\r\nhardwareVersion=1.00\r\nprocessor=SSC337DE\r\nserialNumber={}\r\nupdateSerial={}\r\n",
            c.model, c.serial, c.model
        )),
        Some("getSoftwareVersion") => text("version=1.000.10MG000.0.R,build:2022-07-27\r\n".into()),
        Some("getDeviceType") => text(format!("type={}\r\n", c.model)),
        _ => bad_request(),
    }
}

async fn global(
    State(s): Shared,
    Query(q): Params,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    if q.get("action").map(String::as_str) != Some("getCurrentTime") {
        return bad_request();
    }
    let now = Utc::now() + Duration::seconds(s.config.clock_offset_secs);
    text(format!("result={}\r\n", now.with_timezone(&s.config.zone).format("%Y-%m-%d %H:%M:%S")))
}

async fn access_user(
    State(s): Shared,
    Query(q): Params,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    match q.get("action").map(String::as_str) {
        Some("startFind") => {
            axum::Json(serde_json::json!({"Token": 7, "Total": s.config.users, "Caps": 100})).into_response()
        }
        Some("stopFind") => text("OK\r\n".into()),
        _ => bad_request(),
    }
}

async fn record_finder(
    State(s): Shared,
    Query(q): Params,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    if !s.config.history_supported
        || q.get("action").map(String::as_str) != Some("find")
        || q.get("name").map(String::as_str) != Some("AccessControlCardRec")
    {
        return bad_request();
    }
    let number = |key: &str| q.get(key).and_then(|v| v.parse::<i64>().ok());
    let start = number("StartTime").unwrap_or(0);
    let end = number("EndTime").unwrap_or(i64::MAX);
    let count = number("count").and_then(|c| usize::try_from(c).ok()).unwrap_or(1024).min(s.config.page_cap).max(1);
    let mut log = s.log.lock().unwrap_or_else(|p| p.into_inner());
    let found: Vec<DahuaRecord> =
        log.records.iter().filter(|r| (start..=end).contains(&r.at.timestamp())).take(count).cloned().collect();
    let mut body = format!("found={}\r\n", found.len());
    for (i, r) in found.iter().enumerate() {
        body.push_str(&format!(
            "records[{i}].AttendanceState={}\r\nrecords[{i}].CardName={}\r\nrecords[{i}].CardNo=\r\nrecords[{i}].CardType=0\r\n\
             records[{i}].CreateTime={}\r\nrecords[{i}].Door=0\r\nrecords[{i}].ErrorCode=0\r\nrecords[{i}].Method={}\r\n\
             records[{i}].Password=\r\nrecords[{i}].ReaderID=1\r\nrecords[{i}].RecNo={}\r\nrecords[{i}].RoomNumber=\r\n\
             records[{i}].Status={}\r\nrecords[{i}].Type={}\r\nrecords[{i}].URL=/mnt/appdata1/userpic/SnapShot/{}.jpg\r\n\
             records[{i}].UserID={}\r\nrecords[{i}].UserType=0\r\n",
            r.attendance_state,
            r.user_id.as_ref().map(|u| format!("Person {u}")).unwrap_or_default(),
            r.at.timestamp(),
            r.method,
            r.rec_no,
            r.status,
            r.direction,
            r.rec_no,
            r.user_id.clone().unwrap_or_default(),
        ));
    }
    log.finds += 1;
    log.served += found.len();
    text(body)
}

async fn event_manager(
    State(s): Shared,
    Query(q): Params,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = s.gate.check(&method, &uri.to_string(), &headers) {
        return refusal;
    }
    let codes = q.get("codes").map(String::as_str).unwrap_or("");
    if q.get("action").map(String::as_str) != Some("attach")
        || !(codes.contains("AccessControl") || codes.contains("All"))
    {
        return bad_request();
    }
    if s.log.lock().unwrap_or_else(|p| p.into_inner()).refuse_streams {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    s.hub.open(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"), Bytes::new())
}
