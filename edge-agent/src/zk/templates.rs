//! Fingerprint templates: what the device keeps per enrolled finger, read from one terminal and written to others
//! (the anchors' tools copy a person's fingers this way). No I/O.
//!
//! Two byte layouts (sources in `REFERENCE.md`):
//!
//! - **The template table** (PREPARE_BUFFER for DB_RRQ with FCT_FINGERTMP): a u32 byte count, then records of
//!   `size u16 @0` (the record's whole length, header included), `uid u16 @2`, `finger u8 @4`, `valid u8 @5`, and
//!   `size - 6` template bytes.
//! - **The "save user templates" upload** (PREPARE_DATA / DATA, then SAVE_USER_TEMPLATES): three u32 lengths (user
//!   part, finger table, finger data), the user part (a 2 then the 28- or 72-byte user record), one 8-byte table
//!   entry per finger (`2 u8`, `uid u16`, `0x10 + finger u8`, `offset u32` into the finger data), and the finger
//!   data (`length u16` then the template's bytes, per finger).

use super::records::dataset_body;
use super::records::DatasetError;
use super::users::{decode_user, encode_user, UserLayout, UserRecord};

/// The longest template accepted from a device or written to one (real ones are 0.5 to 2 KB).
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
/// Fingers per person (0 to 9).
pub const MAX_FINGERS: usize = 10;
/// The body of SAVE_USER_TEMPLATES, `<IHH` 12, 0, 8, as pyzk sends it.
pub const SAVE_USER_TEMPLATES_BODY: [u8; 8] = [12, 0, 0, 0, 0, 0, 8, 0];
/// Bytes per DATA packet of an upload.
pub const UPLOAD_CHUNK: usize = 1024;
/// The largest upload accepted (a user and ten fingers of the largest size, with headers).
pub const MAX_UPLOAD_LEN: usize = 12 + 73 + MAX_FINGERS * (8 + 2 + MAX_TEMPLATE_LEN);

/// The flag added to the finger number in an upload's table entry.
const FINGER_FLAG: u8 = 0x10;

/// One finger's template as the device stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The finger, 0 to 9.
    pub finger: u8,
    /// 1 for a valid template (ZKTeco also marks duress fingers with other values).
    pub valid: u8,
    /// The template's bytes, as opaque as the device made them.
    pub data: Vec<u8>,
}

/// A template with the device's internal uid of its owner (a row of the template table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub uid: u16,
    pub template: Template,
}

/// Why template bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("template record at byte {at}: {problem}")]
    BadRecord { at: usize, problem: String },
    #[error("finger {finger} is not 0 to 9")]
    BadFinger { finger: u8 },
    #[error("template of finger {finger} has {len} bytes (1 to {MAX_TEMPLATE_LEN} accepted)")]
    BadLength { finger: u8, len: usize },
    #[error("{count} templates for one person; at most {MAX_FINGERS}")]
    TooMany { count: usize },
    #[error("upload: {0}")]
    BadUpload(String),
}

fn check(template: &Template) -> Result<(), TemplateError> {
    if usize::from(template.finger) >= MAX_FINGERS {
        return Err(TemplateError::BadFinger { finger: template.finger });
    }
    if template.data.is_empty() || template.data.len() > MAX_TEMPLATE_LEN {
        return Err(TemplateError::BadLength { finger: template.finger, len: template.data.len() });
    }
    Ok(())
}

/// Reads the template table.
///
/// # Errors
/// When the dataset is truncated, or a record's size runs past the data, is below its header or above
/// [`MAX_TEMPLATE_LEN`].
pub fn parse_templates(dataset: &[u8]) -> Result<Vec<TemplateRecord>, TemplateError> {
    let mut body = dataset_body("template", dataset)?;
    let mut at = 0;
    let mut out = Vec::new();
    while !body.is_empty() {
        let bad = |problem: String| TemplateError::BadRecord { at, problem };
        let Some(header) = body.first_chunk::<6>() else {
            return Err(bad(format!("{} bytes left, a record header needs 6", body.len())));
        };
        let size = usize::from(u16::from_le_bytes([header[0], header[1]]));
        if size <= 6 || size - 6 > MAX_TEMPLATE_LEN {
            return Err(bad(format!("record size {size} (7 to {} accepted)", MAX_TEMPLATE_LEN + 6)));
        }
        let Some(record) = body.get(..size) else {
            return Err(bad(format!("record size {size} runs past the {} bytes left", body.len())));
        };
        out.push(TemplateRecord {
            uid: u16::from_le_bytes([header[2], header[3]]),
            template: Template { finger: header[4], valid: header[5], data: record[6..].to_vec() },
        });
        body = &body[size..];
        at += size;
    }
    Ok(out)
}

