//! The monthly muster roll: one row per employee, one cell per day of the month holding the day's status code, and
//! totals. Pure: rows in, grid out.
//!
//! Cells: the stored status (P, HD, A, WO, PH, WOP, PHP, L); `*` for a provisional day with no status yet; empty
//! for a day with no row (before joining, after leaving, not computed yet). Totals: `present` counts P, WOP and PHP;
//! `half_days` HD; `absent` A; `week_offs` WO; `holidays` PH; `leave` L; `late` the days with a late arrival;
//! `overtime_secs` the sum of overtime.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

/// One employee as listed in the roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MusterEmployee {
    pub employee_id: String,
    pub name: String,
    pub department: String,
}

/// What the roll needs of one computed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MusterDay {
    pub employee_id: String,
    pub date: NaiveDate,
    pub status: Option<String>,
    pub provisional: bool,
    pub late_by_secs: i64,
    pub overtime_secs: i64,
}

/// An employee's totals over the month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub present: u32,
    pub absent: u32,
    pub half_days: u32,
    pub week_offs: u32,
    pub holidays: u32,
    pub leave: u32,
    pub late: u32,
    pub overtime_secs: i64,
}

impl Totals {
    /// Overtime in hours, rounded to two decimals.
    pub fn overtime_hours(&self) -> f64 {
        (self.overtime_secs as f64 / 36.0).round() / 100.0
    }
}

/// One line of the roll.
#[derive(Debug, Clone, PartialEq)]
pub struct MusterRow {
    pub employee: MusterEmployee,
    /// One per day of the month.
    pub cells: Vec<String>,
    pub totals: Totals,
}

/// The whole roll.
#[derive(Debug, Clone, PartialEq)]
pub struct MusterRoll {
    pub title: String,
    pub days: Vec<NaiveDate>,
    pub rows: Vec<MusterRow>,
}

/// The column headers, in order: identity, one per day (its day of month), then the totals.
pub fn headers(roll: &MusterRoll) -> Vec<String> {
    let mut h: Vec<String> = ["Employee ID", "Name", "Department"].iter().map(|s| (*s).to_owned()).collect();
    h.extend(roll.days.iter().map(|d| format!("{:02}", d.day())));
    h.extend(
        ["Present", "Absent", "Half days", "Week-offs", "Holidays", "Leave", "Late", "OT hours"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    h
}

/// The days of `year`-`month`, or `None` for a month that does not exist.
pub fn month_days(year: i32, month: u32) -> Option<Vec<NaiveDate>> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(first.iter_days().take_while(|d| d.month() == month).collect())
}

/// Builds the roll of `days` for `employees` (in the order given) from their computed `rows` (any order; rows of
/// other employees or days are ignored).
pub fn build(title: &str, days: Vec<NaiveDate>, employees: &[MusterEmployee], rows: &[MusterDay]) -> MusterRoll {
    let index: HashMap<(&str, NaiveDate), &MusterDay> =
        rows.iter().map(|r| ((r.employee_id.as_str(), r.date), r)).collect();
    let lines = employees
        .iter()
        .map(|e| {
            let mut totals = Totals::default();
            let cells = days
                .iter()
                .map(|d| {
                    let Some(day) = index.get(&(e.employee_id.as_str(), *d)) else {
                        return String::new();
                    };
                    if day.late_by_secs > 0 {
                        totals.late += 1;
                    }
                    totals.overtime_secs += day.overtime_secs.max(0);
                    match day.status.as_deref() {
                        Some(s) => {
                            match s {
                                "P" | "WOP" | "PHP" => totals.present += 1,
                                "A" => totals.absent += 1,
                                "HD" => totals.half_days += 1,
                                "WO" => totals.week_offs += 1,
                                "PH" => totals.holidays += 1,
                                "L" => totals.leave += 1,
                                _ => {}
                            }
                            s.to_owned()
                        }
                        None if day.provisional => "*".to_owned(),
                        None => String::new(),
                    }
                })
                .collect();
            MusterRow { employee: e.clone(), cells, totals }
        })
        .collect();
    MusterRoll { title: title.to_owned(), days, rows: lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 2, day).unwrap()
    }

    fn day(emp: &str, n: u32, status: Option<&str>, late: i64, ot: i64) -> MusterDay {
        MusterDay {
            employee_id: emp.into(),
            date: d(n),
            status: status.map(Into::into),
            provisional: status.is_none(),
            late_by_secs: late,
            overtime_secs: ot,
        }
    }

    #[test]
    fn february_has_28_days_in_2026_and_invalid_months_are_none() {
        assert_eq!(month_days(2026, 2).unwrap().len(), 28);
        assert_eq!(month_days(2028, 2).unwrap().len(), 29);
        assert_eq!(month_days(2026, 13), None);
    }

    #[test]
    fn cells_and_totals() {
        let emps = vec![
            MusterEmployee { employee_id: "2".into(), name: "B".into(), department: "X".into() },
            MusterEmployee { employee_id: "1".into(), name: "A".into(), department: "X".into() },
        ];
        let rows = vec![
            day("1", 1, Some("WO"), 0, 0),
            day("1", 2, Some("P"), 300, 3600),
            day("1", 3, Some("HD"), 0, 0),
            day("1", 4, Some("A"), 0, 0),
            day("1", 5, Some("PHP"), 0, 1800),
            day("1", 6, None, 60, 0),
            day("1", 7, Some("L"), 0, 0),
            day("1", 8, Some("PH"), 0, 0),
            day("3", 1, Some("P"), 0, 0),
        ];
        let roll = build("t", month_days(2026, 2).unwrap(), &emps, &rows);
        assert_eq!(roll.rows.len(), 2);
        assert_eq!(roll.rows[0].employee.employee_id, "2");
        assert!(roll.rows[0].cells.iter().all(String::is_empty));
        assert_eq!(roll.rows[0].totals, Totals::default());
        let a = &roll.rows[1];
        assert_eq!(&a.cells[..9], &["WO", "P", "HD", "A", "PHP", "*", "L", "PH", ""]);
        assert_eq!(
            a.totals,
            Totals {
                present: 2,
                absent: 1,
                half_days: 1,
                week_offs: 1,
                holidays: 1,
                leave: 1,
                late: 2,
                overtime_secs: 5400
            }
        );
        assert!((a.totals.overtime_hours() - 1.5).abs() < 1e-9);
        let h = headers(&roll);
        assert_eq!(h.len(), 3 + 28 + 8);
        assert_eq!(h[3], "01");
        assert_eq!(h[30], "28");
        assert_eq!(h[38], "OT hours");
    }
}
