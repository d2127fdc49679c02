//! Which employee-days must be recomputed after something changed: the job layer's dirty-day marking.
//!
//! A punch changes exactly one day's own figures: the day whose 24-hour segment holds it (for an overnight shift
//! the morning punch belongs to the PREVIOUS date). Through the sandwich rule a changed day can also change the runs
//! of week-offs (and holidays) touching it: every contiguous possible-sandwich day on either side, up to
//! [`super::sandwich::MAX_RUN_DAYS`]. Recomputing exactly these days with [`super::compute_range`] gives what a
//! full reprocess gives (a property test checks it).

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::context::{minus_days, plus_days, EmployeeContext};
use super::model::AttendancePunch;
use super::sandwich::MAX_RUN_DAYS;

/// The days to recompute after `punches` (new, or manual logs whose approval changed) were added for the employee.
/// Punches of other employees are ignored.
pub fn affected_days(ctx: &EmployeeContext<'_>, punches: &[AttendancePunch]) -> BTreeSet<NaiveDate> {
    let owners = punches
        .iter()
        .filter(|p| p.employee_id == ctx.employee().employee_id)
        .map(|p| ctx.clock().segment_day(p.local_time));
    affected_by_dates(ctx, owners)
}

/// The days to recompute after the given days changed for another reason: a holiday or leave added or removed, a
/// day closed by the absentees job.
pub fn affected_by_dates(ctx: &EmployeeContext<'_>, dates: impl IntoIterator<Item = NaiveDate>) -> BTreeSet<NaiveDate> {
    let changed: BTreeSet<NaiveDate> = dates.into_iter().collect();
    let mut days = changed.clone();
    for date in changed {
        let mut d = date;
        for _ in 0..MAX_RUN_DAYS {
            d = minus_days(d, 1);
            if !ctx.may_be_sandwiched(d) {
                break;
            }
            days.insert(d);
        }
        d = date;
        for _ in 0..MAX_RUN_DAYS {
            d = plus_days(d, 1);
            if !ctx.may_be_sandwiched(d) {
                break;
            }
            days.insert(d);
        }
    }
    days
}
