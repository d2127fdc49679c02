//! The reports a payroll clerk reads beside the muster roll: late coming, early going, overtime and absentees, for
//! a day or a range, one line per employee-day, with a total. Pure: attendance rows in, lines out; [`lines`] is the
//! table the CSV and XLSX files and the page all show.
//!
//! A line is an employee-day with: late coming, `late_by > 0`; early going, `early_exit_by > 0`; overtime,
//! `overtime > 0`; absentees, status A. Minutes are whole minutes, rounded down (as the daily report). Absentees
//! show the punches the day counted instead (1 with `missing_punch`: a punch to regularise). Lines are ordered by
//! date, department, employee.

use chrono::NaiveDate;
use serde::Serialize;

use crate::store::listing::AttendanceRow;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    Late,
    EarlyGoing,
    Overtime,
    Absentees,
}

impl ExceptionKind {
    pub const ALL: [Self; 4] = [Self::Late, Self::EarlyGoing, Self::Overtime, Self::Absentees];

    /// The name in URLs (`/api/v1/reports/<slug>`, `/reports?kind=<slug>`).
    pub fn slug(self) -> &'static str {
        match self {
            Self::Late => "late",
            Self::EarlyGoing => "early-going",
            Self::Overtime => "overtime",
            Self::Absentees => "absentees",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// The report's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Late => "Late coming",
            Self::EarlyGoing => "Early going",
            Self::Overtime => "Overtime",
            Self::Absentees => "Absentees",
        }
    }

    /// The heading of the figure column.
    pub fn figure(self) -> &'static str {
        match self {
            Self::Late => "Late (min)",
            Self::EarlyGoing => "Early (min)",
            Self::Overtime => "OT (min)",
            Self::Absentees => "Punches",
        }
    }

    /// The attendance list's condition that keeps only this report's rows (see `AttendanceFilter::exception`).
    pub fn condition(self) -> &'static str {
        match self {
            Self::Late => "late",
            Self::EarlyGoing => "early",
            Self::Overtime => "overtime",
            Self::Absentees => "absent",
        }
    }

    fn value(self, r: &AttendanceRow) -> Option<i64> {
        match self {
            Self::Late => (r.late_by_secs > 0).then_some(r.late_by_secs / 60),
            Self::EarlyGoing => (r.early_exit_by_secs > 0).then_some(r.early_exit_by_secs / 60),
            Self::Overtime => (r.overtime_secs > 0).then_some(r.overtime_secs / 60),
            Self::Absentees => (r.status.as_deref() == Some("A")).then_some(r.punches.counted),
        }
    }
}

/// One employee-day of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExceptionLine {
    pub date: NaiveDate,
    pub employee_id: String,
    pub name: String,
    pub department: String,
    pub site_id: Option<String>,
    pub shift_code: String,
    pub status: String,
    /// Local `HH:MM`; empty without a punch.
    pub in_time: String,
    pub out_time: String,
    /// Minutes late, early or of overtime; absentees: the punches the day counted.
    pub value: i64,
    /// The day's flags, space-separated (`missing_punch`, `sandwich`, ...).
    pub notes: String,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExceptionReport {
    pub kind: ExceptionKind,
    pub title: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub items: Vec<ExceptionLine>,
    /// The sum of `value` (absentees: the number of days).
    pub total: i64,
}

/// Builds `kind`'s report of `from..=to` from attendance rows (rows outside the range are ignored).
pub fn build(
    kind: ExceptionKind,
    scope: &str,
    from: NaiveDate,
    to: NaiveDate,
    rows: &[AttendanceRow],
) -> ExceptionReport {
    let mut items: Vec<ExceptionLine> = rows
        .iter()
        .filter(|r| r.work_date >= from && r.work_date <= to)
        .filter_map(|r| {
            let value = kind.value(r)?;
            Some(ExceptionLine {
                date: r.work_date,
                employee_id: r.employee_id.clone(),
                name: r.name.clone(),
                department: r.department.clone(),
                site_id: r.site_id.clone(),
                shift_code: r.shift_code.clone(),
                status: r.status.clone().unwrap_or_else(|| "*".to_owned()),
                in_time: r.in_time.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
                out_time: r.out_time.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
                value,
                notes: r.flags.join(" "),
            })
        })
        .collect();
    items.sort_by(|a, b| (a.date, &a.department, &a.employee_id).cmp(&(b.date, &b.department, &b.employee_id)));
    let total = match kind {
        ExceptionKind::Absentees => items.len() as i64,
        _ => items.iter().map(|l| l.value).sum(),
    };
    let range = if from == to { from.to_string() } else { format!("{from} to {to}") };
    let title = format!("{} {} {range}", kind.title(), scope).split_whitespace().collect::<Vec<_>>().join(" ");
    ExceptionReport { kind, title, from, to, items, total }
}

