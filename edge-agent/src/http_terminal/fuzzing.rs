//! One entry point that runs every Hikvision and Dahua decoder over untrusted bytes, shared by the cargo-fuzz
//! target `terminal_parse` (`edge-agent/fuzz`) and the proptest run in CI (`tests/terminal_fuzz.rs`). It must never
//! panic. Returns how many things it decoded (for tests that want to see it do something).

use super::multipart::{Item, MultipartReader};
use crate::dahua::{access::Access, client::parse_current_time, event::parse_part, records};
use crate::hikvision::{acs_event::parse_time, alert::parse_alert, search, xml};

/// Runs every decoder over `data`; the first byte picks where the multipart input is split.
pub fn decode_all(data: &[u8]) -> usize {
    let mut decoded = 0;
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    for boundary in [Some("MIME_boundary"), Some("myboundary"), None] {
        let mut reader = MultipartReader::new(boundary, 64 * 1024);
        let mut items = reader.push(&data[..split]).unwrap_or_default();
        items.extend(reader.push(&data[split..]).unwrap_or_default());
        for item in items {
            if let Item::Part { content_type, body } = item {
                decoded += 1;
                let _ = parse_alert(&content_type, &body);
                decoded += parse_part(&body).len();
            }
        }
    }
    if let Ok(search::SearchAnswer::Page(page)) = search::parse_answer(data) {
        for event in page.events.into_iter().flatten() {
            decoded += usize::from(event.authentication().is_ok());
        }
    }
    let _ = search::response_status(data);
    let _ = parse_alert("application/json", data);
    let _ = parse_alert("application/xml", data);
    decoded += xml::leaves(data).map(|l| l.len()).unwrap_or(0);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_time(text);
    }
    if let Ok(answer) = records::parse_find(data) {
        for record in &answer.records {
            for local in [false, true] {
                if let Ok(access) = Access::from_record(record, local) {
                    decoded += usize::from(access.authentication().is_ok());
                }
            }
        }
    }
    decoded += records::key_values(data).len();
    let _ = parse_current_time(data);
    decoded += parse_part(data).len();
    decoded
}
