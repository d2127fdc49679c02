//! The human-readable explanation of a day ("why is this day HD?") that the dashboard shows, and its formatting.

use std::fmt::{self, Display, Write as _};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

// Design: explanations are written for every row (hundreds of thousands per reprocess), so the pieces are Display
// values written straight into the explanation, not Strings, and avoid chrono's strftime machinery.

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A duration as "8h 05m", "45m", "0m"; seconds only when under a minute ("40s").
#[derive(Debug, Clone, Copy)]
pub struct DurationText(Duration);

/// Formats a duration; see [`DurationText`].
pub fn fmt_duration(d: Duration) -> DurationText {
    DurationText(d)
}

impl Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.num_seconds();
        let sign = if secs < 0 { "-" } else { "" };
        let secs = secs.abs();
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        match (h, m) {
            (0, 0) if secs > 0 => write!(f, "{sign}{secs}s"),
            (0, m) => write!(f, "{sign}{m}m"),
            (h, m) => write!(f, "{sign}{h}h {m:02}m"),
        }
    }
}

/// A time as "09:12" on the attendance date itself, "06:05 on 6 Nov" on another date.
#[derive(Debug, Clone, Copy)]
pub struct TimeText(NaiveDateTime, NaiveDate);

/// Formats a time relative to the attendance date; see [`TimeText`].
pub fn fmt_time(t: NaiveDateTime, date: NaiveDate) -> TimeText {
    TimeText(t, date)
}

impl Display for TimeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TimeText(t, date) = *self;
        write!(f, "{:02}:{:02}", t.hour(), t.minute())?;
        if t.date() != date {
            write!(f, " on {} {}", t.day(), month(t.date()))?;
        }
        Ok(())
    }
}

/// A date as "5 Nov 2026".
#[derive(Debug, Clone, Copy)]
pub struct DateText(NaiveDate);

/// Formats a date; see [`DateText`].
pub fn fmt_date(date: NaiveDate) -> DateText {
    DateText(date)
}

impl Display for DateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.0.day(), month(self.0), self.0.year())
    }
}

fn month(date: NaiveDate) -> &'static str {
    MONTHS.get(date.month0() as usize).copied().unwrap_or("?")
}

/// Collects sentences and joins them with spaces.
#[derive(Debug)]
pub struct Explanation {
    text: String,
}

impl Default for Explanation {
    fn default() -> Self {
        Self { text: String::with_capacity(256) }
    }
}

impl Explanation {
    /// Appends one sentence (ending punctuation included by the caller).
    pub fn say(&mut self, sentence: impl AsRef<str>) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(sentence.as_ref());
    }

    /// Appends a formatted sentence.
    pub fn say_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        // Writing into a String cannot fail.
        let _ = self.text.write_fmt(args);
    }

    /// Continues the current sentence.
    pub fn append(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing into a String cannot fail.
        let _ = self.text.write_fmt(args);
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_timesheet() {
        assert_eq!(fmt_duration(Duration::minutes(485)).to_string(), "8h 05m");
        assert_eq!(fmt_duration(Duration::minutes(45)).to_string(), "45m");
        assert_eq!(fmt_duration(Duration::seconds(40)).to_string(), "40s");
        assert_eq!(fmt_duration(Duration::zero()).to_string(), "0m");
        assert_eq!(fmt_duration(Duration::minutes(-90)).to_string(), "-1h 30m");
    }

    #[test]
    fn times_name_the_date_only_when_it_differs() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 5).expect("valid date");
        let same = date.and_hms_opt(9, 12, 0).expect("valid time");
        let next = NaiveDate::from_ymd_opt(2026, 11, 6).and_then(|d| d.and_hms_opt(6, 5, 0)).expect("valid time");
        assert_eq!(fmt_time(same, date).to_string(), "09:12");
        assert_eq!(fmt_time(next, date).to_string(), "06:05 on 6 Nov");
        assert_eq!(fmt_date(date).to_string(), "5 Nov 2026");
    }
}
