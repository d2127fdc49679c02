//! The small ISAPI XML documents (`/ISAPI/System/deviceInfo`, `/ISAPI/System/time`, `ResponseStatus`), read with
//! quick-xml as a map of leaf element names to their text. No I/O; bounded.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Largest document read.
pub const MAX_XML_BYTES: usize = 64 * 1024;
/// Most distinct leaves kept.
const MAX_LEAVES: usize = 512;
/// Longest leaf text kept.
const MAX_TEXT: usize = 256;

/// The text of every leaf element by local name (the first occurrence of a name wins).
///
/// # Errors
/// A message when the document is too large or not well-formed XML.
pub fn leaves(xml: &[u8]) -> Result<HashMap<String, String>, String> {
    if xml.len() > MAX_XML_BYTES {
        return Err(format!("XML document of {} bytes is over the limit", xml.len()));
    }
    let mut reader = Reader::from_reader(xml);
    let mut out = HashMap::new();
    let mut open: Option<String> = None;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| format!("XML: {e}"))? {
            Event::Start(start) => {
                open = Some(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
            }
            Event::Text(text) => {
                if let Some(name) = &open {
                    let value = text.unescape().map_err(|e| format!("XML text: {e}"))?.trim().to_owned();
                    if !value.is_empty() && value.len() <= MAX_TEXT && out.len() < MAX_LEAVES {
                        out.entry(name.clone()).or_insert(value);
                    }
                }
            }
            Event::End(_) => open = None,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_info_leaves() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<DeviceInfo version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<deviceName>Gate &amp; Lobby</deviceName><model>DS-K1T671M</model><serialNumber>DSK1T671M20210101</serialNumber>
<firmwareVersion>V3.2.30</firmwareVersion><firmwareReleasedDate>build 210101</firmwareReleasedDate>
</DeviceInfo>"#;
        let leaves = leaves(xml).unwrap();
        assert_eq!(leaves["deviceName"], "Gate & Lobby");
        assert_eq!(leaves["model"], "DS-K1T671M");
        assert_eq!(leaves["serialNumber"], "DSK1T671M20210101");
        assert!(super::leaves(b"<a><b>x</a>").is_err());
        assert!(super::leaves(&vec![b' '; MAX_XML_BYTES + 1]).is_err());
    }
}
