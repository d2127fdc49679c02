//! One employee-day: the [`AttendanceDay`] row and how it is computed from the punches of its window.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use protocol::Pin;

use super::calendar::DayKind;
use super::context::{EmployeeContext, EngineError};
use super::debounce::{debounce, distinct_sorted};
use super::explain::{fmt_date, fmt_duration, fmt_time, Explanation};
use super::figures::{self, WorkSlot};
use super::model::AttendancePunch;
use super::pairing::pair;
use super::sandwich::Sandwich;
use super::shift::PairingMode;
use super::status::{decide, DayStatus, Work};

/// Facts worth an admin's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DayFlags {
    /// The day is closed, has punches, but no complete IN/OUT pair (typically a single punch).
    pub missing_punch: bool,
    /// The day is closed and some punch is part of no pair.
    pub unmatched_punch: bool,
    /// Some punch fell between this day's window and the next one's, and was not counted.
    pub outside_window: bool,
    /// Some counted punch is an approved manual log.
    pub manual_punch: bool,
    /// The employee worked (P or HD) on a day of approved leave.
    pub worked_on_leave: bool,
    /// More than ten ManDays pairs; the extra ones were added into the tenth slot.
    pub slots_merged: bool,
    /// A punch had a device state that is neither in nor out (by_state).
    pub unknown_state: bool,
}

impl DayFlags {
    /// The names of the flags that are set, as stored in the database.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.missing_punch, "missing_punch"),
            (self.unmatched_punch, "unmatched_punch"),
            (self.outside_window, "outside_window"),
            (self.manual_punch, "manual_punch"),
            (self.worked_on_leave, "worked_on_leave"),
            (self.slots_merged, "slots_merged"),
            (self.unknown_state, "unknown_state"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// How the punches of a day were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PunchCounts {
    /// Punches used for pairing (after debouncing).
    pub counted: u32,
    /// Double taps collapsed into an earlier punch.
    pub collapsed: u32,
    /// Counted punches that are part of no pair.
    pub unmatched: u32,
    /// Punches in this day's segment of the timeline but outside its window: not counted.
    pub outside_window: u32,
    /// Manual logs still pending or rejected: not counted.
    pub unapproved_manual: u32,
}

/// Approved leave on the day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaveInfo {
    pub kind: String,
    pub paid: bool,
}

/// One row per employee-day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceDay {
    pub employee_id: Pin,
    /// The date the shift starts on.
    pub date: NaiveDate,
    /// The shift's code.
    pub shift: String,
    pub pairing: PairingMode,
    /// What the calendar says the day is.
    pub kind: DayKind,
    /// The status; `None` while the day is provisional and would be A if it closed now.
    pub status: Option<DayStatus>,
    /// True until the day's check-out window has closed.
    pub provisional: bool,
    /// When the check-out window closes; from then on the row is final.
    pub closes_at: NaiveDateTime,
    pub in_time: Option<NaiveDateTime>,
    pub out_time: Option<NaiveDateTime>,
    /// Sum of the slots' work.
    pub total_work: Duration,
    /// Lunch deducted from the slots.
    pub lunch_deducted: Duration,
    pub overtime: Duration,
    pub late_by: Duration,
    pub early_exit_by: Duration,
    /// Worked intervals in time order (one in first_last mode; at most ten in ManDays mode).
    pub slots: Vec<WorkSlot>,
    pub flags: DayFlags,
    pub punches: PunchCounts,
    pub leave: Option<LeaveInfo>,
    /// Set when the sandwich rule turned this week-off or holiday into A; keeps the original status.
    pub sandwich: Option<Sandwich>,
    /// Why the day got its status before any sandwich rule; see [`Self::explain`] for the full text.
    pub explanation: String,
}

impl AttendanceDay {
    /// The full explanation shown to admins, including the sandwich rule when it applied.
    pub fn explain(&self) -> String {
        match &self.sandwich {
            Some(sandwich) => format!("{} {}", self.explanation, sandwich.describe()),
            None => self.explanation.clone(),
        }
    }

