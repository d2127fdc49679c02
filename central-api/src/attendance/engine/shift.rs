//! The shift: when work is expected, how punches are paired, and the thresholds that turn hours into a status.
//!
//! [`Shift`] is plain configuration with public fields, as the database stores it. [`Shift::validate`] refuses
//! nonsense with an error naming the field; the engine only ever works on a validated shift (see
//! [`super::EmployeeContext::new`]).

use chrono::{Duration, NaiveTime, Timelike};

/// How the punches inside a day's window become work intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairingMode {
    /// The first punch is IN, the last is OUT; everything between is ignored (the Digital-i default).
    FirstLast,
    /// Punches alternate IN/OUT in time order, (1,2), (3,4)...; work is the sum of the pairs.
    Pairs,
    /// The device state decides (0/4 in, 1/5 out, 2 break-out, 3 break-in); unmatched punches are flagged.
    ByState,
    /// Like [`Self::Pairs`], reported as up to ten ManDays slots with per-slot and grand totals.
    ManDays,
}

impl PairingMode {
    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstLast => "first_last",
            Self::Pairs => "pairs",
            Self::ByState => "by_state",
            Self::ManDays => "mandays",
        }
    }

    /// Parses a name produced by [`Self::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::FirstLast, Self::Pairs, Self::ByState, Self::ManDays].into_iter().find(|m| m.as_str() == name)
    }
}

/// What status a working day gets when it has punches but no complete IN/OUT pair (typically one punch).
///
/// The day is flagged `missing_punch` whatever the policy, so an admin can regularise it with a manual log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SinglePunchPolicy {
    /// Absent (the default): a day is only paid when both ends are known.
    #[default]
    Absent,
    /// Half day.
    HalfDay,
    /// Present, with no work time counted.
    Present,
}

impl SinglePunchPolicy {
    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::HalfDay => "half_day",
            Self::Present => "present",
        }
    }

    /// Parses a name produced by [`Self::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Absent, Self::HalfDay, Self::Present].into_iter().find(|p| p.as_str() == name)
    }
}

/// A shift, with every field of the attendance rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// Short code employees refer to (`Employee::shift`).
    pub code: String,
    /// Local wall-clock start.
    pub start: NaiveTime,
    /// Local wall-clock end; earlier than `start` means the shift crosses midnight.
    pub end: NaiveTime,
    /// Arriving up to this long after `start` is not late.
    pub grace_late_in: Duration,
    /// Leaving up to this long before `end` is not an early exit.
    pub grace_early_out: Duration,
    /// Less work than this on a working day is absent.
    pub min_half_day: Duration,
    /// Work up to and including this is a half day; more is present.
    pub max_work_for_half_day: Duration,
    /// Arriving early counts as overtime when `start - in` exceeds this; `None`: early arrival is never overtime.
    pub overtime_threshold_before_shift: Option<Duration>,
    /// Staying late counts as overtime when `out - end` exceeds this; `None`: staying late is never overtime.
    pub overtime_threshold_after_shift: Option<Duration>,
    /// Whether the lunch break is deducted from work time.
    pub deduct_lunch_break: bool,
    /// When the lunch break starts; `None` centres it on the middle of the shift.
    pub lunch_break_start: Option<NaiveTime>,
    /// How long the lunch break is.
    pub lunch_break_duration: Duration,
    /// How long before `start` punches already belong to this shift.
    pub check_in_window_before_start: Duration,
    /// How long after `end` punches still belong to this shift.
    pub check_out_window_after_end: Duration,
    /// How punches are paired.
    pub pairing: PairingMode,
    /// Punches closer together than this collapse into one (double taps).
    pub debounce: Duration,
    /// Status of a working day with punches but no complete pair.
    pub single_punch: SinglePunchPolicy,
}

/// Largest check-in or check-out window accepted: longer ones would reach into the neighbouring days' shifts anyway.
pub const MAX_WINDOW: Duration = Duration::hours(24);
/// Largest debounce accepted: anything longer would swallow real punches.
pub const MAX_DEBOUNCE: Duration = Duration::minutes(30);