/// The report as a table: the headings, one line per employee-day, and the total line.
pub fn lines(report: &ExceptionReport) -> Vec<Vec<String>> {
    let mut out = vec![["Date", "Employee ID", "Name", "Department", "Shift", "Status", "In", "Out"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([report.kind.figure().to_owned(), "Notes".to_owned()])
        .collect::<Vec<_>>()];
    for l in &report.items {
        out.push(vec![
            l.date.to_string(),
            l.employee_id.clone(),
            l.name.clone(),
            l.department.clone(),
            l.shift_code.clone(),
            l.status.clone(),
            l.in_time.clone(),
            l.out_time.clone(),
            l.value.to_string(),
            l.notes.clone(),
        ]);
    }
    let mut total = vec![String::new(); 10];
    total[0] = "Total".to_owned();
    total[8] = report.total.to_string();
    total[9] = format!("{} days", report.items.len());
    out.push(total);
    out
}

/// The columns [`lines`] fills with numbers (the figure), for spreadsheets.
pub const NUMBER_COLUMNS: [usize; 1] = [8];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn row(id: &str, dept: &str, date: NaiveDate, status: &str, late: i64, early: i64, ot: i64) -> AttendanceRow {
        let at = |h: u32| -> Option<NaiveDateTime> { date.and_hms_opt(h, 5, 0) };
        AttendanceRow {
            employee_id: id.into(),
            name: format!("N{id}"),
            department: dept.into(),
            work_date: date,
            shift_code: "GEN".into(),
            status: Some(status.into()),
            in_time: at(9),
            out_time: at(18),
            late_by_secs: late,
            early_exit_by_secs: early,
            overtime_secs: ot,
            ..AttendanceRow::default()
        }
    }

    #[test]
    fn lines_are_the_days_that_qualify_in_order_with_a_total() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap_or_default();
        let rows = vec![
            row("2", "B", d(2), "P", 600, 0, 3_659),
            row("1", "B", d(2), "P", 90, 0, 0),
            row("3", "A", d(2), "A", 0, 120, 0),
            row("1", "B", d(1), "HD", 61, 7_200, 0),
            row("1", "B", d(9), "P", 600, 0, 0),
        ];
        let late = build(ExceptionKind::Late, "S", d(1), d(3), &rows);
        let who: Vec<(NaiveDate, &str, i64)> =
            late.items.iter().map(|l| (l.date, l.employee_id.as_str(), l.value)).collect();
        assert_eq!(who, [(d(1), "1", 1), (d(2), "1", 1), (d(2), "2", 10)]);
        assert_eq!(late.total, 12);
        assert_eq!(late.title, "Late coming S 2026-11-01 to 2026-11-03");
        let table = lines(&late);
        assert_eq!(table[0][8], "Late (min)");
        assert_eq!(table[1], ["2026-11-01", "1", "N1", "B", "GEN", "HD", "09:05", "18:05", "1", ""]);
        assert_eq!(table[4], ["Total", "", "", "", "", "", "", "", "12", "3 days"]);
        let early = build(ExceptionKind::EarlyGoing, "", d(2), d(2), &rows);
        assert_eq!((early.items.len(), early.items[0].employee_id.as_str(), early.total), (1, "3", 2));
        assert_eq!(early.title, "Early going 2026-11-02");
        let ot = build(ExceptionKind::Overtime, "S", d(1), d(30), &rows);
        assert_eq!((ot.items.len(), ot.total), (1, 60));
        let absent = build(ExceptionKind::Absentees, "S", d(1), d(30), &rows);
        assert_eq!((absent.items.len(), absent.total, absent.items[0].value), (1, 1, 0));
    }
}
