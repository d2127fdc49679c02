//! The CGI requests the Dahua driver makes, over one [`DigestClient`]: identity, clock, user count, one find of
//! access records, and the realtime `eventManager` attach.

use chrono::NaiveDateTime;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::event::{parse_part, StreamEvent, MAX_EVENT_BYTES};
use super::records::{key_values, parse_find, value, FindAnswer, MAX_ANSWER_BYTES};
use crate::http_terminal::context::uint;
use crate::http_terminal::digest::{Answer, DigestClient, HttpError};
use crate::http_terminal::multipart::boundary_of;
use crate::http_terminal::stream::{EventStream, PartParser, StreamItem};
use crate::http_terminal::terminal::TerminalError;

pub const SYSTEM_INFO_PATH: &str = "/cgi-bin/magicBox.cgi?action=getSystemInfo";
pub const SOFTWARE_VERSION_PATH: &str = "/cgi-bin/magicBox.cgi?action=getSoftwareVersion";
pub const DEVICE_TYPE_PATH: &str = "/cgi-bin/magicBox.cgi?action=getDeviceType";
pub const CURRENT_TIME_PATH: &str = "/cgi-bin/global.cgi?action=getCurrentTime";
pub const USER_FIND_PATH: &str = "/cgi-bin/AccessUser.cgi?action=startFind";
/// The realtime stream, with a heartbeat every 5 seconds.
pub const ATTACH_PATH: &str = "/cgi-bin/eventManager.cgi?action=attach&codes=[AccessControl]&heartbeat=5";

/// Largest small answer.
const MAX_SMALL: usize = 64 * 1024;

/// What `magicBox.cgi` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub serial_number: Option<String>,
    pub device_type: Option<String>,
    pub hardware_version: Option<String>,
    pub software_version: Option<String>,
}

/// A CGI client of one terminal.
#[derive(Debug)]
pub struct CgiClient {
    http: DigestClient,
}

/// Parses `getCurrentTime`'s `result=2011-7-3 21:02:32`.
pub fn parse_current_time(body: &[u8]) -> Option<NaiveDateTime> {
    let pairs = key_values(body);
    let text = value(&pairs, "result")?;
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()
}

impl CgiClient {
    pub fn new(http: DigestClient) -> Self {
        Self { http }
    }

    /// Serial number, type, hardware and software versions.
    ///
    /// # Errors
    /// [`TerminalError`] when `getSystemInfo` fails (the other requests are optional).
    pub async fn system_info(&self) -> Result<SystemInfo, TerminalError> {
        let answer = self.get_ok(SYSTEM_INFO_PATH).await?;
        let pairs = key_values(&answer.body);
        let mut info = SystemInfo {
            serial_number: value(&pairs, "serialNumber").map(str::to_owned),
            device_type: value(&pairs, "deviceType").map(str::to_owned),
            hardware_version: value(&pairs, "hardwareVersion").map(str::to_owned),
            software_version: None,
        };
        if info.serial_number.is_none() {
            return Err(TerminalError::Protocol("getSystemInfo has no serialNumber".into()));
        }
        if let Ok(answer) = self.get_ok(SOFTWARE_VERSION_PATH).await {
            info.software_version = value(&key_values(&answer.body), "version").map(str::to_owned);
        }
        if let Ok(answer) = self.get_ok(DEVICE_TYPE_PATH).await {
            if let Some(model) = value(&key_values(&answer.body), "type") {
                info.device_type = Some(model.to_owned());
            }
        }
        Ok(info)
    }

    /// The device's wall-clock time.
    ///
    /// # Errors
    /// [`TerminalError`] for a failed request or an unreadable time.
    pub async fn current_time(&self) -> Result<NaiveDateTime, TerminalError> {
        let answer = self.get_ok(CURRENT_TIME_PATH).await?;
        parse_current_time(&answer.body).ok_or_else(|| {
            TerminalError::Protocol(format!("getCurrentTime: {:?}", String::from_utf8_lossy(&answer.body)))
        })
    }

    /// Enrolled users (`AccessUser.cgi` `startFind` `Total`), when the firmware has it.
    pub async fn user_count(&self) -> Option<u32> {
        let answer = self.get_ok(USER_FIND_PATH).await.ok()?;
        let value: Value = serde_json::from_slice(&answer.body).ok()?;
        let total = uint(value.get("Total")).and_then(|t| u32::try_from(t).ok());
        if let Some(token) = uint(value.get("Token")) {
            let stop = format!("/cgi-bin/AccessUser.cgi?action=stopFind&Token={token}");
            let _ = self.http.fetch(Method::GET, &stop, None, MAX_SMALL).await;
        }
        total
    }

    /// One find of access records between two epoch times, at most `count`.
    ///
    /// # Errors
    /// [`TerminalError::HistoryNotSupported`] when the device refuses the record set, [`TerminalError`] otherwise.
    pub async fn find(&self, start: i64, end: i64, count: u32) -> Result<FindAnswer, TerminalError> {
        let path = format!(
            "/cgi-bin/recordFinder.cgi?action=find&name=AccessControlCardRec&StartTime={start}&EndTime={end}&count={count}"
        );
        let answer = self.http.fetch(Method::GET, &path, None, MAX_ANSWER_BYTES).await?;
        let status = answer.status;
        if matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED) {
            let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(100)]).trim().replace("\r\n", " ");
            return Err(TerminalError::HistoryNotSupported(format!("recordFinder answered HTTP {status}: {body}")));
        }
        if !status.is_success() {
            return Err(status_error(&answer));
        }
        parse_find(&answer.body).map_err(TerminalError::Protocol)
    }

    /// Attaches to the `AccessControl` events; `to_items` turns each event of a part into stream items.
    ///
    /// # Errors
    /// [`TerminalError::RealtimeNotSupported`] when the device has no such stream, [`TerminalError`] otherwise.
    pub async fn attach(
        &self,
        mut to_items: impl FnMut(StreamEvent) -> Vec<StreamItem> + Send + 'static,
    ) -> Result<EventStream, TerminalError> {
        let response = self.http.send(Method::GET, ATTACH_PATH, None, true).await?;
        let status = response.status();
        if matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED) {
            return Err(TerminalError::RealtimeNotSupported(format!("eventManager attach answered HTTP {status}")));
        }
        if !status.is_success() {
            return Err(TerminalError::Protocol(format!("eventManager attach answered HTTP {status}")));
        }
        let boundary =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(boundary_of);
        let parse: PartParser = Box::new(move |_content_type: &str, body: &[u8]| {
            parse_part(body).into_iter().flat_map(&mut to_items).collect()
        });
        Ok(EventStream::new(response, boundary.as_deref(), MAX_EVENT_BYTES, parse))
    }

    async fn get_ok(&self, path: &str) -> Result<Answer, TerminalError> {
        let answer = self.http.fetch(Method::GET, path, None, MAX_SMALL).await?;
        if !answer.status.is_success() {
            return Err(status_error(&answer));
        }
        Ok(answer)
    }
}

fn status_error(answer: &Answer) -> TerminalError {
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
    TerminalError::Http(HttpError::Status { url: answer.url.clone(), status: answer.status.as_u16(), body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_time_without_padding() {
        assert_eq!(parse_current_time(b"result=2011-7-3 21:02:32\r\n").unwrap().to_string(), "2011-07-03 21:02:32");
        assert_eq!(parse_current_time(b"Error\r\n"), None);
    }
}
