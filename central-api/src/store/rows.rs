//! A validated batch turned into database rows: the punch key computed, numbers narrowed to what the columns hold,
//! rows sorted in the unique index's order. No I/O.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use protocol::{PunchBatch, PunchKey};

/// One `all_logs` row before insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunchRow {
    pub key: PunchKey,
    pub device: String,
    pub pin: String,
    pub local_time: NaiveDateTime,
    pub utc_time: DateTime<Utc>,
    pub state: i16,
    pub verify: i16,
    pub work_code: i64,
    pub source: &'static str,
    pub direction: &'static str,
    pub agent_seq: i64,
    /// The device's own state code, as sent (protocol version 2).
    pub raw_state: Option<i64>,
    /// The device's own verification code, as sent (protocol version 2).
    pub raw_verify: Option<i64>,
}

/// Everything the insert needs from a batch.
#[derive(Debug, Clone)]
pub struct BatchRows {
    pub site: String,
    pub agent: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Sorted by (device, local time, PIN), the unique index's order: inserts walk the index forwards, and
    /// concurrent transactions take its locks in the same order.
    pub rows: Vec<PunchRow>,
}

/// Why a batch cannot be stored even though it decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{field} {value} is larger than the database can hold ({max})")]
    OutOfRange { field: &'static str, value: u64, max: i64 },
}

fn narrow(field: &'static str, value: u64) -> Result<i64, RowError> {
    i64::try_from(value).map_err(|_| RowError::OutOfRange { field, value, max: i64::MAX })
}

impl BatchRows {
    /// Builds the rows of a batch that already passed `PunchBatch::validate`.
    ///
    /// # Errors
    /// [`RowError::OutOfRange`] for a sequence number above `i64::MAX`.
    pub fn from_batch(batch: &PunchBatch) -> Result<Self, RowError> {
        let mut rows = Vec::with_capacity(batch.punches.len());
        for item in &batch.punches {
            let punch = &item.punch;
            rows.push(PunchRow {
                key: punch.key(),
                device: punch.device.as_str().to_owned(),
                pin: punch.pin.as_str().to_owned(),
                // A leap second (`23:59:60`, which JSON can carry) is stored as 23:59:59 on both backends, as bincode
                // (whole seconds since the epoch) already delivers it; PostgreSQL would otherwise roll it into the
                // next day and SQLite keep `23:59:60` (issue 12).
                local_time: protocol::time::truncate_to_second(punch.local_time),
                utc_time: punch.utc_time.with_nanosecond(0).unwrap_or(punch.utc_time),
                state: i16::from(punch.state.code()),
                verify: i16::from(punch.verify.code()),
                work_code: i64::from(punch.work_code),
                source: punch.source.as_str(),
                direction: punch.direction.as_str(),
                agent_seq: narrow("seq", item.seq)?,
                raw_state: punch.raw_state.map(i64::from),
                raw_verify: punch.raw_verify.map(i64::from),
            });
        }
        rows.sort_by(|a, b| (&a.device, a.local_time, &a.pin).cmp(&(&b.device, b.local_time, &b.pin)));
        Ok(Self {
            site: batch.site.as_str().to_owned(),
            agent: batch.agent.as_str().to_owned(),
            first_seq: narrow("first_seq", batch.first_seq)?,
            last_seq: narrow("last_seq", batch.last_seq)?,
            rows,
        })
    }

    /// How many punches the batch carries (duplicates included).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch carries no punch (never true for a validated batch).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use protocol::{Direction, Punch, PunchSource, PunchState, SequencedPunch, VerifyMode};

    fn punch(pin: &str, day: u32, hour: u32) -> Punch {
        Punch::from_device(
            "s1".parse().unwrap(),
            "DEV1".parse().unwrap(),
            pin.parse().unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, day).unwrap().and_hms_opt(hour, 0, 0).unwrap(),
            chrono_tz::Asia::Kolkata,
            PunchState::CheckIn,
            VerifyMode::Fingerprint,
            7,
            PunchSource::ZkPull,
            Direction::In,
        )
    }

    fn batch(seqs: &[u64]) -> PunchBatch {
        let punches =
            seqs.iter().enumerate().map(|(i, s)| SequencedPunch { seq: *s, punch: punch("1", 1, i as u32) }).collect();
        PunchBatch::new("a1".parse().unwrap(), "s1".parse().unwrap(), Utc::now(), punches)
    }

    #[test]
    fn rows_are_sorted_in_index_order_and_carry_the_fields() {
        let mut input = batch(&[1, 2, 3, 4]);
        input.punches.reverse();
        let rows = BatchRows::from_batch(&input).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows.rows.windows(2).all(|w| w[0].local_time < w[1].local_time));
        assert_eq!((rows.first_seq, rows.last_seq), (1, 4));
        let row = &rows.rows[0];
        assert_eq!((row.state, row.verify, row.work_code, row.source, row.direction), (0, 1, 7, "zk-pull", "IN"));
        assert_eq!((row.raw_state, row.raw_verify), (None, None));
        let mut raw = batch(&[9]);
        raw.punches[0].punch = raw.punches[0].punch.clone().with_raw_codes(Some(0), Some(4));
        let row = &BatchRows::from_batch(&raw).unwrap().rows[0];
        assert_eq!((row.verify, row.raw_state, row.raw_verify), (1, Some(0), Some(4)), "the device's 4 is kept");
    }

    #[test]
    fn a_leap_second_is_stored_as_the_second_before() {
        let mut input = batch(&[1]);
        let leap = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_milli_opt(23, 59, 59, 1_000).unwrap();
        input.punches[0].punch.local_time = leap;
        let rows = BatchRows::from_batch(&input).unwrap();
        let expected = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(23, 59, 59).unwrap();
        assert_eq!(rows.rows[0].local_time, expected);
    }

    #[test]
    fn sequence_numbers_beyond_i64_are_refused() {
        let err = BatchRows::from_batch(&batch(&[1, u64::MAX])).unwrap_err();
        assert_eq!(err, RowError::OutOfRange { field: "seq", value: u64::MAX, max: i64::MAX });
    }
}
