//! The status code of an employee-day and the rules that choose it.
//!
//! - Week-off / holiday: WO / PH, or WOP / PHP when any work was done (a complete pair, or a single punch when the
//!   shift's policy does not count it as absent).
//! - Working day: no punch -> A; punches but no complete pair -> the shift's single-punch policy; otherwise
//!   work < min_half_day -> A, work <= max_work_for_half_day -> HD, else P.
//! - Approved leave on a working day -> L, unless the punches make it P or HD (then that, flagged
//!   `worked_on_leave` so an admin can cancel the leave). Leave does not apply on week-offs and holidays.
//! - While the day is provisional it is never A: a row that would be A has no status yet (`None`, "pending").

use std::fmt;
use std::str::FromStr;

use chrono::Duration;

use super::calendar::DayKind;
use super::explain::fmt_duration;
use super::shift::{Shift, SinglePunchPolicy};

/// The status codes of the rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DayStatus {
    /// P: present.
    Present,
    /// HD: half day.
    HalfDay,
    /// A: absent.
    Absent,
    /// WO: week-off.
    WeekOff,
    /// PH: public holiday.
    Holiday,
    /// WOP: worked on a week-off.
    WeekOffWorked,
    /// PHP: worked on a holiday.
    HolidayWorked,
    /// L: approved leave.
    Leave,
}

impl DayStatus {
    /// Every status.
    pub const ALL: [Self; 8] = [
        Self::Present,
        Self::HalfDay,
        Self::Absent,
        Self::WeekOff,
        Self::Holiday,
        Self::WeekOffWorked,
        Self::HolidayWorked,
        Self::Leave,
    ];

    /// The short code stored in the database and shown to admins.
    pub fn code(self) -> &'static str {
        match self {
            Self::Present => "P",
            Self::HalfDay => "HD",
            Self::Absent => "A",
            Self::WeekOff => "WO",
            Self::Holiday => "PH",
            Self::WeekOffWorked => "WOP",
            Self::HolidayWorked => "PHP",
            Self::Leave => "L",
        }
    }
}

impl fmt::Display for DayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A status code that is not one of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attendance status {0:?} (expected one of P, HD, A, WO, PH, WOP, PHP, L)")]
pub struct UnknownStatus(pub String);

impl FromStr for DayStatus {
    type Err = UnknownStatus;
    fn from_str(code: &str) -> Result<Self, UnknownStatus> {
        Self::ALL.into_iter().find(|s| s.code() == code).ok_or_else(|| UnknownStatus(code.to_owned()))
    }
}

/// What the punches amount to, before the calendar is taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// No punch counted.
    None,
    /// Punches, but no complete IN/OUT pair.
    Incomplete,
    /// Complete pairs totalling this much work.
    Worked(Duration),
}

/// The chosen status and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: Option<DayStatus>,
    pub reason: String,
    pub worked_on_leave: bool,
}

/// Chooses the status of a day.
pub fn decide(kind: &DayKind, leave: Option<&str>, work: Work, shift: &Shift, provisional: bool) -> Decision {
    let policy_counts = shift.single_punch != SinglePunchPolicy::Absent;
    let did_work = match work {
        Work::None => false,
        Work::Incomplete => policy_counts,
        Work::Worked(_) => true,
    };
    let off = |status: DayStatus, worked: DayStatus, what: &str| {
        if did_work {
            Decision {
                status: Some(worked),
                reason: format!("Worked on a {what}: {}.", worked.code()),
                worked_on_leave: false,
            }
        } else {
            Decision { status: Some(status), reason: format!("Not worked: {}.", status.code()), worked_on_leave: false }
        }
    };
    match kind {
        DayKind::WeekOff { .. } => return off(DayStatus::WeekOff, DayStatus::WeekOffWorked, "week-off"),
        DayKind::Holiday { .. } => return off(DayStatus::Holiday, DayStatus::HolidayWorked, "holiday"),
        DayKind::Working => {}
    }

    let (from_work, stem) = working_day(work, shift);
    if let Some(leave) = leave {
        return match from_work {
            DayStatus::Present | DayStatus::HalfDay => Decision {
                status: Some(from_work),
                reason: format!(
                    "{stem}: {}. Worked although on approved {leave} leave; the leave should be cancelled.",
                    from_work.code()
                ),
                worked_on_leave: true,
            },
            _ => Decision {
                status: Some(DayStatus::Leave),
                reason: format!("On approved {leave} leave: L."),
                worked_on_leave: false,
            },
        };
    }
    if from_work == DayStatus::Absent && provisional {
        let reason = format!("{stem}: would be A if the day closed now, so no status yet.");
        return Decision { status: None, reason, worked_on_leave: false };
    }
    Decision { status: Some(from_work), reason: format!("{stem}: {}.", from_work.code()), worked_on_leave: false }
}

