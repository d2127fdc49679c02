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
use crate::attendance::engine::HolidayKind;
use crate::http::api::reports::all_rows;
use crate::http::AppState;
use crate::store::attendance::masters::HolidayRecord;
use crate::store::listing::{AttendanceFilter, SiteInfo};

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
) -> Result<TodayCounts, WebError> {
    let rules: HashMap<String, _> = state.store.week_off_rules().await?.into_iter().map(|r| (r.code, r.rule)).collect();
    let filter = AttendanceFilter {
        scope: ctx.caller.scope().map(str::to_owned),
        from: Some(today),
        to: Some(today),
        site: Some(site.site_id.clone()),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let rows: HashMap<String, _> =
        all_rows(state, filter).await?.into_iter().map(|r| (r.employee_id.clone(), r)).collect();
    let holiday = is_day_off(holidays, &site.site_id, today);
    let mut counts = TodayCounts::default();
    for employee in state.store.employee_profiles(None, Some(&site.site_id)).await? {
        let employed = employee.active
            && employee.date_of_joining.is_none_or(|d| d <= today)
            && employee.date_of_leaving.is_none_or(|d| d >= today);
        let row = rows.get(&employee.employee_id);
        if let Some(row) = row {
            if row.late_by_secs > 0 {
                counts.late += 1;
            }
            match row.status.as_deref() {
                Some("P" | "HD" | "WOP" | "PHP") => {
                    counts.present += 1;
                    continue;
                }
                Some("L") => {
                    counts.leave += 1;
                    continue;
                }
                Some("A") => {
                    counts.absent += 1;
                    continue;
                }
                Some(_) => continue,
                None if row.in_time.is_some() => {
                    counts.present += 1;
                    continue;
                }
                None => {}
            }
        }
        let week_off = employee
            .week_off_rule
            .as_ref()
            .and_then(|code| rules.get(code))
            .is_some_and(|rule| rule.is_week_off(today));
        if employed && employee.shift_code.is_some() && !week_off && !holiday {
            counts.absent += 1;
        }
    }
    Ok(counts)
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
    let mut sections = Vec::new();
    for (site, today) in sites.iter().zip(todays) {
        let now = today_counts(&state, &ctx, site, today, &holidays).await?;
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
