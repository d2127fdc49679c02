//! Which days must be recomputed after new punches or other changes.

use std::collections::BTreeSet;

use central_api::attendance::engine::{affected_by_dates, affected_days, SandwichSetting};
use chrono::NaiveDate;

use crate::fixtures::*;

fn dates(list: &[&str]) -> BTreeSet<NaiveDate> {
    list.iter().map(|x| d(x)).collect()
}

#[test]
fn a_punch_marks_the_day_whose_window_holds_it() {
    // (shift, punch, days to recompute)
    let night = World::night_shift();
    let day = World::day_shift();
    let cases: &[(&World, &str, &[&str])] = &[
        (&day, "2026-11-05 09:00", &["2026-11-05"]),
        (&day, "2026-11-05 23:30", &["2026-11-05"]), // outside the window, still reported on the 5th
        (&night, "2026-11-05 21:55", &["2026-11-05"]),
        // The morning punch of a night shift belongs to the previous date.
        (&night, "2026-11-06 05:58", &["2026-11-05"]),
        (&night, "2026-12-01 06:02", &["2026-11-30"]),
    ];
    for (world, punch, expected) in cases {
        assert_eq!(affected_days(&world.ctx(), &[p(punch)]), dates(expected), "punch {punch}");
    }
}

#[test]
fn sandwich_neighbours_are_marked_when_the_rule_is_on() {
    // Saturday 7th, Sunday 8th (week-off), Monday 9th (holiday), Tuesday 10th.
    let base = World::day_shift().holidays(vec![holiday("2026-11-09", "Diwali")]);
    let cases: &[(SandwichSetting, &str, &[&str])] = &[
        (SandwichSetting::Off, "2026-11-10 09:00", &["2026-11-10"]),
        (SandwichSetting::WeekOffs, "2026-11-10 09:00", &["2026-11-10"]),
        (SandwichSetting::WeekOffs, "2026-11-07 09:00", &["2026-11-07", "2026-11-08"]),
        (SandwichSetting::WeekOffsAndHolidays, "2026-11-10 09:00", &["2026-11-08", "2026-11-09", "2026-11-10"]),
        (SandwichSetting::WeekOffsAndHolidays, "2026-11-07 09:00", &["2026-11-07", "2026-11-08", "2026-11-09"]),
        // Working on the Sunday splits or joins the run it is in: the whole run is recomputed.
        (SandwichSetting::WeekOffsAndHolidays, "2026-11-08 10:00", &["2026-11-08", "2026-11-09"]),
    ];
    for (setting, punch, expected) in cases {
        let world = base.clone().sandwich(*setting);
        assert_eq!(affected_days(&world.ctx(), &[p(punch)]), dates(expected), "{setting:?}, punch {punch}");
    }
}

#[test]
fn other_changes_expand_the_same_way() {
    let world = World::day_shift().sandwich(SandwichSetting::WeekOffs);
    // Closing Monday the 9th may complete the sandwich of Sunday the 8th.
    assert_eq!(affected_by_dates(&world.ctx(), [d("2026-11-09")]), dates(&["2026-11-08", "2026-11-09"]));
    assert_eq!(
        affected_by_dates(&world.ctx(), [d("2026-11-05"), d("2026-11-14")]),
        dates(&["2026-11-05", "2026-11-14", "2026-11-15"])
    );
}
