//! The text bodies a PUSH device posts: `ATTLOG` rows, user records (`USERINFO` tables and `USER` lines inside
//! `OPERLOG`), and the command results of `devicecmd`. No I/O.
//!
//! An `ATTLOG` row is TAB-separated: `PIN, YYYY-MM-DD HH:MM:SS, status, verify, workcode, reserved, reserved`, and newer
//! firmware appends more fields (mask, temperature, ...), which are ignored. In push rows the status (in/out state)
//! comes *before* the verify mode, the reverse of the binary protocol's records. Rows end in LF or CRLF. A row that
//! does not parse is skipped with its line number and the reason; the other rows of the body are kept.
//!
//! Bounds: a body is at most [`MAX_BODY_BYTES`] (the HTTP layer refuses bigger ones first) and at most
//! [`MAX_ROWS`] rows are taken from one body; a row longer than [`MAX_LINE_BYTES`] is skipped unread.

use chrono::NaiveDateTime;

/// Largest body accepted on `/iclock/cdata` and `/iclock/devicecmd`.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most lines read from one body. A body within [`MAX_BODY_BYTES`] of valid rows (26 bytes at the least) never
/// reaches it; a body of junk lines may, and is then not acknowledged.
pub const MAX_ROWS: usize = 200_000;
/// Skipped rows whose reasons are kept; the rest are only counted.
pub const MAX_SKIPPED_KEPT: usize = 100;
/// Longest row read; longer ones are skipped as malformed.
pub const MAX_LINE_BYTES: usize = 2048;

/// One attendance row as the device sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttlogRow {
    pub pin: String,
    pub time: NaiveDateTime,
    pub status: u8,
    pub verify: u8,
    pub work_code: u32,
}

/// A row that was not taken, with its 1-based line number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub reason: String,
}

/// What a body held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed<T> {
    pub rows: Vec<T>,
    /// The first [`MAX_SKIPPED_KEPT`] skipped rows.
    pub skipped: Vec<Skipped>,
    /// Every skipped row.
    pub skipped_total: usize,
    /// True when the body had more than [`MAX_ROWS`] rows; the rest were not read.
    pub truncated: bool,
}

/// The non-empty lines of a body with their 1-based numbers; a trailing CR is removed, invalid UTF-8 is reported.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, Result<&str, String>)> {
    body.split(|b| *b == b'\n').enumerate().filter_map(|(index, raw)| {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let line = if raw.len() > MAX_LINE_BYTES {
            Err(format!("row of {} bytes is longer than {MAX_LINE_BYTES}", raw.len()))
        } else {
            std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 text ({e})"))
        };
        Some((index + 1, line))
    })
}

fn collect<T>(body: &[u8], mut parse: impl FnMut(&str) -> Result<Option<T>, String>) -> Parsed<T> {
    let mut out = Parsed { rows: Vec::new(), skipped: Vec::new(), skipped_total: 0, truncated: false };
    for (line, text) in lines(body) {
        if out.rows.len() + out.skipped_total >= MAX_ROWS {
            out.truncated = true;
            break;
        }
        match text.and_then(&mut parse) {
            Ok(Some(row)) => out.rows.push(row),
            Ok(None) => {}
            Err(reason) => {
                out.skipped_total += 1;
                if out.skipped.len() < MAX_SKIPPED_KEPT {
                    out.skipped.push(Skipped { line, reason });
                }
            }
        }
    }
    out
}

/// Parses an `ATTLOG` body.
pub fn parse_attlog(body: &[u8]) -> Parsed<AttlogRow> {
    collect(body, |line| parse_attlog_row(line).map(Some))
}

