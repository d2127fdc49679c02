//! Property tests for the invariants of the rules file: deterministic and idempotent, order- and batch-independent,
//! duplicates change nothing, total work is the sum of the slots, and incremental recompute equals a full reprocess.

use std::collections::{BTreeMap, HashSet};

use central_api::attendance::engine::{
    affected_days, apply_sandwich, compute_range, revert_sandwich, AttendanceDay, AttendancePunch, DayStatus,
    PairingMode, SandwichSetting, Shift, SinglePunchPolicy, WeekOffRule, MAX_MAN_DAYS_SLOTS,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, Weekday};
use proptest::prelude::*;
use protocol::Direction;

use crate::fixtures::*;

const FROM: &str = "2026-11-01";
const TO: &str = "2026-11-14";

/// The shape of the world a case runs in.
#[derive(Debug, Clone)]
struct Setup {
    shift: usize,
    pairing: PairingMode,
    debounce_secs: i64,
    sandwich: SandwichSetting,
    lunch: bool,
    single_punch: SinglePunchPolicy,
    saturdays_off: bool,
    holidays: Vec<u32>,
    joining_day: Option<u32>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        0..4usize,
        prop_oneof![
            Just(PairingMode::FirstLast),
            Just(PairingMode::Pairs),
            Just(PairingMode::ByState),
            Just(PairingMode::ManDays)
        ],
        prop_oneof![Just(0i64), Just(60), Just(300)],
        prop_oneof![
            Just(SandwichSetting::Off),
            Just(SandwichSetting::WeekOffs),
            Just(SandwichSetting::WeekOffsAndHolidays)
        ],
        any::<bool>(),
        prop_oneof![
            Just(SinglePunchPolicy::Absent),
            Just(SinglePunchPolicy::HalfDay),
            Just(SinglePunchPolicy::Present)
        ],
        any::<bool>(),
        prop::collection::vec(1u32..16, 0..4),
        prop::option::of(1u32..10),
    )
        .prop_map(
            |(shift, pairing, debounce_secs, sandwich, lunch, single_punch, saturdays_off, holidays, joining_day)| {
                Setup {
                    shift,
                    pairing,
                    debounce_secs,
                    sandwich,
                    lunch,
                    single_punch,
                    saturdays_off,
                    holidays,
                    joining_day,
                }
            },
        )
}

fn world(setup: &Setup) -> World {
    let shift = match setup.shift {
        0 => Shift::new("GEN", hm("09:00"), hm("18:00")),
        1 => Shift::new("NIGHT", hm("22:00"), hm("06:00")),
        // Long windows on a 12-hour night shift: consecutive windows are clipped.
        2 => {
            let mut s = Shift::new("N12", hm("20:00"), hm("08:00"));
            s.check_in_window_before_start = Duration::hours(8);
            s.check_out_window_after_end = Duration::hours(8);
            s
        }
        _ => Shift::new("EARLY", hm("06:00"), hm("14:00")),
    };
    let holidays = setup.holidays.iter().map(|day| holiday(&format!("2026-11-{day:02}"), "Holiday")).collect();
    World::with_shift(shift)
        .shift(|s| {
            s.pairing = setup.pairing;
            s.debounce = Duration::seconds(setup.debounce_secs);
            s.deduct_lunch_break = setup.lunch;
            s.single_punch = setup.single_punch;
        })
        .employee(|e| {
            e.date_of_joining = setup.joining_day.map(|day| d(&format!("2026-11-{day:02}")));
            if setup.saturdays_off {
                e.week_off = WeekOffRule::weekly(&[Weekday::Sun]).and_nth(Weekday::Sat, 2).and_nth(Weekday::Sat, 4);
            }
        })
        .holidays(holidays)
        .sandwich(setup.sandwich)
}

/// Punches from 31 October to 15 November: random times with states and directions, some of them double taps.
fn punches() -> impl Strategy<Value = Vec<AttendancePunch>> {
    let one = (0i64..16 * 86_400, 0u8..7, 0u8..4, prop::option::of(0i64..120)).prop_map(|(offset, state, dir, tap)| {
        let at = t("2026-10-31 00:00") + Duration::seconds(offset);
        let direction = match dir {
            0 => Direction::In,
            1 => Direction::Out,
            _ => Direction::Both,
        };
        let punch = with_state(&at.format("%Y-%m-%d %H:%M:%S").to_string(), state, direction);
        match tap {
            Some(gap) => {
                let mut second = punch.clone();
                second.local_time += Duration::seconds(gap);
                vec![punch, second]
            }
            None => vec![punch],
        }
    });
    prop::collection::vec(one, 0..60).prop_map(|groups| groups.into_iter().flatten().collect())
}

