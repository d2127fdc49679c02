//! The record format of a serial terminal's lines, and parsing one line with it. No I/O.
//!
//! Two ways to describe a line, chosen in the device's configuration:
//!
//! - **Delimited**: `delimiter` (one character; `"\t"` for TAB; `" "` splits on runs of spaces) and the 0-based
//!   positions `pin_field`, `time_field` and optionally `state_field` and `verify_field`.
//!   `1001,2026-03-02 08:59:12,0` is `delimiter = ","`, `pin_field = 0`, `time_field = 1`, `state_field = 2`.
//! - **Pattern**: literal text with placeholders `{pin}`, `{time}`, `{state}`, `{verify}` and `{skip}` (anything).
//!   A placeholder takes the text up to the literal that follows it (its first occurrence), or to the end of the
//!   line; literals must match exactly. `T {time} U{pin} S{state}` reads `T 2026-03-02 08:59:12 U1001 S1`.
//!
//! In both, `time_format` is a chrono format (`%Y-%m-%d %H:%M:%S` by default, local wall-clock time of the device),
//! and a state is a number (the ZKTeco codes: 0 in, 1 out, ...) or `IN`/`OUT`/`I`/`O` in any case. A line that does
//! not fit is skipped with a reason naming the part that did not fit.

use chrono::NaiveDateTime;

/// Longest line kept; a longer one is skipped.
pub const MAX_LINE_BYTES: usize = 512;

/// How a line is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Delimited { delimiter: char, pin: usize, time: usize, state: Option<usize>, verify: Option<usize> },
    Pattern(Vec<Piece>),
}

/// A piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Pin,
    Time,
    State,
    Verify,
    Skip,
}

/// A line format: layout plus time format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    pub layout: Layout,
    pub time_format: String,
}

/// One punch read from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialRecord {
    pub pin: String,
    pub time: NaiveDateTime,
    pub state: u8,
    pub verify: u8,
}

impl RecordFormat {
    /// Parses a pattern such as `T {time} U{pin} S{state}`.
    ///
    /// # Errors
    /// Unknown or unclosed placeholders, two placeholders with no literal between them, or no `{pin}`/`{time}`.
    pub fn pattern(pattern: &str, time_format: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| format!("unclosed placeholder in {pattern:?}"))?;
                    let piece = match &rest[1..end] {
                        "pin" => Piece::Pin,
                        "time" => Piece::Time,
                        "state" => Piece::State,
                        "verify" => Piece::Verify,
                        "skip" => Piece::Skip,
                        other => {
                            return Err(format!("unknown placeholder {{{other}}} (pin, time, state, verify, skip)"))
                        }
                    };
                    if pieces.last().is_some_and(|p| !matches!(p, Piece::Literal(_))) {
                        return Err(format!("two placeholders with nothing between them in {pattern:?}"));
                    }
                    pieces.push(piece);
                    rest = &rest[end + 1..];
                }
                Some(n) => {
                    pieces.push(Piece::Literal(rest[..n].to_owned()));
                    rest = &rest[n..];
                }
                None => {
                    pieces.push(Piece::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        for (needed, name) in [(Piece::Pin, "{pin}"), (Piece::Time, "{time}")] {
            if pieces.iter().filter(|p| **p == needed).count() != 1 {
                return Err(format!("the pattern needs exactly one {name}"));
            }
        }
        Ok(Self { layout: Layout::Pattern(pieces), time_format: time_format.to_owned() })
    }

    /// Reads one line (without its line end).
    ///
    /// # Errors
    /// A sentence naming what did not fit.
    pub fn parse(&self, line: &str) -> Result<SerialRecord, String> {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!("line of {} bytes is longer than {MAX_LINE_BYTES}", line.len()));
        }
        let (pin, time, state, verify) = match &self.layout {
            Layout::Delimited { delimiter, pin, time, state, verify } => {
                let fields: Vec<&str> = if *delimiter == ' ' {
                    line.split_whitespace().collect()
                } else {
                    line.split(*delimiter).map(str::trim).collect()
                };
                let field = |index: usize, name: &str| {
                    fields.get(index).copied().ok_or_else(|| format!("no {name} field at position {index}"))
                };
                (
                    field(*pin, "PIN")?,
                    field(*time, "time")?,
                    state.map(|i| field(i, "state")).transpose()?,
                    verify.map(|i| field(i, "verify")).transpose()?,
                )
            }
            Layout::Pattern(pieces) => match_pattern(pieces, line)?,
        };
        if pin.is_empty() {
            return Err("empty PIN".into());
        }
        let time = NaiveDateTime::parse_from_str(time, &self.time_format)
            .map_err(|e| format!("time {time:?} does not fit {:?} ({e})", self.time_format))?;
        let state = match state {
            None => 0,
            Some(text) => match text.to_ascii_uppercase().as_str() {
                "IN" | "I" => 0,
                "OUT" | "O" => 1,
                other => other.parse::<u8>().map_err(|_| format!("state {text:?} is not a number, IN or OUT"))?,
            },
        };
        let verify = match verify {
            None => 0,
            Some(text) => text.parse::<u8>().map_err(|_| format!("verify {text:?} is not a number 0..=255"))?,
        };
        Ok(SerialRecord { pin: pin.to_owned(), time, state, verify })
    }
}

