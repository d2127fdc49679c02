//! `GET /employees/{employee_id}/day/{YYYY-MM-DD}`: one employee's day. The punches that can count for it, each with
//! its device (name, serial, direction) and its local time in the device's zone (punches at sites the caller does
//! not see are only counted); manual logs of the span; the computed
//! row (status, in, out, work, overtime, late, early exit, flags, provisional, sandwich original); and a plain
//! sentence saying why it got its status, followed by the engine's stored explanation.

use axum::extract::{Path, State};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use maud::{html, Markup};

use super::auth::WebCaller;
use super::error::WebError;
use super::layout::page;
use super::muster::{url_segment, STATUS_CODES};
use crate::access::{Action, Role};
use crate::http::AppState;
use crate::store::attendance::results::AttendanceRecord;

/// "8h 05m", "45m", "0m".
pub fn duration_text(secs: i64) -> String {
    let (sign, secs) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    if h == 0 {
        format!("{sign}{m}m")
    } else {
        format!("{sign}{h}h {m:02}m")
    }
}

fn status_meaning(code: &str) -> &'static str {
    STATUS_CODES.iter().find(|(c, _)| *c == code).map_or("an unknown status", |(_, m)| *m)
}

/// The plain sentence that says why the day has its status.
pub fn why(row: Option<&AttendanceRecord>) -> String {
    let Some(row) = row else {
        return "There is no computed row for this day yet: no punch, leave or closing touched it (a day gets a row \
                when its first punch arrives, and an absentee gets an A row when the day closes)."
            .to_owned();
    };
    let mut text = match (row.status.as_deref(), row.provisional) {
        (None, _) => format!(
            "The day is still open (its check-out window closes at {}), so it has no status yet; an open day is never \
             marked absent.",
            row.closes_at.format("%H:%M on %Y-%m-%d")
        ),
        (Some(code), provisional) => {
            let mut s = format!("{code} means {}.", status_meaning(code));
            if provisional {
                s.push_str(&format!(
                    " It is provisional until the check-out window closes at {}.",
                    row.closes_at.format("%H:%M on %Y-%m-%d")
                ));
            }
            s
        }
    };
    if let Some(original) = &row.sandwich_original {
        text.push_str(&format!(
            " The sandwich rule made this {original} day absent because the days around it ({} and {}) are absences.",
            row.sandwich_before.map_or_else(|| "?".to_owned(), |d| d.to_string()),
            row.sandwich_after.map_or_else(|| "?".to_owned(), |d| d.to_string()),
        ));
    }
    text
}

