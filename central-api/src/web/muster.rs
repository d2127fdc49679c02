//! `GET /muster?site=&month=YYYY-MM&department=&status=`: the month's muster roll as a grid, one row per employee
//! and one cell per day holding the status code (colour plus the letters) and a link to the employee's day, with
//! the totals of [`crate::reports::muster`], month navigation, a filter form and the CSV/XLSX downloads of the API.
//!
//! `status` keeps the employees who have that status on at least one day of the month.

use axum::extract::{Query, State};
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::WebCaller;
use super::dashboard::site_today;
use super::error::WebError;
use super::layout::page;
use crate::access::Action;
use crate::http::api::reports::{muster_days, muster_slots};
use crate::http::AppState;
use crate::reports::muster::{self, MusterEmployee, MusterRoll};
use crate::store::listing::AttendanceFilter;

/// Status codes, with what they mean (the legend and the status filter).
pub const STATUS_CODES: &[(&str, &str)] = &[
    ("P", "present"),
    ("HD", "half day"),
    ("A", "absent"),
    ("WO", "week-off"),
    ("WOP", "worked on a week-off"),
    ("PH", "holiday"),
    ("PHP", "worked on a holiday"),
    ("L", "on leave"),
];

#[derive(Debug, Deserialize)]
pub struct MusterQuery {
    site: Option<String>,
    month: Option<String>,
    department: Option<String>,
    status: Option<String>,
    /// `on`: ManDays slots under each ManDays employee's row.
    man_days: Option<String>,
}

/// `YYYY-MM` as (year, month).
pub fn parse_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.split_once('-')?;
    let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
    NaiveDate::from_ymd_opt(y, m, 1).map(|_| (y, m))
}

fn shift_month((year, month): (i32, u32), by: i32) -> (i32, u32) {
    let index = year * 12 + i32::try_from(month).unwrap_or(1) - 1 + by;
    (index.div_euclid(12), u32::try_from(index.rem_euclid(12)).unwrap_or(0) + 1)
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs.iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>()).unwrap_or_default()
}

/// The CSS class of a cell: `st st-<CODE>`, `st st-pending` for `*`, `st st-none` for no row.
fn cell_class(code: &str) -> String {
    match code {
        "" => "st st-none".to_owned(),
        "*" => "st st-pending".to_owned(),
        c => format!("st st-{c}"),
    }
}

fn blank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The muster roll page.
pub async fn muster_page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<MusterQuery>,
) -> Result<Markup, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let site_id = match blank(q.site) {
        Some(s) => s,
        None => match sites.first() {
            Some(s) => s.site_id.clone(),
            None => {
                return Ok(page("Muster roll", &ctx, html! { h1 { "Muster roll" } p { "You have no sites yet." } }))
            }
        },
    };
    ctx.caller.require(Action::Read, Some(&site_id))?;
    let site = sites
        .iter()
        .find(|s| s.site_id == site_id)
        .ok_or_else(|| WebError::not_found(format!("site {site_id:?} does not exist")))?;
    let month = match blank(q.month) {
        Some(m) => parse_month(&m).ok_or_else(|| WebError::bad_request(format!("month {m:?} is not YYYY-MM")))?,
        None => {
            let today = site_today(&site.time_zone);
            (today.year(), today.month())
        }
    };
    let department = blank(q.department);
    let status = blank(q.status);
    if let Some(s) = &status {
        if !STATUS_CODES.iter().any(|(c, _)| c == s) {
            return Err(WebError::bad_request(format!("status {s:?} is not one of the status codes")));
        }
    }
    let days = muster::month_days(month.0, month.1).ok_or_else(|| WebError::bad_request("not a month"))?;
    let profiles = state.store.employee_profiles(None, Some(&site_id)).await?;
    let mut departments: Vec<String> =
        profiles.iter().map(|p| p.department.clone()).filter(|d| !d.is_empty()).collect();
    departments.sort();
    departments.dedup();
    let employees: Vec<MusterEmployee> = profiles
        .into_iter()
        .filter(|p| department.as_ref().is_none_or(|d| &p.department == d))
        .map(|p| MusterEmployee { employee_id: p.employee_id, name: p.name, department: p.department })
        .collect();
    let filter = AttendanceFilter {
        scope: ctx.caller.scope().map(str::to_owned),
        from: days.first().copied(),
        to: days.last().copied(),
        site: Some(site_id.clone()),
        department: department.clone(),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let rows = muster_days(&state, filter.clone()).await?;
    let with_slots = q.man_days.as_deref().is_some_and(|v| !v.is_empty());
    let month_text = format!("{:04}-{:02}", month.0, month.1);
    let mut roll = muster::build(&format!("Muster roll {site_id} {month_text}"), days, &employees, &rows);
    if with_slots {
        muster::add_man_days(&mut roll, &muster_slots(&state, filter).await?);
    }
    if let Some(s) = &status {
        roll.rows.retain(|r| r.cells.iter().any(|c| c == s));
    }
    let slots_flag = if with_slots { "on" } else { "" };
    let slots_param = if with_slots { "true" } else { "" };
    let dept = department.as_deref().unwrap_or("");
    let st = status.as_deref().unwrap_or("");
    let link = |m: (i32, u32)| {
        let month = format!("{:04}-{:02}", m.0, m.1);
        format!(
            "/muster?{}",
            query_string(&[
                ("site", &site_id),
                ("month", &month),
                ("department", dept),
                ("status", st),
                ("man_days", slots_flag),
            ])
        )
    };
    let download = |format: &str| {
        format!(
            "/api/v1/reports/muster?{}",
            query_string(&[
                ("site", &site_id),
                ("month", &month_text),
                ("department", dept),
                ("format", format),
                ("man_days", slots_param),
            ])
        )
    };
    let body = html! {
        h1 { "Muster roll · " (site.name) " · " (month_text) }
        form.filters method="get" action="/muster" {
            div {
                label for="f-site" { "Site" }
                select #f-site name="site" {
                    @for s in &sites {
                        option value=(s.site_id) selected[s.site_id == site_id] { (s.name) " (" (s.site_id) ")" }
                    }
                }
            }
            div {
                label for="f-month" { "Month" }
                input #f-month type="month" name="month" value=(month_text);
            }
            div {
                label for="f-department" { "Department" }
                select #f-department name="department" {
                    option value="" { "All" }
                    @for d in &departments { option value=(d) selected[d == dept] { (d) } }
                }
            }
            div {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "Any" }
                    @for (code, meaning) in STATUS_CODES {
                        option value=(code) selected[*code == st] { (code) " – " (meaning) }
                    }
                }
            }
            div {
                label {
                    input type="checkbox" name="man_days" checked[with_slots] data-testid="muster-man-days";
                    " ManDays slots"
                }
            }
            button type="submit" { "Show" }
        }
        p.monthnav {
            a data-testid="month-prev" href=(link(shift_month(month, -1))) { "← Previous month" }
            a data-testid="month-next" href=(link(shift_month(month, 1))) { "Next month →" }
            span.downloads {
                a data-testid="download-xlsx" href=(download("xlsx")) { "Download XLSX" }
                a data-testid="download-csv" href=(download("csv")) { "CSV" }
            }
        }
        (grid(&roll))
        p.codes {
            @for (code, meaning) in STATUS_CODES { span class=(format!("st st-{code}")) { (code) } " " (meaning) " · " }
            "* pending (the day is not over)"
        }
    };
    Ok(page("Muster roll", &ctx, body))
}