type Captures<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

fn match_pattern<'a>(pieces: &[Piece], line: &'a str) -> Result<Captures<'a>, String> {
    let (mut pin, mut time, mut state, mut verify) = ("", "", None, None);
    let mut rest = line;
    for (index, piece) in pieces.iter().enumerate() {
        if let Piece::Literal(text) = piece {
            rest = rest.strip_prefix(text.as_str()).ok_or_else(|| format!("expected {text:?} at {rest:?}"))?;
            continue;
        }
        let value = match pieces.get(index + 1) {
            Some(Piece::Literal(next)) => {
                let end = rest.find(next.as_str()).ok_or_else(|| format!("expected {next:?} in {rest:?}"))?;
                let value = &rest[..end];
                rest = &rest[end..];
                value
            }
            _ => std::mem::take(&mut rest),
        };
        let value = value.trim();
        match piece {
            Piece::Pin => pin = value,
            Piece::Time => time = value,
            Piece::State => state = Some(value),
            Piece::Verify => verify = Some(value),
            Piece::Skip | Piece::Literal(_) => {}
        }
    }
    if !rest.is_empty() {
        return Err(format!("unexpected trailing text {rest:?}"));
    }
    Ok((pin, time, state, verify))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TIME: &str = "%Y-%m-%d %H:%M:%S";

    fn delimited(delimiter: char) -> RecordFormat {
        RecordFormat {
            layout: Layout::Delimited { delimiter, pin: 0, time: 1, state: Some(2), verify: None },
            time_format: TIME.into(),
        }
    }

    #[test]
    fn delimited_lines() {
        let format = delimited(',');
        let record = format.parse("1001, 2026-03-02 08:59:12 ,OUT").unwrap();
        assert_eq!((record.pin.as_str(), record.state), ("1001", 1));
        assert_eq!(record.time.to_string(), "2026-03-02 08:59:12");
        assert!(format.parse("1001,2026-03-02 08:59:12").unwrap_err().contains("no state field at position 2"));
        assert!(format.parse("1001,yesterday,0").unwrap_err().contains("time \"yesterday\""));
        assert!(format.parse(",2026-03-02 08:59:12,0").unwrap_err().contains("empty PIN"));
        assert!(format.parse("1,2026-03-02 08:59:12,X").unwrap_err().contains("state \"X\""));
        let spaces = RecordFormat {
            layout: Layout::Delimited { delimiter: ' ', pin: 2, time: 0, state: None, verify: None },
            time_format: "%d/%m/%Y-%H:%M".into(),
        };
        let record = spaces.parse("02/03/2026-08:59   IN   77").unwrap();
        assert_eq!((record.pin.as_str(), record.state), ("77", 0));
    }

    #[test]
    fn patterns() {
        let format = RecordFormat::pattern("T {time} U{pin} S{state}{skip}", TIME);
        assert!(format.unwrap_err().contains("nothing between"));
        let format = RecordFormat::pattern("T {time} U{pin} S{state};{skip}", TIME).unwrap();
        let record = format.parse("T 2026-03-02 08:59:12 U1001 S1;chk=7f").unwrap();
        assert_eq!((record.pin.as_str(), record.state), ("1001", 1));
        assert!(format.parse("X 2026-03-02 08:59:12 U1 S1;").unwrap_err().contains("expected \"T \""));
        assert!(RecordFormat::pattern("{pin}", TIME).unwrap_err().contains("{time}"));
        assert!(RecordFormat::pattern("{pin} {when}", TIME).unwrap_err().contains("unknown placeholder {when}"));
        assert!(RecordFormat::pattern("{pin} {time", TIME).unwrap_err().contains("unclosed"));
        let tail = RecordFormat::pattern("{pin}|{time}", TIME).unwrap();
        assert!(tail.parse("5|2026-03-02 08:59:12").is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic(line in ".{0,600}") {
            let _ = delimited(',').parse(&line);
            let _ = RecordFormat::pattern("T {time} U{pin} S{state};{skip}", TIME).unwrap().parse(&line);
        }
    }
}
