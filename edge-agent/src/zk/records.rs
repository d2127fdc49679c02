//! Attendance records as a device stores them (8, 16 or 40 bytes each) and the dataset that carries them.
//!
//! A dataset (what a bulk read returns) is a u32 byte count followed by that many bytes of records. The record size
//! is not announced: it is the byte count divided by the record count from GET_FREE_SIZES (what every client does),
//! or configured.
//!
//! | size | layout |
//! |---|---|
//! | 8 | uid u16 @0, verify u8 @2, time u32 @3, state u8 @7 |
//! | 16 | user id u32 @0, time u32 @4, verify u8 @8, state u8 @9, reserved 2 @10, work code u32 @12 |
//! | 40 | uid u16 @0, user id char\[24\] @2, verify u8 @26, time u32 @27, state u8 @31, reserved 8 @32 |
//!
//! In the 8-byte layout the employee is only the device's internal uid; the PIN comes from the user table.

use chrono::NaiveDateTime;

use super::time::{self, TimeError};

/// The record sizes devices use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum RecordLayout {
    /// 8 bytes: old firmware, uid only.
    Short,
    /// 16 bytes: numeric user id and work code.
    Medium,
    /// 40 bytes: text user id (ZK8 / TFT firmware).
    Long,
}

impl RecordLayout {
    pub const ALL: [RecordLayout; 3] = [Self::Short, Self::Medium, Self::Long];

    /// Bytes per record.
    pub fn size(self) -> usize {
        match self {
            Self::Short => 8,
            Self::Medium => 16,
            Self::Long => 40,
        }
    }

    /// The layout with `size` bytes per record.
    pub fn from_size(size: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.size() == size)
    }
}

impl TryFrom<u16> for RecordLayout {
    type Error = String;
    fn try_from(size: u16) -> Result<Self, String> {
        Self::from_size(usize::from(size)).ok_or_else(|| format!("record size {size} is not one of 8, 16, 40"))
    }
}

impl From<RecordLayout> for u16 {
    fn from(layout: RecordLayout) -> u16 {
        layout.size() as u16
    }
}

/// Who punched, as the record or event names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceUser {
    /// The device's internal user number; the PIN is looked up in the user table.
    Uid(u16),
    /// The user id (PIN) itself.
    Pin(String),
}

/// One attendance record as read from a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRecord {
    pub user: DeviceUser,
    /// The internal uid when the layout carries one.
    pub uid: Option<u16>,
    /// Local wall-clock time.
    pub time: NaiveDateTime,
    /// Verify mode code (pyzk calls it `status`).
    pub verify: u8,
    /// In/out state code (pyzk calls it `punch`).
    pub state: u8,
    pub work_code: u32,
}

/// A record that could not be decoded, kept with its position so it can be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub index: usize,
    pub error: TimeError,
}

/// Every record of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttendanceLog {
    /// `None` for an empty log.
    pub layout: Option<RecordLayout>,
    pub records: Vec<AttendanceRecord>,
    /// Records whose time names no real date; they stay on the device and block any clearing.
    pub undecodable: Vec<BadRecord>,
}

impl AttendanceLog {
    /// Records on the device, decodable or not.
    pub fn total(&self) -> usize {
        self.records.len() + self.undecodable.len()
    }
}

