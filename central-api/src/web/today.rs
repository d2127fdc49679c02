//! Today's figures of one site for the dashboard, counted per employee in the site's zone (pure: profiles, rows and
//! the site's local "now" in, counts out).
//!
//! Most of today's rows do not exist yet (a day gets a row with its first punch; absentees get their A row only
//! when the day closes), so an employee without a row is classified from their shift: present = a row P, HD, WOP
//! or PHP, or an open day with an arrival; on leave = L; absent = A, or expected today (active, joined, with a
//! shift, not on a week-off or holiday) and past the shift's start plus the late grace without arriving; not yet
//! due = expected today but their shift has not started (plus grace) yet, such as the night crew at 01:00.
//!
//! An overnight shift belongs to the day it started: at 01:00 the crew that clocked in at 22:00 yesterday is shown
//! as at work on yesterday's night shift ([`NightShift`]), not as today's.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};

use crate::attendance::engine::{Shift, WeekOffRule};
use crate::store::attendance::masters::EmployeeProfile;
use crate::store::listing::AttendanceRow;

/// Today's figures of one site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TodayCounts {
    pub present: i64,
    pub absent: i64,
    /// Expected today, but their shift has not started (plus grace) yet.
    pub not_yet_due: i64,
    pub late: i64,
    pub leave: i64,
}

/// Yesterday's overnight shifts still in progress (dated by the day they started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NightShift {
    pub date: NaiveDate,
    /// Clocked in on yesterday's overnight shift, not out yet, and the day is still open.
    pub at_work: i64,
}

/// What decides whether an employee without a row is expected, and whether they are due yet.
#[derive(Debug, Clone, Copy)]
pub struct Today<'a> {
    /// The site's local date and time now.
    pub now: NaiveDateTime,
    pub shifts: &'a HashMap<String, Shift>,
    pub rules: &'a HashMap<String, WeekOffRule>,
    /// The site's default week-off rule (employees without their own).
    pub default_rule: Option<&'a WeekOffRule>,
    /// Today is a holiday (a day off) at the site.
    pub holiday: bool,
}

