//! Reports built from computed attendance: the monthly muster roll ([`muster`], a pure grid builder) and its
//! renderings as CSV ([`csv`]) and XLSX ([`xlsx`]), and the daily report ([`daily`]).

pub mod csv;
pub mod daily;
pub mod exceptions;
pub mod muster;
pub mod xlsx;
