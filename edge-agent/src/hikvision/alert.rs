//! A part of the realtime stream `GET /ISAPI/Event/notification/alertStream`: a JSON notification (an
//! `AccessControllerEvent`, a heartbeat, or another event type) or, on older firmware, an `EventNotificationAlert`
//! XML document. Pictures are skipped by the multipart reader before they get here. No I/O.

use serde_json::Value;

use super::acs_event::AcsEvent;
use crate::http_terminal::context::text;

/// Largest notification read (the JSON of one event is a few kilobytes).
pub const MAX_ALERT_BYTES: usize = 256 * 1024;

/// What a notification is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Access(AcsEvent),
    /// A heartbeat (`heartBeat`, or `videoloss` inactive as cameras send) or any other event type.
    Other(String),
    /// A notification that cannot be read, with the reason.
    Unreadable(String),
}

/// Reads one notification part.
pub fn parse_alert(content_type: &str, body: &[u8]) -> Alert {
    if body.len() > MAX_ALERT_BYTES {
        return Alert::Unreadable(format!("notification of {} bytes is over the limit", body.len()));
    }
    let trimmed = body.trim_ascii();
    if trimmed.starts_with(b"<") || content_type.contains("xml") {
        return parse_xml(trimmed);
    }
    let value: Value = match serde_json::from_slice(trimmed) {
        Ok(value) => value,
        Err(e) => return Alert::Unreadable(format!("notification is not JSON: {e}")),
    };
    // Some firmware wraps the notification in EventNotificationAlert.
    let value = value.get("EventNotificationAlert").cloned().unwrap_or(value);
    let event_type = text(value.get("eventType"), 64).unwrap_or_default();
    if event_type != "AccessControllerEvent" {
        return Alert::Other(event_type);
    }
    match AcsEvent::from_alert(&value) {
        Ok(event) => Alert::Access(event),
        Err(reason) => Alert::Unreadable(reason),
    }
}

/// The XML form: the leaves of `EventNotificationAlert` with those of its `AccessControllerEvent`.
fn parse_xml(body: &[u8]) -> Alert {
    let leaves = match super::xml::leaves(body) {
        Ok(leaves) => leaves,
        Err(e) => return Alert::Unreadable(e),
    };
    let event_type = leaves.get("eventType").cloned().unwrap_or_default();
    if event_type != "AccessControllerEvent" {
        return Alert::Other(event_type);
    }
    let mut event = serde_json::Map::new();
    for (name, value) in &leaves {
        event.insert(name.clone(), Value::String(value.clone()));
    }
    let date_time = leaves.get("dateTime").cloned().unwrap_or_default();
    let alert = serde_json::json!({ "dateTime": date_time, "AccessControllerEvent": Value::Object(event) });
    match AcsEvent::from_alert(&alert) {
        Ok(event) => Alert::Access(event),
        Err(reason) => Alert::Unreadable(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_xml_heartbeats_and_junk() {
        let json = br#"{"ipAddress":"10.0.0.5","dateTime":"2026-03-02T08:00:00+05:30","activePostCount":1,
            "eventType":"AccessControllerEvent","eventState":"active","AccessControllerEvent":{"deviceName":"Gate",
            "majorEventType":5,"subEventType":75,"name":"A","employeeNoString":"1001","serialNo":9,
            "attendanceStatus":"checkIn","picturesNumber":1}}"#;
        let Alert::Access(event) = parse_alert("application/json", json) else { panic!("not an event") };
        assert_eq!((event.minor, event.serial_no, event.employee_no.as_deref()), (75, Some(9), Some("1001")));
        let xml = br#"<EventNotificationAlert version="2.0"><dateTime>2026-03-02T08:00:00+05:30</dateTime>
            <eventType>AccessControllerEvent</eventType><AccessControllerEvent><majorEventType>5</majorEventType>
            <subEventType>1</subEventType><employeeNoString>7</employeeNoString><serialNo>10</serialNo>
            </AccessControllerEvent></EventNotificationAlert>"#;
        let Alert::Access(event) = parse_alert("application/xml", xml) else { panic!("not an event") };
        assert_eq!((event.minor, event.serial_no), (1, Some(10)));
        assert_eq!(parse_alert("application/json", br#"{"eventType":"heartBeat"}"#), Alert::Other("heartBeat".into()));
        assert!(matches!(parse_alert("application/json", b"{oops"), Alert::Unreadable(_)));
    }
}
