//! Attendance: turning punches into the employee-days a payroll clerk reads.
//!
//! [`engine`] is the pure part: punches, a shift and a calendar in, one [`engine::AttendanceDay`] per employee-day
//! out. It does no I/O (no database, no clock, no tokio), so every rule is tested exhaustively on plain values. The
//! job layer that loads inputs from the database, marks dirty days and writes rows back is built on top of it.

pub mod engine;
