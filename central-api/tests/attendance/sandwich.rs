//! The sandwich rule: off, week-offs, week-offs and holidays; its exact revert; its automatic undo when a late punch
//! turns an absence into presence; and the cases that protect a run.

use central_api::attendance::engine::{
    affected_days, apply_sandwich, compute_day, compute_range, revert_sandwich, AttendanceDay, AttendancePunch,
    DayStatus, SandwichSetting, WeekOffRule,
};

use crate::fixtures::*;

fn codes(rows: &[AttendanceDay]) -> Vec<&'static str> {
    rows.iter().map(code).collect()
}

fn full_day(date: &str) -> Vec<AttendancePunch> {
    vec![p(&format!("{date} 09:00")), p(&format!("{date} 18:00"))]
}

// Saturday 7th (working), Sunday 8th (week-off), Monday 9th (working; a holiday in some cases), Tuesday 10th.
#[test]
fn sandwich_table() {
    use SandwichSetting::*;
    // (setting, Monday is a holiday, punches on these days, expected codes Sat..Tue)
    let cases: &[(SandwichSetting, bool, &[&str], [&str; 4])] = &[
        (Off, false, &[], ["A", "WO", "A", "A"]),
        (WeekOffs, false, &[], ["A", "A", "A", "A"]),
        (WeekOffs, false, &["2026-11-07"], ["P", "WO", "A", "A"]),
        (WeekOffs, false, &["2026-11-09"], ["A", "WO", "P", "A"]),
        // The holiday is not part of the run under week-offs only, and not an absence: it protects the Sunday.
        (WeekOffs, true, &[], ["A", "WO", "PH", "A"]),
        (WeekOffsAndHolidays, true, &[], ["A", "A", "A", "A"]),
        (WeekOffsAndHolidays, true, &["2026-11-10"], ["A", "WO", "PH", "P"]),
        // Working on the Sunday breaks the run.
        (WeekOffs, false, &["2026-11-08"], ["A", "WOP", "A", "A"]),
    ];
    for (setting, monday_holiday, worked, expected) in cases {
        let mut world = World::day_shift().sandwich(*setting);
        if *monday_holiday {
            world = world.holidays(vec![holiday("2026-11-09", "Diwali")]);
        }
        let punches: Vec<AttendancePunch> = worked.iter().flat_map(|day| full_day(day)).collect();
        let rows = world.range(&punches, "2026-11-07", "2026-11-10");
        assert_eq!(codes(&rows), expected.to_vec(), "{setting:?}, holiday {monday_holiday}, worked {worked:?}");
    }
}

#[test]
fn a_sandwiched_day_keeps_its_original_status_and_says_why() {
    let world = World::day_shift()
        .sandwich(SandwichSetting::WeekOffsAndHolidays)
        .holidays(vec![holiday("2026-11-09", "Diwali")]);
    let rows = world.range(&[], "2026-11-07", "2026-11-10");
    let sunday = &rows[1];
    let mark = sunday.sandwich.expect("sandwiched");
    assert_eq!(
        (mark.original, mark.absent_before, mark.absent_after),
        (DayStatus::WeekOff, d("2026-11-07"), d("2026-11-10"))
    );
    assert_eq!(rows[2].sandwich.map(|m| m.original), Some(DayStatus::Holiday));
    assert!(sunday.flag_names().contains(&"sandwich"));
    assert!(
        sunday
            .explain()
            .ends_with("Sandwich rule: WO between absences on 7 Nov 2026 and 10 Nov 2026, so counted as A."),
        "{}",
        sunday.explain()
    );
}

#[test]
fn revert_restores_exactly_and_apply_is_idempotent() {
    let world = World::day_shift()
        .sandwich(SandwichSetting::WeekOffsAndHolidays)
        .holidays(vec![holiday("2026-11-09", "Diwali")]);
    // Monday 2nd to Saturday 28th: every run has both neighbours among the rows.
    let sandwiched = world.range(&[], "2026-11-02", "2026-11-28");
    let plain =
        World::day_shift().holidays(vec![holiday("2026-11-09", "Diwali")]).range(&[], "2026-11-02", "2026-11-28");
    assert_ne!(sandwiched, plain);

    let mut reverted = sandwiched.clone();
    revert_sandwich(&mut reverted);
    assert_eq!(reverted, plain);

    let mut again = sandwiched.clone();
    apply_sandwich(&mut again, SandwichSetting::WeekOffsAndHolidays);
    assert_eq!(again, sandwiched);
    apply_sandwich(&mut reverted, SandwichSetting::WeekOffsAndHolidays);
    assert_eq!(reverted, sandwiched);

    // Switching the rule off undoes every mark.
    let mut off = sandwiched.clone();
    apply_sandwich(&mut off, SandwichSetting::Off);
    assert_eq!(off, plain);
}

