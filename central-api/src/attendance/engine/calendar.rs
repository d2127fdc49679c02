//! The calendar side of a day: holidays for a site, and what kind of day a date is for one employee.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use protocol::SiteId;

use super::model::{Holiday, HolidayKind, SiteSettings};
use super::week_off::WeekOffRule;

/// One site's holidays (its own and the global ones) and settings, shared by all its employees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCalendar {
    site: SiteId,
    holidays: BTreeMap<NaiveDate, Holiday>,
    settings: SiteSettings,
}

impl SiteCalendar {
    /// Keeps the holidays that apply to `site` (its own and global ones), one per date.
    ///
    /// When several apply on the same date, a day off beats an optional holiday, a site's own entry beats a global
    /// one, then the name decides, so the result does not depend on the order of `holidays`.
    pub fn new(site: SiteId, holidays: impl IntoIterator<Item = Holiday>, settings: SiteSettings) -> Self {
        let mut by_date: BTreeMap<NaiveDate, Holiday> = BTreeMap::new();
        for holiday in holidays {
            if holiday.site.as_ref().is_some_and(|s| *s != site) {
                continue;
            }
            let rank = |h: &Holiday| (!h.kind.is_day_off(), h.site.is_none(), h.name.clone());
            match by_date.get(&holiday.date) {
                Some(kept) if rank(kept) <= rank(&holiday) => {}
                _ => {
                    by_date.insert(holiday.date, holiday);
                }
            }
        }
        Self { site, holidays: by_date, settings }
    }

    /// The site.
    pub fn site(&self) -> &SiteId {
        &self.site
    }

    /// The site's settings.
    pub fn settings(&self) -> SiteSettings {
        self.settings
    }

    /// The holiday on `date`, if any (including optional ones).
    pub fn holiday(&self, date: NaiveDate) -> Option<&Holiday> {
        self.holidays.get(&date)
    }
}

/// What a date is for one employee before any punch is looked at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// Work is expected.
    Working,
    /// A weekly off, with a description such as "Sunday" or "2nd Saturday".
    WeekOff { label: String },
    /// A public or company holiday.
    Holiday { name: String, kind: HolidayKind },
}

impl DayKind {
    /// Classifies `date`: a holiday that is a day off wins over a weekly off (it keeps its holiday status on a
    /// Sunday); optional holidays are working days.
    pub fn of(date: NaiveDate, week_off: &WeekOffRule, site: &SiteCalendar) -> Self {
        if let Some(holiday) = site.holiday(date).filter(|h| h.kind.is_day_off()) {
            return Self::Holiday { name: holiday.name.clone(), kind: holiday.kind };
        }
        if week_off.is_week_off(date) {
            return Self::WeekOff { label: week_off.describe(date) };
        }
        Self::Working
    }

    /// Whether work is expected.
    pub fn is_working(&self) -> bool {
        matches!(self, Self::Working)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).expect("valid date")
    }

    fn holiday(day: u32, name: &str, kind: HolidayKind, site: Option<&str>) -> Holiday {
        Holiday { date: d(day), name: name.to_owned(), kind, site: site.map(|s| s.parse().expect("valid site")) }
    }

    #[test]
    fn site_scoped_and_global_holidays() {
        let site: SiteId = "plant-1".parse().expect("valid site");
        let holidays = vec![
            holiday(9, "Diwali", HolidayKind::Public, None),
            holiday(9, "Plant Diwali", HolidayKind::Company, Some("plant-1")),
            holiday(10, "Other plant day", HolidayKind::Company, Some("plant-2")),
            holiday(11, "Optional", HolidayKind::Optional, None),
            holiday(12, "Optional first", HolidayKind::Optional, Some("plant-1")),
            holiday(12, "Real", HolidayKind::Public, None),
        ];
        let forward = SiteCalendar::new(site.clone(), holidays.clone(), SiteSettings::default());
        let backward = SiteCalendar::new(site, holidays.into_iter().rev(), SiteSettings::default());
        assert_eq!(forward, backward);
        assert_eq!(forward.holiday(d(9)).map(|h| h.name.as_str()), Some("Plant Diwali"));
        assert_eq!(forward.holiday(d(10)), None);
        assert_eq!(forward.holiday(d(12)).map(|h| h.name.as_str()), Some("Real"));

        let rule = WeekOffRule::weekly(&[Weekday::Sun]);
        assert_eq!(DayKind::of(d(11), &rule, &forward), DayKind::Working);
        assert_eq!(DayKind::of(d(10), &rule, &forward), DayKind::Working);
        assert_eq!(DayKind::of(d(15), &rule, &forward), DayKind::WeekOff { label: "Sunday".into() });
        assert_eq!(
            DayKind::of(d(9), &rule, &forward),
            DayKind::Holiday { name: "Plant Diwali".into(), kind: HolidayKind::Company }
        );
    }

    #[test]
    fn holiday_on_a_week_off_stays_a_holiday() {
        let site: SiteId = "plant-1".parse().expect("valid site");
        let cal = SiteCalendar::new(
            site,
            vec![holiday(15, "Sunday fest", HolidayKind::Public, None)],
            SiteSettings::default(),
        );
        let rule = WeekOffRule::weekly(&[Weekday::Sun]);
        assert!(matches!(DayKind::of(d(15), &rule, &cal), DayKind::Holiday { .. }));
    }
}