/// Parses one `ATTLOG` row.
///
/// # Errors
/// A sentence naming the field that is wrong.
pub fn parse_attlog_row(line: &str) -> Result<AttlogRow, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() < 4 {
        return Err(format!("{} TAB-separated fields, need at least 4 (PIN, time, status, verify)", fields.len()));
    }
    let pin = fields[0].trim();
    if pin.is_empty() {
        return Err("empty PIN".into());
    }
    let time = NaiveDateTime::parse_from_str(fields[1].trim(), "%Y-%m-%d %H:%M:%S")
        .map_err(|e| format!("time {:?} is not YYYY-MM-DD HH:MM:SS ({e})", fields[1]))?;
    let code = |name: &str, text: &str| -> Result<u8, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(0);
        }
        text.parse::<u8>().map_err(|_| format!("{name} {text:?} is not a number 0..=255"))
    };
    let status = code("status", fields[2])?;
    let verify = code("verify", fields[3])?;
    // Work codes are numeric on most firmware; a text work code is not a reason to lose the punch.
    let work_code = fields.get(4).and_then(|w| w.trim().parse::<u32>().ok()).unwrap_or(0);
    Ok(AttlogRow { pin: pin.to_owned(), time, status, verify, work_code })
}

/// A user record: PIN and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub pin: String,
    pub name: String,
}

/// Parses user records from a `USERINFO` body (`PIN=..\tName=..\t...`) or the `USER PIN=..` lines of an `OPERLOG`
/// body; other lines (`OPLOG ...`, `FP ...`) are not user records and are passed over without complaint.
pub fn parse_users(body: &[u8]) -> Parsed<UserRecord> {
    collect(body, |line| {
        let rest = line.strip_prefix("USER ").unwrap_or(line);
        if !rest.starts_with("PIN=") {
            return Ok(None);
        }
        let mut pin = None;
        let mut name = String::new();
        for field in rest.split('\t') {
            match field.split_once('=') {
                Some(("PIN", value)) => pin = Some(value.trim().to_owned()),
                Some(("Name", value)) => name = value.trim().to_owned(),
                _ => {}
            }
        }
        match pin {
            Some(pin) if !pin.is_empty() => Ok(Some(UserRecord { pin, name })),
            _ => Err("user record without a PIN".into()),
        }
    })
}

/// One command result a device reports on `devicecmd`: `ID=<id>&Return=<code>&CMD=<cmd>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandReturn {
    pub id: u64,
    pub code: i64,
    pub command: String,
}

/// Parses a `devicecmd` body; lines without `ID=` (the key/value lines an `INFO` result carries) are passed over.
pub fn parse_command_returns(body: &[u8]) -> Parsed<CommandReturn> {
    collect(body, |line| {
        if !line.starts_with("ID=") {
            return Ok(None);
        }
        let mut id = None;
        let mut code = None;
        let mut command = String::new();
        for pair in line.split('&') {
            match pair.split_once('=') {
                Some(("ID", v)) => id = v.trim().parse::<u64>().ok(),
                Some(("Return", v)) => code = v.trim().parse::<i64>().ok(),
                Some(("CMD", v)) => command = v.trim().to_owned(),
                _ => {}
            }
        }
        match (id, code) {
            (Some(id), Some(code)) => Ok(Some(CommandReturn { id, code, command })),
            _ => Err(format!("command result {line:?} lacks a numeric ID or Return")),
        }
    })
}

