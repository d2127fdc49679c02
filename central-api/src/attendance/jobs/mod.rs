//! The attendance job layer: loads an employee's inputs, runs the engine, writes the rows, one transaction per
//! batch of employees.
//!
//! - [`recompute`] is the core every job shares: for a batch of employees and a rule choosing each one's days (the
//!   claimed dirty days, the days closing, a whole range), it loads the reference tables, employees, leave, manual
//!   logs and punches (one query per batch and group of overlapping padded spans the engine needs; each employee
//!   keeps only the punches of their own span), computes the days with [`engine::compute_range`], and replaces those
//!   days' rows.
//! - [`worker`]: the incremental worker that drains `attendance_dirty`.
//! - [`bulk`]: close the day (absentees), apply or revert the sandwich rule, reprocess a range; all idempotent. On
//!   SQLite each chunk's successor is computed ahead on a reader while it writes (`ahead`).
//! - [`schedule`]: the loops `serve` runs (worker, periodic close-day, daily sandwich job).
//!
//! Invariants: a dirty row is deleted only in the transaction that wrote the days it marked, and only when it was
//! not re-marked since it was read (see [`crate::store::attendance::dirty`]). On PostgreSQL every transaction that
//! writes an employee's rows holds that employee's advisory lock, so replicas never compute the same employee at the
//! same time.

mod ahead;
pub mod bulk;
pub mod schedule;
pub mod worker;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::engine::{self, AttendanceDay, AttendancePunch, EmployeeContext, Leave};
use crate::store::attendance::dirty::DirtyDay;
use crate::store::attendance::inputs::{load_employees, load_leaves, Employees, Reference, SiteInfo};
use crate::store::attendance::punches::{load_manual_logs, load_punches, Who};
use crate::store::attendance::results::{write_days, DayRange};
use crate::store::{StoreError, Tx};

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// A tracked job was told to stop (cancelled, taken over, or the service is stopping) between two chunks;
    /// the chunks already committed stay.
    #[error("stopped before the end")]
    Stopped,
}

impl JobError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }
}

/// What a recomputation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Employees whose days were written.
    pub employees: usize,
    /// Rows written.
    pub days: usize,
    /// Punches loaded.
    pub punches: usize,
    /// Time spent loading inputs (reference tables, employees, punches, manual logs, leave).
    pub load_time: std::time::Duration,
    /// Time spent in the engine alone.
    pub engine_time: std::time::Duration,
    /// Time spent writing rows.
    pub write_time: std::time::Duration,
    /// Time spent on the dirty-day queue: taking the employees' locks, reading and releasing their dirty rows.
    pub queue_time: std::time::Duration,
    /// Time spent committing.
    pub commit_time: std::time::Duration,
    /// Transactions that wrote rows computed ahead, beside the transaction before them (SQLite bulk jobs).
    pub computed_ahead: usize,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, other: Self) {
        self.employees += other.employees;
        self.days += other.days;
        self.punches += other.punches;
        self.load_time += other.load_time;
        self.engine_time += other.engine_time;
        self.write_time += other.write_time;
        self.queue_time += other.queue_time;
        self.commit_time += other.commit_time;
        self.computed_ahead += other.computed_ahead;
    }
}

/// The site's local wall-clock time at `at`.
pub fn site_now(site: &SiteInfo, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&site.zone).naive_local()
}

/// Splits sorted dates into runs of consecutive days.
pub fn runs(dates: &BTreeSet<NaiveDate>) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &date in dates {
        match out.last_mut() {
            Some((_, last)) if last.succ_opt() == Some(date) => *last = date,
            _ => out.push((date, date)),
        }
    }
    out
}

/// What [`recompute`] wrote, and which employees it could not compute at all.
#[derive(Debug, Clone, Default)]
pub struct Recomputed {
    pub outcome: Outcome,
    /// The date ranges whose rows were replaced, per employee.
    pub written: HashMap<String, Vec<(NaiveDate, NaiveDate)>>,
    /// Employees whose inputs the engine refused (or whose shift or site row is missing). Their marked days are
    /// released with an error logged: nothing can be written for them until their configuration is fixed, which
    /// marks them again.
    pub skipped: BTreeSet<String>,
}

