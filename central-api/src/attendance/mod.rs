//! Attendance: turning punches into the employee-days a payroll clerk reads.
//!
//! [`engine`] is the pure part: punches, a shift and a calendar in, one [`engine::AttendanceDay`] per employee-day
//! out. It does no I/O (no database, no clock, no tokio), so every rule is tested exhaustively on plain values.
//! [`jobs`] is the thin layer on top: it loads inputs from the database (`store::attendance`), runs the engine, and
//! writes rows back, incrementally (the worker) or in bulk (close the day, sandwich, reprocess).

pub mod engine;
pub mod jobs;
