//! A part of the realtime stream `eventManager.cgi?action=attach&codes=[AccessControl]`: `Heartbeat`, or one or
//! more `Code=<code>;action=<action>;index=<n>;data={json}` events (the JSON may span lines). No I/O; bounded.

use serde_json::Value;

/// Largest part read.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Most events taken from one part.
const MAX_EVENTS_PER_PART: usize = 64;

/// One event of a part.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Heartbeat,
    /// An event: its code, action and data (`Null` when there is none or it is not JSON).
    Event {
        code: String,
        action: String,
        data: Value,
    },
    Unreadable(String),
}

/// The events of one part's body.
pub fn parse_part(body: &[u8]) -> Vec<StreamEvent> {
    if body.len() > MAX_EVENT_BYTES {
        return vec![StreamEvent::Unreadable(format!("event part of {} bytes is over the limit", body.len()))];
    }
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("heartbeat") {
        return vec![StreamEvent::Heartbeat];
    }
    let mut events = Vec::new();
    let mut rest = trimmed;
    while let Some(start) = rest.find("Code=") {
        if events.len() >= MAX_EVENTS_PER_PART {
            break;
        }
        rest = &rest[start..];
        let (event, consumed) = parse_one(rest);
        events.push(event);
        rest = &rest[consumed.max(5)..];
    }
    if events.is_empty() && !trimmed.is_empty() {
        events.push(StreamEvent::Unreadable(format!("no event in part {:?}", truncate(trimmed))));
    }
    events
}

/// One event starting at `Code=`; returns it and the bytes it used.
fn parse_one(text: &str) -> (StreamEvent, usize) {
    let header_end = text.find("data=").unwrap_or_else(|| text.find('\n').unwrap_or(text.len()));
    let header = &text[..header_end];
    let mut code = String::new();
    let mut action = String::new();
    for field in header.split(';') {
        let Some((key, value)) = field.split_once('=') else { continue };
        match key.trim().to_ascii_lowercase().as_str() {
            "code" => value.trim().clone_into(&mut code),
            "action" => value.trim().clone_into(&mut action),
            _ => {}
        }
    }
    if !text[header_end..].starts_with("data=") {
        return (StreamEvent::Event { code, action, data: Value::Null }, header_end);
    }
    let json_start = header_end + "data=".len();
    let Some(brace) = text[json_start..].find('{').map(|i| json_start + i) else {
        return (StreamEvent::Event { code, action, data: Value::Null }, json_start);
    };
    let Some(end) = matching_brace(&text[brace..]).map(|i| brace + i + 1) else {
        return (StreamEvent::Unreadable(format!("unterminated data in {:?}", truncate(text))), text.len());
    };
    match serde_json::from_str(&text[brace..end]) {
        Ok(data) => (StreamEvent::Event { code, action, data }, end),
        Err(e) => (StreamEvent::Unreadable(format!("event data is not JSON: {e}")), end),
    }
}

/// The index of the brace closing the one at 0, outside strings.
fn matching_brace(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_events_and_several_per_part() {
        assert_eq!(parse_part(b"Heartbeat"), [StreamEvent::Heartbeat]);
        let body = b"Code=AccessControl;action=Pulse;index=0;data={\n   \"CardName\" : \"A {b}\",\n   \"Method\" : 15,\n   \"UserID\" : \"448008\"\n}\r\nCode=DoorStatus;action=Pulse;index=0;data={ \"Status\" : \"Open\" }";
        let events = parse_part(body);
        assert_eq!(events.len(), 2);
        let StreamEvent::Event { code, action, data } = &events[0] else { panic!("{events:?}") };
        assert_eq!(
            (code.as_str(), action.as_str(), data["UserID"].as_str()),
            ("AccessControl", "Pulse", Some("448008"))
        );
        assert!(matches!(&events[1], StreamEvent::Event { code, .. } if code == "DoorStatus"));
        assert!(matches!(
            parse_part(b"Code=AccessControl;action=Pulse;data={\"a\":").as_slice(),
            [StreamEvent::Unreadable(_)]
        ));
        assert!(matches!(
            parse_part(b"Code=VideoMotion;action=Start;index=0").as_slice(),
            [StreamEvent::Event { data: Value::Null, .. }]
        ));
        assert!(matches!(parse_part(b"garbage").as_slice(), [StreamEvent::Unreadable(_)]));
    }
}
