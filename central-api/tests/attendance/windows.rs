//! Which punches belong to which day: overnight shifts, month ends, clipped windows, punches outside windows,
//! provisional days and closing.

use central_api::attendance::engine::{days_closing_between, punch_span, DayStatus};
use chrono::Duration;

use crate::fixtures::*;

#[test]
fn overnight_shift_is_dated_by_its_start_across_midnight_and_month_ends() {
    // (punches, date of the row, in, out, total minutes, status)
    type Case = (&'static [&'static str], &'static str, &'static str, &'static str, i64, &'static str);
    let cases: &[Case] = &[
        (&["2026-11-05 21:50", "2026-11-06 06:05"], "2026-11-05", "05 21:50", "06 06:05", 495, "P"),
        // Month end: the 30th's shift ends on 1 December.
        (&["2026-11-30 21:58", "2026-12-01 06:02"], "2026-11-30", "30 21:58", "01 06:02", 484, "P"),
        // Into a Sunday (week-off): the Saturday night still belongs to Saturday.
        (&["2026-10-31 22:00", "2026-11-01 06:00"], "2026-10-31", "31 22:00", "01 06:00", 480, "P"),
        // Only the morning half: the punch belongs to the previous date, and it is an out punch.
        (&["2026-11-06 06:01"], "2026-11-05", "--", "06 06:01", 0, "A"),
    ];
    let world = World::night_shift();
    for (punches, date, in_time, out_time, total, status) in cases {
        let row = world.day(&ps(punches), date);
        assert_eq!(
            (clock(row.in_time), clock(row.out_time), mins(row.total_work), code(&row)),
            (in_time.to_string(), out_time.to_string(), *total, *status),
            "punches {punches:?}: {}",
            row.explain()
        );
    }
    // The day after the shift start has no punch of its own.
    let rows = world.range(&ps(&["2026-11-30 21:58", "2026-12-01 06:02"]), "2026-11-30", "2026-12-01");
    assert_eq!(rows.iter().map(code).collect::<Vec<_>>(), vec!["P", "A"]);
    assert!(rows[0].explanation.contains("out 06:02 on 1 Dec"), "{}", rows[0].explanation);
}

#[test]
fn consecutive_night_shifts_split_overlapping_windows_at_the_gap_midpoint() {
    // 20:00-08:00 with 8 h windows on both sides: the 08:00-20:00 gap is split at 14:00.
    let world =
        World::with_shift(central_api::attendance::engine::Shift::new("N12", hm("20:00"), hm("08:00"))).shift(|s| {
            s.check_in_window_before_start = Duration::hours(8);
            s.check_out_window_after_end = Duration::hours(8);
        });
    let punches = ps(&[
        "2026-11-04 19:55",    // in, 4th
        "2026-11-05 13:59:59", // last second of the 4th's window: a very late out
        "2026-11-05 14:00",    // first second of the 5th's window: a very early in
        "2026-11-06 08:10",    // out, 5th
    ]);
    let rows = world.range(&punches, "2026-11-04", "2026-11-05");
    let got: Vec<(String, String)> = rows.iter().map(|r| (clock(r.in_time), clock(r.out_time))).collect();
    assert_eq!(
        got,
        vec![("04 19:55".to_owned(), "05 13:59".to_owned()), ("05 14:00".to_owned(), "06 08:10".to_owned())]
    );
    assert_eq!(rows[0].closes_at, t("2026-11-05 14:00"));
    // Every punch is counted exactly once.
    assert_eq!(rows.iter().map(|r| r.punches.counted).sum::<u32>(), 4);
}

#[test]
fn punches_outside_every_window_are_reported_not_counted() {
    // Default windows: 2 h before (07:00), 4 h after (22:00).
    let world = World::day_shift();
    let row =
        world.day(&ps(&["2026-11-05 03:00", "2026-11-05 09:00", "2026-11-05 18:00", "2026-11-05 23:30"]), "2026-11-05");
    assert_eq!(code(&row), "P");
    assert_eq!((row.punches.counted, row.punches.outside_window), (2, 2));
    assert!(row.flags.outside_window);
    assert!(
        row.explanation.contains("2 punch(es) outside the check-in/check-out window not counted"),
        "{}",
        row.explanation
    );
    // The window includes its opening moment and excludes its closing one.
    let edge = world.day(&ps(&["2026-11-05 07:00", "2026-11-05 21:59:59", "2026-11-05 22:00"]), "2026-11-05");
    assert_eq!((edge.punches.counted, edge.punches.outside_window), (2, 1));
}

#[test]
fn a_day_is_provisional_until_its_check_out_window_closes_and_only_then_absent() {
    let world = World::night_shift();
    let only_in = ps(&["2026-11-05 21:55"]);
    // Night shift 22:00-06:00, check-out window 4 h: the 5th closes at 10:00 on the 6th.
    let cases = [
        ("2026-11-05 12:00", true, "-", false), // before the shift: pending, not A
        ("2026-11-06 03:00", true, "-", false), // inside: pending, no missing punch yet
        ("2026-11-06 09:59:59", true, "-", false),
        ("2026-11-06 10:00", false, "A", true), // closed (the window excludes its end): A, missing punch
    ];
    for (now, provisional, status, missing) in cases {
        let row = world.day_at(&only_in, "2026-11-05", t(now));
        assert_eq!((row.provisional, code(&row), row.flags.missing_punch), (provisional, status, missing), "now {now}");
        assert_eq!(row.closes_at, t("2026-11-06 10:00"));
    }
    let pending = world.day_at(&only_in, "2026-11-05", t("2026-11-06 03:00"));
    assert!(pending.explanation.contains("would be A if the day closed now"), "{}", pending.explanation);
    assert!(pending.explanation.contains("Provisional until 10:00 on 6 Nov"), "{}", pending.explanation);

    // A complete day is P while still provisional; a week-off is WO in advance.
    let done = world.day_at(&ps(&["2026-11-05 21:55", "2026-11-06 06:03"]), "2026-11-05", t("2026-11-06 07:00"));
    assert_eq!((done.provisional, done.status), (true, Some(DayStatus::Present)));
    let sunday = world.day_at(&[], "2026-11-08", t("2026-11-01 00:00"));
    assert_eq!((sunday.provisional, code(&sunday)), (true, "WO"));
}

#[test]
fn close_the_day_names_the_days_whose_window_closed() {
    let world = World::night_shift();
    let ctx = world.ctx();
    // The 5th closes at 10:00 on the 6th, the 6th at 10:00 on the 7th.
    assert_eq!(days_closing_between(&ctx, t("2026-11-06 09:00"), t("2026-11-06 10:00")), vec![d("2026-11-05")]);
    assert_eq!(days_closing_between(&ctx, t("2026-11-06 10:00"), t("2026-11-06 11:00")), vec![]);
    assert_eq!(
        days_closing_between(&ctx, t("2026-11-05 00:00"), t("2026-11-07 12:00")),
        vec![d("2026-11-04"), d("2026-11-05"), d("2026-11-06")]
    );
}

#[test]
fn punch_span_covers_every_punch_the_range_reads() {
    let world = World::night_shift();
    let (first, last) = punch_span(&world.ctx(), d("2026-11-05"), d("2026-11-05"));
    // Segments of the night shift run from 14:00 to 14:00.
    assert_eq!((first, last), (t("2026-11-05 14:00"), t("2026-11-06 13:59:59")));
}