/// Why a shift's configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShiftError {
    #[error("shift {code:?}: start and end are both {at}; a shift must have a length (use 00:00-23:59 for all day)")]
    ZeroLength { code: String, at: NaiveTime },
    #[error("shift {code:?}: {field} is {minutes} min; it must not be negative")]
    Negative { code: String, field: &'static str, minutes: i64 },
    #[error("shift {code:?}: {field} is {minutes} min, over the limit of {max_minutes} min")]
    TooLong { code: String, field: &'static str, minutes: i64, max_minutes: i64 },
    #[error(
        "shift {code:?}: min_half_day ({min} min) is more than max_work_for_half_day ({max} min); \
         the half-day band would be empty"
    )]
    HalfDayBand { code: String, min: i64, max: i64 },
    #[error("shift {code:?}: the lunch break {start}+{minutes} min does not lie inside the shift {shift_start}-{end}")]
    LunchOutsideShift { code: String, start: NaiveTime, minutes: i64, shift_start: NaiveTime, end: NaiveTime },
    #[error("shift {code:?}: the shift code is empty")]
    EmptyCode { code: String },
}

impl Shift {
    /// A shift from `start` to `end` with the defaults a factory usually starts from: no grace, half day from 4 h,
    /// present above 6 h, overtime when more than 30 min before or after the shift, no lunch deduction (30 min
    /// when enabled), check-in window 2 h before, check-out window 4 h after (clipped between consecutive days),
    /// first/last pairing, 60 s debounce, single punch absent.
    pub fn new(code: &str, start: NaiveTime, end: NaiveTime) -> Self {
        Self {
            code: code.to_owned(),
            start: truncate(start),
            end: truncate(end),
            grace_late_in: Duration::zero(),
            grace_early_out: Duration::zero(),
            min_half_day: Duration::hours(4),
            max_work_for_half_day: Duration::hours(6),
            overtime_threshold_before_shift: Some(Duration::minutes(30)),
            overtime_threshold_after_shift: Some(Duration::minutes(30)),
            deduct_lunch_break: false,
            lunch_break_start: None,
            lunch_break_duration: Duration::minutes(30),
            check_in_window_before_start: Duration::hours(2),
            check_out_window_after_end: Duration::hours(4),
            pairing: PairingMode::FirstLast,
            debounce: Duration::seconds(60),
            single_punch: SinglePunchPolicy::Absent,
        }
    }

    /// The shift's length; in (0, 24 h).
    pub fn length(&self) -> Duration {
        let secs = (i64::from(self.end.num_seconds_from_midnight())
            - i64::from(self.start.num_seconds_from_midnight()))
        .rem_euclid(86_400);
        Duration::seconds(secs)
    }

    /// Whether the shift crosses midnight.
    pub fn is_overnight(&self) -> bool {
        self.end < self.start
    }

