//! The history search `POST /ISAPI/AccessControl/AcsEvent?format=json`: the `AcsEventCond` request and the
//! `AcsEvent` page it answers, plus the `ResponseStatus` a device sends instead when it refuses. No I/O.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::acs_event::AcsEvent;
use crate::http_terminal::context::{text, uint};

/// Largest search answer read (a page of 30 events is a few kilobytes; some firmware pages up to 1000).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The URL of the search.
pub const SEARCH_PATH: &str = "/ISAPI/AccessControl/AcsEvent?format=json";

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCondition {
    pub search_id: String,
    pub position: u64,
    pub max_results: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The request body; times are written in `zone`'s offset (the device compares instants).
pub fn request_body(cond: &SearchCondition, zone: Tz) -> Vec<u8> {
    let time = |at: DateTime<Utc>| at.with_timezone(&zone).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let body = json!({
        "AcsEventCond": {
            "searchID": cond.search_id,
            "searchResultPosition": cond.position,
            "maxResults": cond.max_results,
            "major": 0,
            "minor": 0,
            "startTime": time(cond.start),
            "endTime": time(cond.end),
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// How the device describes the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchStatus {
    /// `MORE`: ask again from the next position.
    More,
    /// `OK`: the search is complete.
    Done,
    /// `NO MATCH`: nothing in the window.
    NoMatch,
    /// Anything else (`FAILED`, ...).
    Other(String),
}

/// One answered page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub status: SearchStatus,
    pub total_matches: Option<u64>,
    /// The entries in the device's order; an entry that cannot be read is an `Err` with the reason.
    pub events: Vec<Result<AcsEvent, String>>,
}

/// A refusal (`ResponseStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStatus {
    pub status_code: Option<u64>,
    pub status_string: Option<String>,
    pub sub_status_code: Option<String>,
}

impl ResponseStatus {
    /// Whether the device says the function does not exist on it.
    pub fn not_supported(&self) -> bool {
        self.sub_status_code.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("notSupport"))
    }
}

impl std::fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statusCode {} {:?} ({})",
            self.status_code.map_or("?".to_owned(), |c| c.to_string()),
            self.status_string.as_deref().unwrap_or(""),
            self.sub_status_code.as_deref().unwrap_or("")
        )
    }
}

/// What a search answer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchAnswer {
    Page(SearchPage),
    Refused(ResponseStatus),
}

/// Reads a `ResponseStatus` document (JSON or XML), if the bytes are one.
pub fn response_status(body: &[u8]) -> Option<ResponseStatus> {
    if body.len() > MAX_PAGE_BYTES {
        return None;
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let status = value.get("ResponseStatus").unwrap_or(&value);
        let parsed = ResponseStatus {
            status_code: uint(status.get("statusCode")),
            status_string: text(status.get("statusString"), 256),
            sub_status_code: text(status.get("subStatusCode"), 256),
        };
        return (parsed.status_code.is_some() || parsed.sub_status_code.is_some()).then_some(parsed);
    }
    let leaves = super::xml::leaves(body).ok()?;
    let parsed = ResponseStatus {
        status_code: leaves.get("statusCode").and_then(|s| s.parse().ok()),
        status_string: leaves.get("statusString").cloned(),
        sub_status_code: leaves.get("subStatusCode").cloned(),
    };
    (parsed.status_code.is_some() || parsed.sub_status_code.is_some()).then_some(parsed)
}

/// Parses a search answer.
///
/// # Errors
/// A message when the bytes are neither a page nor a refusal.
pub fn parse_answer(body: &[u8]) -> Result<SearchAnswer, String> {
    if body.len() > MAX_PAGE_BYTES {
        return Err(format!("search answer of {} bytes is over the limit", body.len()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("search answer is not JSON: {e}"))?;
    let Some(page) = value.get("AcsEvent") else {
        return response_status(body)
            .map(SearchAnswer::Refused)
            .ok_or_else(|| "search answer has neither AcsEvent nor a status".to_owned());
    };
    let status = match text(page.get("responseStatusStrg"), 64).as_deref() {
        Some(s) if s.eq_ignore_ascii_case("MORE") => SearchStatus::More,
        Some(s) if s.eq_ignore_ascii_case("OK") => SearchStatus::Done,
        Some(s) if s.eq_ignore_ascii_case("NO MATCH") || s.eq_ignore_ascii_case("NO_MATCH") => SearchStatus::NoMatch,
        Some(other) => SearchStatus::Other(other.to_owned()),
        None => return Err("search answer has no responseStatusStrg".into()),
    };
    let events = match page.get("InfoList") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries.iter().map(AcsEvent::from_info).collect(),
        Some(_) => return Err("InfoList is not a list".into()),
    };
    Ok(SearchAnswer::Page(SearchPage { status, total_matches: uint(page.get("totalMatches")), events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_window_in_the_zones_offset() {
        let cond = SearchCondition {
            search_id: "abc".into(),
            position: 60,
            max_results: 30,
            start: DateTime::from_timestamp(1_772_400_000, 0).unwrap(),
            end: DateTime::from_timestamp(1_772_500_000, 0).unwrap(),
        };
        let body: Value = serde_json::from_slice(&request_body(&cond, chrono_tz::Asia::Kolkata)).unwrap();
        let c = &body["AcsEventCond"];
        assert_eq!((c["searchID"].as_str(), c["searchResultPosition"].as_u64()), (Some("abc"), Some(60)));
        assert_eq!((c["maxResults"].as_u64(), c["major"].as_u64(), c["minor"].as_u64()), (Some(30), Some(0), Some(0)));
        assert!(c["startTime"].as_str().unwrap().ends_with("+05:30"), "{c}");
    }

    #[test]
    fn pages_statuses_and_refusals() {
        let more = br#"{"AcsEvent":{"searchID":"1","responseStatusStrg":"MORE","numOfMatches":2,"totalMatches":68,
            "InfoList":[{"major":2,"minor":1024,"time":"2026-07-06T00:33:53+03:00","serialNo":1},
                        {"major":5,"minor":75,"time":"bad","serialNo":2}]}}"#;
        let SearchAnswer::Page(page) = parse_answer(more).unwrap() else { panic!("not a page") };
        assert_eq!((page.status.clone(), page.total_matches), (SearchStatus::More, Some(68)));
        assert!(page.events[0].is_ok() && page.events[1].is_err());
        let none =
            br#"{"AcsEvent":{"searchID":"1","responseStatusStrg":"NO MATCH","numOfMatches":0,"totalMatches":0}}"#;
        assert!(matches!(parse_answer(none), Ok(SearchAnswer::Page(SearchPage { status: SearchStatus::NoMatch, .. }))));
        let refused = br#"{"statusCode":4,"statusString":"Invalid Operation","subStatusCode":"notSupport"}"#;
        let Ok(SearchAnswer::Refused(status)) = parse_answer(refused) else { panic!("not a refusal") };
        assert!(status.not_supported());
        let xml =
            b"<ResponseStatus><statusCode>4</statusCode><subStatusCode>notSupport</subStatusCode></ResponseStatus>";
        assert!(response_status(xml).unwrap().not_supported());
        assert!(parse_answer(b"{}").is_err());
        assert!(parse_answer(b"\xff").is_err());
    }
}