impl Recomputed {
    /// Whether the dirty row `day` may be released: its day was written, or its employee's inputs were refused.
    pub fn covers(&self, day: &DirtyDay) -> bool {
        self.skipped.contains(&day.employee_id)
            || self
                .written
                .get(&day.employee_id)
                .is_some_and(|ranges| ranges.iter().any(|(from, to)| *from <= day.work_date && day.work_date <= *to))
    }
}

/// Above this many distinct punch spans in a batch, [`recompute`] loads the union span in one query instead.
const MAX_SPAN_QUERIES: usize = 8;

/// How [`recompute`] chooses an employee's days: from their context and their site's local "now".
pub type Plan<'p> = dyn Fn(&EmployeeContext<'_>, NaiveDateTime) -> BTreeSet<NaiveDate> + Send + Sync + 'p;

/// A transformation applied to the computed rows before they are written (the sandwich revert).
pub type Finish = fn(&mut [AttendanceDay]);

/// A span of local wall-clock time, `from <= local_time < until`.
type Span = (NaiveDateTime, NaiveDateTime);

/// Adds `span` to an employee's spans (kept sorted and apart), merging it with those it overlaps or touches.
fn add_span(spans: &mut Vec<Span>, span: Span) {
    spans.push(span);
    spans.sort();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for &(from, until) in spans.iter() {
        match merged.last_mut() {
            Some((_, end)) if from <= *end => *end = (*end).max(until),
            _ => merged.push((from, until)),
        }
    }
    *spans = merged;
}

/// Groups the employees' spans that overlap (or touch): one query per group covers the union of its spans. An
/// employee with far-apart spans (the worker's claim of a month's first and last days) is in several groups.
fn span_groups(spans: &HashMap<String, Vec<Span>>) -> Vec<(Span, Vec<String>)> {
    let mut sorted: Vec<(&Span, &String)> =
        spans.iter().flat_map(|(id, own)| own.iter().map(move |span| (span, id))).collect();
    sorted.sort();
    let mut groups: Vec<(Span, Vec<String>)> = Vec::new();
    for (&(from, until), id) in sorted {
        match groups.last_mut() {
            Some(((_, end), ids)) if from <= *end => {
                *end = (*end).max(until);
                ids.push(id.clone());
            }
            _ => groups.push(((from, until), vec![id.clone()])),
        }
    }
    for (_, ids) in &mut groups {
        ids.sort();
        ids.dedup();
    }
    groups
}

/// Recomputes, in `tx`, the days `plan` chooses for each employee of `ids`, and replaces their rows. Employees
/// that cannot be computed (unknown, inactive, without site or shift) are left alone; an employee whose inputs the
/// engine refuses is skipped with an error logged (their configuration must be fixed, which marks them again).
///
/// # Errors
/// [`JobError::Store`] when the database fails; nothing of the batch is then written.
pub async fn recompute(
    tx: &mut Tx,
    reference: &Reference,
    ids: &[String],
    at: DateTime<Utc>,
    plan: &Plan<'_>,
    finish: Option<Finish>,
) -> Result<Recomputed, JobError> {
    compute(tx, reference, ids, at, plan, finish).await?.write(tx).await
}

/// The rows [`compute`] made for a batch of employees, not written yet.
#[derive(Debug, Default)]
pub struct Computed {
    /// What writing them will have done: `written` holds the ranges below; the outcome has no write time yet.
    pub done: Recomputed,
    ranges: Vec<DayRange>,
    days: Vec<AttendanceDay>,
}

