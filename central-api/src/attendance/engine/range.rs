//! Computing a date range for one employee, sandwich rule included, and which days close when.
//!
//! Design: each row is a pure function of (inputs, date, now). To evaluate the sandwich rule for the days of the
//! range, the range is widened internally on each side across any run of possible sandwich days (capped at
//! [`MAX_RUN_DAYS`]) plus the neighbouring day, and only the requested days are returned. So computing one day, a
//! month, or the days named by [`super::affected_days`] always gives the same row for the same date.

use chrono::{NaiveDate, NaiveDateTime};

use super::context::{check_range, minus_days, plus_days, EmployeeContext, EngineError};
use super::day::{build_day, AttendanceDay};
use super::model::AttendancePunch;
use super::sandwich::{self, MAX_RUN_DAYS};

/// Computes the rows of `from..=to` (both included) for the employee of `ctx`, with the sandwich rule applied.
/// Days outside the employment have no row. `punches` may be in any order and may include punches of other days;
/// `now` is the site's local wall-clock time and decides which days are still provisional.
///
/// # Errors
/// A backwards or too long range, or a punch of another employee.
pub fn compute_range(
    ctx: &EmployeeContext<'_>,
    punches: &[AttendancePunch],
    from: NaiveDate,
    to: NaiveDate,
    now: NaiveDateTime,
) -> Result<Vec<AttendanceDay>, EngineError> {
    check_range(from, to)?;
    ctx.check_punches(punches)?;
    let (lo, hi) = padded_range(ctx, from, to);
    let span = usize::try_from((hi - lo).num_days()).unwrap_or(0) + 1;

    let clock = ctx.clock();
    let mut by_day: Vec<Vec<&AttendancePunch>> = vec![Vec::new(); span];
    for punch in punches {
        let day = clock.segment_day(punch.local_time);
        if day >= lo && day <= hi {
            if let Some(bucket) = usize::try_from((day - lo).num_days()).ok().and_then(|i| by_day.get_mut(i)) {
                bucket.push(punch);
            }
        }
    }

    let mut rows: Vec<AttendanceDay> =
        lo.iter_days().zip(by_day.iter()).filter_map(|(date, segment)| build_day(ctx, date, segment, now)).collect();
    sandwich::apply(&mut rows, ctx.site().settings().sandwich);
    rows.retain(|row| row.date >= from && row.date <= to);
    Ok(rows)
}

/// The range the rows of `from..=to` depend on: widened across possible sandwich runs plus one neighbouring day.
pub fn padded_range(ctx: &EmployeeContext<'_>, from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    if ctx.site().settings().sandwich == super::model::SandwichSetting::Off {
        return (from, to);
    }
    let mut lo = from;
    let mut steps = 0;
    while steps <= MAX_RUN_DAYS && ctx.may_be_sandwiched(minus_days(lo, 1)) {
        lo = minus_days(lo, 1);
        steps += 1;
    }
    let mut hi = to;
    steps = 0;
    while steps <= MAX_RUN_DAYS && ctx.may_be_sandwiched(plus_days(hi, 1)) {
        hi = plus_days(hi, 1);
        steps += 1;
    }
    (minus_days(lo, 1), plus_days(hi, 1))
}

/// The local wall-clock span whose punches [`compute_range`] needs for `from..=to`: the job layer loads the
/// employee's punches with `first <= local_time <= last`. It covers whole segments, so punches outside the windows
/// are reported on their day too.
pub fn punch_span(ctx: &EmployeeContext<'_>, from: NaiveDate, to: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let (lo, hi) = padded_range(ctx, from, to);
    (ctx.clock().segment(lo).0, ctx.clock().segment(hi).1)
}

/// The days of the employee whose check-out window closes in `(after, until]`: the "close the day" job recomputes
/// them (with [`super::affected_by_dates`], since a new absence can complete a sandwich), turning provisional rows
/// final and pending days into A.
pub fn days_closing_between(ctx: &EmployeeContext<'_>, after: NaiveDateTime, until: NaiveDateTime) -> Vec<NaiveDate> {
    if until <= after {
        return Vec::new();
    }
    // A day closes at most two days after it starts (an overnight shift plus its window), so scan from there.
    let first = minus_days(after.date(), 2);
    let last = until.date();
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| {
            let closes = ctx.window(*d).closes;
            closes > after && closes <= until
        })
        .collect()
}
