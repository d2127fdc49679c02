//! Double taps, single punches and their policy, manual logs, and punches the engine must refuse.

use central_api::attendance::engine::{
    compute_day, compute_range, Approval, AttendancePunch, EngineError, PairingMode, SinglePunchPolicy,
};
use chrono::Duration;
use protocol::{Direction, PunchSource, PunchState};

use crate::fixtures::*;

#[test]
fn double_taps_collapse_within_the_debounce() {
    // (punches, debounce seconds, counted, collapsed, pairs mode total minutes)
    let cases: &[(&[&str], i64, u32, u32, i64)] = &[
        // A double tap at the door in the morning and at night: one pair.
        (&["2026-11-05 09:00:00", "2026-11-05 09:00:20", "2026-11-05 18:00:00", "2026-11-05 18:00:45"], 60, 2, 2, 540),
        // Exactly one debounce apart: two punches (two pairs would be wrong, so pairs mode sees 3 punches).
        (&["2026-11-05 09:00:00", "2026-11-05 09:01:00", "2026-11-05 18:00:00"], 60, 3, 0, 1),
        // A longer debounce swallows the second tap.
        (&["2026-11-05 09:00:00", "2026-11-05 09:01:00", "2026-11-05 18:00:00"], 120, 2, 1, 540),
        // Same second on two readers, no debounce at all: still one punch.
        (&["2026-11-05 09:00:00", "2026-11-05 09:00:00+OUT", "2026-11-05 18:00:00"], 0, 2, 1, 540),
        // The very same punch delivered twice is one punch, not even a double tap.
        (&["2026-11-05 09:00:00", "2026-11-05 09:00:00", "2026-11-05 18:00:00"], 0, 2, 0, 540),
    ];
    for (punches, debounce, counted, collapsed, total) in cases {
        let world = World::day_shift().shift(|s| {
            s.debounce = Duration::seconds(*debounce);
            s.pairing = PairingMode::Pairs;
        });
        let punches: Vec<_> = punches
            .iter()
            .map(|x| match x.strip_suffix("+OUT") {
                Some(time) => with_state(time, 1, Direction::Out),
                None => p(x),
            })
            .collect();
        let row = world.day(&punches, "2026-11-05");
        assert_eq!(
            (row.punches.counted, row.punches.collapsed, mins(row.total_work)),
            (*counted, *collapsed, *total),
            "{punches:?} debounce {debounce}: {}",
            row.explanation
        );
    }
}

#[test]
fn single_punch_is_flagged_and_follows_the_shift_policy() {
    // (policy, working-day status, Sunday status)
    let cases = [
        (SinglePunchPolicy::Absent, "A", "WO"),
        (SinglePunchPolicy::HalfDay, "HD", "WOP"),
        (SinglePunchPolicy::Present, "P", "WOP"),
    ];
    for (policy, working, sunday) in cases {
        let world = World::day_shift().shift(|s| s.single_punch = policy);
        let row = world.day(&ps(&["2026-11-05 09:03"]), "2026-11-05");
        assert_eq!(code(&row), working, "{policy:?}");
        assert!(row.flags.missing_punch && row.flags.unmatched_punch);
        assert_eq!((clock(row.in_time), clock(row.out_time)), ("05 09:03".into(), "--".into()));
        assert_eq!(row.total_work, Duration::zero());
        assert!(row.explanation.contains("Missing punch"), "{}", row.explanation);
        let off = world.day(&ps(&["2026-11-08 10:00"]), "2026-11-08");
        assert_eq!(code(&off), sunday, "{policy:?} on a Sunday");
        assert_eq!(off.overtime, Duration::zero());
    }
    // A lone evening punch is the out time, and it is late enough not to be an early exit.
    let evening = World::day_shift().day(&ps(&["2026-11-05 18:10"]), "2026-11-05");
    assert_eq!((clock(evening.in_time), clock(evening.out_time)), ("--".into(), "05 18:10".into()));
    assert_eq!(evening.early_exit_by, Duration::zero());
}

