//! `GET /dashboard`: today at a glance for every site the caller sees (present, absent, not yet due, late, on
//! leave, counted in the site's own time zone, see [`super::today`]; an overnight shift still in progress under the
//! day it started) and a chart of the last 30 days, counted from the stored rows.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{Duration, NaiveDate, NaiveDateTime, Utc};
use maud::{html, Markup};

use super::auth::WebCaller;
use super::chart::{attendance_chart, DayFigures};
use super::error::WebError;
use super::layout::page;
use super::today::{count_today, NightShift, Today, TodayCounts};
use crate::attendance::engine::{HolidayKind, Shift, WeekOffRule};
use crate::http::api::reports::all_rows;
use crate::http::AppState;
use crate::store::attendance::masters::HolidayRecord;
use crate::store::listing::{AttendanceFilter, AttendanceRow, SiteInfo};

/// Days in the chart.
pub const CHART_DAYS: i64 = 30;

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
    holidays: &[HolidayRecord],
    rules: &HashMap<String, WeekOffRule>,
    shifts: &HashMap<String, Shift>,
) -> Result<(TodayCounts, NightShift), WebError> {
    let now = site_now(&site.time_zone);
    let today = now.date();
    let filter = AttendanceFilter {
        scope: ctx.caller.scope().map(str::to_owned),
        from: Some(today - Duration::days(1)),
        to: Some(today),
        site: Some(site.site_id.clone()),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let (today_rows, yesterday_rows): (Vec<AttendanceRow>, Vec<AttendanceRow>) =
        all_rows(state, filter).await?.into_iter().partition(|r| r.work_date == today);
    let employees = state.store.employee_profiles(None, Some(&site.site_id)).await?;
    let t = Today {
        now,
        shifts,
        rules,
        default_rule: site.default_week_off_rule.as_ref().and_then(|code| rules.get(code)),
        holiday: is_day_off(holidays, &site.site_id, today),
    };
    Ok(count_today(&employees, &today_rows, &yesterday_rows, &t))
}

/// The site's local date and time now.
pub fn site_now(time_zone: &str) -> NaiveDateTime {
    match time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Utc::now().with_timezone(&tz).naive_local(),
        Err(_) => Utc::now().naive_utc(),
    }
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
    let shifts: HashMap<String, Shift> =
        state.store.shifts().await?.into_iter().map(|s| (s.shift.code.clone(), s.shift)).collect();
    let mut sections = Vec::new();
    for (site, today) in sites.iter().zip(todays) {
        let (now, night) = today_counts(&state, &ctx, site, &holidays, &rules, &shifts).await?;
        let overnight = shifts.values().any(Shift::is_overnight);
        let days = chart_days(&counts, &site.site_id, today, now);
        sections.push(html! {
            section.site data-site=(site.site_id) aria-labelledby=(format!("site-{}", site.site_id)) {
                h2 id=(format!("site-{}", site.site_id)) {
                    (site.name) " " small { (today) " · " (site.time_zone) }
                }
                dl.counts {
                    div { dt { "Present" } dd data-testid="count-present" { (now.present) } }
                    div { dt { "Absent" } dd data-testid="count-absent" { (now.absent) } }
                    div { dt { "Not yet due" } dd data-testid="count-not-yet-due" { (now.not_yet_due) } }
                    div { dt { "Late" } dd data-testid="count-late" { (now.late) } }
                    div { dt { "On leave" } dd data-testid="count-leave" { (now.leave) } }
                }
                @if overnight || night.at_work > 0 {
                    p data-testid="night-shift" {
                        "Overnight shift of " (night.date) " in progress: " strong { (night.at_work) } " at work"
                    }
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
