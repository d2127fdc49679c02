//! The exception reports beside the muster roll: `GET /api/v1/reports/{late,early-going,overtime,absentees}` for a
//! day (`date`) or a range (`from`, `to`), per site and department, as JSON, CSV or XLSX (see
//! [`crate::reports::exceptions`]). Scoped like the attendance list.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::invalid;
use super::reports::all_rows;
use super::sites::scoped_site;
use crate::access::Caller;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::reports::exceptions::{self, ExceptionKind, ExceptionReport};
use crate::reports::{csv, xlsx};
use crate::store::listing::AttendanceFilter;

/// Longest range one report covers.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    pub site: Option<String>,
    pub department: Option<String>,
    /// One day (YYYY-MM-DD), instead of `from` and `to`.
    pub date: Option<NaiveDate>,
    /// First day, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
}

/// Checks the query and builds `kind`'s report for the caller.
///
/// # Errors
/// `400` naming a bad parameter, `404` for a site out of scope.
pub async fn exception_report(
    state: &AppState,
    caller: &Caller,
    kind: ExceptionKind,
    q: &ExceptionQuery,
) -> Result<ExceptionReport, ApiError> {
    let (from, to) = match (q.date, q.from, q.to) {
        (Some(day), None, None) => (day, day),
        (Some(_), _, _) => return Err(invalid("date", "give a date, or from and to, not both")),
        (None, Some(from), Some(to)) => (from, to),
        (None, None, _) => return Err(invalid("from", "give a date, or from and to")),
        (None, Some(_), None) => return Err(invalid("to", "is required with from")),
    };
    if to < from {
        return Err(invalid("to", format!("{to} is before from {from}")));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(invalid("to", format!("the range {from} to {to} is longer than {MAX_DAYS} days")));
    }
    let site = scoped_site(caller, q.site.as_deref())?;
    let department = q.department.clone().filter(|d| !d.trim().is_empty());
    let filter = AttendanceFilter {
        scope: caller.scope().map(str::to_owned),
        from: Some(from),
        to: Some(to),
        site: site.map(str::to_owned),
        department: department.clone(),
        exception: Some(kind.condition()),
        ..AttendanceFilter::default()
    };
    let rows = all_rows(state, filter).await?;
    let scope = [site, department.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Ok(exceptions::build(kind, &scope, from, to, &rows))
}

/// The report in the asked format.
///
/// # Errors
/// `400` for an unknown format.
pub fn render(report: &ExceptionReport, format: Option<&str>) -> Result<Response, ApiError> {
    let base = report.title.to_lowercase().replace(' ', "-");
    match format.unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "csv" => Ok(download(
            "text/csv; charset=utf-8",
            format!("{base}.csv"),
            csv::document(&exceptions::lines(report)).into_bytes(),
        )),
        "xlsx" => {
            let bytes = xlsx::table(
                &report.title,
                report.kind.title(),
                &exceptions::lines(report),
                &exceptions::NUMBER_COLUMNS,
            )
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
            Ok(download(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                format!("{base}.xlsx"),
                bytes,
            ))
        }
        other => Err(invalid("format", format!("{other:?} is not json, csv or xlsx"))),
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

async fn answer(state: AppState, caller: Caller, kind: ExceptionKind, q: ExceptionQuery) -> Result<Response, ApiError> {
    let format = q.format.clone();
    if let Some(f) = format.as_deref() {
        if !["json", "csv", "xlsx"].contains(&f) {
            return Err(invalid("format", format!("{f:?} is not json, csv or xlsx")));
        }
    }
    let report = exception_report(&state, &caller, kind, &q).await?;
    render(&report, format.as_deref())
}

/// Late coming: every employee-day with a late arrival, minutes late, and the total.
#[utoipa::path(get, path = "/api/v1/reports/late", tag = "reports", params(ExceptionQuery),
    responses((status = 200, body = ExceptionReport, description = "JSON, CSV or XLSX"), (status = 400),
        (status = 401), (status = 404), (status = 503)))]
pub async fn late(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExceptionQuery>,
) -> Result<Response, ApiError> {
    answer(state, caller, ExceptionKind::Late, q).await
}

/// Early going: every employee-day with an early departure, minutes early, and the total.
#[utoipa::path(get, path = "/api/v1/reports/early-going", tag = "reports", params(ExceptionQuery),
    responses((status = 200, body = ExceptionReport, description = "JSON, CSV or XLSX"), (status = 400),
        (status = 401), (status = 404), (status = 503)))]
pub async fn early_going(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExceptionQuery>,
) -> Result<Response, ApiError> {
    answer(state, caller, ExceptionKind::EarlyGoing, q).await
}

/// Overtime: every employee-day with overtime, its minutes, and the total.
#[utoipa::path(get, path = "/api/v1/reports/overtime", tag = "reports", params(ExceptionQuery),
    responses((status = 200, body = ExceptionReport, description = "JSON, CSV or XLSX"), (status = 400),
        (status = 401), (status = 404), (status = 503)))]
pub async fn overtime(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExceptionQuery>,
) -> Result<Response, ApiError> {
    answer(state, caller, ExceptionKind::Overtime, q).await
}

/// Absentees: every employee-day marked A, with the punches it counted, and the number of days.
#[utoipa::path(get, path = "/api/v1/reports/absentees", tag = "reports", params(ExceptionQuery),
    responses((status = 200, body = ExceptionReport, description = "JSON, CSV or XLSX"), (status = 400),
        (status = 401), (status = 404), (status = 503)))]
pub async fn absentees(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExceptionQuery>,
) -> Result<Response, ApiError> {
    answer(state, caller, ExceptionKind::Absentees, q).await
}