    /// The flags as stored in the database, `sandwich` included.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = self.flags.names();
        if self.sandwich.is_some() {
            names.push("sandwich");
        }
        names
    }

    /// Whether the row counts as an absence for the sandwich rule: A, or unpaid leave.
    pub fn is_absence(&self) -> bool {
        match self.status {
            Some(DayStatus::Absent) => true,
            Some(DayStatus::Leave) => self.leave.as_ref().is_some_and(|l| !l.paid),
            _ => false,
        }
    }
}

/// Computes one employee-day (without the sandwich rule, which needs the neighbouring days) from any of the
/// employee's punches; punches of other days are ignored. `now` is the site's local time. `None` when the employee
/// was not employed on `date`.
///
/// # Errors
/// [`EngineError::ForeignPunch`] when a punch belongs to someone else.
pub fn compute_day(
    ctx: &EmployeeContext<'_>,
    punches: &[AttendancePunch],
    date: NaiveDate,
    now: NaiveDateTime,
) -> Result<Option<AttendanceDay>, EngineError> {
    ctx.check_punches(punches)?;
    let mine: Vec<&AttendancePunch> =
        punches.iter().filter(|p| ctx.clock().segment_day(p.local_time) == date).collect();
    Ok(build_day(ctx, date, &mine, now))
}

/// Computes a day from the punches of its 24-hour segment (see [`super::window`]), in any order.
pub(crate) fn build_day(
    ctx: &EmployeeContext<'_>,
    date: NaiveDate,
    segment: &[&AttendancePunch],
    now: NaiveDateTime,
) -> Option<AttendanceDay> {
    if !ctx.employee().is_employed_on(date) {
        return None;
    }
    let shift = ctx.shift();
    let window = ctx.window(date);
    let provisional = window.is_open_at(now);
    let mut counts = PunchCounts::default();
    let mut inside = Vec::with_capacity(segment.len());
    let segment = distinct_sorted(segment.to_vec());
    for punch in segment {
        if !punch.counts() {
            counts.unapproved_manual += 1;
        } else if window.contains(punch.local_time) {
            inside.push(punch);
        } else {
            counts.outside_window += 1;
        }
    }
    let (kept, collapsed) = debounce(inside, shift.debounce);
    counts.collapsed = collapsed;
    counts.counted = u32::try_from(kept.len()).unwrap_or(u32::MAX);

    let midpoint = window.shift_start + (window.shift_end - window.shift_start) / 2;
    let pairing = pair(&kept, shift.pairing, midpoint);
    counts.unmatched = pairing.unmatched;
    let kind = ctx.day_kind(date);
    let figures = figures::compute(&pairing, &window, shift, kind.is_working());
    let work = match (kept.is_empty(), figures.slots.is_empty()) {
        (true, _) => Work::None,
        (false, true) => Work::Incomplete,
        (false, false) => Work::Worked(figures.total_work),
    };
    let leave = ctx.leave_on(date).filter(|_| kind.is_working());
    let leave_label = leave.map(|l| format!("{} ({})", l.kind, if l.paid { "paid" } else { "unpaid" }));
    let decision = decide(&kind, leave_label.as_deref(), work, shift, provisional);

    let flags = DayFlags {
        missing_punch: !provisional && work == Work::Incomplete,
        unmatched_punch: !provisional && pairing.unmatched > 0,
        outside_window: counts.outside_window > 0,
        manual_punch: kept.iter().any(|p| p.is_manual()),
        worked_on_leave: decision.worked_on_leave,
        slots_merged: figures.merged_pairs > 0,
        unknown_state: pairing.unknown_state > 0,
    };

    let mut text = Explanation::default();
    describe_day(&mut text, ctx, date, &kind);
    describe_punches(&mut text, &counts, &figures, date, flags.manual_punch);
    text.say(&decision.reason);
    describe_figures(&mut text, ctx, &figures, kind.is_working());
    if provisional {
        text.say_fmt(format_args!("Provisional until {}.", fmt_time(window.closes, date)));
    }

    Some(AttendanceDay {
        employee_id: ctx.employee().employee_id.clone(),
        date,
        shift: shift.code.clone(),
        pairing: shift.pairing,
        kind,
        status: decision.status,
        provisional,
        closes_at: window.closes,
        in_time: figures.in_time,
        out_time: figures.out_time,
        total_work: figures.total_work,
        lunch_deducted: figures.lunch_deducted,
        overtime: figures.overtime(),
        late_by: figures.late_by,
        early_exit_by: figures.early_exit_by,
        slots: figures.slots,
        flags,
        punches: counts,
        leave: leave.map(|l| LeaveInfo { kind: l.kind.clone(), paid: l.paid }),
        sandwich: None,
        explanation: text.finish(),
    })
}

