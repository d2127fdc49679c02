//! Work time with lunch deduction, lateness and early exit with grace, overtime before and after the shift, and the
//! half-day thresholds.

use chrono::Duration;

use crate::fixtures::*;

fn general() -> World {
    World::day_shift().shift(|s| {
        s.grace_late_in = Duration::minutes(10);
        s.grace_early_out = Duration::minutes(5);
        s.deduct_lunch_break = true;
        s.lunch_break_start = Some(hm("13:00"));
        s.lunch_break_duration = Duration::minutes(30);
        s.overtime_threshold_before_shift = Some(Duration::minutes(30));
        s.overtime_threshold_after_shift = Some(Duration::minutes(15));
        s.check_in_window_before_start = Duration::hours(4);
    })
}

#[test]
fn figures_per_day() {
    // (in, out, total, lunch, late, early, overtime, status) in minutes
    type Case = (&'static str, &'static str, i64, i64, i64, i64, i64, &'static str);
    let cases: &[Case] = &[
        // On time: lunch deducted from the 9 h span.
        ("09:00", "18:00", 510, 30, 0, 0, 0, "P"),
        // Within both graces: neither late nor early.
        ("09:10", "17:55", 495, 30, 0, 0, 0, "P"),
        // One minute past the grace: late by the whole 11 minutes.
        ("09:11", "18:00", 499, 30, 11, 0, 0, "P"),
        // Six minutes early: early exit by the whole 6.
        ("09:00", "17:54", 504, 30, 0, 6, 0, "P"),
        // Early arrival at the threshold is not overtime; after the shift 15 min is not either.
        ("08:30", "18:15", 555, 30, 0, 0, 0, "P"),
        // Over both thresholds: overtime 45 + 16.
        ("08:15", "18:16", 571, 30, 0, 0, 61, "P"),
        // Left during lunch: only the 10 minutes inside the break are deducted.
        ("09:00", "13:10", 240, 10, 0, 290, 0, "HD"),
        // Morning only, no lunch overlap: 3 h 59 m is under the 4 h minimum.
        ("09:00", "12:59", 239, 0, 0, 301, 0, "A"),
        // Exactly 6 h of work (half-day limit included) is HD; a minute more is P.
        ("09:00", "15:30", 360, 30, 0, 150, 0, "HD"),
        ("09:00", "15:31", 361, 30, 0, 149, 0, "P"),
    ];
    let world = general();
    for (i, o, total, lunch, late, early, overtime, status) in cases {
        let row = world.day(&ps(&[&format!("2026-11-05 {i}"), &format!("2026-11-05 {o}")]), "2026-11-05");
        assert_eq!(
            (
                mins(row.total_work),
                mins(row.lunch_deducted),
                mins(row.late_by),
                mins(row.early_exit_by),
                mins(row.overtime),
                code(&row)
            ),
            (*total, *lunch, *late, *early, *overtime, *status),
            "{i}-{o}: {}",
            row.explanation
        );
    }
}

#[test]
fn explanation_names_the_figures_and_thresholds() {
    let row = general().day(&ps(&["2026-11-05 09:25", "2026-11-05 19:00"]), "2026-11-05");
    let text = row.explain();
    for part in [
        "5 Nov 2026: working day (shift GEN 09:00-18:00, first_last).",
        "In 09:25, out 19:00.",
        "Lunch break of 30m deducted.",
        "Worked 9h 05m, over the 6h 00m half-day limit: P.",
        "Late by 25m (grace 10m).",
        "Overtime 1h 00m (0m before the shift, 1h 00m after).",
    ] {
        assert!(text.contains(part), "missing {part:?} in {text:?}");
    }
}

#[test]
fn overtime_can_be_disabled_per_side() {
    let world = general().shift(|s| s.overtime_threshold_before_shift = None);
    let row = world.day(&ps(&["2026-11-05 06:00", "2026-11-05 20:00"]), "2026-11-05");
    assert_eq!(mins(row.overtime), 120, "only the two hours after the shift");
    let world = general().shift(|s| s.overtime_threshold_after_shift = None);
    let row = world.day(&ps(&["2026-11-05 06:00", "2026-11-05 20:00"]), "2026-11-05");
    assert_eq!(mins(row.overtime), 180, "only the three hours before the shift");
}

#[test]
fn lunch_without_a_configured_start_is_centred_on_the_shift() {
    // 09:00-18:00: a 60 min break centred on 13:30 runs 13:00-14:00.
    let world = World::day_shift().shift(|s| {
        s.deduct_lunch_break = true;
        s.lunch_break_duration = Duration::minutes(60);
    });
    let covered = world.day(&ps(&["2026-11-05 09:00", "2026-11-05 18:00"]), "2026-11-05");
    assert_eq!(mins(covered.total_work), 480);
    let left_at_one = world.day(&ps(&["2026-11-05 09:00", "2026-11-05 13:00"]), "2026-11-05");
    assert_eq!(mins(left_at_one.lunch_deducted), 0);
}

#[test]
fn overnight_lunch_and_overtime_cross_midnight() {
    let world = World::night_shift().shift(|s| {
        s.deduct_lunch_break = true;
        s.lunch_break_start = Some(hm("02:00"));
        s.lunch_break_duration = Duration::minutes(30);
    });
    let row = world.day(&ps(&["2026-11-05 21:55", "2026-11-06 07:10"]), "2026-11-05");
    assert_eq!((mins(row.total_work), mins(row.lunch_deducted)), (525, 30));
    assert_eq!(mins(row.overtime), 70, "07:10 is 70 min after 06:00");
    assert_eq!(code(&row), "P");
}