impl Computed {
    /// Replaces the rows of the computed ranges with the computed days, in `tx`.
    ///
    /// # Errors
    /// [`JobError::Store`] when the database fails.
    pub async fn write(self, tx: &mut Tx) -> Result<Recomputed, JobError> {
        let Self { mut done, ranges, days } = self;
        if ranges.is_empty() && days.is_empty() {
            return Ok(done);
        }
        let started = std::time::Instant::now();
        write_days(tx, &ranges, &days).await?;
        done.outcome.write_time = started.elapsed();
        Ok(done)
    }
}

/// The first half of [`recompute`]: loads the inputs of `ids` in `tx` (any transaction, a reader's snapshot too)
/// and computes the days `plan` chooses, without writing anything.
///
/// # Errors
/// [`JobError::Store`] when the database fails.
pub async fn compute(
    tx: &mut Tx,
    reference: &Reference,
    ids: &[String],
    at: DateTime<Utc>,
    plan: &Plan<'_>,
    finish: Option<Finish>,
) -> Result<Computed, JobError> {
    let load_started = std::time::Instant::now();
    // Employees that cannot be computed yet (no site or shift, inactive) keep their marks: the worker's claim skips
    // them, and they are computed once configured.
    let (employees, _not_configured) = load_employees(tx, reference, Employees::Ids(ids)).await?;
    let mut result = Recomputed::default();
    if employees.is_empty() {
        return Ok(Computed::default());
    }
    // First pass: each employee's days, and the span of punches and leave the batch needs.
    struct Planned<'e> {
        employee: &'e engine::Employee,
        runs: Vec<(NaiveDate, NaiveDate)>,
        now: NaiveDateTime,
    }
    let no_leave: Vec<Leave> = Vec::new();
    let mut planned = Vec::with_capacity(employees.len());
    // Each employee's spans of punches, one per run of days (merged where they overlap).
    let mut spans: HashMap<String, Vec<Span>> = HashMap::with_capacity(employees.len());
    for employee in &employees {
        let (Some(shift), Some(site)) =
            (reference.shifts.get(&employee.shift), reference.sites.get(employee.site.as_str()))
        else {
            tracing::error!(employee = %employee.employee_id, shift = %employee.shift, "shift or site not found");
            result.skipped.insert(employee.employee_id.as_str().to_owned());
            continue;
        };
        let ctx = match EmployeeContext::new(employee, shift, &site.calendar, &no_leave) {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(employee = %employee.employee_id, error = %e, "attendance inputs refused");
                result.skipped.insert(employee.employee_id.as_str().to_owned());
                continue;
            }
        };
        let now = site_now(site, at);
        let runs = runs(&plan(&ctx, now));
        let mut own: Vec<Span> = Vec::new();
        for &(from, to) in &runs {
            let (lo, hi) = engine::punch_span(&ctx, from, to);
            add_span(&mut own, (lo, hi + Duration::seconds(1)));
        }
        if !own.is_empty() {
            spans.insert(employee.employee_id.to_string(), own);
            planned.push(Planned { employee, runs, now });
        }
    }
    let Some((lo, hi)) = spans.values().flatten().copied().reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) else {
        return Ok(Computed { done: result, ..Computed::default() });
    };
    let planned_ids: Vec<String> = planned.iter().map(|p| p.employee.employee_id.as_str().to_owned()).collect();
    // One query per group of overlapping spans (a claim mixing the month's first and last days then does not load
    // the whole month, neither for everyone nor for an employee claimed on both; a bulk chunk, whose spans all
    // overlap, is one query). Each employee then keeps only the punches of their own spans.
    let mut groups = span_groups(&spans);
    if groups.len() > MAX_SPAN_QUERIES {
        groups = vec![((lo, hi), planned_ids.clone())];
    }
    let mut punches = Vec::new();
    for ((from, until), ids) in &groups {
        punches.extend(load_punches(tx, ids, *from, *until).await?);
    }
    let device_punches = punches.len();
    for ((from, until), ids) in &groups {
        let who = if ids.len() == 1 { Who::One(&ids[0]) } else { Who::Many(ids) };
        punches.extend(load_manual_logs(tx, who, *from, *until).await?);
    }
    let leaves = load_leaves(tx, &planned_ids, lo.date() - Duration::days(1), hi.date()).await?;
    let mut by_pin: HashMap<String, Vec<AttendancePunch>> = HashMap::with_capacity(planned.len());
    let mut loaded = 0;
    for (n, punch) in punches.into_iter().enumerate() {
        let id = punch.employee_id.as_str();
        let Some(own) = spans.get(id) else { continue };
        if own.iter().any(|(from, until)| *from <= punch.local_time && punch.local_time < *until) {
            loaded += usize::from(n < device_punches);
            match by_pin.get_mut(id) {
                Some(mine) => mine.push(punch),
                None => {
                    by_pin.insert(id.to_owned(), vec![punch]);
                }
            }
        }
    }

    let load_time = load_started.elapsed();
    let started = std::time::Instant::now();
    let mut ranges = Vec::new();
    let mut days = Vec::new();
    let mut outcome = Outcome { punches: loaded, ..Outcome::default() };
    for p in &planned {
        let id = p.employee.employee_id.as_str();
        let (Some(shift), Some(site)) =
            (reference.shifts.get(&p.employee.shift), reference.sites.get(p.employee.site.as_str()))
        else {
            continue;
        };
        let leave = leaves.get(id).map_or(&no_leave, |l| l);
        let ctx = match EmployeeContext::new(p.employee, shift, &site.calendar, leave) {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(employee = %id, error = %e, "attendance inputs refused");
                result.skipped.insert(id.to_owned());
                continue;
            }
        };
        let mine = by_pin.get(id).map_or(&[][..], Vec::as_slice);
        let before = days.len();
        for &(from, to) in &p.runs {
            match engine::compute_range(&ctx, mine, from, to, p.now) {
                Ok(rows) => {
                    days.extend(rows);
                    ranges.push(DayRange { employee_id: id.to_owned(), from, to });
                }
                Err(e) => {
                    tracing::error!(employee = %id, %from, %to, error = %e, "attendance not computed");
                    result.skipped.insert(id.to_owned());
                }
            }
        }
        if let Some(finish) = finish {
            finish(&mut days[before..]);
        }
        outcome.employees += 1;
    }
    outcome.engine_time = started.elapsed();
    outcome.load_time = load_time;
    outcome.days = days.len();
    result.outcome = outcome;
    for range in &ranges {
        result.written.entry(range.employee_id.clone()).or_default().push((range.from, range.to));
    }
    Ok(Computed { done: result, ranges, days })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32, hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, day).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("valid")
    }

    #[test]
    fn overlapping_spans_share_a_query_and_distant_ones_do_not() {
        let spans: HashMap<String, Vec<Span>> = [
            ("b", vec![(at(1, 0), at(3, 0))]),
            ("a", vec![(at(2, 12), at(4, 0))]),
            ("c", vec![(at(4, 0), at(5, 0))]),
            ("d", vec![(at(20, 0), at(21, 0))]),
            ("e", vec![(at(1, 0), at(1, 6)), (at(20, 12), at(22, 0))]),
        ]
        .into_iter()
        .map(|(id, span)| (id.to_owned(), span))
        .collect();
        let groups = span_groups(&spans);
        let ids = |list: &[&str]| list.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            groups,
            vec![((at(1, 0), at(5, 0)), ids(&["a", "b", "c", "e"])), ((at(20, 0), at(22, 0)), ids(&["d", "e"])),]
        );
        assert!(span_groups(&HashMap::new()).is_empty());
    }

    #[test]
    fn an_employees_spans_merge_only_where_they_meet() {
        let mut spans = Vec::new();
        add_span(&mut spans, (at(20, 0), at(21, 0)));
        add_span(&mut spans, (at(1, 0), at(2, 0)));
        assert_eq!(spans, vec![(at(1, 0), at(2, 0)), (at(20, 0), at(21, 0))]);
        add_span(&mut spans, (at(2, 0), at(3, 0)));
        assert_eq!(spans, vec![(at(1, 0), at(3, 0)), (at(20, 0), at(21, 0))]);
    }
}
