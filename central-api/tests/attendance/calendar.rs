//! Week-offs (weekly and nth-weekday), holidays (site-scoped, global, optional), work on them, leave, and the
//! employment dates.

use central_api::attendance::engine::{DayKind, Holiday, HolidayKind, WeekOffRule};
use chrono::{Duration, Weekday};

use crate::fixtures::*;

fn statuses(rows: &[central_api::attendance::engine::AttendanceDay]) -> Vec<(String, &'static str)> {
    rows.iter().map(|r| (r.date.format("%d").to_string(), code(r))).collect()
}

fn full_day(date: &str) -> Vec<central_api::attendance::engine::AttendancePunch> {
    vec![p(&format!("{date} 09:00")), p(&format!("{date} 18:00"))]
}

#[test]
fn week_off_and_holiday_worked_are_wop_and_php_with_all_time_as_overtime() {
    let world = World::day_shift().holidays(vec![holiday("2026-11-09", "Diwali")]);
    let mut punches = ps(&["2026-11-08 10:00", "2026-11-08 14:30"]); // Sunday
    punches.extend(ps(&["2026-11-09 09:00", "2026-11-09 13:00"])); // Diwali
    let rows = world.range(&punches, "2026-11-07", "2026-11-10");
    assert_eq!(
        statuses(&rows),
        vec![("07".into(), "A"), ("08".into(), "WOP"), ("09".into(), "PHP"), ("10".into(), "A")]
    );
    assert_eq!((mins(rows[1].overtime), mins(rows[1].late_by)), (270, 0));
    assert_eq!((mins(rows[2].overtime), mins(rows[2].early_exit_by)), (240, 0));
    assert!(rows[2].explanation.contains("public holiday Diwali"), "{}", rows[2].explanation);
    assert!(rows[1].explanation.contains("All 4h 30m worked is overtime"), "{}", rows[1].explanation);
    // Not worked: WO and PH.
    let idle = world.range(&[], "2026-11-08", "2026-11-09");
    assert_eq!(statuses(&idle), vec![("08".into(), "WO"), ("09".into(), "PH")]);
    assert_eq!(idle[1].kind, DayKind::Holiday { name: "Diwali".into(), kind: HolidayKind::Public });
}

#[test]
fn second_and_fourth_saturdays_are_week_offs() {
    let world = World::day_shift().employee(|e| {
        e.week_off = WeekOffRule::weekly(&[Weekday::Sun]).and_nth(Weekday::Sat, 2).and_nth(Weekday::Sat, 4)
    });
    let rows = world.range(&[], "2026-11-01", "2026-11-30");
    let offs: Vec<String> = rows.iter().filter(|r| code(r) == "WO").map(|r| r.date.format("%d").to_string()).collect();
    assert_eq!(offs, vec!["01", "08", "14", "15", "22", "28", "29"]);
    assert!(rows[13].explanation.contains("week-off (2nd Saturday"), "{}", rows[13].explanation);
    // The 1st and 3rd Saturdays are working days.
    assert_eq!((code(&rows[6]), code(&rows[20])), ("A", "A"));
}

#[test]
fn site_scoped_holidays_apply_only_to_their_site_and_optional_ones_are_working_days() {
    let world = World::day_shift().holidays(vec![
        Holiday {
            date: d("2026-11-04"),
            name: "Other plant".into(),
            kind: HolidayKind::Company,
            site: Some("plant-2".parse().expect("site")),
        },
        Holiday {
            date: d("2026-11-05"),
            name: "Foundation day".into(),
            kind: HolidayKind::Company,
            site: Some(SITE.parse().expect("site")),
        },
        Holiday { date: d("2026-11-06"), name: "Regional".into(), kind: HolidayKind::Optional, site: None },
        holiday("2026-11-08", "Sunday festival"),
    ]);
    let rows = world.range(&[], "2026-11-04", "2026-11-08");
    assert_eq!(
        statuses(&rows),
        vec![("04".into(), "A"), ("05".into(), "PH"), ("06".into(), "A"), ("07".into(), "A"), ("08".into(), "PH")]
    );
    assert!(rows[2].explanation.contains("Regional is an optional holiday"), "{}", rows[2].explanation);
}

#[test]
fn joining_and_leaving_mid_month_bound_the_rows() {
    let world = World::night_shift().employee(|e| {
        e.date_of_joining = Some(d("2026-11-10"));
        e.date_of_leaving = Some(d("2026-11-20"));
    });
    // A punch the evening before joining is not theirs to count; the night of the leaving date still is.
    let punches = ps(&["2026-11-09 21:58", "2026-11-10 06:00", "2026-11-20 22:00", "2026-11-21 06:00"]);
    let rows = world.range(&punches, "2026-11-01", "2026-11-30");
    assert_eq!(rows.first().map(|r| r.date), Some(d("2026-11-10")));
    assert_eq!(rows.last().map(|r| r.date), Some(d("2026-11-20")));
    assert_eq!(rows.len(), 11);
    assert_eq!((code(&rows[0]), code(&rows[10])), ("A", "P"));
}

#[test]
fn leave_is_l_unless_the_employee_worked_and_does_not_consume_week_offs() {
    let world = World::day_shift()
        .leaves(vec![leave("2026-11-05", "2026-11-09", true), leave("2026-11-12", "2026-11-12", false)]);
    let mut punches = full_day("2026-11-06");
    punches.extend(ps(&["2026-11-07 09:00", "2026-11-07 14:00"]));
    let rows = world.range(&punches, "2026-11-05", "2026-11-12");
    assert_eq!(
        statuses(&rows),
        vec![
            ("05".into(), "L"),
            ("06".into(), "P"),  // worked during leave: P, flagged
            ("07".into(), "HD"), // 5 h: HD, flagged
            ("08".into(), "WO"), // Sunday inside the leave stays a week-off
            ("09".into(), "L"),
            ("10".into(), "A"),
            ("11".into(), "A"),
            ("12".into(), "L"),
        ]
    );
    assert!(rows[1].flags.worked_on_leave && rows[2].flags.worked_on_leave && !rows[0].flags.worked_on_leave);
    assert!(rows[1].explanation.contains("the leave should be cancelled"), "{}", rows[1].explanation);
    assert_eq!(rows[0].leave.as_ref().map(|l| l.paid), Some(true));
    assert_eq!(rows[7].leave.as_ref().map(|l| l.paid), Some(false));
    assert!(rows[7].is_absence() && !rows[0].is_absence());
    assert!(rows[0].explanation.contains("On approved casual (paid) leave: L."), "{}", rows[0].explanation);
    // A pending leave is ignored.
    let mut pending = leave("2026-11-10", "2026-11-10", true);
    pending.approval = central_api::attendance::engine::Approval::Pending;
    let world = World::day_shift().leaves(vec![pending]);
    assert_eq!(code(&world.day(&[], "2026-11-10")), "A");
}

#[test]
fn half_day_thresholds_follow_the_shift() {
    let world = World::day_shift().shift(|s| {
        s.min_half_day = Duration::hours(3);
        s.max_work_for_half_day = Duration::hours(5);
    });
    let cases = [("11:59", "A"), ("12:00", "HD"), ("14:00", "HD"), ("14:01", "P")];
    for (out, status) in cases {
        let row = world.day(&ps(&["2026-11-05 09:00", &format!("2026-11-05 {out}")]), "2026-11-05");
        assert_eq!(code(&row), status, "out at {out}");
    }
}
