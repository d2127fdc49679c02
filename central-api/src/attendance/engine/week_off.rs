//! Weekly offs: fixed weekdays (every Sunday) and nth-weekday rules (2nd and 4th Saturday, last Friday).

use chrono::{Datelike, NaiveDate, Weekday};

/// Which occurrence of a weekday in its month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occurrence {
    /// The 1st to 5th occurrence (a 5th one exists in some months only).
    Nth(u8),
    /// The last occurrence in the month, whether it is the 4th or the 5th.
    Last,
}

/// A weekday's occurrence in the month, such as "2nd Saturday".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NthWeekday {
    pub weekday: Weekday,
    pub occurrence: Occurrence,
}

/// An employee's weekly offs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WeekOffRule {
    /// Weekdays off every week.
    pub weekdays: Vec<Weekday>,
    /// Weekdays off only in some weeks of the month.
    pub nth_weekdays: Vec<NthWeekday>,
}

impl WeekOffRule {
    /// Every week on the given weekdays.
    pub fn weekly(weekdays: &[Weekday]) -> Self {
        Self { weekdays: weekdays.to_vec(), nth_weekdays: Vec::new() }
    }

    /// Adds "the `nth` `weekday` of every month" (1-5).
    pub fn and_nth(mut self, weekday: Weekday, nth: u8) -> Self {
        self.nth_weekdays.push(NthWeekday { weekday, occurrence: Occurrence::Nth(nth) });
        self
    }

    /// Adds "the last `weekday` of every month".
    pub fn and_last(mut self, weekday: Weekday) -> Self {
        self.nth_weekdays.push(NthWeekday { weekday, occurrence: Occurrence::Last });
        self
    }

    /// Whether `date` is a weekly off under this rule.
    pub fn is_week_off(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday();
        if self.weekdays.contains(&weekday) {
            return true;
        }
        self.nth_weekdays.iter().any(|rule| rule.weekday == weekday && rule.occurrence.matches(date))
    }

    /// A short description for explanations, such as "Sunday" or "2nd Saturday".
    pub fn describe(&self, date: NaiveDate) -> String {
        let weekday = date.weekday();
        if self.weekdays.contains(&weekday) {
            return weekday_name(weekday).to_owned();
        }
        match self.nth_weekdays.iter().find(|r| r.weekday == weekday && r.occurrence.matches(date)) {
            Some(NthWeekday { occurrence: Occurrence::Last, .. }) => format!("last {}", weekday_name(weekday)),
            Some(NthWeekday { occurrence: Occurrence::Nth(n), .. }) => {
                format!("{} {}", ordinal(*n), weekday_name(weekday))
            }
            None => weekday_name(weekday).to_owned(),
        }
    }
}

impl Occurrence {
    fn matches(self, date: NaiveDate) -> bool {
        // The occurrence number of a weekday is which 7-day block of the month it falls in.
        let nth = (date.day0() / 7) + 1;
        match self {
            Self::Nth(n) => u32::from(n) == nth,
            Self::Last => date.checked_add_days(chrono::Days::new(7)).is_none_or(|next| next.month() != date.month()),
        }
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn ordinal(n: u8) -> String {
    let suffix = match n {
        1 => "st",
        2 => "nd",
        3 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn second_and_fourth_saturday() {
        // November 2026: Saturdays are the 7th, 14th, 21st and 28th.
        let rule = WeekOffRule::weekly(&[Weekday::Sun]).and_nth(Weekday::Sat, 2).and_nth(Weekday::Sat, 4);
        let offs: Vec<u32> =
            (1..=30).map(|day| d(2026, 11, day)).filter(|x| rule.is_week_off(*x)).map(|x| x.day()).collect();
        assert_eq!(offs, vec![1, 8, 14, 15, 22, 28, 29]);
        assert_eq!(rule.describe(d(2026, 11, 14)), "2nd Saturday");
        assert_eq!(rule.describe(d(2026, 11, 15)), "Sunday");
    }

    #[test]
    fn fifth_and_last_occurrences() {
        // January 2026 has five Saturdays (3, 10, 17, 24, 31); February 2026 has four (7, 14, 21, 28).
        let fifth = WeekOffRule::default().and_nth(Weekday::Sat, 5);
        assert!(fifth.is_week_off(d(2026, 1, 31)));
        assert!(!(1..=28).any(|day| fifth.is_week_off(d(2026, 2, day))));
        let last = WeekOffRule::default().and_last(Weekday::Sat);
        assert!(last.is_week_off(d(2026, 1, 31)));
        assert!(!last.is_week_off(d(2026, 1, 24)));
        assert!(last.is_week_off(d(2026, 2, 28)));
        assert_eq!(last.describe(d(2026, 2, 28)), "last Saturday");
    }
}