/// Every parser on the same bytes: the entry point of the proptest in CI and of the cargo-fuzz target in
/// `edge-agent/fuzz`. Returns how many rows were taken, so the work cannot be optimised away.
pub fn fuzz_all(data: &[u8]) -> usize {
    let attlog = parse_attlog(data);
    let users = parse_users(data);
    let returns = parse_command_returns(data);
    let query = super::server::query_pairs(&String::from_utf8_lossy(data));
    attlog.rows.len() + users.rows.len() + returns.rows.len() + query.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn rows_in_the_shapes_firmware_sends() {
        // Classic 7-field rows (LF), a CRLF row, an Android-style row with extra trailing fields, an empty work code.
        let body = b"1\t2026-03-02 08:59:12\t0\t1\t0\t0\t0\n\
            22\t2026-03-02 18:01:40\t1\t15\t0\t0\t0\r\n\
            305\t2026-03-02 09:00:03\t0\t1\t0\t0\t0\t0\t0\t\t36.5\t1\n\
            4\t2026-03-02 09:10:00\t4\t4\t\t\t\n";
        let parsed = parse_attlog(body);
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        assert_eq!(parsed.rows.len(), 4);
        assert_eq!(
            parsed.rows[0],
            AttlogRow { pin: "1".into(), time: t("2026-03-02 08:59:12"), status: 0, verify: 1, work_code: 0 }
        );
        // Status before verify: 1 = check-out, 15 = face.
        assert_eq!((parsed.rows[1].status, parsed.rows[1].verify), (1, 15));
        assert_eq!(parsed.rows[2].pin, "305");
        assert_eq!((parsed.rows[3].status, parsed.rows[3].verify, parsed.rows[3].work_code), (4, 4, 0));
    }

    #[test]
    fn malformed_rows_are_skipped_with_a_reason_and_the_rest_kept() {
        let body = b"1\t2026-03-02 08:59:12\t0\t1\t0\t0\t0\n\
            garbage\n\
            2\t2026-02-30 08:00:00\t0\t1\n\
            \t2026-03-02 08:00:00\t0\t1\n\
            3\t2026-03-02 08:00:00\tin\t1\n\
            4\t2026-03-02 08:00:00\t0\t1\xff\n\
            5\t2026-03-02 10:00:00\t1\t1\t0\n";
        let parsed = parse_attlog(body);
        assert_eq!(parsed.rows.iter().map(|r| r.pin.as_str()).collect::<Vec<_>>(), ["1", "5"]);
        let reasons: Vec<(usize, &str)> = parsed.skipped.iter().map(|s| (s.line, s.reason.as_str())).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons[0].0 == 2 && reasons[0].1.contains("need at least 4"));
        assert!(reasons[1].0 == 3 && reasons[1].1.contains("time \"2026-02-30 08:00:00\""));
        assert!(reasons[2].1.contains("empty PIN"));
        assert!(reasons[3].1.contains("status \"in\""));
        assert!(reasons[4].1.contains("UTF-8"));
    }

    #[test]
    fn long_rows_and_row_counts_are_bounded() {
        let mut body = vec![b'1'; MAX_LINE_BYTES + 1];
        body.push(b'\n');
        let parsed = parse_attlog(&body);
        assert!(parsed.rows.is_empty() && parsed.skipped[0].reason.contains("longer than"));
        let many = "1\t2026-03-02 08:59:12\t0\t1\n".repeat(MAX_ROWS + 5);
        let parsed = parse_attlog(many.as_bytes());
        assert!(parsed.truncated);
        assert_eq!(parsed.rows.len(), MAX_ROWS);
        let junk = "x\n".repeat(MAX_SKIPPED_KEPT + 7);
        let parsed = parse_attlog(junk.as_bytes());
        assert_eq!((parsed.skipped.len(), parsed.skipped_total), (MAX_SKIPPED_KEPT, MAX_SKIPPED_KEPT + 7));
    }

    #[test]
    fn users_and_command_returns() {
        let users = parse_users(
            b"PIN=1\tName=Asha Rao\tPri=0\tPasswd=\tCard=\tGrp=1\n\
            OPLOG 4\t0\t2026-03-02 08:00:00\t0\t0\t0\t0\n\
            USER PIN=22\tName=Ravi\tPri=14\n\
            PIN=\tName=Nobody\n",
        );
        assert_eq!(
            users.rows,
            [
                UserRecord { pin: "1".into(), name: "Asha Rao".into() },
                UserRecord { pin: "22".into(), name: "Ravi".into() }
            ]
        );
        assert_eq!(users.skipped.len(), 1);
        let returns = parse_command_returns(b"ID=7&Return=0&CMD=INFO\n~DeviceName=F22\nID=x&Return=0\n");
        assert_eq!(returns.rows, [CommandReturn { id: 7, code: 0, command: "INFO".into() }]);
        assert_eq!(returns.skipped.len(), 1);
    }
}