#[test]
fn a_run_at_the_edge_of_the_rows_is_left_as_it_is() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    // Computed with its neighbours, Sunday the 1st is sandwiched (Saturday 31 Oct and Monday 2nd are absent)...
    let month = world.range(&[], "2026-11-01", "2026-11-07");
    assert!(month[0].sandwich.is_some());
    // ...and applying the rule to rows that no longer show Saturday neither removes nor adds a mark.
    let mut rows = month.clone();
    apply_sandwich(&mut rows, SandwichSetting::WeekOffs);
    assert_eq!(rows, month);
    let mut fresh = World::day_shift().range(&[], "2026-11-01", "2026-11-07");
    apply_sandwich(&mut fresh, SandwichSetting::WeekOffs);
    assert_eq!(fresh[0].sandwich, None);
}

#[test]
fn a_late_punch_that_turns_a_neighbour_into_p_undoes_the_sandwich() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    let ctx = world.ctx();
    let before = world.range(&[], "2026-11-07", "2026-11-09");
    assert_eq!(codes(&before), vec!["A", "A", "A"]);

    // Monday's punches arrive days later (the site was offline).
    let late = full_day("2026-11-09");
    let dirty = affected_days(&ctx, &late);
    assert_eq!(dirty.iter().copied().collect::<Vec<_>>(), vec![d("2026-11-08"), d("2026-11-09")]);
    let mut rows = before.clone();
    for date in dirty {
        let fresh = compute_range(&ctx, &late, date, date, later()).expect("recompute");
        for row in fresh {
            if let Some(slot) = rows.iter_mut().find(|r| r.date == row.date) {
                *slot = row;
            }
        }
    }
    assert_eq!(codes(&rows), vec!["A", "WO", "P"]);
    assert_eq!(rows[1].sandwich, None);
    assert_eq!(rows, world.range(&late, "2026-11-07", "2026-11-09"));
}

#[test]
fn unpaid_leave_counts_as_an_absence_and_paid_leave_does_not() {
    for (paid, sunday) in [(false, "A"), (true, "WO")] {
        let world = World::day_shift().sandwich(SandwichSetting::WeekOffs).leaves(vec![leave(
            "2026-11-07",
            "2026-11-07",
            paid,
        )]);
        let rows = world.range(&[], "2026-11-07", "2026-11-09");
        assert_eq!(codes(&rows), vec!["L", sunday, "A"], "paid {paid}");
    }
}

#[test]
fn a_half_day_neighbour_protects_the_run() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    let rows = world.range(&ps(&["2026-11-07 09:00", "2026-11-07 14:00"]), "2026-11-07", "2026-11-09");
    assert_eq!(codes(&rows), vec!["HD", "WO", "A"]);
}

#[test]
fn compute_day_alone_gives_the_row_before_the_rule() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    let base = compute_day(&world.ctx(), &[], d("2026-11-08"), later()).expect("computes").expect("employed");
    assert_eq!((code(&base), base.sandwich), ("WO", None));
    assert_eq!(code(&world.day(&[], "2026-11-08")), "A");
}

#[test]
fn pending_neighbours_and_missing_neighbours_leave_the_run_alone() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    // Monday is still open at noon: not an absence yet.
    let open = world.range_at(&[], "2026-11-07", "2026-11-09", t("2026-11-09 12:00"));
    assert_eq!(codes(&open), vec!["A", "WO", "-"]);
    // Joining on the Sunday: no day before the run.
    let joined =
        World::day_shift().sandwich(SandwichSetting::WeekOffs).employee(|e| e.date_of_joining = Some(d("2026-11-08")));
    assert_eq!(codes(&joined.range(&[], "2026-11-07", "2026-11-09")), vec!["WO", "A"]);
}

#[test]
fn runs_up_to_31_days_are_sandwiched_and_longer_ones_are_not() {
    for (last_holiday, sandwiched) in [("2026-12-02", true), ("2026-12-03", false)] {
        let shutdown: Vec<_> = d("2026-11-02")
            .iter_days()
            .take_while(|day| *day <= d(last_holiday))
            .map(|day| holiday(&day.format("%Y-%m-%d").to_string(), "Shutdown"))
            .collect();
        let world = World::day_shift()
            .employee(|e| e.week_off = WeekOffRule::default())
            .sandwich(SandwichSetting::WeekOffsAndHolidays)
            .holidays(shutdown);
        let rows = world.range(&[], "2026-11-01", "2026-12-05");
        let marked = rows.iter().filter(|r| r.sandwich.is_some()).count();
        assert_eq!(marked > 0, sandwiched, "shutdown until {last_holiday}");
        if sandwiched {
            assert_eq!(marked, 31);
        }
        // A day in the middle computed alone agrees with the whole range.
        let alone = world.day(&[], "2026-11-20");
        assert_eq!(Some(&alone), rows.iter().find(|r| r.date == d("2026-11-20")));
    }
}
