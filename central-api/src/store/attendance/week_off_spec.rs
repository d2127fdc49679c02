//! The stored form of a week-off rule: comma-separated weekdays (`sun`) and nth weekdays (`sat#2`, `fri#last`).
//! `"sun,sat#2,sat#4"` is every Sunday plus the 2nd and 4th Saturday; the empty string is no weekly off.

use chrono::Weekday;

use crate::attendance::engine::{NthWeekday, Occurrence, WeekOffRule};
use crate::store::StoreError;

const NAMES: [(Weekday, &str); 7] = [
    (Weekday::Mon, "mon"),
    (Weekday::Tue, "tue"),
    (Weekday::Wed, "wed"),
    (Weekday::Thu, "thu"),
    (Weekday::Fri, "fri"),
    (Weekday::Sat, "sat"),
    (Weekday::Sun, "sun"),
];

fn weekday(name: &str) -> Option<Weekday> {
    NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(d, _)| *d)
}

fn name(day: Weekday) -> &'static str {
    NAMES.iter().find(|(d, _)| *d == day).map_or("sun", |(_, n)| n)
}

/// Parses a week-off spec.
///
/// # Errors
/// [`StoreError::Invalid`] naming the part that is not a weekday, `weekday#1..5` or `weekday#last`.
pub fn parse_week_off(spec: &str) -> Result<WeekOffRule, StoreError> {
    let mut rule = WeekOffRule::default();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            StoreError::Invalid(format!(
                "week-off {part:?} in {spec:?} is not a weekday (mon..sun), weekday#1..5 or weekday#last"
            ))
        };
        match part.split_once('#') {
            None => rule.weekdays.push(weekday(part).ok_or_else(bad)?),
            Some((day, which)) => {
                let weekday = weekday(day).ok_or_else(bad)?;
                let occurrence = match which {
                    "last" => Occurrence::Last,
                    n => match n.parse::<u8>() {
                        Ok(n @ 1..=5) => Occurrence::Nth(n),
                        _ => return Err(bad()),
                    },
                };
                rule.nth_weekdays.push(NthWeekday { weekday, occurrence });
            }
        }
    }
    Ok(rule)
}

/// The spec of `rule`; [`parse_week_off`] reads it back as the same rule.
pub fn format_week_off(rule: &WeekOffRule) -> String {
    let mut parts: Vec<String> = rule.weekdays.iter().map(|d| name(*d).to_owned()).collect();
    parts.extend(rule.nth_weekdays.iter().map(|n| match n.occurrence {
        Occurrence::Nth(k) => format!("{}#{k}", name(n.weekday)),
        Occurrence::Last => format!("{}#last", name(n.weekday)),
    }));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_parts_are_named() {
        let rule = parse_week_off("sun, sat#2,SAT#4,fri#last").expect("valid spec");
        assert_eq!(
            rule,
            WeekOffRule::weekly(&[Weekday::Sun])
                .and_nth(Weekday::Sat, 2)
                .and_nth(Weekday::Sat, 4)
                .and_last(Weekday::Fri)
        );
        assert_eq!(parse_week_off(&format_week_off(&rule)).expect("round trip"), rule);
        assert_eq!(parse_week_off("").expect("empty"), WeekOffRule::default());
        for bad in ["sunday", "sat#6", "sat#0", "x#1", "sat#"] {
            let err = parse_week_off(bad).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
