//! PostgreSQL's binary array values read in place: the elements of a one-dimensional array as slices of the row's
//! own bytes, decoded by the caller without a `String` per element.
//!
//! The attendance month reads 1.5 M punches as per-PIN arrays; sqlx decodes a `text[]` into a `Vec<String>`, one
//! allocation per element, three text columns per punch. The format (PostgreSQL's `array_send`): dimensions,
//! flags, element type, then per dimension its length and lower bound, then per element a 32-bit length (-1 for
//! NULL) and the element in its type's binary send form.

use chrono::{DateTime, NaiveDateTime};
use sqlx::postgres::{PgValueFormat, PgValueRef};
use sqlx::ValueRef;

use super::StoreError;

fn invalid(what: &str, problem: &str) -> StoreError {
    StoreError::Invalid(format!("array {what}: {problem}"))
}

/// The elements of one binary array value, in order.
#[derive(Debug)]
pub(crate) struct ArrayElements<'r> {
    rest: &'r [u8],
    left: usize,
    what: &'static str,
}

impl<'r> ArrayElements<'r> {
    /// The elements of `value` (`what` names it in errors). A NULL array has none.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a value in text form, of more than one dimension, or cut short.
    pub(crate) fn new(value: PgValueRef<'r>, what: &'static str) -> Result<Self, StoreError> {
        if value.is_null() {
            return Ok(Self { rest: &[], left: 0, what });
        }
        if value.format() != PgValueFormat::Binary {
            return Err(invalid(what, "not in binary form"));
        }
        let bytes = value.as_bytes().map_err(|e| invalid(what, &e.to_string()))?;
        let mut array = Self { rest: bytes, left: 0, what };
        let dimensions = array.int4()?;
        let _flags = array.int4()?;
        let _element_type = array.int4()?;
        match dimensions {
            0 => Ok(array),
            1 => {
                let len = array.int4()?;
                let _lower_bound = array.int4()?;
                array.left = usize::try_from(len).map_err(|_| invalid(what, "negative length"))?;
                Ok(array)
            }
            _ => Err(invalid(what, "more than one dimension")),
        }
    }

    /// How many elements are left.
    pub(crate) fn len(&self) -> usize {
        self.left
    }

    fn int4(&mut self) -> Result<i32, StoreError> {
        let (head, rest) = self.rest.split_first_chunk::<4>().ok_or_else(|| invalid(self.what, "cut short"))?;
        self.rest = rest;
        Ok(i32::from_be_bytes(*head))
    }

    /// The next element's bytes.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when there is none left, it is NULL, or the value is cut short.
    pub(crate) fn next_bytes(&mut self) -> Result<&'r [u8], StoreError> {
        if self.left == 0 {
            return Err(invalid(self.what, "fewer elements than expected"));
        }
        let len = usize::try_from(self.int4()?).map_err(|_| invalid(self.what, "unexpected NULL element"))?;
        if self.rest.len() < len {
            return Err(invalid(self.what, "cut short"));
        }
        let (element, rest) = self.rest.split_at(len);
        self.rest = rest;
        self.left -= 1;
        Ok(element)
    }

    /// The next element of a `text[]`.
    ///
    /// # Errors
    /// As [`Self::next_bytes`], and for text that is not UTF-8.
    pub(crate) fn next_text(&mut self) -> Result<&'r str, StoreError> {
        let bytes = self.next_bytes()?;
        std::str::from_utf8(bytes).map_err(|e| invalid(self.what, &e.to_string()))
    }

    /// The next element of an `int2[]`.
    ///
    /// # Errors
    /// As [`Self::next_bytes`], and for an element of another size.
    pub(crate) fn next_int2(&mut self) -> Result<i16, StoreError> {
        let bytes: [u8; 2] = self.next_bytes()?.try_into().map_err(|_| invalid(self.what, "not an int2"))?;
        Ok(i16::from_be_bytes(bytes))
    }

    /// The next element of a `timestamp[]` (microseconds since 2000-01-01 00:00); `None` for a time chrono cannot
    /// represent (`infinity`).
    ///
    /// # Errors
    /// As [`Self::next_bytes`], and for an element of another size.
    pub(crate) fn next_timestamp(&mut self) -> Result<Option<NaiveDateTime>, StoreError> {
        let bytes: [u8; 8] = self.next_bytes()?.try_into().map_err(|_| invalid(self.what, "not a timestamp"))?;
        /// 2000-01-01 00:00 in microseconds since 1970-01-01 00:00.
        const EPOCH_MICROS: i64 = 946_684_800_000_000;
        let micros = i64::from_be_bytes(bytes).checked_add(EPOCH_MICROS);
        Ok(micros.and_then(DateTime::from_timestamp_micros).map(|t| t.naive_utc()))
    }
}