fn describe_day(text: &mut Explanation, ctx: &EmployeeContext<'_>, date: NaiveDate, kind: &DayKind) {
    let when = ctx.shift_label();
    match kind {
        DayKind::Working => text.say_fmt(format_args!("{}: working day ({when}).", fmt_date(date))),
        DayKind::WeekOff { label } => text.say_fmt(format_args!("{}: week-off ({label}; {when}).", fmt_date(date))),
        DayKind::Holiday { name, kind } => {
            text.say_fmt(format_args!("{}: {} holiday {name} ({when}).", fmt_date(date), kind.as_str()))
        }
    }
    if let Some(optional) = ctx.site().holiday(date).filter(|h| !h.kind.is_day_off()) {
        text.say_fmt(format_args!("{} is an optional holiday: a working day unless on leave.", optional.name));
    }
}

fn describe_punches(
    text: &mut Explanation,
    counts: &PunchCounts,
    figures: &figures::Figures,
    date: NaiveDate,
    manual: bool,
) {
    if counts.counted > 0 {
        text.say_fmt(format_args!("{} punch(es) counted", counts.counted));
        let extras = [
            (counts.collapsed > 0, "double tap(s) collapsed", counts.collapsed),
            (counts.unmatched > 0, "unmatched", counts.unmatched),
        ];
        let mut first = true;
        for (_, what, n) in extras.iter().filter(|(set, _, _)| *set) {
            text.append(format_args!("{}{n} {what}", if first { " (" } else { ", " }));
            first = false;
        }
        if manual {
            text.append(format_args!("{}includes approved manual logs", if first { " (" } else { ", " }));
            first = false;
        }
        text.append(format_args!("{}.", if first { "" } else { ")" }));
    }
    if counts.outside_window > 0 {
        text.say_fmt(format_args!(
            "{} punch(es) outside the check-in/check-out window not counted.",
            counts.outside_window
        ));
    }
    if counts.unapproved_manual > 0 {
        text.say_fmt(format_args!("{} manual log(s) not approved, not counted.", counts.unapproved_manual));
    }
    match (figures.in_time, figures.out_time) {
        (Some(i), Some(o)) => text.say_fmt(format_args!("In {}, out {}.", fmt_time(i, date), fmt_time(o, date))),
        (Some(i), None) => text.say_fmt(format_args!("In {}, no out punch.", fmt_time(i, date))),
        (None, Some(o)) => text.say_fmt(format_args!("No in punch, out {}.", fmt_time(o, date))),
        (None, None) => {}
    }
    if figures.lunch_deducted > Duration::zero() {
        text.say_fmt(format_args!("Lunch break of {} deducted.", fmt_duration(figures.lunch_deducted)));
    }
}

fn describe_figures(text: &mut Explanation, ctx: &EmployeeContext<'_>, figures: &figures::Figures, working: bool) {
    let shift = ctx.shift();
    if working && figures.late_by > Duration::zero() {
        text.say_fmt(format_args!(
            "Late by {} (grace {}).",
            fmt_duration(figures.late_by),
            fmt_duration(shift.grace_late_in)
        ));
    }
    if working && figures.early_exit_by > Duration::zero() {
        text.say_fmt(format_args!(
            "Left {} early (grace {}).",
            fmt_duration(figures.early_exit_by),
            fmt_duration(shift.grace_early_out)
        ));
    }
    if figures.overtime() > Duration::zero() {
        if working {
            text.say_fmt(format_args!(
                "Overtime {} ({} before the shift, {} after).",
                fmt_duration(figures.overtime()),
                fmt_duration(figures.overtime_before),
                fmt_duration(figures.overtime_after)
            ));
        } else {
            text.say_fmt(format_args!("All {} worked is overtime.", fmt_duration(figures.overtime())));
        }
    }
    if figures.merged_pairs > 0 {
        text.say_fmt(format_args!("{} pairs beyond the tenth were added into the tenth slot.", figures.merged_pairs));
    }
}
