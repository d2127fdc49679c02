//! Tests of the attendance engine's public API: a module per rule of `attendance-rules.md`, then the property tests.
//!
//! The calendar used throughout is November 2026: the 1st is a Sunday, Saturdays are the 7th, 14th, 21st and 28th.

mod fixtures;

mod affected;
mod calendar;
mod figures;
mod pairing;
mod properties;
mod punches;
mod sandwich;
mod windows;
