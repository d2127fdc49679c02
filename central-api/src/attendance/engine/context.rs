//! Everything the engine needs to know about one employee apart from their punches, checked once.

use chrono::{Days, NaiveDate, NaiveDateTime, Timelike};
use protocol::{Pin, SiteId};

use super::calendar::{DayKind, SiteCalendar};
use super::model::{AttendancePunch, Employee, Leave, SandwichSetting};
use super::shift::{Shift, ShiftError};
use super::window::{DayWindow, ShiftClock};

/// Longest date range one call computes; a longer reprocess is done in chunks.
pub const MAX_RANGE_DAYS: u64 = 1000;

/// Why the engine refused its inputs. Each names the employee and the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Shift(#[from] ShiftError),
    #[error("employee {employee}: works shift {expected:?} but shift {given:?} was supplied")]
    ShiftMismatch { employee: Pin, expected: String, given: String },
    #[error("employee {employee}: belongs to site {expected} but the calendar of site {given} was supplied")]
    SiteMismatch { employee: Pin, expected: SiteId, given: SiteId },
    #[error("employee {employee}: left on {leaving}, before joining on {joining}")]
    EmploymentBackwards { employee: Pin, joining: NaiveDate, leaving: NaiveDate },
    #[error("employee {employee}: a leave of employee {other} was supplied")]
    ForeignLeave { employee: Pin, other: Pin },
    #[error("employee {employee}: leave from {from} to {to} ends before it starts")]
    LeaveBackwards { employee: Pin, from: NaiveDate, to: NaiveDate },
    #[error("employee {employee}: a punch of employee {other} at {at} was supplied")]
    ForeignPunch { employee: Pin, other: Pin, at: NaiveDateTime },
    #[error("date range {from} to {to} ends before it starts")]
    RangeBackwards { from: NaiveDate, to: NaiveDate },
    #[error("date range {from} to {to} is {days} days long, over the limit of {max} days per call")]
    RangeTooLong { from: NaiveDate, to: NaiveDate, days: u64, max: u64 },
}

/// One employee with their validated shift, their site's calendar and their leave.
#[derive(Debug, Clone)]
pub struct EmployeeContext<'a> {
    employee: &'a Employee,
    shift: &'a Shift,
    clock: ShiftClock,
    site: &'a SiteCalendar,
    leaves: Vec<&'a Leave>,
    shift_label: String,
}

impl<'a> EmployeeContext<'a> {
    /// Checks that the pieces fit together: the shift is valid and is the employee's, the calendar is their site's,
    /// the leave is theirs. Leave that is not approved is kept out.
    ///
    /// # Errors
    /// The first mismatch or invalid value, named.
    pub fn new(
        employee: &'a Employee,
        shift: &'a Shift,
        site: &'a SiteCalendar,
        leaves: &'a [Leave],
    ) -> Result<Self, EngineError> {
        shift.validate()?;
        let who = || employee.employee_id.clone();
        if shift.code != employee.shift {
            return Err(EngineError::ShiftMismatch {
                employee: who(),
                expected: employee.shift.clone(),
                given: shift.code.clone(),
            });
        }
        if site.site() != &employee.site {
            return Err(EngineError::SiteMismatch {
                employee: who(),
                expected: employee.site.clone(),
                given: site.site().clone(),
            });
        }
        if let (Some(joining), Some(leaving)) = (employee.date_of_joining, employee.date_of_leaving) {
            if leaving < joining {
                return Err(EngineError::EmploymentBackwards { employee: who(), joining, leaving });
            }
        }
        for leave in leaves {
            if leave.employee_id != employee.employee_id {
                return Err(EngineError::ForeignLeave { employee: who(), other: leave.employee_id.clone() });
            }
            if leave.to < leave.from {
                return Err(EngineError::LeaveBackwards { employee: who(), from: leave.from, to: leave.to });
            }
        }
        let leaves = leaves.iter().filter(|l| l.approval == super::model::Approval::Approved).collect();
        let shift_label = format!(
            "shift {} {:02}:{:02}-{:02}:{:02}, {}",
            shift.code,
            shift.start.hour(),
            shift.start.minute(),
            shift.end.hour(),
            shift.end.minute(),
            shift.pairing.as_str()
        );
        Ok(Self { employee, shift, clock: ShiftClock::new(shift), site, leaves, shift_label })
    }

