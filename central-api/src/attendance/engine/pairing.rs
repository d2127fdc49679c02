//! Pairing a day's (debounced, time-ordered) punches into work intervals, per [`PairingMode`].
//!
//! - first_last: one interval from the first punch to the last.
//! - pairs and mandays: (1,2), (3,4)...; an odd last punch is unmatched.
//! - by_state: an entry reader (direction IN) is always IN, an exit reader always OUT; on a BOTH device states
//!   0 (check-in), 4 (OT-in) and 3 (break-in) open an interval, 1 (check-out), 5 (OT-out) and 2 (break-out) close
//!   it, so a break between break-out and break-in is not work. An IN while an interval is open (the earliest IN is
//!   kept), an OUT with none open, an unknown state, and an IN never closed are unmatched.
//!
//! When no interval forms (a single punch), the punch is shown as the in time when it comes before the middle of
//! the shift and as the out time otherwise (by_state: as its state says).

use chrono::NaiveDateTime;
use protocol::{Direction, PunchState};

use super::model::AttendancePunch;
use super::shift::PairingMode;

/// The intervals and leftovers of one day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairing {
    /// Work intervals in time order, each `(in, out)` with `in < out`.
    pub intervals: Vec<(NaiveDateTime, NaiveDateTime)>,
    /// Punches that are part of no interval.
    pub unmatched: u32,
    /// Of those, punches whose device state is not a known in/out state (by_state only).
    pub unknown_state: u32,
    /// With no interval: the punch shown as the in time.
    pub lone_in: Option<NaiveDateTime>,
    /// With no interval: the punch shown as the out time.
    pub lone_out: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    In,
    Out,
    Unknown,
}

fn kind_by_state(punch: &AttendancePunch) -> Kind {
    match punch.direction {
        Direction::In => Kind::In,
        Direction::Out => Kind::Out,
        Direction::Both => match punch.state {
            PunchState::CheckIn | PunchState::OvertimeIn | PunchState::BreakIn => Kind::In,
            PunchState::CheckOut | PunchState::OvertimeOut | PunchState::BreakOut => Kind::Out,
            PunchState::Unknown(_) => Kind::Unknown,
        },
    }
}

/// Pairs `punches` (already debounced and sorted). `midpoint` is the middle of the shift, used to place a lone
/// punch.
pub fn pair(punches: &[&AttendancePunch], mode: PairingMode, midpoint: NaiveDateTime) -> Pairing {
    let mut pairing = match mode {
        PairingMode::FirstLast => first_last(punches),
        PairingMode::Pairs | PairingMode::ManDays => alternate(punches),
        PairingMode::ByState => by_state(punches),
    };
    if pairing.intervals.is_empty() {
        let kind = |p: &AttendancePunch| match (mode, kind_by_state(p)) {
            (PairingMode::ByState, Kind::In) => Kind::In,
            (PairingMode::ByState, Kind::Out) => Kind::Out,
            _ if p.local_time < midpoint => Kind::In,
            _ => Kind::Out,
        };
        let lone_in = punches.iter().find(|p| kind(p) == Kind::In).map(|p| p.local_time);
        pairing.lone_out = punches
            .iter()
            .rev()
            .find(|p| kind(p) == Kind::Out && lone_in.is_none_or(|i| p.local_time > i))
            .map(|p| p.local_time);
        pairing.lone_in = lone_in;
    }
    pairing
}

fn first_last(punches: &[&AttendancePunch]) -> Pairing {
    match (punches.first(), punches.last()) {
        (Some(first), Some(last)) if punches.len() >= 2 => {
            Pairing { intervals: vec![(first.local_time, last.local_time)], ..Pairing::default() }
        }
        _ => Pairing { unmatched: count(punches.len()), ..Pairing::default() },
    }
}

fn alternate(punches: &[&AttendancePunch]) -> Pairing {
    let intervals = punches.chunks_exact(2).map(|pair| (pair[0].local_time, pair[1].local_time)).collect();
    Pairing { intervals, unmatched: count(punches.len() % 2), ..Pairing::default() }
}