fn now() -> impl Strategy<Value = NaiveDateTime> {
    prop_oneof![Just(later()), (0i64..16 * 86_400).prop_map(|s| t("2026-11-01 00:00") + Duration::seconds(s))]
}

fn full(world: &World, punches: &[AttendancePunch], now: NaiveDateTime) -> Vec<AttendanceDay> {
    world.range_at(punches, FROM, TO, now)
}

proptest! {
    #[test]
    fn deterministic_and_idempotent(setup in setup(), punches in punches(), now in now()) {
        let world = world(&setup);
        let first = full(&world, &punches, now);
        let second = full(&world, &punches, now);
        prop_assert_eq!(&first, &second);
        let mut again = first.clone();
        apply_sandwich(&mut again, setup.sandwich);
        prop_assert_eq!(&again, &first);
    }

    #[test]
    fn order_and_duplicates_do_not_matter(
        setup in setup(),
        (punches, shuffled) in punches().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
        pick in any::<prop::sample::Index>(),
        now in now(),
    ) {
        let world = world(&setup);
        let base = full(&world, &punches, now);
        prop_assert_eq!(&full(&world, &shuffled, now), &base);
        if !punches.is_empty() {
            let mut duplicated = shuffled.clone();
            duplicated.push(punches[pick.index(punches.len())].clone());
            prop_assert_eq!(&full(&world, &duplicated, now), &base);
        }
    }

    #[test]
    fn rows_are_consistent(setup in setup(), punches in punches(), now in now()) {
        let world = world(&setup);
        let rows = full(&world, &punches, now);
        for row in &rows {
            let slots: Duration = row.slots.iter().map(|s| s.worked).sum();
            prop_assert_eq!(row.total_work, slots, "total work is the sum of the slots on {}", row.date);
            if row.pairing == PairingMode::ManDays {
                prop_assert!(row.slots.len() <= MAX_MAN_DAYS_SLOTS);
            }
            if row.provisional {
                prop_assert_ne!(row.status, Some(DayStatus::Absent), "provisional A on {}", row.date);
            } else {
                prop_assert!(row.status.is_some(), "closed day {} without a status", row.date);
            }
            prop_assert_eq!(row.provisional, now < row.closes_at);
            prop_assert!(row.overtime >= Duration::zero() && row.late_by >= Duration::zero());
            if let (Some(i), Some(o)) = (row.in_time, row.out_time) {
                prop_assert!(i <= o || row.slots.is_empty());
            }
        }
        // Every distinct punch reported on a day in the range is accounted for on that day, exactly once.
        let ctx = world.ctx();
        let distinct: HashSet<&AttendancePunch> = punches.iter().collect();
        let mut expected: BTreeMap<NaiveDate, u32> = BTreeMap::new();
        for punch in distinct {
            *expected.entry(ctx.day_of(punch.local_time)).or_default() += 1;
        }
        for row in &rows {
            let c = row.punches;
            let accounted = c.counted + c.collapsed + c.outside_window + c.unapproved_manual;
            prop_assert_eq!(accounted, expected.get(&row.date).copied().unwrap_or(0), "punches of {}", row.date);
        }
    }

    #[test]
    fn incremental_recompute_equals_full_reprocess(
        setup in setup(),
        punches in punches(),
        split in any::<prop::sample::Index>(),
        now in now(),
    ) {
        let world = world(&setup);
        let ctx = world.ctx();
        let cut = if punches.is_empty() { 0 } else { split.index(punches.len() + 1) };
        let (old, new) = punches.split_at(cut);
        let mut rows = full(&world, old, now);
        for date in affected_days(&ctx, new) {
            if date < d(FROM) || date > d(TO) {
                continue;
            }
            let fresh = compute_range(&ctx, &punches, date, date, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
            rows.retain(|r| r.date != date);
            rows.extend(fresh);
        }
        rows.sort_by_key(|r| r.date);
        prop_assert_eq!(rows, full(&world, &punches, now));
    }

    #[test]
    fn revert_gives_the_rows_without_the_rule(setup in setup(), punches in punches(), now in now()) {
        let world = world(&setup);
        let mut rows = full(&world, &punches, now);
        revert_sandwich(&mut rows);
        let off = world.clone().sandwich(SandwichSetting::Off);
        prop_assert_eq!(rows, full(&off, &punches, now));
    }
}
