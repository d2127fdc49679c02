//! PostgreSQL's binary `COPY ... FROM STDIN` format: rows written as the server's own binary values, which it stores
//! without parsing text or running an `INSERT`'s executor per row (the attendance job writes 310,000 rows for a
//! month of 10,000 employees).
//!
//! The format (PostgreSQL documentation, "COPY", "Binary Format"): a signature, flags and header extension length,
//! then per row a 16-bit field count and per field a 32-bit length (-1 for NULL) and the value in the type's binary
//! send form; an end marker of -1. The caller must name the columns in the order it writes them and write values of
//! exactly the column's type (`text`, `bytea`, `date`, `timestamp`, `timestamptz`, `bool`, `int2`, `int8`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::StoreError;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// PostgreSQL's epoch for dates and timestamps.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

/// The bytes of a binary `COPY`, built row by row.
#[derive(Debug)]
pub(crate) struct CopyRows {
    bytes: Vec<u8>,
    epoch: NaiveDateTime,
}

impl CopyRows {
    /// An empty stream (with its header), sized for about `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity + SIGNATURE.len() + 10);
        bytes.extend_from_slice(SIGNATURE);
        bytes.extend_from_slice(&0i32.to_be_bytes());
        bytes.extend_from_slice(&0i32.to_be_bytes());
        Self { bytes, epoch: epoch() }
    }

    /// Starts a row of `fields` values.
    pub(crate) fn row(&mut self, fields: i16) {
        self.bytes.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, value: &[u8]) {
        // A field longer than 2 GiB cannot be stored by PostgreSQL anyway; the server refuses the stream.
        self.bytes.extend_from_slice(&i32::try_from(value.len()).unwrap_or(i32::MAX).to_be_bytes());
        self.bytes.extend_from_slice(value);
    }

    pub(crate) fn null(&mut self) {
        self.bytes.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub(crate) fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    pub(crate) fn opt_text(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub(crate) fn bytea(&mut self, value: &[u8]) {
        self.field(value);
    }

    pub(crate) fn int2(&mut self, value: i16) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn opt_int8(&mut self, value: Option<i64>) {
        match value {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    pub(crate) fn opt_bool(&mut self, value: Option<bool>) {
        match value {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    pub(crate) fn date(&mut self, value: NaiveDate) {
        let days = (value - self.epoch.date()).num_days();
        self.field(&i32::try_from(days).unwrap_or(i32::MAX).to_be_bytes());
    }

    pub(crate) fn opt_date(&mut self, value: Option<NaiveDate>) {
        match value {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }

    /// A `timestamp` (microseconds since the epoch; finer digits are dropped, as PostgreSQL rounds them away).
    pub(crate) fn timestamp(&mut self, value: NaiveDateTime) {
        let micros = (value - self.epoch).num_microseconds().unwrap_or(i64::MAX);
        self.field(&micros.to_be_bytes());
    }

    pub(crate) fn opt_timestamp(&mut self, value: Option<NaiveDateTime>) {
        match value {
            Some(v) => self.timestamp(v),
            None => self.null(),
        }
    }

    /// A `timestamptz`: the UTC instant as a `timestamp`.
    pub(crate) fn timestamptz(&mut self, value: DateTime<Utc>) {
        self.timestamp(value.naive_utc());
    }

    /// Sends the rows as `COPY {target} FROM STDIN (FORMAT binary)`; returns how many the server stored.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub(crate) async fn send(mut self, conn: &mut sqlx::PgConnection, target: &str) -> Result<u64, StoreError> {
        self.bytes.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)")).await?;
        if let Err(e) = copy.send(self.bytes).await {
            let _ = copy.abort(e.to_string()).await;
            return Err(e.into());
        }
        Ok(copy.finish().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_the_servers_binary_form() {
        let mut rows = CopyRows::with_capacity(0);
        let header = rows.bytes.len();
        rows.row(5);
        rows.date(NaiveDate::from_ymd_opt(2000, 1, 2).expect("date"));
        rows.timestamp(epoch() - chrono::Duration::microseconds(1));
        rows.opt_text(None);
        rows.int2(-2);
        rows.bytea(&[7, 8]);
        assert_eq!(header, 19);
        assert_eq!(
            &rows.bytes[header..],
            [
                &[0, 5][..],
                &[0, 0, 0, 4, 0, 0, 0, 1],
                &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                &[0xff, 0xff, 0xff, 0xff],
                &[0, 0, 0, 2, 0xff, 0xfe],
                &[0, 0, 0, 2, 7, 8],
            ]
            .concat()
        );
    }
}
