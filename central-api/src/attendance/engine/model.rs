//! The engine's inputs as plain values: punches (device and manual), employees, holidays, leave and site settings.
//!
//! The job layer builds these from database rows; nothing here knows where they came from.

use chrono::{NaiveDate, NaiveDateTime};
use protocol::{DeviceSerial, Direction, Pin, PunchSource, PunchState, SiteId};

use super::week_off::WeekOffRule;

/// Whether an administrator's request (a manual log, a leave) was approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Approval {
    Pending,
    Approved,
    Rejected,
}

/// Where a punch came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PunchOrigin {
    /// Read from a device.
    Device { serial: DeviceSerial, source: PunchSource },
    /// Entered by an administrator (a ManualLog). Only approved ones count; pending and rejected ones are ignored.
    Manual { approval: Approval },
}

/// One punch as the engine sees it: an AllLogs row or a manual log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttendancePunch {
    /// The employee (the PIN on the device).
    pub employee_id: Pin,
    /// Local wall-clock time at the site. Attendance is computed on this, never on UTC.
    pub local_time: NaiveDateTime,
    /// The state recorded with the punch; only [`super::PairingMode::ByState`] looks at it.
    pub state: PunchState,
    /// What the device was configured to mean; only [`super::PairingMode::ByState`] looks at it.
    pub direction: Direction,
    /// Device or manual log.
    pub origin: PunchOrigin,
}

impl AttendancePunch {
    /// A punch read from `serial`.
    pub fn from_device(
        employee_id: Pin,
        local_time: NaiveDateTime,
        state: PunchState,
        direction: Direction,
        serial: DeviceSerial,
        source: PunchSource,
    ) -> Self {
        Self { employee_id, local_time, state, direction, origin: PunchOrigin::Device { serial, source } }
    }

    /// A manual log entered by an administrator.
    pub fn manual(employee_id: Pin, local_time: NaiveDateTime, state: PunchState, approval: Approval) -> Self {
        Self { employee_id, local_time, state, direction: Direction::Both, origin: PunchOrigin::Manual { approval } }
    }

    /// Whether the engine takes this punch into account (a manual log must be approved).
    pub fn counts(&self) -> bool {
        !matches!(self.origin, PunchOrigin::Manual { approval } if approval != Approval::Approved)
    }

    /// Whether an administrator entered it.
    pub fn is_manual(&self) -> bool {
        matches!(self.origin, PunchOrigin::Manual { .. })
    }

    /// The path that brought the punch ([`PunchSource::Manual`] for manual logs).
    pub fn source(&self) -> PunchSource {
        match &self.origin {
            PunchOrigin::Device { source, .. } => *source,
            PunchOrigin::Manual { .. } => PunchSource::Manual,
        }
    }
}

/// An employee as the engine needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// The PIN the devices know them by.
    pub employee_id: Pin,
    pub name: String,
    pub department: String,
    pub designation: String,
    /// The site whose holidays and settings apply.
    pub site: SiteId,
    /// The code of the employee's shift ([`super::Shift::code`]).
    pub shift: String,
    /// No attendance row exists before this date; `None`: employed since before any punch.
    pub date_of_joining: Option<NaiveDate>,
    /// No attendance row exists after this date; `None`: still employed.
    pub date_of_leaving: Option<NaiveDate>,
    /// Which days are weekly offs.
    pub week_off: WeekOffRule,
}

impl Employee {
    /// Whether `date` lies inside the employment (joining and leaving dates included).
    pub fn is_employed_on(&self, date: NaiveDate) -> bool {
        self.date_of_joining.is_none_or(|j| date >= j) && self.date_of_leaving.is_none_or(|l| date <= l)
    }
}

/// What kind of holiday a [`Holiday`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HolidayKind {
    /// A public (gazetted, national or festival) holiday: a paid day off, status PH.
    Public,
    /// A holiday the company declares (foundation day, plant shutdown): treated exactly like [`Self::Public`].
    Company,
    /// An optional (restricted) holiday: listed, but a working day unless the employee takes leave for it.
    Optional,
}

impl HolidayKind {
    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Company => "company",
            Self::Optional => "optional",
        }
    }

    /// Whether the day is off for everyone it applies to.
    pub fn is_day_off(self) -> bool {
        !matches!(self, Self::Optional)
    }
}

/// One HolidayList entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
    pub kind: HolidayKind,
    /// The site it applies to; `None`: every site.
    pub site: Option<SiteId>,
}

/// An approved (or pending, or rejected) time-off request covering whole days.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Leave {
    pub employee_id: Pin,
    /// First day off.
    pub from: NaiveDate,
    /// Last day off (inclusive).
    pub to: NaiveDate,
    /// Paid leave counts as a paid day; unpaid leave counts like an absence for the sandwich rule.
    pub paid: bool,
    pub approval: Approval,
    /// What kind of leave (casual, sick, ...), shown in the explanation.
    pub kind: String,
}

impl Leave {
    /// Whether this leave makes `date` a day off.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.approval == Approval::Approved && self.from <= date && date <= self.to
    }
}

/// Which days the sandwich rule may turn into absences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SandwichSetting {
    /// Never.
    #[default]
    Off,
    /// Runs of week-offs.
    WeekOffs,
    /// Runs of week-offs and public/company holidays.
    WeekOffsAndHolidays,
}

impl SandwichSetting {
    /// The name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::WeekOffs => "week_offs",
            Self::WeekOffsAndHolidays => "week_offs_and_holidays",
        }
    }

    /// Parses a name produced by [`Self::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Off, Self::WeekOffs, Self::WeekOffsAndHolidays].into_iter().find(|s| s.as_str() == name)
    }
}

/// Per-site attendance settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SiteSettings {
    pub sandwich: SandwichSetting,
}
