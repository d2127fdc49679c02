//! Which punches belong to which day.
//!
//! The attendance date is the date the shift STARTS. Day D's window runs from `start - check_in_window` (included)
//! to `end + check_out_window` (excluded; end on D+1 for overnight shifts), and the day closes at that moment.
//! Consecutive days' windows never overlap: where they would, both are clipped at the midpoint of the gap between
//! D's shift end and D+1's shift start (the earlier day keeps everything strictly before the midpoint, the later
//! day the midpoint itself and after).
//!
//! Design: because every day's shift is the same length, these midpoints cut the timeline into consecutive 24-hour
//! segments, one per day. A punch belongs to the segment it falls in; it counts for that day when it also lies inside
//! the day's (possibly clipped) window, and is kept as "outside the window" otherwise, so it is never silently lost.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::shift::Shift;

const DAY_SECS: i64 = 86_400;

/// A shift's times as offsets from midnight of the attendance date, computed once per shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftClock {
    start: i64,
    end: i64,
    opens: i64,
    closes: i64,
    segment_start: i64,
    lunch_start: i64,
    lunch_end: i64,
}

/// One day's shift and window, as local wall-clock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    /// The attendance date (the date the shift starts).
    pub date: NaiveDate,
    /// Shift start.
    pub shift_start: NaiveDateTime,
    /// Shift end (on the next day for overnight shifts).
    pub shift_end: NaiveDateTime,
    /// First moment that counts for this day.
    pub opens: NaiveDateTime,
    /// First moment that no longer counts: the check-out window is over and the day can be closed.
    pub closes: NaiveDateTime,
    /// The lunch break (only used when the shift deducts it).
    pub lunch_start: NaiveDateTime,
    pub lunch_end: NaiveDateTime,
}

impl DayWindow {
    /// Whether `t` counts for this day.
    pub fn contains(&self, t: NaiveDateTime) -> bool {
        self.opens <= t && t < self.closes
    }

    /// Whether the day is still open at `now` (site local time).
    pub fn is_open_at(&self, now: NaiveDateTime) -> bool {
        now < self.closes
    }
}

impl ShiftClock {
    /// Derives the offsets of a validated shift.
    pub fn new(shift: &Shift) -> Self {
        let start = secs_of(shift.start);
        let length = shift.length().num_seconds();
        let end = start + length;
        let gap = DAY_SECS - length;
        // The midpoint between this day's shift end and the next day's shift start.
        let boundary = end + gap / 2;
        let segment_start = boundary - DAY_SECS;
        let opens = (start - shift.check_in_window_before_start.num_seconds()).max(segment_start);
        let closes = (end + shift.check_out_window_after_end.num_seconds()).min(boundary);
        let lunch_start = start + shift.lunch_offset().num_seconds();
        let lunch_end = lunch_start + shift.lunch_break_duration.num_seconds();
        Self { start, end, opens, closes, segment_start, lunch_start, lunch_end }
    }

    /// Day `date`'s window.
    pub fn window(&self, date: NaiveDate) -> DayWindow {
        let midnight = date.and_time(NaiveTime::MIN);
        let at = |offset: i64| midnight + Duration::seconds(offset);
        DayWindow {
            date,
            shift_start: at(self.start),
            shift_end: at(self.end),
            opens: at(self.opens),
            closes: at(self.closes),
            lunch_start: at(self.lunch_start),
            lunch_end: at(self.lunch_end),
        }
    }

    /// The first and last second of `date`'s 24-hour segment of the timeline.
    pub fn segment(&self, date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        let first = date.and_time(NaiveTime::MIN) + Duration::seconds(self.segment_start);
        (first, first + Duration::seconds(DAY_SECS - 1))
    }

    /// The day whose 24-hour segment contains `t`, whether or not `t` lies inside that day's window.
    pub fn segment_day(&self, t: NaiveDateTime) -> NaiveDate {
        (t - Duration::seconds(self.segment_start)).date()
    }

    /// The day `t` counts for, or `None` when it falls between two days' windows.
    #[cfg(test)]
    pub fn owner(&self, t: NaiveDateTime) -> Option<NaiveDate> {
        let date = self.segment_day(t);
        self.window(date).contains(t).then_some(date)
    }
}

/// The attendance dates a punch at local time `t` may belong to, whatever the employee's shift: from the day before
/// `t`'s date to that date, and also the next date when `t` is at noon or later.
///
/// Why: a day's 24-hour segment starts half a day before its shift's midpoint (see the module's design note), and
/// a shift's midpoint lies between its start (from midnight) and a full day after it, so a segment starts between
/// noon of the day before and midnight ending the day; hence a punch's day is never before the day before its
/// date, and after its date only when the punch is in the afternoon or evening (a shift starting at midnight: the
/// check-in at 23:50 belongs to the next date). Callers that mark attendance days dirty for a punch without looking
/// up the employee's shift mark this range.
pub fn days_a_punch_may_belong_to(t: NaiveDateTime) -> (NaiveDate, NaiveDate) {
    let date = t.date();
    let first = date.pred_opt().unwrap_or(date);
    let last = if t.hour() >= 12 { date.succ_opt().unwrap_or(date) } else { date };
    (first, last)
}

