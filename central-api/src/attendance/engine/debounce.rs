//! Putting a day's punches in one canonical order and collapsing double taps.
//!
//! Design: the result must not depend on the order punches arrived in, so they are sorted by a key covering every
//! field (time first). A punch is dropped when it comes less than the debounce after the last punch KEPT (the
//! device's own "duplicate punch period" works the same way), so a burst of taps is one punch and someone tapping
//! for minutes still leaves a punch every debounce period. Two punches in the same second are always one, even
//! with a zero debounce; the very same punch delivered twice is dropped without even counting as a double tap, so a
//! duplicated punch changes nothing at all.

use std::cmp::Ordering;

use chrono::Duration;
use protocol::Direction;

use super::model::{AttendancePunch, PunchOrigin};

/// A total order on punches: time, then state, direction and origin.
pub fn canonical_order(a: &AttendancePunch, b: &AttendancePunch) -> Ordering {
    a.local_time
        .cmp(&b.local_time)
        .then_with(|| a.state.code().cmp(&b.state.code()))
        .then_with(|| direction_rank(a.direction).cmp(&direction_rank(b.direction)))
        .then_with(|| origin_key(&a.origin).cmp(&origin_key(&b.origin)))
        .then_with(|| a.employee_id.cmp(&b.employee_id))
}

fn direction_rank(d: Direction) -> u8 {
    match d {
        Direction::In => 0,
        Direction::Out => 1,
        Direction::Both => 2,
    }
}

fn origin_key(origin: &PunchOrigin) -> (u8, &str, &str) {
    match origin {
        PunchOrigin::Device { serial, source } => (0, serial.as_str(), source.as_str()),
        PunchOrigin::Manual { approval } => (1, "", approval_name(*approval)),
    }
}

fn approval_name(a: super::model::Approval) -> &'static str {
    match a {
        super::model::Approval::Pending => "pending",
        super::model::Approval::Approved => "approved",
        super::model::Approval::Rejected => "rejected",
    }
}

/// Sorts `punches` canonically and drops exact duplicates (the very same punch delivered twice).
pub fn distinct_sorted(mut punches: Vec<&AttendancePunch>) -> Vec<&AttendancePunch> {
    punches.sort_by(|a, b| canonical_order(a, b));
    punches.dedup();
    punches
}

/// Drops double taps from canonically sorted, distinct punches; returns the kept punches and how many were dropped.
pub fn debounce(sorted: Vec<&AttendancePunch>, period: Duration) -> (Vec<&AttendancePunch>, u32) {
    let period = period.max(Duration::seconds(1));
    let mut kept: Vec<&AttendancePunch> = Vec::with_capacity(sorted.len());
    let mut collapsed = 0u32;
    for punch in sorted {
        match kept.last() {
            Some(last) if punch.local_time - last.local_time < period => collapsed += 1,
            _ => kept.push(punch),
        }
    }
    (kept, collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};
    use protocol::{PunchSource, PunchState};

    fn at(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 5).and_then(|d| d.and_hms_opt(h, m, s)).expect("valid time")
    }

    fn punch(t: NaiveDateTime, state: PunchState) -> AttendancePunch {
        AttendancePunch::from_device(
            "7".parse().expect("pin"),
            t,
            state,
            Direction::Both,
            "DEV1".parse().expect("serial"),
            PunchSource::ZkPull,
        )
    }

    fn times(kept: &[&AttendancePunch]) -> Vec<NaiveDateTime> {
        kept.iter().map(|p| p.local_time).collect()
    }

    #[test]
    fn double_taps_collapse_to_the_first() {
        let punches =
            [at(9, 0, 30), at(9, 0, 0), at(9, 0, 59), at(9, 1, 0), at(18, 0, 0)].map(|t| punch(t, PunchState::CheckIn));
        let (kept, collapsed) = debounce(distinct_sorted(punches.iter().collect()), Duration::seconds(60));
        // 09:01:00 is exactly 60 s after the kept 09:00:00, so it is not "closer than" the debounce.
        assert_eq!(times(&kept), vec![at(9, 0, 0), at(9, 1, 0), at(18, 0, 0)]);
        assert_eq!(collapsed, 2);
    }

    #[test]
    fn long_tapping_still_keeps_a_punch_per_period() {
        let punches: Vec<_> =
            (0..6).map(|i| punch(at(9, 0, 0) + Duration::seconds(i * 50), PunchState::CheckIn)).collect();
        let (kept, _) = debounce(distinct_sorted(punches.iter().collect()), Duration::seconds(60));
        assert_eq!(times(&kept), vec![at(9, 0, 0), at(9, 1, 40), at(9, 3, 20)]);
    }

    #[test]
    fn same_second_duplicates_collapse_even_without_debounce() {
        let a = punch(at(9, 0, 0), PunchState::CheckOut);
        let b = punch(at(9, 0, 0), PunchState::CheckIn);
        let (kept, collapsed) = debounce(distinct_sorted(vec![&a, &b, &a]), Duration::zero());
        assert_eq!(kept.len(), 1);
        // The second copy of `a` is the same punch, not a tap.
        assert_eq!(collapsed, 1);
        // The canonical order keeps the same one whatever the arrival order.
        assert_eq!(kept[0].state, PunchState::CheckIn);
        let (again, _) = debounce(distinct_sorted(vec![&b, &a]), Duration::zero());
        assert_eq!(again[0].state, PunchState::CheckIn);
    }
}