    /// Offset of the lunch break's start from the shift's start.
    pub(crate) fn lunch_offset(&self) -> Duration {
        match self.lunch_break_start {
            Some(at) => {
                let secs = (i64::from(at.num_seconds_from_midnight())
                    - i64::from(self.start.num_seconds_from_midnight()))
                .rem_euclid(86_400);
                Duration::seconds(secs)
            }
            None => (self.length() - self.lunch_break_duration) / 2,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field that is out of range, named.
    pub fn validate(&self) -> Result<(), ShiftError> {
        let code = || self.code.clone();
        if self.code.trim().is_empty() {
            return Err(ShiftError::EmptyCode { code: code() });
        }
        if self.start.num_seconds_from_midnight() == self.end.num_seconds_from_midnight() {
            return Err(ShiftError::ZeroLength { code: code(), at: self.start });
        }
        let length = self.length();
        let day = Duration::hours(24);
        let mut bounded = vec![
            ("grace_late_in", self.grace_late_in, length),
            ("grace_early_out", self.grace_early_out, length),
            ("min_half_day", self.min_half_day, day),
            ("max_work_for_half_day", self.max_work_for_half_day, day),
            ("lunch_break_duration", self.lunch_break_duration, length),
            ("check_in_window_before_start", self.check_in_window_before_start, MAX_WINDOW),
            ("check_out_window_after_end", self.check_out_window_after_end, MAX_WINDOW),
            ("debounce", self.debounce, MAX_DEBOUNCE),
        ];
        if let Some(t) = self.overtime_threshold_before_shift {
            bounded.push(("overtime_threshold_before_shift", t, day));
        }
        if let Some(t) = self.overtime_threshold_after_shift {
            bounded.push(("overtime_threshold_after_shift", t, day));
        }
        for (field, value, max) in bounded {
            if value < Duration::zero() {
                return Err(ShiftError::Negative { code: code(), field, minutes: value.num_minutes() });
            }
            if value > max {
                return Err(ShiftError::TooLong {
                    code: code(),
                    field,
                    minutes: value.num_minutes(),
                    max_minutes: max.num_minutes(),
                });
            }
        }
        if self.min_half_day > self.max_work_for_half_day {
            return Err(ShiftError::HalfDayBand {
                code: code(),
                min: self.min_half_day.num_minutes(),
                max: self.max_work_for_half_day.num_minutes(),
            });
        }
        if self.deduct_lunch_break && self.lunch_offset() + self.lunch_break_duration > length {
            return Err(ShiftError::LunchOutsideShift {
                code: code(),
                start: self.lunch_break_start.unwrap_or(self.start),
                minutes: self.lunch_break_duration.num_minutes(),
                shift_start: self.start,
                end: self.end,
            });
        }
        Ok(())
    }
}

/// Drops any fraction of a second: the engine works in whole seconds, like the devices.
fn truncate(t: NaiveTime) -> NaiveTime {
    t.with_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    #[test]
    fn overnight_length_wraps_midnight() {
        let night = Shift::new("N", t(22, 0), t(6, 0));
        assert!(night.is_overnight());
        assert_eq!(night.length(), Duration::hours(8));
        assert_eq!(Shift::new("G", t(9, 0), t(18, 0)).length(), Duration::hours(9));
    }

    #[test]
    fn lunch_defaults_to_the_middle_and_wraps_for_night_shifts() {
        let mut day = Shift::new("G", t(9, 0), t(18, 0));
        day.lunch_break_duration = Duration::minutes(60);
        assert_eq!(day.lunch_offset(), Duration::minutes(240));
        let mut night = Shift::new("N", t(22, 0), t(6, 0));
        night.lunch_break_start = Some(t(2, 0));
        assert_eq!(night.lunch_offset(), Duration::hours(4));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let ok = Shift::new("G", t(9, 0), t(18, 0));
        assert_eq!(ok.validate(), Ok(()));

        let zero = Shift::new("Z", t(9, 0), t(9, 0));
        assert!(matches!(zero.validate(), Err(ShiftError::ZeroLength { .. })));

        let mut neg = ok.clone();
        neg.grace_late_in = Duration::minutes(-5);
        let err = neg.validate().unwrap_err().to_string();
        assert!(err.contains("grace_late_in is -5 min"), "{err}");

        let mut band = ok.clone();
        band.min_half_day = Duration::hours(7);
        assert!(matches!(band.validate(), Err(ShiftError::HalfDayBand { min: 420, max: 360, .. })));

        let mut lunch = ok.clone();
        lunch.deduct_lunch_break = true;
        lunch.lunch_break_start = Some(t(17, 45));
        assert!(matches!(lunch.validate(), Err(ShiftError::LunchOutsideShift { .. })));

        let mut window = ok.clone();
        window.check_out_window_after_end = Duration::hours(25);
        let err = window.validate().unwrap_err().to_string();
        assert!(err.contains("check_out_window_after_end is 1500 min, over the limit of 1440 min"), "{err}");

        let mut debounce = ok;
        debounce.debounce = Duration::hours(1);
        assert!(matches!(debounce.validate(), Err(ShiftError::TooLong { field: "debounce", .. })));
    }

    #[test]
    fn names_round_trip() {
        for mode in [PairingMode::FirstLast, PairingMode::Pairs, PairingMode::ByState, PairingMode::ManDays] {
            assert_eq!(PairingMode::from_name(mode.as_str()), Some(mode));
        }
        for policy in [SinglePunchPolicy::Absent, SinglePunchPolicy::HalfDay, SinglePunchPolicy::Present] {
            assert_eq!(SinglePunchPolicy::from_name(policy.as_str()), Some(policy));
        }
        assert_eq!(PairingMode::from_name("fifo"), None);
    }
}
