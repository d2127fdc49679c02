//! The figures of an employee-day: work slots with lunch deducted, total work, late arrival, early exit, overtime.
//!
//! - Lunch: when the shift deducts it, each work interval loses the part of it that overlaps the lunch window
//!   (`lunch_break_start` for `lunch_break_duration`, or centred on the middle of the shift). An interval that
//!   covers the whole break loses exactly `lunch_break_duration`; one that ends inside it loses only the minutes
//!   inside; a break the employee punched out for is not deducted twice.
//! - late_by = in - start when in > start + grace_late_in; early_exit_by = end - out when out < end -
//!   grace_early_out (strict comparisons, as in the rules). Only on working days.
//! - Overtime on a working day: the time present before the start when it exceeds the before-threshold, plus the
//!   time present after the end when it exceeds the after-threshold (`None` thresholds disable a side). "Present"
//!   is measured between in and out, so someone who leaves before the shift even starts is not credited with more
//!   than they were there. On a week-off or holiday all worked time is overtime.
//! - ManDays keeps at most [`MAX_MAN_DAYS_SLOTS`] slots; further pairs are added into the last slot (its duration is
//!   then the sum of the pairs, not `out - in`) and the day is flagged, so total work is still the sum of the slots.

use chrono::{Duration, NaiveDateTime};

use super::pairing::Pairing;
use super::shift::{PairingMode, Shift};
use super::window::DayWindow;

/// Slots in a ManDays row.
pub const MAX_MAN_DAYS_SLOTS: usize = 10;

/// One worked interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkSlot {
    pub in_time: NaiveDateTime,
    pub out_time: NaiveDateTime,
    /// Work counted for the slot: `out - in` minus any lunch inside it (a merged ManDays slot: the sum of its pairs).
    pub worked: Duration,
}

/// Everything computed from the pairing of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub slots: Vec<WorkSlot>,
    pub in_time: Option<NaiveDateTime>,
    pub out_time: Option<NaiveDateTime>,
    pub total_work: Duration,
    pub lunch_deducted: Duration,
    pub late_by: Duration,
    pub early_exit_by: Duration,
    pub overtime_before: Duration,
    pub overtime_after: Duration,
    /// Pairs added into the last ManDays slot.
    pub merged_pairs: u32,
}

impl Figures {
    /// Overtime before and after the shift.
    pub fn overtime(&self) -> Duration {
        self.overtime_before + self.overtime_after
    }
}

/// Computes the figures for a day. `working` is false on week-offs and holidays.
pub fn compute(pairing: &Pairing, window: &DayWindow, shift: &Shift, working: bool) -> Figures {
    let mut lunch_deducted = Duration::zero();
    let mut slots: Vec<WorkSlot> = pairing
        .intervals
        .iter()
        .map(|&(in_time, out_time)| {
            let lunch = if shift.deduct_lunch_break {
                overlap((in_time, out_time), (window.lunch_start, window.lunch_end))
            } else {
                Duration::zero()
            };
            lunch_deducted += lunch;
            WorkSlot { in_time, out_time, worked: out_time - in_time - lunch }
        })
        .collect();
    let mut merged_pairs = 0;
    if shift.pairing == PairingMode::ManDays && slots.len() > MAX_MAN_DAYS_SLOTS {
        let extra = slots.split_off(MAX_MAN_DAYS_SLOTS);
        merged_pairs = u32::try_from(extra.len()).unwrap_or(u32::MAX);
        if let Some(last) = slots.last_mut() {
            for slot in extra {
                last.worked += slot.worked;
                last.out_time = slot.out_time;
            }
        }
    }
    let total_work = slots.iter().map(|s| s.worked).fold(Duration::zero(), |a, b| a + b);
    let in_time = slots.first().map(|s| s.in_time).or(pairing.lone_in);
    let out_time = slots.last().map(|s| s.out_time).or(pairing.lone_out);

    let mut figures = Figures {
        slots,
        in_time,
        out_time,
        total_work,
        lunch_deducted,
        late_by: Duration::zero(),
        early_exit_by: Duration::zero(),
        overtime_before: Duration::zero(),
        overtime_after: Duration::zero(),
        merged_pairs,
    };
    if !working {
        figures.overtime_after = total_work;
        return figures;
    }
    if let Some(in_time) = in_time {
        if in_time > window.shift_start + shift.grace_late_in {
            figures.late_by = in_time - window.shift_start;
        }
    }
    if let Some(out_time) = out_time {
        if out_time < window.shift_end - shift.grace_early_out {
            figures.early_exit_by = window.shift_end - out_time;
        }
    }
    if let (Some(in_time), Some(out_time), false) = (in_time, out_time, figures.slots.is_empty()) {
        let before = out_time.min(window.shift_start) - in_time;
        if shift.overtime_threshold_before_shift.is_some_and(|threshold| before > threshold) {
            figures.overtime_before = before;
        }
        let after = out_time - in_time.max(window.shift_end);
        if shift.overtime_threshold_after_shift.is_some_and(|threshold| after > threshold) {
            figures.overtime_after = after;
        }
    }
    figures
}

