//! The daily report: for one day, each employee's in, out, late, early exit and overtime, from computed rows.

use serde::Serialize;

use crate::store::listing::AttendanceRow;

/// One employee's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DailyRow {
    pub employee_id: String,
    pub name: String,
    pub department: String,
    pub status: String,
    /// Local `HH:MM`, empty without a punch.
    pub in_time: String,
    pub out_time: String,
    pub late_minutes: i64,
    pub early_exit_minutes: i64,
    pub overtime_minutes: i64,
    pub work_minutes: i64,
}

/// The report's rows, in the order of `rows`.
pub fn build(rows: &[AttendanceRow]) -> Vec<DailyRow> {
    rows.iter()
        .map(|r| DailyRow {
            employee_id: r.employee_id.clone(),
            name: r.name.clone(),
            department: r.department.clone(),
            status: r.status.clone().unwrap_or_else(|| if r.provisional { "*".into() } else { String::new() }),
            in_time: r.in_time.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
            out_time: r.out_time.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
            late_minutes: r.late_by_secs / 60,
            early_exit_minutes: r.early_exit_by_secs / 60,
            overtime_minutes: r.overtime_secs / 60,
            work_minutes: r.total_work_secs / 60,
        })
        .collect()
}

/// The rows as CSV lines with a header.
pub fn lines(rows: &[DailyRow]) -> Vec<Vec<String>> {
    let mut out = vec![[
        "Employee ID",
        "Name",
        "Department",
        "Status",
        "In",
        "Out",
        "Late (min)",
        "Early exit (min)",
        "OT (min)",
        "Work (min)",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect::<Vec<_>>()];
    for r in rows {
        out.push(vec![
            r.employee_id.clone(),
            r.name.clone(),
            r.department.clone(),
            r.status.clone(),
            r.in_time.clone(),
            r.out_time.clone(),
            r.late_minutes.to_string(),
            r.early_exit_minutes.to_string(),
            r.overtime_minutes.to_string(),
            r.work_minutes.to_string(),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn minutes_and_times() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let row = AttendanceRow {
            employee_id: "7".into(),
            name: "N".into(),
            department: "D".into(),
            site_id: Some("s".into()),
            work_date: date,
            shift_code: "G".into(),
            day_kind: "working".into(),
            status: Some("P".into()),
            provisional: false,
            in_time: date.and_hms_opt(9, 7, 0),
            out_time: date.and_hms_opt(18, 30, 0),
            total_work_secs: 33_780,
            overtime_secs: 1_800,
            late_by_secs: 420,
            early_exit_by_secs: 0,
            ..AttendanceRow::default()
        };
        let out = build(&[row]);
        assert_eq!(out[0].in_time, "09:07");
        assert_eq!(out[0].out_time, "18:30");
        assert_eq!((out[0].late_minutes, out[0].overtime_minutes, out[0].work_minutes), (7, 30, 563));
        assert_eq!(lines(&out)[1][4], "09:07");
    }
}