fn by_state(punches: &[&AttendancePunch]) -> Pairing {
    let mut pairing = Pairing::default();
    let mut open: Option<NaiveDateTime> = None;
    for punch in punches {
        match (kind_by_state(punch), open) {
            (Kind::In, None) => open = Some(punch.local_time),
            (Kind::Out, Some(since)) => {
                pairing.intervals.push((since, punch.local_time));
                open = None;
            }
            (Kind::In, Some(_)) | (Kind::Out, None) => pairing.unmatched += 1,
            (Kind::Unknown, _) => {
                pairing.unmatched += 1;
                pairing.unknown_state += 1;
            }
        }
    }
    if open.is_some() {
        pairing.unmatched += 1;
    }
    pairing
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use protocol::PunchSource;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 5).and_then(|d| d.and_hms_opt(h, m, 0)).expect("valid time")
    }

    fn punch(h: u32, m: u32, state: u8, direction: Direction) -> AttendancePunch {
        AttendancePunch::from_device(
            "7".parse().expect("pin"),
            at(h, m),
            PunchState::from_code(state),
            direction,
            "DEV1".parse().expect("serial"),
            PunchSource::ZkPull,
        )
    }

    fn run(punches: &[AttendancePunch], mode: PairingMode) -> Pairing {
        let refs: Vec<&AttendancePunch> = punches.iter().collect();
        pair(&refs, mode, at(13, 30))
    }

    #[test]
    fn first_last_ignores_the_middle() {
        let p = [punch(9, 0, 0, Direction::Both), punch(13, 0, 1, Direction::Both), punch(18, 0, 1, Direction::Both)];
        let r = run(&p, PairingMode::FirstLast);
        assert_eq!(r.intervals, vec![(at(9, 0), at(18, 0))]);
        assert_eq!(r.unmatched, 0);
    }

    #[test]
    fn pairs_alternate_and_leave_an_odd_one() {
        let p = [punch(9, 0, 0, Direction::Both), punch(13, 0, 0, Direction::Both), punch(14, 0, 0, Direction::Both)];
        let r = run(&p, PairingMode::Pairs);
        assert_eq!(r.intervals, vec![(at(9, 0), at(13, 0))]);
        assert_eq!(r.unmatched, 1);
    }

    #[test]
    fn by_state_follows_states_breaks_and_reader_direction() {
        let p = [
            punch(8, 55, 0, Direction::Both),
            punch(9, 5, 0, Direction::Both),   // second IN: unmatched, earliest kept
            punch(13, 0, 2, Direction::Both),  // break-out closes
            punch(13, 30, 3, Direction::Both), // break-in opens
            punch(17, 0, 9, Direction::Both),  // unknown state
            punch(18, 0, 0, Direction::Out),   // exit reader: OUT whatever the state
            punch(18, 30, 1, Direction::Both), // OUT with nothing open
        ];
        let r = run(&p, PairingMode::ByState);
        assert_eq!(r.intervals, vec![(at(8, 55), at(13, 0)), (at(13, 30), at(18, 0))]);
        assert_eq!(r.unmatched, 3);
        assert_eq!(r.unknown_state, 1);
    }

    #[test]
    fn lone_punch_goes_to_in_or_out_by_the_shift_midpoint() {
        let morning = run(&[punch(9, 0, 1, Direction::Both)], PairingMode::FirstLast);
        assert_eq!((morning.lone_in, morning.lone_out, morning.unmatched), (Some(at(9, 0)), None, 1));
        let evening = run(&[punch(18, 0, 0, Direction::Both)], PairingMode::Pairs);
        assert_eq!((evening.lone_in, evening.lone_out), (None, Some(at(18, 0))));
        // by_state trusts the state instead.
        let stated = run(&[punch(18, 0, 0, Direction::Both)], PairingMode::ByState);
        assert_eq!((stated.lone_in, stated.lone_out), (Some(at(18, 0)), None));
    }
}
