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
    /// With the ManDays option, for an employee with ManDays days: one line per slot used in the month (cells
    /// `HH:MM-HH:MM`) and a line of the day's ManDays hours (`H:MM`).
    pub slot_lines: Vec<SlotLine>,
}

/// A line under an employee's row: a label (shown in the department column) and one cell per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotLine {
    pub label: String,
    pub cells: Vec<String>,
}

/// An employee-day's ManDays slots (in, out) and total work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MusterSlots {
    pub employee_id: String,
    pub date: NaiveDate,
    pub slots: Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)>,
    pub total_secs: i64,
}

/// Adds the ManDays lines (see [`MusterRow::slot_lines`]) from `slots` (any order; others ignored).
pub fn add_man_days(roll: &mut MusterRoll, slots: &[MusterSlots]) {
    let index: HashMap<(&str, NaiveDate), &MusterSlots> =
        slots.iter().map(|s| ((s.employee_id.as_str(), s.date), s)).collect();
    for row in &mut roll.rows {
        let id = row.employee.employee_id.as_str();
        let days: Vec<Option<&&MusterSlots>> =
            roll.days.iter().map(|d| index.get(&(id, *d)).filter(|s| !s.slots.is_empty())).collect();
        let most = days.iter().flatten().map(|s| s.slots.len()).max().unwrap_or(0);
        if days.iter().all(Option::is_none) {
            continue;
        }
        for n in 0..most {
            let cells = days
                .iter()
                .map(|s| {
                    s.and_then(|s| s.slots.get(n))
                        .map(|(i, o)| format!("{}-{}", i.format("%H:%M"), o.format("%H:%M")))
                        .unwrap_or_default()
                })
                .collect();
            row.slot_lines.push(SlotLine { label: format!("ManDays slot {}", n + 1), cells });
        }
        let hours = days
            .iter()
            .map(|s| {
                s.map(|s| format!("{}:{:02}", s.total_secs / 3600, (s.total_secs % 3600) / 60)).unwrap_or_default()
            })
            .collect();
        row.slot_lines.push(SlotLine { label: "ManDays hours".to_owned(), cells: hours });
    }
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
            MusterRow { employee: e.clone(), cells, totals, slot_lines: Vec::new() }
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

    #[test]
    fn man_days_lines_follow_the_employee() {
        let emps = vec![
            MusterEmployee { employee_id: "1".into(), name: "A".into(), department: "X".into() },
            MusterEmployee { employee_id: "2".into(), name: "B".into(), department: "X".into() },
        ];
        let mut roll = build("t", month_days(2026, 2).unwrap(), &emps, &[day("1", 2, Some("P"), 0, 0)]);
        let at = |day: u32, h: u32, m: u32| d(day).and_hms_opt(h, m, 0).unwrap();
        let slots = vec![
            MusterSlots {
                employee_id: "1".into(),
                date: d(2),
                slots: vec![(at(2, 8, 0), at(2, 10, 0)), (at(2, 10, 30), at(2, 17, 15))],
                total_secs: 33_300,
            },
            MusterSlots {
                employee_id: "1".into(),
                date: d(3),
                slots: vec![(at(3, 9, 0), at(3, 9, 45))],
                total_secs: 2_700,
            },
        ];
        add_man_days(&mut roll, &slots);
        let lines = &roll.rows[0].slot_lines;
        assert_eq!(
            lines.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(),
            ["ManDays slot 1", "ManDays slot 2", "ManDays hours"]
        );
        assert_eq!(&lines[0].cells[..3], ["", "08:00-10:00", "09:00-09:45"]);
        assert_eq!(&lines[1].cells[..3], ["", "10:30-17:15", ""]);
        assert_eq!(&lines[2].cells[..4], ["", "9:15", "0:45", ""], "a day without slots shows nothing");
        assert!(roll.rows[1].slot_lines.is_empty(), "no ManDays slots, no lines");
    }
}
