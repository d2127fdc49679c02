//! The event ring's arithmetic. No I/O.

/// Which register table holds the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterKind {
    /// Function 3.
    Holding,
    /// Function 4.
    Input,
}

/// Where a device keeps its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterMap {
    pub kind: RegisterKind,
    pub counter_register: u16,
    /// 1 (wraps at 2^16) or 2 (wraps at 2^32, high word first).
    pub counter_words: u8,
    pub ring_start: u16,
    /// A power of two, so that slots stay in step when the counter wraps.
    pub ring_slots: u16,
    pub slot_registers: u16,
    pub pin_offset: u16,
    pub time_offset: u16,
    pub state_offset: u16,
    pub verify_offset: Option<u16>,
}

/// Most registers one Modbus read may ask for.
pub const MAX_READ: u16 = 125;

/// One slot's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub pin: u32,
    /// Seconds since 1970-01-01 00:00:00 in the device's local wall-clock time.
    pub time: u32,
    pub state: u16,
    pub verify: u16,
}

/// What to read in one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The event number (modulo the counter's range) of the first event to read.
    pub first: u64,
    /// Events to read.
    pub count: u64,
    /// Events recorded since the last poll that the ring no longer holds.
    pub lost: u64,
}

impl RegisterMap {
    /// The counter's range: 2^16 or 2^32.
    pub fn modulus(&self) -> u64 {
        if self.counter_words == 2 {
            1 << 32
        } else {
            1 << 16
        }
    }

    /// The counter from its registers.
    pub fn counter(&self, words: &[u16]) -> Option<u64> {
        match (self.counter_words, words) {
            (1, [low, ..]) => Some(u64::from(*low)),
            (2, [high, low, ..]) => Some(u64::from(*high) << 16 | u64::from(*low)),
            _ => None,
        }
    }

    /// The events to read given the stored counter `last` (none on first contact) and the device's counter `now`.
    /// On first contact the whole ring is read, whatever the counter says (it may have wrapped); slots never written
    /// are empty and skipped, events already stored are dropped by the buffer's key index.
    pub fn plan(&self, last: Option<u64>, now: u64) -> Plan {
        let modulus = self.modulus();
        let slots = u64::from(self.ring_slots);
        let now = now % modulus;
        let new = match last {
            None => slots,
            Some(last) => (now + modulus - last % modulus) % modulus,
        };
        let count = new.min(slots);
        Plan { first: (now + modulus - count) % modulus, count, lost: new - count }
    }

    /// The register reads covering `plan`, as `(address, quantity)` in event order; whole slots, at most
    /// [`MAX_READ`] registers each, split where the ring wraps.
    pub fn reads(&self, plan: &Plan) -> Vec<(u16, u16)> {
        let slots = u64::from(self.ring_slots);
        let per_read = u64::from((MAX_READ / self.slot_registers.max(1)).max(1));
        let mut out = Vec::new();
        let mut event = plan.first;
        let mut left = plan.count;
        while left > 0 {
            let slot = event % slots;
            let run = left.min(slots - slot).min(per_read);
            let address = u64::from(self.ring_start) + slot * u64::from(self.slot_registers);
            let quantity = run * u64::from(self.slot_registers);
            out.push((u16::try_from(address).unwrap_or(u16::MAX), u16::try_from(quantity).unwrap_or(MAX_READ)));
            event += run;
            left -= run;
        }
        out
    }

    /// Decodes one slot's registers.
    pub fn decode(&self, slot: &[u16]) -> Option<RawEvent> {
        let word = |offset: u16| slot.get(usize::from(offset)).copied();
        let pair = |offset: u16| Some(u32::from(word(offset)?) << 16 | u32::from(word(offset + 1)?));
        Some(RawEvent {
            pin: pair(self.pin_offset)?,
            time: pair(self.time_offset)?,
            state: word(self.state_offset)?,
            verify: match self.verify_offset {
                Some(offset) => word(offset)?,
                None => 0,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(words: u8, slots: u16) -> RegisterMap {
        RegisterMap {
            kind: RegisterKind::Holding,
            counter_register: 0,
            counter_words: words,
            ring_start: 100,
            ring_slots: slots,
            slot_registers: 5,
            pin_offset: 0,
            time_offset: 2,
            state_offset: 4,
            verify_offset: None,
        }
    }

    #[test]
    fn new_events_across_wrap_around() {
        let m = map(1, 64);
        assert_eq!(m.plan(None, 10), Plan { first: 65_482, count: 64, lost: 0 });
        assert_eq!(m.plan(None, 1000), Plan { first: 936, count: 64, lost: 0 });
        assert_eq!(m.plan(Some(10), 10).count, 0);
        assert_eq!(m.plan(Some(65_530), 4), Plan { first: 65_530, count: 10, lost: 0 });
        assert_eq!(m.plan(Some(0), 100), Plan { first: 36, count: 64, lost: 36 });
        let wide = map(2, 64);
        assert_eq!(wide.counter(&[1, 2]), Some(65_538));
        assert_eq!(wide.plan(Some(u64::from(u32::MAX)), 2), Plan { first: u64::from(u32::MAX), count: 3, lost: 0 });
    }

    #[test]
    fn reads_follow_the_ring_and_the_read_limit() {
        let m = map(1, 64);
        // Events 65_530..65_539 (mod 2^16): slots 58..63 then 0..3.
        let plan = m.plan(Some(65_530), 4);
        assert_eq!(m.reads(&plan), [(100 + 58 * 5, 30), (100, 20)]);
        // 64 events from slot 0: 25 slots per read at 5 registers.
        let reads = m.reads(&Plan { first: 0, count: 64, lost: 0 });
        assert_eq!(reads, [(100, 125), (225, 125), (350, 70)]);
        let slot = [0, 1001, 0x69A5, 0x4D00, 1];
        assert_eq!(m.decode(&slot), Some(RawEvent { pin: 1001, time: 0x69A5_4D00, state: 1, verify: 0 }));
        assert_eq!(m.decode(&slot[..3]), None);
    }
}
