//! Where a history read of an HTTP terminal resumes, and which events of a read are new. No I/O.
//!
//! Both families number their events (Hikvision `serialNo`, Dahua `RecNo`) and time them. The cursor keeps the
//! number and time of the newest event read; the next read asks for the window from a little before that time and
//! takes the events numbered above it. A device whose numbering restarted (a reset, a replaced unit) shows events
//! *later* than the cursor with numbers *at or below* it: from then on that read takes events by time instead, and
//! the cursor follows the new numbering. A device clock set back shows higher numbers at earlier times: those are
//! new, and the cursor follows the number, so the next window starts at the earlier time.
//!
//! Reading an event twice is harmless (the buffer and central drop a punch whose key they hold), so every doubt is
//! resolved towards reading again, never towards skipping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The durable position: sequence number and UTC time (Unix seconds) of the newest event read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCursor {
    pub seq: u64,
    pub at: i64,
}

impl EventCursor {
    /// The bytes kept in the buffer store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored cursor; `None` for bytes that are not one (the device is then read from the start).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 256 {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    /// The cursor's time.
    pub fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.at, 0).unwrap_or_default()
    }

    /// Whether a realtime event numbered `seq` comes right after the cursor (so the cursor may move to it without
    /// leaving a hole). `front` is the number of the event sent before it, when the device tells.
    pub fn followed_by(&self, seq: u64, front: Option<u64>) -> bool {
        seq == self.seq.saturating_add(1) || (front == Some(self.seq) && seq > self.seq)
    }
}

/// One event as the cursor sees it: its number (when the device gave one) and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub seq: Option<u64>,
    pub at: DateTime<Utc>,
}

/// Judges the events of one history read, page after page, in the device's order.
#[derive(Debug, Clone)]
pub struct HistoryJudge {
    start: Option<EventCursor>,
    reset: bool,
    cursor: Option<EventCursor>,
}

impl HistoryJudge {
    /// A read resuming from `start` (`None`: the device's whole log is new).
    pub fn new(start: Option<EventCursor>) -> Self {
        Self { start, reset: false, cursor: start }
    }

    /// Whether the device's numbering restarted during this read.
    pub fn reset_seen(&self) -> bool {
        self.reset
    }

    /// Where the cursor stands after the events judged so far.
    pub fn cursor(&self) -> Option<EventCursor> {
        self.cursor
    }

    /// Whether the event is new, moving the cursor past it when it is.
    pub fn judge(&mut self, mark: Mark) -> bool {
        let at = mark.at.timestamp();
        let Some(start) = self.start else {
            self.advance(mark);
            return true;
        };
        if let Some(seq) = mark.seq {
            if !self.reset && seq <= start.seq && at > start.at {
                self.reset = true;
            }
        }
        let new = match (self.reset, mark.seq) {
            (false, Some(seq)) => seq > start.seq,
            // By time: the cursor's own second is taken again (a duplicate at worst).
            _ => at >= start.at,
        };
        if new {
            self.advance(mark);
        }
        new
    }

    fn advance(&mut self, mark: Mark) {
        let at = mark.at.timestamp();
        let next = match (mark.seq, self.cursor) {
            // Without numbers the newest time wins.
            (None, Some(c)) => EventCursor { seq: c.seq, at: c.at.max(at) },
            (None, None) => EventCursor { seq: 0, at },
            // After a restart the new numbering is followed in the device's order.
            (Some(seq), _) if self.reset => EventCursor { seq, at },
            // Out of order within a read: the highest number stays the cursor.
            (Some(seq), Some(c)) if seq < c.seq => c,
            (Some(seq), _) => EventCursor { seq, at },
        };
        self.cursor = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64, at: i64) -> Mark {
        Mark { seq: Some(seq), at: DateTime::from_timestamp(at, 0).unwrap() }
    }

    fn run(start: Option<EventCursor>, marks: &[Mark]) -> (Vec<bool>, HistoryJudge) {
        let mut judge = HistoryJudge::new(start);
        let verdicts = marks.iter().map(|m| judge.judge(*m)).collect();
        (verdicts, judge)
    }

    #[test]
    fn numbers_above_the_cursor_are_new_and_the_overlap_is_not() {
        let start = EventCursor { seq: 10, at: 1_000 };
        let (new, judge) = run(Some(start), &[mark(9, 990), mark(10, 1_000), mark(11, 1_000), mark(12, 1_050)]);
        assert_eq!(new, [false, false, true, true]);
        assert_eq!(judge.cursor(), Some(EventCursor { seq: 12, at: 1_050 }));
        assert!(!judge.reset_seen());
    }

    #[test]
    fn a_restarted_numbering_is_read_by_time_and_followed() {
        let start = EventCursor { seq: 500, at: 1_000 };
        let (new, judge) = run(Some(start), &[mark(499, 990), mark(1, 1_010), mark(2, 1_020), mark(3, 1_030)]);
        assert_eq!(new, [false, true, true, true]);
        assert!(judge.reset_seen());
        assert_eq!(judge.cursor(), Some(EventCursor { seq: 3, at: 1_030 }));
    }

    #[test]
    fn a_clock_set_back_keeps_new_numbers_and_moves_the_window_back() {
        let start = EventCursor { seq: 10, at: 1_000 };
        let (new, judge) = run(Some(start), &[mark(10, 1_000), mark(11, 400), mark(12, 410)]);
        assert_eq!(new, [false, true, true]);
        assert_eq!(judge.cursor(), Some(EventCursor { seq: 12, at: 410 }));
    }

    #[test]
    fn without_a_cursor_everything_is_new_and_without_numbers_time_decides() {
        let (new, judge) = run(None, &[mark(5, 100), mark(6, 200)]);
        assert_eq!(new, [true, true]);
        assert_eq!(judge.cursor(), Some(EventCursor { seq: 6, at: 200 }));
        let unnumbered = |at| Mark { seq: None, at: DateTime::from_timestamp(at, 0).unwrap() };
        let (new, judge) =
            run(Some(EventCursor { seq: 6, at: 200 }), &[unnumbered(150), unnumbered(200), unnumbered(300)]);
        assert_eq!(new, [false, true, true]);
        assert_eq!(judge.cursor(), Some(EventCursor { seq: 6, at: 300 }));
    }

    #[test]
    fn cursors_round_trip_and_junk_is_no_cursor() {
        let c = EventCursor { seq: u64::MAX, at: -5 };
        assert_eq!(EventCursor::decode(&c.encode()), Some(c));
        assert_eq!(EventCursor::decode(b"\xff\x00junk"), None);
        assert!(!c.followed_by(0, Some(u64::MAX)));
        assert!(EventCursor { seq: 4, at: 0 }.followed_by(5, None));
        assert!(EventCursor { seq: 4, at: 0 }.followed_by(9, Some(4)));
        assert!(!EventCursor { seq: 4, at: 0 }.followed_by(9, Some(7)));
    }
}
