//! The answers of Dahua's CGI: `key=value` lines, and the access records of
//! `recordFinder.cgi?action=find&name=AccessControlCardRec` (`found=N`, then `records[i].Field=value`). No I/O;
//! bounded.

use std::collections::BTreeMap;

/// Largest CGI answer read.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Most records taken from one answer.
pub const MAX_RECORDS: usize = 10_000;
/// Longest value kept.
const MAX_VALUE: usize = 256;

/// The `key=value` lines of an answer, in order (lines without `=` are skipped; keys and values trimmed).
pub fn key_values(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ANSWER_BYTES)]);
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let (key, value) = (key.trim(), value.trim());
            (!key.is_empty() && key.len() <= MAX_VALUE && value.len() <= MAX_VALUE)
                .then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The first value of `key`.
pub fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// One access record (`AccessControlCardRec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardRecord {
    pub rec_no: Option<u64>,
    /// Seconds since 1970 (`CreateTime`).
    pub create_time: Option<i64>,
    /// Seconds since 1970, true UTC (`CreateTimeRealUTC`, newer firmware).
    pub create_time_real_utc: Option<i64>,
    pub user_id: Option<String>,
    pub card_no: Option<String>,
    pub card_name: Option<String>,
    pub method: Option<u32>,
    pub status: Option<i64>,
    /// `Entry` or `Exit`.
    pub direction: Option<String>,
    pub attendance_state: Option<u32>,
    pub error_code: Option<i64>,
}

/// A find answer: the device's count and the records in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindAnswer {
    pub found: Option<u64>,
    pub records: Vec<CardRecord>,
}

/// Parses a find answer.
///
/// # Errors
/// A message when the answer is neither `found=` nor records (for example `Error` / `Bad Request!`).
pub fn parse_find(body: &[u8]) -> Result<FindAnswer, String> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(format!("find answer of {} bytes is over the limit", body.len()));
    }
    let pairs = key_values(body);
    let found = value(&pairs, "found").and_then(|v| v.parse().ok());
    let mut records: BTreeMap<usize, CardRecord> = BTreeMap::new();
    for (key, value) in &pairs {
        let Some(rest) = key.strip_prefix("records[") else { continue };
        let Some((index, field)) = rest.split_once("].") else { continue };
        let Ok(index) = index.parse::<usize>() else { continue };
        if index >= MAX_RECORDS {
            continue;
        }
        let record = records.entry(index).or_default();
        let text = || (!value.is_empty()).then(|| value.clone());
        match field {
            "RecNo" => record.rec_no = value.parse().ok(),
            "CreateTime" => record.create_time = value.parse().ok(),
            "CreateTimeRealUTC" => record.create_time_real_utc = value.parse().ok(),
            "UserID" => record.user_id = text(),
            "CardNo" => record.card_no = text(),
            "CardName" => record.card_name = text(),
            "Method" => record.method = value.parse().ok(),
            "Status" => record.status = value.parse().ok(),
            "Type" => record.direction = text(),
            "AttendanceState" => record.attendance_state = value.parse().ok(),
            "ErrorCode" => record.error_code = value.parse().ok(),
            _ => {}
        }
    }
    if found.is_none() && records.is_empty() {
        let first = String::from_utf8_lossy(&body[..body.len().min(100)]).trim().to_owned();
        return Err(format!("not a find answer: {first:?}"));
    }
    Ok(FindAnswer { found, records: records.into_values().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_in_index_order() {
        let body = b"found=2\r\nrecords[1].RecNo=13\r\nrecords[1].CreateTime=1700000100\r\n\
records[0].RecNo=12\r\nrecords[0].CreateTime=1700000000\r\nrecords[0].UserID=1001\r\nrecords[0].Method=15\r\n\
records[0].Status=1\r\nrecords[0].Type=Entry\r\nrecords[0].CardNo=\r\nrecords[12000].RecNo=1\r\n";
        let answer = parse_find(body).unwrap();
        assert_eq!(answer.found, Some(2));
        assert_eq!(answer.records.len(), 2);
        let first = &answer.records[0];
        assert_eq!(
            (first.rec_no, first.create_time, first.user_id.as_deref()),
            (Some(12), Some(1_700_000_000), Some("1001"))
        );
        assert_eq!(
            (first.method, first.status, first.direction.as_deref(), first.card_no.as_deref()),
            (Some(15), Some(1), Some("Entry"), None)
        );
        assert_eq!(answer.records[1].rec_no, Some(13));
        assert_eq!(parse_find(b"found=0\r\n").unwrap().records.len(), 0);
        assert!(parse_find(b"Error\r\nBad Request!\r\n").is_err());
    }

    #[test]
    fn key_values_skip_junk() {
        let pairs = key_values(b"serialNumber=ABC123\r\ndeviceType=ASI7213X\r\njunk\r\n=x\r\n");
        assert_eq!(value(&pairs, "serialNumber"), Some("ABC123"));
        assert_eq!(pairs.len(), 2);
    }
}
