//! `GET /dashboard`: today at a glance for every site the caller sees (present, absent, late, on leave, counted in
//! the site's own time zone) and a chart of the last 30 days.
//!
//! Today's figures are counted per employee, because most of today's rows do not exist yet (a day gets a row when
//! its first punch arrives, and absentees get their A row only when the day closes): present = a row P, HD, WOP or
//! PHP, or an open day with an arrival; on leave = L; absent = A, or an employee of the site who is expected today
//! (active, joined, has a shift, not on a week-off or holiday) and has not arrived; late = arrived late. Past days
//! in the chart are counted from the stored rows.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{Duration, NaiveDate, Utc};
use maud::{html, Markup};

use super::auth::WebCaller;
use super::chart::{attendance_chart, DayFigures};
use super::error::WebError;
use super::layout::page;
use crate::attendance::engine::{HolidayKind, WeekOffRule};
use crate::http::api::reports::all_rows;
use crate::http::AppState;
use crate::store::attendance::masters::{EmployeeProfile, HolidayRecord};
use crate::store::listing::{AttendanceFilter, AttendanceRow, SiteInfo};

/// Days in the chart.
pub const CHART_DAYS: i64 = 30;

/// Today's figures of one site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TodayCounts {
    pub present: i64,
    pub absent: i64,
    pub late: i64,
    pub leave: i64,
}

/// The site's local date now.
pub fn site_today(time_zone: &str) -> NaiveDate {
    match time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Utc::now().with_timezone(&tz).date_naive(),
        Err(_) => Utc::now().date_naive(),
    }
}

fn is_day_off(holidays: &[HolidayRecord], site: &str, date: NaiveDate) -> bool {
    holidays.iter().any(|h| {
        h.holiday.date == date
            && h.holiday.kind != HolidayKind::Optional
            && h.holiday.site.as_ref().is_none_or(|s| s.as_str() == site)
    })
}

