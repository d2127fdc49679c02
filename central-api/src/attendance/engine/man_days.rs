//! The ManDaysAttendance row: up to ten IN/OUT slots per employee-day, each with its duration, and the grand total.

use chrono::{Duration, NaiveDate};
use protocol::Pin;

use super::day::AttendanceDay;
use super::figures::{WorkSlot, MAX_MAN_DAYS_SLOTS};
use super::shift::PairingMode;

/// One ManDays row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManDaysRow {
    pub employee_id: Pin,
    pub date: NaiveDate,
    /// At most [`MAX_MAN_DAYS_SLOTS`] slots, in time order.
    pub slots: Vec<WorkSlot>,
    /// The sum of the slots' durations (equal to the day's total work).
    pub total: Duration,
}

impl ManDaysRow {
    /// The ManDays row of a day computed in [`PairingMode::ManDays`]; `None` for other modes.
    pub fn from_day(day: &AttendanceDay) -> Option<Self> {
        if day.pairing != PairingMode::ManDays {
            return None;
        }
        let slots: Vec<WorkSlot> = day.slots.iter().take(MAX_MAN_DAYS_SLOTS).copied().collect();
        let total = slots.iter().map(|s| s.worked).fold(Duration::zero(), |a, b| a + b);
        Some(Self { employee_id: day.employee_id.clone(), date: day.date, slots, total })
    }

    /// The duration of slot `n` (1-10), zero for an empty slot.
    pub fn slot_duration(&self, n: usize) -> Duration {
        n.checked_sub(1).and_then(|i| self.slots.get(i)).map_or(Duration::zero(), |s| s.worked)
    }
}
