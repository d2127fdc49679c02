//! Builders for the engine's inputs: one employee in a small world, punches written as `"2026-11-05 09:00"`.

use central_api::attendance::engine::{
    compute_range, Approval, AttendanceDay, AttendancePunch, Employee, EmployeeContext, Holiday, HolidayKind, Leave,
    SandwichSetting, Shift, SiteCalendar, SiteSettings, WeekOffRule,
};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use protocol::{Direction, PunchSource, PunchState};

pub const PIN: &str = "1001";
pub const SITE: &str = "plant-1";

/// A date: `"2026-11-05"`.
pub fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad test date {text:?}: {e}"))
}

/// A local time: `"2026-11-05 09:00"` or `"2026-11-05 09:00:30"`.
pub fn t(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("bad test time {text:?}: {e}"))
}

/// A time of day: `"09:00"`.
pub fn hm(text: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").unwrap_or_else(|e| panic!("bad test time of day {text:?}: {e}"))
}

/// Far after every test date: every day is closed.
pub fn later() -> NaiveDateTime {
    t("2027-06-01 00:00")
}

/// A device punch with state check-in on a BOTH reader.
pub fn p(text: &str) -> AttendancePunch {
    with_state(text, 0, Direction::Both)
}

/// Several device punches.
pub fn ps(texts: &[&str]) -> Vec<AttendancePunch> {
    texts.iter().map(|x| p(x)).collect()
}

/// A device punch with a device state code and a reader direction.
pub fn with_state(text: &str, state: u8, direction: Direction) -> AttendancePunch {
    AttendancePunch::from_device(
        PIN.parse().expect("valid pin"),
        t(text),
        PunchState::from_code(state),
        direction,
        "DEV-1".parse().expect("valid serial"),
        PunchSource::ZkPull,
    )
}

/// A manual log.
pub fn manual(text: &str, approval: Approval) -> AttendancePunch {
    AttendancePunch::manual(PIN.parse().expect("valid pin"), t(text), PunchState::CheckIn, approval)
}

/// A holiday for every site.
pub fn holiday(date: &str, name: &str) -> Holiday {
    Holiday { date: d(date), name: name.to_owned(), kind: HolidayKind::Public, site: None }
}

/// An approved leave.
pub fn leave(from: &str, to: &str, paid: bool) -> Leave {
    Leave {
        employee_id: PIN.parse().expect("valid pin"),
        from: d(from),
        to: d(to),
        paid,
        approval: Approval::Approved,
        kind: if paid { "casual".into() } else { "unpaid".into() },
    }
}

/// One employee, their shift, their site's calendar and their leave.
#[derive(Debug, Clone)]
pub struct World {
    pub employee: Employee,
    pub shift: Shift,
    pub holidays: Vec<Holiday>,
    pub settings: SiteSettings,
    pub leaves: Vec<Leave>,
    pub site: SiteCalendar,
}

impl World {
    /// General shift 09:00-18:00, Sundays off, no holidays, sandwich off.
    pub fn day_shift() -> Self {
        Self::with_shift(Shift::new("GEN", hm("09:00"), hm("18:00")))
    }

    /// Night shift 22:00-06:00, Sundays off.
    pub fn night_shift() -> Self {
        Self::with_shift(Shift::new("NIGHT", hm("22:00"), hm("06:00")))
    }

    /// `shift`, Sundays off.
    pub fn with_shift(shift: Shift) -> Self {
        let employee = Employee {
            employee_id: PIN.parse().expect("valid pin"),
            name: "Asha".into(),
            department: "Assembly".into(),
            designation: "Operator".into(),
            site: SITE.parse().expect("valid site"),
            shift: shift.code.clone(),
            date_of_joining: None,
            date_of_leaving: None,
            week_off: WeekOffRule::weekly(&[Weekday::Sun]),
        };
        let site = SiteCalendar::new(employee.site.clone(), Vec::new(), SiteSettings::default());
        Self { employee, shift, holidays: Vec::new(), settings: SiteSettings::default(), leaves: Vec::new(), site }
    }

    /// Changes the shift with `edit`.
    pub fn shift(mut self, edit: impl FnOnce(&mut Shift)) -> Self {
        edit(&mut self.shift);
        self
    }

    /// Changes the employee with `edit`.
    pub fn employee(mut self, edit: impl FnOnce(&mut Employee)) -> Self {
        edit(&mut self.employee);
        self
    }

    /// Adds holidays.
    pub fn holidays(mut self, holidays: Vec<Holiday>) -> Self {
        self.holidays.extend(holidays);
        self.rebuild()
    }

    /// Sets the sandwich rule.
    pub fn sandwich(mut self, setting: SandwichSetting) -> Self {
        self.settings.sandwich = setting;
        self.rebuild()
    }

    /// Adds leave.
    pub fn leaves(mut self, leaves: Vec<Leave>) -> Self {
        self.leaves.extend(leaves);
        self
    }

    fn rebuild(mut self) -> Self {
        self.site = SiteCalendar::new(self.employee.site.clone(), self.holidays.clone(), self.settings);
        self
    }

    /// The engine's context.
    pub fn ctx(&self) -> EmployeeContext<'_> {
        EmployeeContext::new(&self.employee, &self.shift, &self.site, &self.leaves).expect("valid test world")
    }

    /// The rows of `from..=to` as of `now`.
    pub fn range_at(
        &self,
        punches: &[AttendancePunch],
        from: &str,
        to: &str,
        now: NaiveDateTime,
    ) -> Vec<AttendanceDay> {
        compute_range(&self.ctx(), punches, d(from), d(to), now).expect("range computes")
    }

    /// The rows of `from..=to`, every day closed.
    pub fn range(&self, punches: &[AttendancePunch], from: &str, to: &str) -> Vec<AttendanceDay> {
        self.range_at(punches, from, to, later())
    }

    /// The row of `date` as of `now`.
    pub fn day_at(&self, punches: &[AttendancePunch], date: &str, now: NaiveDateTime) -> AttendanceDay {
        let mut rows = self.range_at(punches, date, date, now);
        assert_eq!(rows.len(), 1, "expected exactly one row for {date}");
        rows.remove(0)
    }

    /// The closed row of `date`.
    pub fn day(&self, punches: &[AttendancePunch], date: &str) -> AttendanceDay {
        self.day_at(punches, date, later())
    }
}

/// A status code, or `-` for a pending day.
pub fn code(row: &AttendanceDay) -> &'static str {
    row.status.map_or("-", |s| s.code())
}

/// Minutes of a duration, for compact tables.
pub fn mins(duration: chrono::Duration) -> i64 {
    duration.num_minutes()
}

/// `"09:00"`-style rendering of an optional time, `"--"` for none.
pub fn clock(time: Option<NaiveDateTime>) -> String {
    time.map_or_else(|| "--".to_owned(), |x| x.format("%d %H:%M").to_string())
}