fn time(t: Option<NaiveDateTime>) -> String {
    t.map_or_else(|| "—".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// The day page.
pub async fn day_page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path((employee_id, date)): Path<(String, String)>,
) -> Result<Markup, WebError> {
    let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| WebError::bad_request(format!("{date:?} is not a date (YYYY-MM-DD)")))?;
    let missing = || WebError::not_found(format!("employee {employee_id:?} does not exist"));
    let profile = state.store.employee_profile(&employee_id).await?.ok_or_else(missing)?;
    match profile.site_id.as_deref() {
        Some(site) => ctx.caller.require(Action::Read, Some(site)).map_err(|_| missing())?,
        None if ctx.caller.role == Role::Root => {}
        None => return Err(missing()),
    }
    let row = state.store.attendance(Some(&employee_id), date, date).await?.into_iter().next();
    let man_days = state.store.man_days(Some(&employee_id), date, date).await?.into_iter().next();
    let day_start = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let mut from = day_start;
    let mut to = day_start + Duration::days(1);
    if let Some(r) = &row {
        from = from.min(r.in_time.unwrap_or(from));
        to = to.max(r.out_time.map_or(to, |t| t + Duration::seconds(1)));
    }
    // Punches at sites the caller does not see are not shown (only counted), like everywhere else.
    let (punches, elsewhere): (Vec<_>, Vec<_>) =
        state.store.punches_of(&employee_id, from, to).await?.into_iter().partition(|p| ctx.caller.sees(&p.site_id));
    let manual = state.store.manual_logs(&employee_id, from, to).await?;
    let id = url_segment(&employee_id);
    let month = date.format("%Y-%m").to_string();
    let status = row.as_ref().map(|r| r.status.clone().unwrap_or_else(|| "pending".to_owned()));
    let body = html! {
        h1 { (profile.name) " · " (employee_id) " · " (date) }
        p {
            @if let Some(site) = &profile.site_id {
                a href=(format!("/muster?site={}&month={month}", url_segment(site))) { "← Muster roll " (month) }
                " · "
            }
            a href=(format!("/employees/{id}/day/{}", date - Duration::days(1))) { "Previous day" } " · "
            a href=(format!("/employees/{id}/day/{}", date + Duration::days(1))) { "Next day" } " · "
            a data-testid="add-manual-punch" href=(format!("/manual-logs/new?employee={id}&date={date}")) { "Add a manual punch for this day" }
        }
        h2 { "Status" }
        p { span data-testid="day-status" class=(format!("badge st st-{}", status.as_deref().unwrap_or("none"))) {
            (status.as_deref().unwrap_or("no record"))
        } }
        p.why data-testid="day-why" { (why(row.as_ref())) }
        @if let Some(r) = &row {
            p data-testid="day-explanation" { (r.explanation) }
            dl.facts {
                dt { "Shift" } dd { (r.shift_code) " (" (r.day_kind.replace('_', " ")) ")" }
                dt { "In" } dd data-testid="day-in" { (time(r.in_time)) }
                dt { "Out" } dd data-testid="day-out" { (time(r.out_time)) }
                dt { "Work" } dd { (duration_text(r.total_work_secs)) " (lunch deducted " (duration_text(r.lunch_deducted_secs)) ")" }
                dt { "Overtime" } dd { (duration_text(r.overtime_secs)) }
                dt { "Late by" } dd { (duration_text(r.late_by_secs)) }
                dt { "Early exit by" } dd { (duration_text(r.early_exit_by_secs)) }
                dt { "Flags" } dd { @if r.flags.is_empty() { "none" } @else { (r.flags.replace(',', ", ")) } }
                dt { "Provisional" } dd { @if r.provisional { "yes, until " (r.closes_at) } @else { "no" } }
                dt { "Punches" } dd {
                    (r.punches_counted) " counted, " (r.punches_collapsed) " double taps, " (r.punches_unmatched)
                    " unmatched, " (r.punches_outside_window) " outside the window, " (r.punches_unapproved)
                    " unapproved manual"
                }
                @if let Some(original) = &r.sandwich_original {
                    dt { "Before the sandwich rule" } dd data-testid="day-sandwich" {
                        (original) ", between absences on "
                        (r.sandwich_before.map(|d| d.to_string()).unwrap_or_default()) " and "
                        (r.sandwich_after.map(|d| d.to_string()).unwrap_or_default())
                    }
                }
                @if let Some(kind) = &r.leave_kind {
                    dt { "Leave" } dd { (kind) @if r.leave_paid == Some(false) { " (unpaid)" } }
                }
            }
        }
        @if let Some(md) = &man_days {
            h2 { "ManDays slots" }
            div.table-wrap { table data-testid="day-man-days" {
                thead { tr { th scope="col" { "Slot" } th scope="col" { "In" } th scope="col" { "Out" } th scope="col" { "Work" } } }
                tbody {
                    @for (n, (i, o, secs)) in md.slots.iter().enumerate() {
                        tr { td { (n + 1) } td { (i.format("%H:%M")) } td { (o.format("%H:%M")) } td { (duration_text(*secs)) } }
                    }
                    tr { th scope="row" colspan="3" { "Total" } td { (duration_text(md.total_secs)) } }
                }
            } }
        }
        h2 { "Punches" }
        @if punches.is_empty() {
            p { "No punch between " (from) " and " (to) "." }
        } @else {
            div.table-wrap { table data-testid="day-punches" {
                thead { tr {
                    th scope="col" { "Local time" } th scope="col" { "Zone" } th scope="col" { "Device" }
                    th scope="col" { "Direction" } th scope="col" { "Source" }
                } }
                tbody { @for p in &punches {
                    tr data-key=(p.key) {
                        td { (p.local_time.format("%Y-%m-%d %H:%M:%S")) }
                        td { (p.time_zone.as_deref().unwrap_or("unknown")) }
                        td { (p.device_name.as_deref().unwrap_or("unregistered device")) " (" (p.device_serial) ")" }
                        td { (p.direction) } td { (p.source) }
                    }
                } }
            } }
        }
        @if !elsewhere.is_empty() {
            p.muted data-testid="day-punches-elsewhere" {
                (elsewhere.len()) " more punch(es) of this PIN at sites you do not see are not listed."
            }
        }
        h2 { "Manual punches" }
        @if manual.is_empty() {
            p { "None." }
        } @else {
            div.table-wrap { table data-testid="day-manual" {
                thead { tr {
                    th scope="col" { "Local time" } th scope="col" { "Punch" } th scope="col" { "Reason" }
                    th scope="col" { "State" } th scope="col" { "Requested by" }
                } }
                tbody { @for m in &manual {
                    tr {
                        td { (m.local_time.format("%Y-%m-%d %H:%M:%S")) } td { (m.state.name()) } td { (m.reason) }
                        td { (format!("{:?}", m.approval).to_lowercase()) } td { (m.requested_by) }
                    }
                } }
            } }
        }
    };
    Ok(page(&format!("{} {date}", profile.name), &ctx, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_explanations() {
        assert_eq!(duration_text(0), "0m");
        assert_eq!(duration_text(45 * 60), "45m");
        assert_eq!(duration_text(8 * 3600 + 5 * 60), "8h 05m");
        assert!(why(None).contains("no computed row"));
    }
}
