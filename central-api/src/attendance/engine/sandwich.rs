//! The sandwich rule (the seed's `correct_a_wo_a_pattern` and `revert_awo_corrections`).
//!
//! A run is a maximal stretch of consecutive days whose status is WO (and PH, when the site's setting includes
//! holidays). When the day just before the run and the day just after it are both absences (A, or unpaid leave),
//! every day of the run becomes A, flagged sandwich, keeping its original status.
//!
//! Design: [`apply`] decides every run afresh from the original statuses alone, so it is a pure function of the
//! rows: running it twice changes nothing, and when a late punch turns a neighbour into P the next recomputation
//! simply does not mark the run again (the automatic undo). A worked week-off (WOP) or a holiday under the
//! week-offs-only setting is not part of a run and is not an absence, so it protects its neighbours. A run longer
//! than [`MAX_RUN_DAYS`] is never sandwiched (a long shutdown is not a sandwich). A run with no neighbouring row
//! (the edge of the rows, or next to a day outside the employment) cannot be judged and is left as it is; fresh
//! rows carry no mark, so such a run stays unmarked.

use chrono::NaiveDate;

use super::day::AttendanceDay;
use super::explain::fmt_date;
use super::model::SandwichSetting;
use super::status::DayStatus;

/// Longest run the rule applies to.
pub const MAX_RUN_DAYS: u64 = 31;

/// The mark the sandwich rule leaves on a day it turned into A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sandwich {
    /// The status before the rule (WO or PH); a revert restores it exactly.
    pub original: DayStatus,
    /// The absence just before the run.
    pub absent_before: NaiveDate,
    /// The absence just after the run.
    pub absent_after: NaiveDate,
}

impl Sandwich {
    /// The sentence added to the day's explanation.
    pub fn describe(&self) -> String {
        format!(
            "Sandwich rule: {} between absences on {} and {}, so counted as A.",
            self.original.code(),
            fmt_date(self.absent_before),
            fmt_date(self.absent_after)
        )
    }
}

/// Restores every sandwiched row's original status.
pub fn revert(rows: &mut [AttendanceDay]) {
    for row in rows {
        if let Some(mark) = row.sandwich.take() {
            row.status = Some(mark.original);
        }
    }
}

/// Applies the sandwich rule to `rows` (any employees, any order; they are sorted by employee and date).
///
/// Runs are found from the rows' original statuses (a sandwiched day counts as its original WO/PH), and every run
/// whose neighbours are both present among the rows is decided afresh, so applying twice changes nothing and an
/// earlier mark whose reason is gone is removed. A run touching the edge of `rows` cannot be judged from them and is
/// left exactly as it is (the range functions widen their rows so that this never happens to a returned day).
pub fn apply(rows: &mut [AttendanceDay], setting: SandwichSetting) {
    rows.sort_by(|a, b| a.employee_id.cmp(&b.employee_id).then(a.date.cmp(&b.date)));
    let in_run = |row: &AttendanceDay| match original_status(row) {
        Some(DayStatus::WeekOff) => setting != SandwichSetting::Off,
        Some(DayStatus::Holiday) => setting == SandwichSetting::WeekOffsAndHolidays,
        _ => false,
    };
    let next_to =
        |a: &AttendanceDay, b: &AttendanceDay| a.employee_id == b.employee_id && a.date.succ_opt() == Some(b.date);
    let mut i = 0;
    while i < rows.len() {
        if !in_run(&rows[i]) {
            // Not part of any run under this setting (for example after the setting was switched off).
            revert(std::slice::from_mut(&mut rows[i]));
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < rows.len() && in_run(&rows[i + 1]) && next_to(&rows[i], &rows[i + 1]) {
            i += 1;
        }
        let end = i;
        i += 1;
        let before = start.checked_sub(1).map(|b| &rows[b]).filter(|b| next_to(b, &rows[start]));
        let after = rows.get(end + 1).filter(|a| next_to(&rows[end], a));
        let long = u64::try_from(end - start + 1).unwrap_or(u64::MAX) > MAX_RUN_DAYS;
        let mark = match (before, after) {
            _ if long => None,
            (Some(before), Some(after)) if before.is_absence() && after.is_absence() => Some((before.date, after.date)),
            (Some(_), Some(_)) => None,
            // An edge of the rows: nothing to judge by, leave the run as it is.
            _ => continue,
        };
        let run = &mut rows[start..=end];
        revert(run);
        if let Some((absent_before, absent_after)) = mark {
            for row in run {
                if let Some(original) = row.status {
                    row.sandwich = Some(Sandwich { original, absent_before, absent_after });
                    row.status = Some(DayStatus::Absent);
                }
            }
        }
    }
}

/// The status a row had before any sandwich mark.
fn original_status(row: &AttendanceDay) -> Option<DayStatus> {
    row.sandwich.map(|mark| mark.original).or(row.status)
}