    /// The employee.
    pub fn employee(&self) -> &Employee {
        self.employee
    }

    /// The employee's shift.
    pub fn shift(&self) -> &Shift {
        self.shift
    }

    /// The site's calendar.
    pub fn site(&self) -> &SiteCalendar {
        self.site
    }

    /// Day `date`'s shift and window.
    pub fn window(&self, date: NaiveDate) -> DayWindow {
        self.clock.window(date)
    }

    /// The day a punch at `t` is reported on: the day whose window holds it, or, between two windows, the day
    /// whose 24-hour segment of the timeline holds it (see [`super::window`]).
    pub fn day_of(&self, t: NaiveDateTime) -> NaiveDate {
        self.clock.segment_day(t)
    }

    /// "shift GEN 09:00-18:00, first_last", for explanations.
    pub(crate) fn shift_label(&self) -> &str {
        &self.shift_label
    }

    pub(crate) fn clock(&self) -> &ShiftClock {
        &self.clock
    }

    /// What `date` is before any punch is looked at.
    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        DayKind::of(date, &self.employee.week_off, self.site)
    }

    /// The approved leave covering `date`, if any (the first by start date when several overlap).
    pub fn leave_on(&self, date: NaiveDate) -> Option<&'a Leave> {
        self.leaves.iter().copied().filter(|l| l.covers(date)).min_by_key(|l| (l.from, l.to, !l.paid, l.kind.clone()))
    }

    /// Whether the sandwich rule could make `date` part of a run under the site's setting: a week-off, or (when
    /// holidays count) a holiday. Looks at the calendar only, so it is a superset of the days that actually are.
    pub fn may_be_sandwiched(&self, date: NaiveDate) -> bool {
        match self.site.settings().sandwich {
            SandwichSetting::Off => false,
            SandwichSetting::WeekOffs => matches!(self.day_kind(date), DayKind::WeekOff { .. }),
            SandwichSetting::WeekOffsAndHolidays => !self.day_kind(date).is_working(),
        }
    }

    /// Checks that `punches` are all this employee's.
    ///
    /// # Errors
    /// [`EngineError::ForeignPunch`] naming the first punch of someone else.
    pub fn check_punches(&self, punches: &[AttendancePunch]) -> Result<(), EngineError> {
        match punches.iter().find(|p| p.employee_id != self.employee.employee_id) {
            Some(p) => Err(EngineError::ForeignPunch {
                employee: self.employee.employee_id.clone(),
                other: p.employee_id.clone(),
                at: p.local_time,
            }),
            None => Ok(()),
        }
    }
}

/// Checks a date range's direction and length.
///
/// # Errors
/// [`EngineError::RangeBackwards`] or [`EngineError::RangeTooLong`].
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), EngineError> {
    if to < from {
        return Err(EngineError::RangeBackwards { from, to });
    }
    let days = u64::try_from((to - from).num_days()).unwrap_or(u64::MAX).saturating_add(1);
    if days > MAX_RANGE_DAYS {
        return Err(EngineError::RangeTooLong { from, to, days, max: MAX_RANGE_DAYS });
    }
    Ok(())
}

/// `date` plus `n` days, saturating at the calendar's end.
pub(crate) fn plus_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_add_days(Days::new(n)).unwrap_or(NaiveDate::MAX)
}

/// `date` minus `n` days, saturating at the calendar's start.
pub(crate) fn minus_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(n)).unwrap_or(NaiveDate::MIN)
}
