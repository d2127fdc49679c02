//! The ISAPI requests the driver makes, over one [`DigestClient`]: identity, clock, user counts, one page of the
//! history search, and the realtime `alertStream`.

use chrono::DateTime;
use chrono_tz::Tz;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::acs_event::parse_time;
use super::alert::{parse_alert, Alert, MAX_ALERT_BYTES};
use super::search::{self, SearchAnswer, SearchCondition, SearchPage, SearchStatus};
use super::xml::{leaves, MAX_XML_BYTES};
use crate::http_terminal::context::{uint, DeviceTime};
use crate::http_terminal::digest::{Answer, DigestClient, HttpError};
use crate::http_terminal::multipart::boundary_of;
use crate::http_terminal::stream::{EventStream, PartParser};
use crate::http_terminal::terminal::{DeviceClock, TerminalError};

pub const DEVICE_INFO_PATH: &str = "/ISAPI/System/deviceInfo";
pub const TIME_PATH: &str = "/ISAPI/System/time";
pub const USER_COUNT_PATH: &str = "/ISAPI/AccessControl/UserInfo/Count?format=json";
pub const USER_CAPABILITIES_PATH: &str = "/ISAPI/AccessControl/UserInfo/capabilities?format=json";
pub const ALERT_STREAM_PATH: &str = "/ISAPI/Event/notification/alertStream";

/// Largest small JSON answer (counts, capabilities).
const MAX_JSON_BYTES: usize = 256 * 1024;

/// What `deviceInfo` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDescription {
    pub device_name: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    pub device_type: Option<String>,
}

/// User counts and capacity, when the device reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub users: Option<u32>,
    pub faces: Option<u32>,
    pub capacity: Option<u32>,
}

/// An ISAPI client of one terminal.
#[derive(Debug)]
pub struct IsapiClient {
    http: DigestClient,
}