async fn today_counts(
    state: &AppState,
    ctx: &super::auth::WebContext,
    site: &SiteInfo,
    today: NaiveDate,
    holidays: &[HolidayRecord],
    rules: &HashMap<String, WeekOffRule>,
) -> Result<TodayCounts, WebError> {
    let filter = AttendanceFilter {
        scope: ctx.caller.scope().map(str::to_owned),
        from: Some(today),
        to: Some(today),
        site: Some(site.site_id.clone()),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let rows = all_rows(state, filter).await?;
    let employees = state.store.employee_profiles(None, Some(&site.site_id)).await?;
    let holiday = is_day_off(holidays, &site.site_id, today);
    Ok(count_today(&employees, &rows, rules, holiday, today))
}

/// Today's figures from the site's employees and today's rows (see the module doc).
pub fn count_today(
    employees: &[EmployeeProfile],
    rows: &[AttendanceRow],
    rules: &HashMap<String, WeekOffRule>,
    holiday: bool,
    today: NaiveDate,
) -> TodayCounts {
    let rows: HashMap<&str, &AttendanceRow> = rows.iter().map(|r| (r.employee_id.as_str(), r)).collect();
    let mut counts = TodayCounts::default();
    for employee in employees {
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
        let week_off = employee
            .week_off_rule
            .as_ref()
            .and_then(|code| rules.get(code))
            .is_some_and(|rule| rule.is_week_off(today));
        if employed && employee.shift_code.is_some() && !week_off && !holiday {
            counts.absent += 1;
        }
    }
    counts
}

fn chart_days(
    counts: &[crate::store::listing::StatusCount],
    site: &str,
    today: NaiveDate,
    now: TodayCounts,
) -> Vec<(NaiveDate, DayFigures)> {
    let mut by_day: HashMap<NaiveDate, DayFigures> = HashMap::new();
    for c in counts.iter().filter(|c| c.site_id == site) {
        let f = by_day.entry(c.work_date).or_default();
        match c.status.as_deref() {
            Some("P" | "HD" | "WOP" | "PHP") => f.present += c.days,
            Some("L") => f.leave += c.days,
            Some("A") => f.absent += c.days,
            _ => {}
        }
    }
    (0..CHART_DAYS)
        .rev()
        .map(|back| {
            let date = today - Duration::days(back);
            let figures = if date == today {
                DayFigures { present: now.present, leave: now.leave, absent: now.absent }
            } else {
                by_day.get(&date).copied().unwrap_or_default()
            };
            (date, figures)
        })
        .collect()
}

/// The dashboard page.
pub async fn dashboard(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let todays: Vec<NaiveDate> = sites.iter().map(|s| site_today(&s.time_zone)).collect();
    let (Some(first), Some(last)) = (todays.iter().min(), todays.iter().max()) else {
        return Ok(page("Dashboard", &ctx, html! { h1 { "Today" } p { "You have no sites yet." } }));
    };
    let counts = state.store.status_counts(ctx.caller.scope(), *first - Duration::days(CHART_DAYS), *last).await?;
    let holidays = state.store.holidays().await?;
    let rules: HashMap<String, WeekOffRule> =
        state.store.week_off_rules().await?.into_iter().map(|r| (r.code, r.rule)).collect();
    let mut sections = Vec::new();
    for (site, today) in sites.iter().zip(todays) {
        let now = today_counts(&state, &ctx, site, today, &holidays, &rules).await?;
        let days = chart_days(&counts, &site.site_id, today, now);
        sections.push(html! {
            section.site data-site=(site.site_id) aria-labelledby=(format!("site-{}", site.site_id)) {
                h2 id=(format!("site-{}", site.site_id)) {
                    (site.name) " " small { (today) " · " (site.time_zone) }
                }
                dl.counts {
                    div { dt { "Present" } dd data-testid="count-present" { (now.present) } }
                    div { dt { "Absent" } dd data-testid="count-absent" { (now.absent) } }
                    div { dt { "Late" } dd data-testid="count-late" { (now.late) } }
                    div { dt { "On leave" } dd data-testid="count-leave" { (now.leave) } }
                }
                h3.muted { "Last " (CHART_DAYS) " days" }
                (attendance_chart(&site.site_id, &days))
                p {
                    a href=(format!("/muster?site={}", site.site_id)) { "Muster roll" } " · "
                    a href="/live" { "Live punches" } " · "
                    a href="/devices" { "Devices" }
                }
            }
        });
    }
    let body = html! {
        h1 { "Today" }
        div.sites { @for s in &sections { (s) } }
    };
    Ok(page("Dashboard", &ctx, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn employee(id: &str) -> EmployeeProfile {
        EmployeeProfile {
            employee_id: id.into(),
            name: id.into(),
            department: String::new(),
            designation: String::new(),
            site_id: Some("A".into()),
            shift_code: Some("GEN".into()),
            week_off_rule: Some("SUN".into()),
            date_of_joining: None,
            date_of_leaving: None,
            active: true,
        }
    }

    fn row(id: &str, date: NaiveDate, status: Option<&str>, arrived: bool, late: i64) -> AttendanceRow {
        AttendanceRow {
            employee_id: id.into(),
            name: id.into(),
            department: String::new(),
            site_id: Some("A".into()),
            work_date: date,
            shift_code: "GEN".into(),
            day_kind: "working".into(),
            status: status.map(str::to_owned),
            provisional: status.is_none(),
            in_time: arrived.then(|| date.and_hms_opt(9, 0, 0).unwrap_or_default()),
            out_time: None,
            total_work_secs: 0,
            overtime_secs: 0,
            late_by_secs: late,
            early_exit_by_secs: 0,
            flags: String::new(),
            leave_kind: None,
        }
    }

    #[test]
    fn today_counts_every_expected_employee_once() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
        let sunday = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let rules: HashMap<String, WeekOffRule> = [("SUN".to_owned(), WeekOffRule::weekly(&[Weekday::Sun]))].into();
        let mut gone = employee("gone");
        gone.date_of_leaving = Some(monday - Duration::days(1));
        let mut no_shift = employee("noshift");
        no_shift.shift_code = None;
        let employees = vec![
            employee("p"),
            employee("open"),
            employee("late"),
            employee("leave"),
            employee("a"),
            employee("missing"),
            gone,
            no_shift,
        ];
        let rows = vec![
            row("p", monday, Some("P"), true, 0),
            row("open", monday, None, true, 0),
            row("late", monday, Some("HD"), true, 600),
            row("leave", monday, Some("L"), false, 0),
            row("a", monday, Some("A"), false, 0),
        ];
        let counts = count_today(&employees, &rows, &rules, false, monday);
        assert_eq!(counts, TodayCounts { present: 3, absent: 2, late: 1, leave: 1 });
        // A holiday or a week-off: nobody without a row is absent.
        let counts = count_today(&employees, &rows, &rules, true, monday);
        assert_eq!(counts.absent, 1, "only the stored A");
        assert_eq!(count_today(&employees, &[], &rules, false, sunday), TodayCounts::default());
    }
}