/// A whole template table (the simulator's answer).
pub fn encode_templates(records: &[TemplateRecord]) -> Vec<u8> {
    let mut body = Vec::new();
    for r in records {
        let size = (r.template.data.len() + 6).min(usize::from(u16::MAX)) as u16;
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(&r.uid.to_le_bytes());
        body.push(r.template.finger);
        body.push(r.template.valid);
        body.extend_from_slice(&r.template.data[..usize::from(size) - 6]);
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The "save user templates" upload: `user` (its uid is the one the table entries name) and its fingers.
///
/// # Errors
/// A finger outside 0 to 9, twice the same finger, an empty or oversized template, more than [`MAX_FINGERS`].
pub fn encode_upload(layout: UserLayout, user: &UserRecord, templates: &[Template]) -> Result<Vec<u8>, TemplateError> {
    if templates.len() > MAX_FINGERS {
        return Err(TemplateError::TooMany { count: templates.len() });
    }
    let mut seen = [false; MAX_FINGERS];
    let mut user_part = vec![2u8];
    encode_user(layout, user, &mut user_part);
    let mut table = Vec::with_capacity(templates.len() * 8);
    let mut fingers = Vec::new();
    for t in templates {
        check(t)?;
        let slot = &mut seen[usize::from(t.finger)];
        if *slot {
            return Err(TemplateError::BadUpload(format!("finger {} given twice", t.finger)));
        }
        *slot = true;
        table.push(2);
        table.extend_from_slice(&user.uid.to_le_bytes());
        table.push(FINGER_FLAG + t.finger);
        table.extend_from_slice(&(fingers.len() as u32).to_le_bytes());
        fingers.extend_from_slice(&(t.data.len() as u16).to_le_bytes());
        fingers.extend_from_slice(&t.data);
    }
    let mut out = Vec::with_capacity(12 + user_part.len() + table.len() + fingers.len());
    for part in [&user_part, &table, &fingers] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&user_part);
    out.extend_from_slice(&table);
    out.extend_from_slice(&fingers);
    Ok(out)
}

/// Reads an upload back (the simulator learns from it): the user, its layout, and the fingers, every length checked
/// against the bytes present.
///
/// # Errors
/// [`TemplateError::BadUpload`] naming the part that does not add up; the checks of [`encode_upload`].
pub fn decode_upload(upload: &[u8]) -> Result<(UserLayout, UserRecord, Vec<Template>), TemplateError> {
    let bad = TemplateError::BadUpload;
    if upload.len() > MAX_UPLOAD_LEN {
        return Err(bad(format!("{} bytes, over the limit of {MAX_UPLOAD_LEN}", upload.len())));
    }
    let Some((lengths, rest)) = upload.split_first_chunk::<12>() else {
        return Err(bad(format!("{} bytes, shorter than the 12-byte header", upload.len())));
    };
    let len = |i: usize| u32::from_le_bytes([lengths[i], lengths[i + 1], lengths[i + 2], lengths[i + 3]]) as usize;
    let (user_len, table_len, data_len) = (len(0), len(4), len(8));
    if user_len.checked_add(table_len).and_then(|n| n.checked_add(data_len)) != Some(rest.len()) {
        return Err(bad(format!("parts of {user_len} + {table_len} + {data_len} bytes in {} bytes", rest.len())));
    }
    let (user_part, rest) = rest.split_at(user_len);
    let (table, data) = rest.split_at(table_len);
    let layout = user_part
        .split_first()
        .filter(|(tag, _)| **tag == 2)
        .and_then(|(_, record)| UserLayout::from_size(record.len()))
        .ok_or_else(|| bad(format!("user part of {user_len} bytes is not 2 and a 28- or 72-byte record")))?;
    let user = decode_user(layout, &user_part[1..]);
    if table_len % 8 != 0 || table_len / 8 > MAX_FINGERS {
        return Err(bad(format!("finger table of {table_len} bytes (8 per finger, at most {MAX_FINGERS})")));
    }
    let mut templates = Vec::with_capacity(table_len / 8);
    for entry in table.chunks_exact(8) {
        let finger = entry[3].wrapping_sub(FINGER_FLAG);
        let offset = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        let size = data
            .get(offset..offset.saturating_add(2))
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| bad(format!("finger {finger}: offset {offset} is past the finger data")))?;
        let bytes = data
            .get(offset + 2..offset + 2 + size)
            .ok_or_else(|| bad(format!("finger {finger}: {size} bytes at {offset} run past the finger data")))?;
        let template = Template { finger, valid: 1, data: bytes.to_vec() };
        check(&template)?;
        templates.push(template);
    }
    Ok((layout, user, templates))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u16) -> UserRecord {
        UserRecord {
            uid,
            privilege: 0,
            password: String::new(),
            name: "Asha".into(),
            card: 7,
            group: "1".into(),
            user_id: "1001".into(),
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn the_template_table_matches_pyzks_layout() {
        // Python: pack('HHbb%is' % 3, 9, 5, 6, 1, b'\xaa\xbb\xcc') (Finger.repack), after a u32 total of 9.
        let golden = hex("09000000 0900 0500 06 01 aabbcc");
        let parsed = parse_templates(&golden).unwrap();
        assert_eq!(
            parsed,
            vec![TemplateRecord { uid: 5, template: Template { finger: 6, valid: 1, data: vec![0xaa, 0xbb, 0xcc] } }]
        );
        assert_eq!(encode_templates(&parsed), golden);
    }

    #[test]
    fn device_lengths_are_bounded() {
        let short_header = hex("03000000 090005");
        assert!(parse_templates(&short_header).unwrap_err().to_string().contains("a record header needs 6"));
        let past_end = hex("08000000 0900 0500 06 01 aabb");
        assert!(parse_templates(&past_end).unwrap_err().to_string().contains("runs past"));
        let header_only = hex("06000000 0600 0500 06 01");
        assert!(parse_templates(&header_only).unwrap_err().to_string().contains("record size 6"));
        let truncated = hex("ff000000 0900");
        assert!(matches!(parse_templates(&truncated), Err(TemplateError::Dataset(_))));
        assert!(parse_templates(&hex("00000000")).unwrap().is_empty());
    }

    #[test]
    fn the_upload_matches_pyzks_save_user_template() {
        // Python (pyzk 0.9 save_user_template, user.repack29, Finger.repack_only), uid 3, PIN 1001, finger 1:
        //   upack = pack("<BHB5s8sIxBhI", 2, 3, 0, b'', b'Asha', 7, 1, 0, 1001)
        //   table = pack("<bHbI", 2, 3, 0x10 + 1, 0); fpack = pack("H2s", 2, b'\x01\x02')
        //   head = pack("III", len(upack), len(table), len(fpack))
        let golden = hex("1d000000 08000000 04000000 \
             02 0300 00 0000000000 4173686100000000 07000000 00 01 0000 e9030000 \
             02 0300 11 00000000 \
             0200 0102");
        let templates = [Template { finger: 1, valid: 1, data: vec![1, 2] }];
        let upload = encode_upload(UserLayout::Small, &user(3), &templates).unwrap();
        assert_eq!(upload, golden);
        let (layout, back, fingers) = decode_upload(&upload).unwrap();
        assert_eq!((layout, back, fingers), (UserLayout::Small, user(3), templates.to_vec()));
    }

    #[test]
    fn the_large_upload_round_trips_with_offsets() {
        let templates: Vec<Template> =
            (0..3).map(|f| Template { finger: f * 3, valid: 1, data: vec![f; 100 + usize::from(f)] }).collect();
        let upload = encode_upload(UserLayout::Large, &user(40), &templates).unwrap();
        assert_eq!(u32::from_le_bytes(upload[0..4].try_into().unwrap()), 73);
        assert_eq!(u32::from_le_bytes(upload[4..8].try_into().unwrap()), 24);
        let (layout, back, fingers) = decode_upload(&upload).unwrap();
        assert_eq!((layout, back.uid, back.user_id.as_str()), (UserLayout::Large, 40, "1001"));
        assert_eq!(fingers, templates);
    }

    #[test]
    fn bad_uploads_are_refused_by_name() {
        let t = |finger: u8, len: usize| Template { finger, valid: 1, data: vec![9; len] };
        let err = encode_upload(UserLayout::Large, &user(1), &[t(10, 5)]).unwrap_err();
        assert_eq!(err, TemplateError::BadFinger { finger: 10 });
        let err = encode_upload(UserLayout::Large, &user(1), &[t(1, 0)]).unwrap_err();
        assert!(err.to_string().contains("0 bytes"), "{err}");
        let err = encode_upload(UserLayout::Large, &user(1), &[t(1, 5), t(1, 6)]).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let mut upload = encode_upload(UserLayout::Large, &user(1), &[t(1, 5)]).unwrap();
        upload.pop();
        assert!(decode_upload(&upload).unwrap_err().to_string().contains("parts of"));
        let mut upload = encode_upload(UserLayout::Large, &user(1), &[t(1, 5)]).unwrap();
        let offset_at = 12 + 73 + 4;
        upload[offset_at] = 200;
        assert!(decode_upload(&upload).unwrap_err().to_string().contains("past the finger data"));
    }
}