/// Why a dataset cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("{what} dataset of {len} bytes is too short for its 4-byte length")]
    NoLength { what: &'static str, len: usize },
    #[error("{what} dataset declares {declared} bytes but carries {carried}")]
    Truncated { what: &'static str, declared: usize, carried: usize },
    #[error("{what} dataset of {bytes} bytes does not divide into {count} records of a known size ({known})")]
    UnknownLayout { what: &'static str, bytes: usize, count: u32, known: &'static str },
    #[error("{what} dataset of {bytes} bytes is not a whole number of {size}-byte records")]
    Ragged { what: &'static str, bytes: usize, size: usize },
}

/// The records part of a dataset: the bytes after the u32 length, as many as it declares.
///
/// # Errors
/// When the dataset is shorter than it declares.
pub fn dataset_body<'a>(what: &'static str, dataset: &'a [u8]) -> Result<&'a [u8], DatasetError> {
    let Some((len, rest)) = dataset.split_first_chunk::<4>() else {
        return Err(DatasetError::NoLength { what, len: dataset.len() });
    };
    let declared = u32::from_le_bytes(*len) as usize;
    rest.get(..declared).ok_or(DatasetError::Truncated { what, declared, carried: rest.len() })
}

/// Picks the record size: the configured one, else bytes / count.
///
/// # Errors
/// When neither gives a known size.
pub fn infer_layout(
    bytes: usize,
    count: Option<u32>,
    configured: Option<RecordLayout>,
) -> Result<RecordLayout, DatasetError> {
    let what = "attendance";
    if let Some(layout) = configured {
        return if bytes % layout.size() == 0 {
            Ok(layout)
        } else {
            Err(DatasetError::Ragged { what, bytes, size: layout.size() })
        };
    }
    let count = count.unwrap_or(0);
    let unknown = DatasetError::UnknownLayout { what, bytes, count, known: "8, 16 or 40" };
    if count == 0 || bytes % count as usize != 0 {
        return Err(unknown);
    }
    RecordLayout::from_size(bytes / count as usize).ok_or(unknown)
}

/// The record size of a dataset holding fewer records than `count` (a read that came back short), from the records:
/// among the sizes that divide it into fewer than `count` records, the one whose records most often decode to a
/// real time other than the zero time (2000-01-01 00:00:00) (with a text user id, for 40-byte records), then whose
/// times most often run forward; a larger size wins a tie. `None` when no size fits.
pub fn guess_short_layout(body: &[u8], count: Option<u32>) -> Option<RecordLayout> {
    let fewer = |n: usize| count.is_none_or(|c| n < c as usize);
    let zero = time::decode(0).ok();
    let mut best: Option<(RecordLayout, (usize, usize))> = None;
    for layout in RecordLayout::ALL {
        let n = body.len() / layout.size();
        if body.len() % layout.size() != 0 || n == 0 || !fewer(n) {
            continue;
        }
        let times: Vec<Option<NaiveDateTime>> = body
            .chunks_exact(layout.size())
            .map(|raw| {
                let text_ok = layout != RecordLayout::Long || is_c_text(&raw[2..26]);
                decode_record(layout, raw).ok().map(|r| r.time).filter(|t| text_ok && Some(*t) != zero)
            })
            .collect();
        let plausible = times.iter().filter(|t| t.is_some()).count();
        let forward = times.windows(2).filter(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a <= b)).count();
        // Compare shares, not counts: a smaller size makes more records of the same bytes.
        let score = (plausible * 1000 / n, forward * 1000 / n.saturating_sub(1).max(1));
        if best.as_ref().is_none_or(|(_, b)| score >= *b) {
            best = Some((layout, score));
        }
    }
    best.filter(|(_, (plausible, _))| *plausible > 0).map(|(layout, _)| layout)
}

/// Whether a fixed text field holds printable ASCII up to its first NUL and only NULs after it.
fn is_c_text(field: &[u8]) -> bool {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    field[..end].iter().all(|b| b.is_ascii_graphic() || *b == b' ') && field[end..].iter().all(|b| *b == 0)
}

/// Reads an attendance dataset. `count` is the record count the device reported; `configured` overrides the size.
/// A dataset holding fewer records than `count` is still read (see [`guess_short_layout`]); the caller compares
/// the counts.
///
/// # Errors
/// When the dataset is truncated or its record size cannot be determined. A record with an impossible date does not
/// fail the dataset: it is listed in [`AttendanceLog::undecodable`].
pub fn parse_attendance(
    dataset: &[u8],
    count: Option<u32>,
    configured: Option<RecordLayout>,
) -> Result<AttendanceLog, DatasetError> {
    let body = dataset_body("attendance", dataset)?;
    if body.is_empty() {
        return Ok(AttendanceLog::default());
    }
    let layout = match infer_layout(body.len(), count, configured) {
        Ok(layout) => layout,
        // Fewer records than the count: the size no longer follows from it; tell it from the records themselves.
        Err(unknown @ DatasetError::UnknownLayout { .. }) => guess_short_layout(body, count).ok_or(unknown)?,
        Err(e) => return Err(e),
    };
    let mut log = AttendanceLog {
        layout: Some(layout),
        records: Vec::with_capacity(body.len() / layout.size()),
        undecodable: Vec::new(),
    };
    for (index, raw) in body.chunks_exact(layout.size()).enumerate() {
        match decode_record(layout, raw) {
            Ok(record) => log.records.push(record),
            Err(error) => log.undecodable.push(BadRecord { index, error }),
        }
    }
    Ok(log)
}

/// Decodes one record of `layout` (`raw` must be exactly `layout.size()` bytes).
///
/// # Errors
/// When its time names no real date.
pub fn decode_record(layout: RecordLayout, raw: &[u8]) -> Result<AttendanceRecord, TimeError> {
    let u16_at = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    Ok(match layout {
        RecordLayout::Short => AttendanceRecord {
            user: DeviceUser::Uid(u16_at(0)),
            uid: Some(u16_at(0)),
            verify: raw[2],
            time: time::decode(u32_at(3))?,
            state: raw[7],
            work_code: 0,
        },
        RecordLayout::Medium => AttendanceRecord {
            user: DeviceUser::Pin(u32_at(0).to_string()),
            uid: None,
            time: time::decode(u32_at(4))?,
            verify: raw[8],
            state: raw[9],
            work_code: u32_at(12),
        },
        RecordLayout::Long => {
            let uid = u16_at(0);
            let pin = c_string(&raw[2..26]);
            AttendanceRecord {
                // An empty text id happens on firmware that only fills the uid; fall back to it.
                user: if pin.is_empty() { DeviceUser::Uid(uid) } else { DeviceUser::Pin(pin) },
                uid: Some(uid),
                verify: raw[26],
                time: time::decode(u32_at(27))?,
                state: raw[31],
                work_code: 0,
            }
        }
    })
}

/// Encodes one record (the simulator and tests use it). In the 16-byte layout a non-numeric PIN is written as 0.
pub fn encode_record(layout: RecordLayout, record: &AttendanceRecord, out: &mut Vec<u8>) {
    let uid = record.uid.unwrap_or(match &record.user {
        DeviceUser::Uid(uid) => *uid,
        DeviceUser::Pin(_) => 0,
    });
    let pin = match &record.user {
        DeviceUser::Pin(pin) => pin.clone(),
        DeviceUser::Uid(uid) => uid.to_string(),
    };
    let packed = time::encode(record.time).to_le_bytes();
    match layout {
        RecordLayout::Short => {
            out.extend_from_slice(&uid.to_le_bytes());
            out.push(record.verify);
            out.extend_from_slice(&packed);
            out.push(record.state);
        }
        RecordLayout::Medium => {
            out.extend_from_slice(&pin.parse::<u32>().unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&packed);
            out.extend_from_slice(&[record.verify, record.state, 0, 0]);
            out.extend_from_slice(&record.work_code.to_le_bytes());
        }
        RecordLayout::Long => {
            out.extend_from_slice(&uid.to_le_bytes());
            out.extend_from_slice(&fixed_string::<24>(&pin));
            out.push(record.verify);
            out.extend_from_slice(&packed);
            out.push(record.state);
            out.extend_from_slice(&[0; 8]);
        }
    }
}

/// A whole dataset (u32 length + records) in `layout`.
pub fn encode_attendance(layout: RecordLayout, records: &[AttendanceRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + records.len() * layout.size());
    out.extend_from_slice(&((records.len() * layout.size()) as u32).to_le_bytes());
    for record in records {
        encode_record(layout, record, &mut out);
    }
    out
}

/// Text from a fixed-size, NUL-padded field: up to the first NUL, invalid UTF-8 replaced (so the same bytes always
/// give the same text).
pub fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// `text` in a NUL-padded field of N bytes, truncated when longer (keeping one NUL is not required by devices).
pub fn fixed_string<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [0u8; N];
    let bytes = text.as_bytes();
    let len = bytes.len().min(N);
    field[..len].copy_from_slice(&bytes[..len]);
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(h, mi, s).unwrap()
    }

    fn sample(layout: RecordLayout) -> Vec<AttendanceRecord> {
        (0..5u16)
            .map(|i| AttendanceRecord {
                user: match layout {
                    RecordLayout::Short => DeviceUser::Uid(i + 1),
                    RecordLayout::Medium => DeviceUser::Pin(format!("{}", 4_822_257 + u32::from(i))),
                    RecordLayout::Long => DeviceUser::Pin(format!("EMP-{i:03}")),
                },
                uid: (layout != RecordLayout::Medium).then_some(i + 1),
                time: at(1 + u32::from(i), 9, 5, u32::from(i)),
                verify: [0, 1, 2, 15, 25][usize::from(i)],
                state: [0, 1, 2, 3, 200][usize::from(i)],
                work_code: if layout == RecordLayout::Medium { u32::from(i) * 7 } else { 0 },
            })
            .collect()
    }

    #[test]
    fn every_layout_round_trips_through_a_dataset() {
        for layout in RecordLayout::ALL {
            let records = sample(layout);
            let dataset = encode_attendance(layout, &records);
            assert_eq!(dataset.len(), 4 + 5 * layout.size());
            let log = parse_attendance(&dataset, Some(5), None).unwrap();
            assert_eq!(log.layout, Some(layout));
            assert_eq!(log.records, records, "{layout:?}");
            assert!(log.undecodable.is_empty());
        }
    }

    #[test]
    fn byte_offsets_match_the_reference_tables() {
        let t = at(21, 9, 5, 0);
        let packed = time::encode(t).to_le_bytes();
        let mut short = vec![0x39, 0x30, 1];
        short.extend_from_slice(&packed);
        short.push(1);
        let r = decode_record(RecordLayout::Short, &short).unwrap();
        assert_eq!((r.user, r.verify, r.time, r.state), (DeviceUser::Uid(12345), 1, t, 1));

        let mut medium = 4_822_257u32.to_le_bytes().to_vec();
        medium.extend_from_slice(&packed);
        medium.extend_from_slice(&[15, 4, 0xaa, 0xbb]);
        medium.extend_from_slice(&77u32.to_le_bytes());
        let r = decode_record(RecordLayout::Medium, &medium).unwrap();
        assert_eq!((r.user, r.verify, r.state, r.work_code), (DeviceUser::Pin("4822257".into()), 15, 4, 77));

        let mut long = vec![7, 0];
        long.extend_from_slice(&fixed_string::<24>("1140064"));
        long.push(2);
        long.extend_from_slice(&packed); // unaligned at 27
        long.push(5);
        long.extend_from_slice(&[0, 0, 0, 0, 0xff, 0, 0, 0]);
        let r = decode_record(RecordLayout::Long, &long).unwrap();
        assert_eq!((r.user, r.uid, r.verify, r.time, r.state), (DeviceUser::Pin("1140064".into()), Some(7), 2, t, 5));
    }

    #[test]
    fn layout_comes_from_the_count_or_the_configuration() {
        assert_eq!(infer_layout(80, Some(10), None).unwrap(), RecordLayout::Short);
        assert_eq!(infer_layout(80, Some(5), None).unwrap(), RecordLayout::Medium);
        assert_eq!(infer_layout(80, Some(2), None).unwrap(), RecordLayout::Long);
        assert_eq!(infer_layout(80, None, Some(RecordLayout::Medium)).unwrap(), RecordLayout::Medium);
        let err = infer_layout(80, Some(3), None).unwrap_err().to_string();
        assert_eq!(err, "attendance dataset of 80 bytes does not divide into 3 records of a known size (8, 16 or 40)");
        assert!(infer_layout(80, None, None).is_err());
        assert!(matches!(infer_layout(81, None, Some(RecordLayout::Short)), Err(DatasetError::Ragged { .. })));
    }

    #[test]
    fn a_short_read_is_still_decoded_in_its_own_layout() {
        for layout in RecordLayout::ALL {
            // 5 records read of the 1000 the device counts: 5 * size does not divide into 1000 records.
            let records = sample(layout);
            let dataset = encode_attendance(layout, &records);
            let log = parse_attendance(&dataset, Some(1000), None).unwrap();
            assert_eq!((log.layout, &log.records), (Some(layout), &records), "{layout:?}");
            // The configured size still rules.
            assert_eq!(parse_attendance(&dataset, Some(1000), Some(layout)).unwrap().records, records);
        }
        // 40 records read as 8- or 16-byte pieces would mostly be zero times: the 40-byte reading wins.
        let long = encode_attendance(RecordLayout::Long, &sample(RecordLayout::Long)[..2]);
        assert_eq!(guess_short_layout(&long[4..], Some(100)), Some(RecordLayout::Long));
        assert_eq!(guess_short_layout(&[0; 16], Some(100)), None, "only zero times: no plausible layout");
        assert_eq!(guess_short_layout(&long[4..], Some(2)), None, "not short");
    }

    #[test]
    fn truncated_and_empty_datasets() {
        assert_eq!(parse_attendance(&[0, 0, 0, 0], Some(0), None).unwrap(), AttendanceLog::default());
        let err = parse_attendance(&[16, 0, 0, 0, 1, 2], Some(1), None).unwrap_err();
        assert_eq!(err, DatasetError::Truncated { what: "attendance", declared: 16, carried: 2 });
        assert!(matches!(parse_attendance(&[1, 2], None, None), Err(DatasetError::NoLength { .. })));
    }

    #[test]
    fn an_impossible_date_is_listed_not_dropped_silently() {
        let mut dataset = encode_attendance(RecordLayout::Short, &sample(RecordLayout::Short));
        // Overwrite record 2's time with 2018-02-30.
        let bad = ((18 * 12 * 31 + 31 + 29) * 86_400u32).to_le_bytes();
        dataset[4 + 2 * 8 + 3..4 + 2 * 8 + 7].copy_from_slice(&bad);
        let log = parse_attendance(&dataset, Some(5), None).unwrap();
        assert_eq!(log.records.len(), 4);
        assert_eq!(log.undecodable.len(), 1);
        assert_eq!(log.undecodable[0].index, 2);
        assert_eq!(log.total(), 5);
    }

    #[test]
    fn strings_stop_at_nul_and_survive_bad_utf8() {
        assert_eq!(c_string(b"831\0\0garbage"), "831");
        assert_eq!(c_string(b"full"), "full");
        assert_eq!(c_string(&[0x41, 0xff, 0]), "A\u{fffd}");
        assert_eq!(fixed_string::<4>("abcdef"), *b"abcd");
    }
}