fn grid(roll: &MusterRoll) -> Markup {
    html! {
        @if roll.rows.is_empty() {
            p data-testid="muster-empty" { "No employee matches." }
        } @else {
            div.table-wrap {
                table.muster {
                    thead {
                        tr {
                            th scope="col" { "ID" }
                            th scope="col" { "Name" }
                            th scope="col" { "Department" }
                            @for d in &roll.days {
                                th scope="col" abbr=(d) { (d.day()) br; small { (&d.weekday().to_string()[..2]) } }
                            }
                            th scope="col" { "Present" } th scope="col" { "Absent" } th scope="col" { "Half days" }
                            th scope="col" { "Week-offs" } th scope="col" { "Holidays" } th scope="col" { "Leave" }
                            th scope="col" { "Late" } th scope="col" { "OT hours" }
                        }
                    }
                    tbody {
                        @for row in &roll.rows {
                            @let id = &row.employee.employee_id;
                            tr data-employee=(id) {
                                th scope="row" { (id) }
                                td { (row.employee.name) }
                                td { (row.employee.department) }
                                @for (d, code) in roll.days.iter().zip(&row.cells) {
                                    td data-date=(d) class=(cell_class(code)) {
                                        a href=(format!("/employees/{}/day/{d}", url_segment(id)))
                                            aria-label=(format!("{} on {d}: {}", row.employee.name, if code.is_empty() { "no record" } else { code })) {
                                            @if code.is_empty() { "·" } @else { (code) }
                                        }
                                    }
                                }
                                td { (row.totals.present) } td { (row.totals.absent) } td { (row.totals.half_days) }
                                td { (row.totals.week_offs) } td { (row.totals.holidays) } td { (row.totals.leave) }
                                td { (row.totals.late) } td { (format!("{:.2}", row.totals.overtime_hours())) }
                            }
                            @for slot in &row.slot_lines {
                                tr.slots data-employee-slots=(id) {
                                    th scope="row" { (id) }
                                    td {}
                                    td { (slot.label) }
                                    @for (d, cell) in roll.days.iter().zip(&slot.cells) { td data-date=(d) { (cell) } }
                                    td colspan="8" {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A path segment, percent-encoded (employee ids are PINs, but nothing stops odd characters).
pub fn url_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_shift_across_years() {
        assert_eq!(parse_month("2026-11"), Some((2026, 11)));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("nope"), None);
        assert_eq!(shift_month((2026, 1), -1), (2025, 12));
        assert_eq!(shift_month((2026, 12), 1), (2027, 1));
        assert_eq!(cell_class("WOP"), "st st-WOP");
        assert_eq!(cell_class("*"), "st st-pending");
        assert_eq!(url_segment("a b/1"), "a%20b%2F1");
    }
}
