//! The attendance engine: punches + shift + calendar -> one [`AttendanceDay`] per employee-day (and ManDays rows).
//!
//! Architecture invariant: the engine does no I/O. No database, no clock ("now" is an argument), no tokio, no
//! logging of its own; every function is deterministic, so the job layer can recompute any day at any time and get
//! the same row.
//!
//! Entry points: build an [`EmployeeContext`] (employee + [`Shift`] + [`SiteCalendar`] + leave), then
//! [`compute_range`] (rows with the sandwich rule), [`compute_day`] (one day, no sandwich), [`apply_sandwich`] /
//! [`revert_sandwich`], [`affected_days`] / [`affected_by_dates`] (what to recompute), [`days_closing_between`]
//! (what the "close the day" job recomputes), [`punch_span`] (which punches to load) and [`ManDaysRow::from_day`].
//!
//! The rules below are the specification (`attendance-rules.md`) plus every decision taken where it is silent.
//!
#![doc = include_str!("RULES.md")]

mod affected;
mod calendar;
mod context;
mod day;
mod debounce;
mod explain;
mod figures;
mod man_days;
mod model;
mod pairing;
mod range;
mod sandwich;
mod shift;
mod status;
mod week_off;
mod window;

pub use affected::{affected_by_dates, affected_days};
pub use calendar::{DayKind, SiteCalendar};
pub use context::{EmployeeContext, EngineError, MAX_RANGE_DAYS};
pub use day::{compute_day, AttendanceDay, DayFlags, LeaveInfo, PunchCounts};
pub use figures::{WorkSlot, MAX_MAN_DAYS_SLOTS};
pub use man_days::ManDaysRow;
pub use model::{
    Approval, AttendancePunch, Employee, Holiday, HolidayKind, Leave, PunchOrigin, SandwichSetting, SiteSettings,
};
pub use range::{compute_range, days_closing_between, padded_range, punch_span};
pub use sandwich::{apply as apply_sandwich, revert as revert_sandwich, Sandwich, MAX_RUN_DAYS};
pub use shift::{PairingMode, Shift, ShiftError, SinglePunchPolicy, MAX_DEBOUNCE, MAX_WINDOW};
pub use status::{DayStatus, UnknownStatus};
pub use week_off::{NthWeekday, Occurrence, WeekOffRule};
pub use window::{days_a_punch_may_belong_to, half_day_start, DayWindow};