/// `t` at the start of its half of the day (midnight or noon): punches that agree on it may belong to the same days
/// ([`days_a_punch_may_belong_to`]), so callers marking many punches keep one entry per PIN and half-day.
pub fn half_day_start(t: NaiveDateTime) -> NaiveDateTime {
    let hour = if t.hour() >= 12 { 12 } else { 0 };
    t.date().and_hms_opt(hour, 0, 0).unwrap_or(t)
}

fn secs_of(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day).and_then(|d| d.and_hms_opt(h, m, 0)).expect("valid time")
    }

    /// Every shift start (each quarter hour) and length (each half hour up to a full day), every punch time (each
    /// five minutes of a day): the day whose segment holds the punch is within [`days_a_punch_may_belong_to`].
    #[test]
    fn a_punch_belongs_to_a_day_within_the_range_marked_for_it() {
        for start in (0..24 * 60).step_by(15) {
            for length in (30..24 * 60).step_by(30) {
                let start_time = NaiveTime::MIN + Duration::minutes(start);
                let end_time = start_time + Duration::minutes(length);
                let shift = Shift::new("S", start_time, end_time);
                assert_eq!(shift.length(), Duration::minutes(length));
                let clock = ShiftClock::new(&shift);
                for minute in (0..24 * 60).step_by(5) {
                    let t = at(10, 0, 0) + Duration::minutes(minute);
                    let (first, last) = days_a_punch_may_belong_to(t);
                    let day = clock.segment_day(t);
                    assert!(first <= day && day <= last, "shift {start_time}+{length} min, punch {t}: day {day}");
                }
            }
        }
        // The range is tight: a midnight shift's evening punch belongs to the next date, a night shift's morning
        // punch to the one before.
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
        let midnight = ShiftClock::new(&Shift::new("M", NaiveTime::MIN, hm(8, 0)));
        assert_eq!(midnight.segment_day(at(10, 23, 50)), date(11));
        assert_eq!(days_a_punch_may_belong_to(at(10, 23, 50)), (date(9), date(11)));
        assert_eq!(days_a_punch_may_belong_to(at(10, 11, 59)), (date(9), date(10)));
        assert_eq!(half_day_start(at(10, 23, 50)), at(10, 12, 0));
        assert_eq!(half_day_start(at(10, 11, 59)), at(10, 0, 0));
        let night = ShiftClock::new(&Shift::new("N", hm(22, 0), hm(6, 0)));
        assert_eq!(night.segment_day(at(10, 6, 5)), date(9));
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).expect("valid date")
    }

    fn shift(start: (u32, u32), end: (u32, u32), before_h: i64, after_h: i64) -> Shift {
        let t = |(h, m): (u32, u32)| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
        let mut s = Shift::new("S", t(start), t(end));
        s.check_in_window_before_start = Duration::hours(before_h);
        s.check_out_window_after_end = Duration::hours(after_h);
        s
    }

    #[test]
    fn day_shift_unclipped() {
        let clock = ShiftClock::new(&shift((9, 0), (18, 0), 2, 4));
        let w = clock.window(date(5));
        assert_eq!((w.opens, w.closes), (at(5, 7, 0), at(5, 22, 0)));
        assert_eq!(clock.owner(at(5, 7, 0)), Some(date(5)));
        assert_eq!(clock.owner(at(5, 6, 59)), None);
        assert_eq!(clock.segment_day(at(5, 6, 59)), date(5));
        assert_eq!(clock.owner(at(5, 21, 59)), Some(date(5)));
        assert_eq!(clock.owner(at(5, 22, 0)), None);
    }

    #[test]
    fn overnight_shift_is_dated_by_its_start() {
        let clock = ShiftClock::new(&shift((22, 0), (6, 0), 2, 2));
        let w = clock.window(date(5));
        assert_eq!((w.shift_start, w.shift_end), (at(5, 22, 0), at(6, 6, 0)));
        assert_eq!((w.opens, w.closes), (at(5, 20, 0), at(6, 8, 0)));
        assert_eq!(clock.owner(at(6, 5, 50)), Some(date(5)));
        assert_eq!(clock.owner(at(6, 21, 55)), Some(date(6)));
    }

    #[test]
    fn overlapping_windows_are_clipped_at_the_gap_midpoint() {
        // 20:00-08:00 with 8 h windows: the 12 h gap 08:00-20:00 is split at 14:00.
        let clock = ShiftClock::new(&shift((20, 0), (8, 0), 8, 8));
        let five = clock.window(date(5));
        let six = clock.window(date(6));
        assert_eq!(five.closes, at(6, 14, 0));
        assert_eq!(six.opens, at(6, 14, 0));
        assert_eq!(clock.owner(at(6, 13, 59) + Duration::seconds(59)), Some(date(5)));
        assert_eq!(clock.owner(at(6, 14, 0)), Some(date(6)));
    }

    #[test]
    fn month_end_overnight() {
        let clock = ShiftClock::new(&shift((22, 0), (6, 0), 2, 2));
        let dec1 = NaiveDate::from_ymd_opt(2026, 12, 1).and_then(|d| d.and_hms_opt(5, 0, 0)).expect("valid");
        assert_eq!(clock.owner(dec1), Some(NaiveDate::from_ymd_opt(2026, 11, 30).expect("valid")));
    }
}
