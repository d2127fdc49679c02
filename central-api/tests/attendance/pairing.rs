//! Each pairing mode on the same punches, by_state's unmatched punches, and ManDays rows.

use central_api::attendance::engine::{ManDaysRow, PairingMode, MAX_MAN_DAYS_SLOTS};
use chrono::Duration;
use protocol::Direction;

use crate::fixtures::*;

#[test]
fn each_mode_reads_the_same_day_its_own_way() {
    // In 08:58, out for lunch 13:02, back 13:31, a stray tap 15:00, out 18:04.
    let punches =
        ps(&["2026-11-05 08:58", "2026-11-05 13:02", "2026-11-05 13:31", "2026-11-05 15:00", "2026-11-05 18:04"]);
    // (mode, slots, total minutes, unmatched, out time)
    let cases = [
        (PairingMode::FirstLast, 1, 546, 0, "05 18:04"),
        (PairingMode::Pairs, 2, 244 + 89, 1, "05 15:00"),
        (PairingMode::ManDays, 2, 244 + 89, 1, "05 15:00"),
    ];
    for (mode, slots, total, unmatched, out) in cases {
        let world = World::day_shift().shift(|s| s.pairing = mode);
        let row = world.day(&punches, "2026-11-05");
        assert_eq!(
            (row.slots.len(), mins(row.total_work), row.punches.unmatched, clock(row.out_time)),
            (slots, total, unmatched, out.to_owned()),
            "{mode:?}: {}",
            row.explanation
        );
        assert_eq!(row.flags.unmatched_punch, unmatched > 0);
        assert_eq!(row.total_work, row.slots.iter().map(|s| s.worked).sum::<Duration>());
    }
}

#[test]
fn by_state_uses_states_breaks_and_reader_direction() {
    let world = World::day_shift().shift(|s| s.pairing = PairingMode::ByState);
    let punches = vec![
        with_state("2026-11-05 08:55", 0, Direction::Both), // check-in
        with_state("2026-11-05 13:00", 2, Direction::Both), // break-out
        with_state("2026-11-05 13:30", 3, Direction::Both), // break-in
        with_state("2026-11-05 18:02", 0, Direction::Out),  // exit reader: OUT whatever the state says
        with_state("2026-11-05 19:00", 4, Direction::Both), // OT-in
        with_state("2026-11-05 21:00", 5, Direction::Both), // OT-out
    ];
    let row = world.day(&punches, "2026-11-05");
    let slots: Vec<(String, String)> =
        row.slots.iter().map(|s| (clock(Some(s.in_time)), clock(Some(s.out_time)))).collect();
    assert_eq!(
        slots,
        vec![
            ("05 08:55".to_owned(), "05 13:00".to_owned()),
            ("05 13:30".to_owned(), "05 18:02".to_owned()),
            ("05 19:00".to_owned(), "05 21:00".to_owned()),
        ]
    );
    assert_eq!(mins(row.total_work), 245 + 272 + 120);
    assert_eq!(row.punches.unmatched, 0);
    assert_eq!(code(&row), "P");
    // Overtime from the in/out times: 3 h after 18:00 (over the 30 min threshold); 5 min early is under it.
    assert_eq!(mins(row.overtime), 180);
}

#[test]
fn by_state_flags_what_it_cannot_match() {
    let world = World::day_shift().shift(|s| s.pairing = PairingMode::ByState);
    let punches = vec![
        with_state("2026-11-05 08:40", 1, Direction::Both), // OUT with nothing open
        with_state("2026-11-05 08:55", 0, Direction::Both),
        with_state("2026-11-05 09:10", 0, Direction::Both), // second IN: unmatched, the earliest kept
        with_state("2026-11-05 12:00", 7, Direction::Both), // unknown state
        with_state("2026-11-05 18:00", 1, Direction::Both),
        with_state("2026-11-05 18:30", 0, Direction::In), // entry reader, never closed
    ];
    let row = world.day(&punches, "2026-11-05");
    assert_eq!((clock(row.in_time), clock(row.out_time)), ("05 08:55".into(), "05 18:00".into()));
    assert_eq!(row.punches.unmatched, 4);
    assert!(row.flags.unmatched_punch && row.flags.unknown_state && !row.flags.missing_punch);
    assert_eq!(code(&row), "P");

    // Only INs: no pair at all, so the single-punch policy applies.
    let only_ins =
        vec![with_state("2026-11-05 09:00", 0, Direction::Both), with_state("2026-11-05 18:00", 0, Direction::Both)];
    let row = world.day(&only_ins, "2026-11-05");
    assert_eq!((code(&row), row.flags.missing_punch), ("A", true));
    assert_eq!(clock(row.in_time), "05 09:00");
}

#[test]
fn mandays_reports_up_to_ten_slots_and_merges_the_rest() {
    let world = World::day_shift().shift(|s| {
        s.pairing = PairingMode::ManDays;
        s.check_out_window_after_end = Duration::hours(5);
    });
    // Twelve 20-minute visits, one every hour from 07:00 to 18:00.
    let texts: Vec<String> =
        (7..19).flat_map(|h| [format!("2026-11-05 {h:02}:00"), format!("2026-11-05 {h:02}:20")]).collect();
    let punches = ps(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let row = world.day(&punches, "2026-11-05");
    let man_days = ManDaysRow::from_day(&row).expect("mandays row");
    assert_eq!(man_days.slots.len(), MAX_MAN_DAYS_SLOTS);
    assert_eq!(mins(man_days.slot_duration(1)), 20);
    assert_eq!(mins(man_days.slot_duration(10)), 60, "the tenth slot holds three visits");
    assert_eq!(mins(man_days.slot_duration(11)), 0);
    assert_eq!(man_days.total, row.total_work);
    assert_eq!(mins(man_days.total), 240);
    assert!(row.flags.slots_merged);
    assert!(row.explanation.contains("2 pairs beyond the tenth"), "{}", row.explanation);

    // Other modes have no ManDays row.
    let plain = World::day_shift().day(&punches, "2026-11-05");
    assert_eq!(ManDaysRow::from_day(&plain), None);
}