/// How much of interval `a` lies inside interval `b`.
fn overlap(a: (NaiveDateTime, NaiveDateTime), b: (NaiveDateTime, NaiveDateTime)) -> Duration {
    let start = a.0.max(b.0);
    let end = a.1.min(b.1);
    (end - start).max(Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attendance::engine::window::ShiftClock;
    use chrono::{NaiveDate, NaiveTime};

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 5).and_then(|d| d.and_hms_opt(h, m, 0)).expect("valid time")
    }

    fn general() -> Shift {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
        let mut s = Shift::new("G", t(9, 0), t(18, 0));
        s.deduct_lunch_break = true;
        s.lunch_break_start = Some(t(13, 0));
        s.lunch_break_duration = Duration::minutes(60);
        s
    }

    fn run(shift: &Shift, intervals: &[(NaiveDateTime, NaiveDateTime)], working: bool) -> Figures {
        let window = ShiftClock::new(shift).window(at(0, 0).date());
        let pairing = Pairing { intervals: intervals.to_vec(), ..Pairing::default() };
        compute(&pairing, &window, shift, working)
    }

    #[test]
    fn lunch_is_deducted_by_overlap() {
        let shift = general();
        let full = run(&shift, &[(at(9, 0), at(18, 0))], true);
        assert_eq!((full.total_work, full.lunch_deducted), (Duration::hours(8), Duration::hours(1)));
        let partial = run(&shift, &[(at(9, 0), at(13, 15))], true);
        assert_eq!(partial.total_work, Duration::hours(4));
        let morning = run(&shift, &[(at(9, 0), at(12, 30))], true);
        assert_eq!(morning.lunch_deducted, Duration::zero());
        // Punched out for lunch: nothing deducted twice.
        let broke = run(&shift, &[(at(9, 0), at(13, 0)), (at(14, 0), at(18, 0))], true);
        assert_eq!((broke.total_work, broke.lunch_deducted), (Duration::hours(8), Duration::zero()));
    }

    #[test]
    fn overtime_is_capped_by_presence() {
        let shift = general();
        // In at 06:00, out at 08:00: two hours present before the shift, not three.
        let early_leaver = run(&shift, &[(at(6, 0), at(8, 0))], true);
        assert_eq!(early_leaver.overtime_before, Duration::hours(2));
        assert_eq!(early_leaver.overtime_after, Duration::zero());
    }

    #[test]
    fn mandays_merges_pairs_beyond_ten_into_the_last_slot() {
        let mut shift = general();
        shift.deduct_lunch_break = false;
        shift.pairing = PairingMode::ManDays;
        let intervals: Vec<_> = (0..12).map(|i| (at(6 + i, 0), at(6 + i, 30))).collect();
        let f = run(&shift, &intervals, true);
        assert_eq!(f.slots.len(), MAX_MAN_DAYS_SLOTS);
        assert_eq!(f.merged_pairs, 2);
        assert_eq!(f.slots[9].worked, Duration::minutes(90));
        assert_eq!(f.slots[9].out_time, at(17, 30));
        assert_eq!(f.total_work, Duration::hours(6));
    }

    #[test]
    fn non_working_day_work_is_all_overtime_and_never_late() {
        let f = run(&general(), &[(at(11, 0), at(15, 0))], false);
        assert_eq!(f.overtime(), Duration::hours(3));
        assert_eq!((f.late_by, f.early_exit_by), (Duration::zero(), Duration::zero()));
    }
}