fn small(n: Option<u64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

impl IsapiClient {
    pub fn new(http: DigestClient) -> Self {
        Self { http }
    }

    /// `GET /ISAPI/System/deviceInfo`.
    ///
    /// # Errors
    /// [`TerminalError`] for a failed request or an unreadable document.
    pub async fn device_info(&self) -> Result<DeviceDescription, TerminalError> {
        let answer = self.get_ok(DEVICE_INFO_PATH, MAX_XML_BYTES).await?;
        let leaves = leaves(&answer.body).map_err(|e| TerminalError::Protocol(format!("deviceInfo: {e}")))?;
        let firmware = match (leaves.get("firmwareVersion"), leaves.get("firmwareReleasedDate")) {
            (Some(version), Some(date)) => Some(format!("{version} {date}")),
            (version, _) => version.cloned(),
        };
        Ok(DeviceDescription {
            device_name: leaves.get("deviceName").cloned(),
            model: leaves.get("model").cloned(),
            serial_number: leaves.get("serialNumber").cloned(),
            firmware,
            device_type: leaves.get("deviceType").cloned(),
        })
    }

    /// `GET /ISAPI/System/time`: the device's `localTime`, with its offset when the firmware writes one.
    ///
    /// # Errors
    /// [`TerminalError`] for a failed request or a `localTime` that is not a time.
    pub async fn time(&self) -> Result<DeviceClock, TerminalError> {
        let answer = self.get_ok(TIME_PATH, MAX_XML_BYTES).await?;
        let leaves = leaves(&answer.body).map_err(|e| TerminalError::Protocol(format!("time: {e}")))?;
        let local = leaves.get("localTime").ok_or_else(|| TerminalError::Protocol("time: no localTime".into()))?;
        if let Ok(at) = DateTime::parse_from_rfc3339(local) {
            return Ok(DeviceClock::Zoned(at));
        }
        match parse_time(local) {
            Some(DeviceTime::Local(naive)) => Ok(DeviceClock::Local(naive)),
            _ => Err(TerminalError::Protocol(format!("time: localTime {local:?} is not a time"))),
        }
    }

    /// User count, face count and user capacity; `None` for whatever the device does not answer.
    pub async fn user_counts(&self) -> UserCounts {
        let mut counts = UserCounts::default();
        if let Some(value) = self.get_json(USER_COUNT_PATH).await {
            let count = value.get("UserInfoCount");
            counts.users = small(uint(count.and_then(|c| c.get("userNumber"))));
            counts.faces = small(uint(count.and_then(|c| c.get("bindFaceUserNumber"))));
        }
        if let Some(value) = self.get_json(USER_CAPABILITIES_PATH).await {
            counts.capacity = small(uint(value.get("UserInfo").and_then(|c| c.get("maxRecordNum"))));
        }
        counts
    }

    /// One page of the history search.
    ///
    /// # Errors
    /// [`TerminalError::HistoryNotSupported`] when the device refuses with `notSupport` (or has no such URL),
    /// [`TerminalError::Protocol`] for an unreadable page, [`TerminalError::Http`] for a failed request.
    pub async fn search(&self, cond: &SearchCondition, zone: Tz) -> Result<SearchPage, TerminalError> {
        let body = search::request_body(cond, zone);
        let answer = self
            .http
            .fetch(Method::POST, search::SEARCH_PATH, Some(("application/json", body)), search::MAX_PAGE_BYTES)
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(TerminalError::HistoryNotSupported("HTTP 404 for the event search".into()));
        }
        if !answer.status.is_success() {
            return match search::response_status(&answer.body) {
                Some(status) if status.not_supported() => Err(TerminalError::HistoryNotSupported(status.to_string())),
                Some(status) => Err(TerminalError::Protocol(format!("event search refused: {status}"))),
                None => Err(status_error(&answer)),
            };
        }
        match search::parse_answer(&answer.body).map_err(TerminalError::Protocol)? {
            SearchAnswer::Page(page) => match &page.status {
                SearchStatus::Other(other) => Err(TerminalError::Protocol(format!("event search status {other:?}"))),
                _ => Ok(page),
            },
            SearchAnswer::Refused(status) if status.not_supported() => {
                Err(TerminalError::HistoryNotSupported(status.to_string()))
            }
            SearchAnswer::Refused(status) => Err(TerminalError::Protocol(format!("event search refused: {status}"))),
        }
    }

    /// Opens `alertStream`; `parse` turns each notification into stream items.
    ///
    /// # Errors
    /// [`TerminalError::RealtimeNotSupported`] when the device has no stream, [`TerminalError::Http`] otherwise.
    pub async fn alert_stream(
        &self,
        mut to_items: impl FnMut(Alert) -> Vec<crate::http_terminal::stream::StreamItem> + Send + 'static,
    ) -> Result<EventStream, TerminalError> {
        let response = self.http.send(Method::GET, ALERT_STREAM_PATH, None, true).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
            return Err(TerminalError::RealtimeNotSupported(format!("HTTP {status} for alertStream")));
        }
        if !status.is_success() {
            return Err(TerminalError::Protocol(format!("alertStream answered HTTP {status}")));
        }
        let boundary =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(boundary_of);
        let parse: PartParser =
            Box::new(move |content_type: &str, body: &[u8]| to_items(parse_alert(content_type, body)));
        Ok(EventStream::new(response, boundary.as_deref(), MAX_ALERT_BYTES, parse))
    }

    async fn get_ok(&self, path: &str, limit: usize) -> Result<Answer, TerminalError> {
        let answer = self.http.fetch(Method::GET, path, None, limit).await?;
        if !answer.status.is_success() {
            return Err(status_error(&answer));
        }
        Ok(answer)
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        match self.get_ok(path, MAX_JSON_BYTES).await {
            Ok(answer) => serde_json::from_slice(&answer.body).ok(),
            Err(e) => {
                tracing::debug!(path, error = %e, "optional ISAPI request failed");
                None
            }
        }
    }
}

fn status_error(answer: &Answer) -> TerminalError {
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
    TerminalError::Http(HttpError::Status { url: answer.url.clone(), status: answer.status.as_u16(), body })
}