/// Today's counts and yesterday's night shift in progress, from the site's employees and their rows of today and
/// yesterday (see the module doc).
pub fn count_today(
    employees: &[EmployeeProfile],
    today_rows: &[AttendanceRow],
    yesterday_rows: &[AttendanceRow],
    t: &Today<'_>,
) -> (TodayCounts, NightShift) {
    let today = t.now.date();
    let yesterday = today.pred_opt().unwrap_or(today);
    let rows: HashMap<&str, &AttendanceRow> = today_rows.iter().map(|r| (r.employee_id.as_str(), r)).collect();
    let last_night: HashMap<&str, &AttendanceRow> =
        yesterday_rows.iter().map(|r| (r.employee_id.as_str(), r)).collect();
    let mut counts = TodayCounts::default();
    let mut night = NightShift { date: yesterday, at_work: 0 };
    for employee in employees {
        let shift = employee.shift_code.as_ref().and_then(|code| t.shifts.get(code));
        if let (Some(shift), Some(row)) = (shift, last_night.get(employee.employee_id.as_str())) {
            if shift.is_overnight() && row.provisional && row.in_time.is_some() && row.out_time.is_none() {
                night.at_work += 1;
            }
        }
        if let Some(row) = rows.get(employee.employee_id.as_str()) {
            if row.late_by_secs > 0 {
                counts.late += 1;
            }
            match row.status.as_deref() {
                Some("P" | "HD" | "WOP" | "PHP") => counts.present += 1,
                Some("L") => counts.leave += 1,
                Some("A") => counts.absent += 1,
                Some(_) => {}
                None if row.in_time.is_some() => counts.present += 1,
                None => {}
            }
            if row.status.is_some() || row.in_time.is_some() {
                continue;
            }
        }
        let employed = employee.active
            && employee.date_of_joining.is_none_or(|d| d <= today)
            && employee.date_of_leaving.is_none_or(|d| d >= today);
        let rule = match &employee.week_off_rule {
            Some(code) => t.rules.get(code),
            None => t.default_rule,
        };
        let week_off = rule.is_some_and(|rule| rule.is_week_off(today));
        let Some(shift) = shift else { continue };
        if !employed || week_off || t.holiday {
            continue;
        }
        if t.now < today.and_time(shift.start) + shift.grace_late_in {
            counts.not_yet_due += 1;
        } else {
            counts.absent += 1;
        }
    }
    (counts, night)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveTime, Weekday};

    fn employee(id: &str, shift: &str) -> EmployeeProfile {
        EmployeeProfile {
            employee_id: id.into(),
            name: id.into(),
            department: String::new(),
            designation: String::new(),
            site_id: Some("A".into()),
            shift_code: Some(shift.into()),
            week_off_rule: Some("SUN".into()),
            date_of_joining: None,
            date_of_leaving: None,
            active: true,
            card_number: None,
            device_privilege: None,
        }
    }

    fn at(date: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        date.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
    }

    fn row(
        id: &str,
        date: NaiveDate,
        status: Option<&str>,
        arrived: Option<NaiveDateTime>,
        late: i64,
    ) -> AttendanceRow {
        AttendanceRow {
            employee_id: id.into(),
            name: id.into(),
            site_id: Some("A".into()),
            work_date: date,
            shift_code: "GEN".into(),
            day_kind: "working".into(),
            status: status.map(str::to_owned),
            provisional: status.is_none(),
            in_time: arrived,
            late_by_secs: late,
            ..AttendanceRow::default()
        }
    }

    #[test]
    fn absent_only_after_the_start_and_night_shifts_under_their_day() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
        let sunday = monday - Duration::days(1);
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default();
        let mut general = Shift::new("GEN", t(9), t(18));
        general.grace_late_in = Duration::minutes(10);
        let night = Shift::new("NIGHT", t(22), t(6));
        let shifts: HashMap<String, Shift> = [("GEN".to_owned(), general), ("NIGHT".to_owned(), night)].into();
        let rules: HashMap<String, WeekOffRule> = [("SUN".to_owned(), WeekOffRule::weekly(&[Weekday::Sat]))].into();
        let mut gone = employee("gone", "GEN");
        gone.date_of_leaving = Some(monday - Duration::days(1));
        let mut no_shift = employee("noshift", "GEN");
        no_shift.shift_code = None;
        let employees = vec![
            employee("p", "GEN"),
            employee("open", "GEN"),
            employee("late", "GEN"),
            employee("leave", "GEN"),
            employee("a", "GEN"),
            employee("missing", "GEN"),
            employee("n1", "NIGHT"),
            employee("n2", "NIGHT"),
            employee("n3", "NIGHT"),
            gone,
            no_shift,
        ];
        let rows = vec![
            row("p", monday, Some("P"), Some(at(monday, 9, 0)), 0),
            row("open", monday, None, Some(at(monday, 9, 0)), 0),
            row("late", monday, Some("HD"), Some(at(monday, 9, 30)), 1800),
            row("leave", monday, Some("L"), None, 0),
            row("a", monday, Some("A"), None, 0),
        ];
        // Last night: n1 and n2 clocked in at 22:00 and are still at work; n3 already left.
        let mut left = row("n3", sunday, None, Some(at(sunday, 22, 0)), 0);
        left.out_time = Some(at(monday, 5, 0));
        let last_night = vec![
            row("n1", sunday, None, Some(at(sunday, 22, 0)), 0),
            row("n2", sunday, None, Some(at(sunday, 22, 5)), 300),
            left,
        ];
        let today = |now: NaiveDateTime, holiday: bool| Today {
            now,
            shifts: &shifts,
            rules: &rules,
            default_rule: None,
            holiday,
        };
        // 01:00: "missing" is not due before 09:10, the night crew not before 22:00.
        let (counts, night) = count_today(&employees, &rows, &last_night, &today(at(monday, 1, 0), false));
        assert_eq!(counts, TodayCounts { present: 3, absent: 1, not_yet_due: 4, late: 1, leave: 1 });
        assert_eq!(night, NightShift { date: sunday, at_work: 2 });
        // 09:10 is still on time; 09:11 is not.
        let (counts, _) = count_today(&employees, &rows, &last_night, &today(at(monday, 9, 9), false));
        assert_eq!((counts.absent, counts.not_yet_due), (1, 4));
        let (counts, _) = count_today(&employees, &rows, &last_night, &today(at(monday, 9, 11), false));
        assert_eq!((counts.absent, counts.not_yet_due), (2, 3));
        let (counts, _) = count_today(&employees, &rows, &[], &today(at(monday, 23, 0), false));
        assert_eq!((counts.absent, counts.not_yet_due), (5, 0));
        // A holiday: nobody without a row is absent or due.
        let (counts, _) = count_today(&employees, &rows, &[], &today(at(monday, 23, 0), true));
        assert_eq!((counts.absent, counts.not_yet_due), (1, 0));
        // Saturday is these employees' week-off.
        let saturday = monday + Duration::days(5);
        let (counts, _) = count_today(&employees, &[], &[], &today(at(saturday, 23, 0), false));
        assert_eq!(counts, TodayCounts::default());
    }
}