#[test]
fn approved_manual_logs_regularise_a_missing_punch_and_others_are_ignored() {
    let world = World::day_shift();
    let mut punches = ps(&["2026-11-05 09:00"]);
    punches.push(manual("2026-11-05 18:00", Approval::Pending));
    punches.push(manual("2026-11-05 18:05", Approval::Rejected));
    let waiting = world.day(&punches, "2026-11-05");
    assert_eq!((code(&waiting), waiting.punches.unapproved_manual), ("A", 2));
    assert!(waiting.flags.missing_punch && !waiting.flags.manual_punch);
    assert!(waiting.explanation.contains("2 manual log(s) not approved"), "{}", waiting.explanation);

    punches.push(manual("2026-11-05 18:01", Approval::Approved));
    let fixed = world.day(&punches, "2026-11-05");
    assert_eq!((code(&fixed), clock(fixed.out_time)), ("P", "05 18:01".into()));
    assert!(fixed.flags.manual_punch && !fixed.flags.missing_punch);
    assert_eq!(fixed.flag_names(), vec!["manual_punch"]);
}

#[test]
fn a_duplicated_punch_changes_nothing() {
    let world = World::day_shift().shift(|s| s.pairing = PairingMode::Pairs);
    let once = ps(&["2026-11-05 09:00", "2026-11-05 13:00", "2026-11-05 14:00", "2026-11-05 18:00"]);
    let mut twice = once.clone();
    twice.extend(once.clone());
    let a = world.day(&once, "2026-11-05");
    let b = world.day(&twice, "2026-11-05");
    assert_eq!(a, b);
    assert_eq!(b.punches.collapsed, 0);
}

#[test]
fn punches_and_ranges_the_engine_refuses_are_named() {
    let world = World::day_shift();
    let ctx = world.ctx();
    let stranger = AttendancePunch::from_device(
        "2002".parse().expect("pin"),
        t("2026-11-05 09:00"),
        PunchState::CheckIn,
        Direction::Both,
        "DEV-1".parse().expect("serial"),
        PunchSource::AdmsPush,
    );
    let err = compute_day(&ctx, &[stranger], d("2026-11-05"), later()).expect_err("foreign punch refused");
    assert!(matches!(err, EngineError::ForeignPunch { .. }));
    assert!(err.to_string().contains("a punch of employee 2002 at 2026-11-05 09:00:00"), "{err}");

    let err = compute_range(&ctx, &[], d("2026-11-05"), d("2026-11-04"), later()).expect_err("backwards");
    assert_eq!(err.to_string(), "date range 2026-11-05 to 2026-11-04 ends before it starts");
    let err = compute_range(&ctx, &[], d("2020-01-01"), d("2026-11-04"), later()).expect_err("too long");
    assert!(err.to_string().contains("over the limit of 1000 days"), "{err}");
}

#[test]
fn inconsistent_inputs_are_refused_with_the_field_named() {
    use central_api::attendance::engine::{EmployeeContext, SiteCalendar, SiteSettings};
    let world = World::day_shift();
    let mut wrong_shift = world.shift.clone();
    wrong_shift.code = "NIGHT".into();
    let err = EmployeeContext::new(&world.employee, &wrong_shift, &world.site, &[]).expect_err("mismatch");
    assert!(err.to_string().contains("works shift \"GEN\" but shift \"NIGHT\" was supplied"), "{err}");

    let other_site = SiteCalendar::new("plant-9".parse().expect("site"), Vec::new(), SiteSettings::default());
    let err = EmployeeContext::new(&world.employee, &world.shift, &other_site, &[]).expect_err("site");
    assert!(matches!(err, EngineError::SiteMismatch { .. }));

    let mut bad_shift = world.shift.clone();
    bad_shift.min_half_day = Duration::hours(8);
    let err = EmployeeContext::new(&world.employee, &bad_shift, &world.site, &[]).expect_err("band");
    assert!(err.to_string().contains("min_half_day (480 min) is more than max_work_for_half_day (360 min)"), "{err}");

    let backwards = vec![leave("2026-11-06", "2026-11-05", true)];
    let err = EmployeeContext::new(&world.employee, &world.shift, &world.site, &backwards).expect_err("leave");
    assert!(matches!(err, EngineError::LeaveBackwards { .. }));

    let mut left_early = world.employee.clone();
    left_early.date_of_joining = Some(d("2026-11-10"));
    left_early.date_of_leaving = Some(d("2026-11-01"));
    let err = EmployeeContext::new(&left_early, &world.shift, &world.site, &[]).expect_err("employment");
    assert!(err.to_string().contains("left on 2026-11-01, before joining on 2026-11-10"), "{err}");
}