/// The status a working day's punches give, and the reason without the status.
fn working_day(work: Work, shift: &Shift) -> (DayStatus, String) {
    match work {
        Work::None => (DayStatus::Absent, "No punch".to_owned()),
        Work::Incomplete => {
            let status = match shift.single_punch {
                SinglePunchPolicy::Absent => DayStatus::Absent,
                SinglePunchPolicy::HalfDay => DayStatus::HalfDay,
                SinglePunchPolicy::Present => DayStatus::Present,
            };
            (status, format!("Missing punch (no complete IN/OUT pair), shift {}'s policy", shift.code))
        }
        Work::Worked(total) if total < shift.min_half_day => (
            DayStatus::Absent,
            format!(
                "Worked {}, under the {} minimum for a half day",
                fmt_duration(total),
                fmt_duration(shift.min_half_day)
            ),
        ),
        Work::Worked(total) if total <= shift.max_work_for_half_day => (
            DayStatus::HalfDay,
            format!(
                "Worked {}, not more than the {} half-day limit",
                fmt_duration(total),
                fmt_duration(shift.max_work_for_half_day)
            ),
        ),
        Work::Worked(total) => (
            DayStatus::Present,
            format!(
                "Worked {}, over the {} half-day limit",
                fmt_duration(total),
                fmt_duration(shift.max_work_for_half_day)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn shift() -> Shift {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).expect("valid time");
        Shift::new("G", t(9), t(18))
    }

    #[test]
    fn codes_round_trip() {
        for status in DayStatus::ALL {
            assert_eq!(status.code().parse::<DayStatus>(), Ok(status));
        }
        assert_eq!("X".parse::<DayStatus>(), Err(UnknownStatus("X".into())));
    }

    #[test]
    fn thresholds_are_exact_at_their_boundaries() {
        let s = shift();
        let at = |d: Duration| decide(&DayKind::Working, None, Work::Worked(d), &s, false).status;
        assert_eq!(at(Duration::hours(4) - Duration::seconds(1)), Some(DayStatus::Absent));
        assert_eq!(at(Duration::hours(4)), Some(DayStatus::HalfDay));
        assert_eq!(at(Duration::hours(6)), Some(DayStatus::HalfDay));
        assert_eq!(at(Duration::hours(6) + Duration::seconds(1)), Some(DayStatus::Present));
    }

    #[test]
    fn provisional_days_are_never_absent() {
        let s = shift();
        let d = decide(&DayKind::Working, None, Work::None, &s, true);
        assert_eq!(d.status, None);
        assert!(d.reason.contains("would be A if the day closed now"), "{}", d.reason);
        assert_eq!(decide(&DayKind::Working, None, Work::None, &s, false).status, Some(DayStatus::Absent));
    }

    #[test]
    fn leave_yields_to_real_work() {
        let s = shift();
        let on_leave = decide(&DayKind::Working, Some("casual"), Work::None, &s, true);
        assert_eq!(on_leave.status, Some(DayStatus::Leave));
        let worked = decide(&DayKind::Working, Some("casual"), Work::Worked(Duration::hours(8)), &s, false);
        assert_eq!(worked.status, Some(DayStatus::Present));
        assert!(worked.worked_on_leave);
    }
}
