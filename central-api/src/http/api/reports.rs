//! Report downloads: the monthly muster roll (CSV or XLSX) for a site or a department, and the daily report (JSON or
//! CSV).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::sites::scoped_site;
use super::{invalid, store_error};
use crate::access::Caller;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::reports::daily::DailyRow;
use crate::reports::muster::{MusterDay, MusterEmployee, MusterSlots};
use crate::reports::{csv, daily, muster, xlsx};
use crate::store::listing::{AttendanceFilter, AttendanceRow};

/// Employees one roll may list.
const MAX_EMPLOYEES: usize = 20_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MusterQuery {
    pub site: Option<String>,
    pub department: Option<String>,
    /// `YYYY-MM`.
    pub month: String,
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// Add each ManDays employee's slots (one line per slot, `HH:MM-HH:MM`) and daily ManDays hours under their row.
    pub man_days: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    pub site: Option<String>,
    pub department: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Every attendance row matching the filter, page by page.
pub async fn all_rows(state: &AppState, mut filter: AttendanceFilter) -> Result<Vec<AttendanceRow>, ApiError> {
    filter.limit = super::MAX_PAGE;
    let mut out = Vec::new();
    loop {
        let page = state.store.list_attendance(&filter).await.map_err(store_error)?;
        let full = page.len() as i64 == filter.limit;
        filter.after = page.last().map(|r| (r.work_date, r.employee_id.clone()));
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The muster roll's cells: every attendance row matching the filter, reduced to what the roll shows.
pub async fn muster_days(state: &AppState, filter: AttendanceFilter) -> Result<Vec<MusterDay>, ApiError> {
    Ok(all_rows(state, filter)
        .await?
        .into_iter()
        .map(|r| MusterDay {
            employee_id: r.employee_id,
            date: r.work_date,
            status: r.status,
            provisional: r.provisional,
            late_by_secs: r.late_by_secs,
            overtime_secs: r.overtime_secs,
        })
        .collect())
}

/// The ManDays slots of every row matching the filter, page by page, as the muster roll shows them.
pub async fn muster_slots(state: &AppState, mut filter: AttendanceFilter) -> Result<Vec<MusterSlots>, ApiError> {
    filter.limit = super::MAX_PAGE;
    let mut out = Vec::new();
    loop {
        let page = state.store.list_man_days(&filter).await.map_err(store_error)?;
        let full = page.len() as i64 == filter.limit;
        filter.after = page.last().map(|r| (r.work_date, r.employee_id.clone()));
        out.extend(page.into_iter().map(|r| MusterSlots {
            employee_id: r.employee_id,
            date: r.work_date,
            slots: r.slots.iter().map(|s| (s.in_time, s.out_time)).collect(),
            total_secs: r.total_secs,
        }));
        if !full {
            return Ok(out);
        }
    }
}

fn download(content_type: &'static str, name: String, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// The monthly muster roll of a site or a department.
#[utoipa::path(get, path = "/api/v1/reports/muster", tag = "reports", params(MusterQuery),
    responses((status = 200, description = "CSV or XLSX file"), (status = 400), (status = 401), (status = 404),
        (status = 503)))]
pub async fn muster(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<MusterQuery>,
) -> Result<Response, ApiError> {
    let (year, month) = q
        .month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
        .ok_or_else(|| invalid("month", format!("{:?} is not YYYY-MM", q.month)))?;
    let days =
        muster::month_days(year, month).ok_or_else(|| invalid("month", format!("{:?} is not a month", q.month)))?;
    let format = q.format.as_deref().unwrap_or("csv");
    if !["csv", "xlsx"].contains(&format) {
        return Err(invalid("format", format!("{format:?} is not csv or xlsx")));
    }
    if q.site.is_none() && q.department.is_none() {
        return Err(invalid("site", "give a site or a department"));
    }
    let site = scoped_site(&caller, q.site.as_deref())?;
    let employees: Vec<MusterEmployee> = state
        .store
        .employee_profiles(None, site)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|p| p.site_id.as_deref().is_some_and(|s| caller.sees(s)))
        .filter(|p| q.department.as_ref().is_none_or(|d| &p.department == d))
        .take(MAX_EMPLOYEES)
        .map(|p| MusterEmployee { employee_id: p.employee_id, name: p.name, department: p.department })
        .collect();
    let filter = AttendanceFilter {
        scope: caller.scope().map(str::to_owned),
        from: days.first().copied(),
        to: days.last().copied(),
        site: site.map(str::to_owned),
        department: q.department.clone(),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let rows = muster_days(&state, filter.clone()).await?;
    let scope_name = [q.site.as_deref(), q.department.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let title = format!("Muster roll {} {}", scope_name, q.month);
    let mut roll = muster::build(&title, days, &employees, &rows);
    if q.man_days == Some(true) {
        muster::add_man_days(&mut roll, &muster_slots(&state, filter).await?);
    }
    let base = format!("muster-{}-{}", scope_name.replace(' ', "-"), q.month);
    if format == "xlsx" {
        let bytes = xlsx::muster(&roll)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        Ok(download("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", format!("{base}.xlsx"), bytes))
    } else {
        Ok(download("text/csv; charset=utf-8", format!("{base}.csv"), csv::muster(&roll).into_bytes()))
    }
}

/// The daily report (in, out, late, early exit, overtime per employee) of a site or department.
#[utoipa::path(get, path = "/api/v1/reports/daily", tag = "reports", params(DailyQuery),
    responses((status = 200, body = [DailyRow]), (status = 400), (status = 404)))]
pub async fn daily(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DailyQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if !["csv", "json"].contains(&format) {
        return Err(invalid("format", format!("{format:?} is not json or csv")));
    }
    let site = scoped_site(&caller, q.site.as_deref())?;
    let filter = AttendanceFilter {
        scope: caller.scope().map(str::to_owned),
        from: Some(q.date),
        to: Some(q.date),
        site: site.map(str::to_owned),
        department: q.department.clone(),
        by_employee: true,
        ..AttendanceFilter::default()
    };
    let rows = daily::build(&all_rows(&state, filter).await?);
    if format == "csv" {
        Ok(download(
            "text/csv; charset=utf-8",
            format!("daily-{}.csv", q.date),
            csv::document(&daily::lines(&rows)).into_bytes(),
        ))
    } else {
        Ok(Json(rows).into_response())
    }
}
