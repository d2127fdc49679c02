//! Computed attendance (filtered, sorted, in pages by an opaque cursor), raw AllLogs (pages by id) and punches from
//! PINs with no employee.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sites::scoped_site;
use super::{invalid, page_size, store_error};
use crate::access::Caller;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin::UnknownPin;
use crate::store::listing::{AttendanceFilter, AttendanceRow, LogRow, ManDaysRow};

const STATUSES: [&str; 8] = ["P", "HD", "A", "WO", "PH", "WOP", "PHP", "L"];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
    /// First day (YYYY-MM-DD), inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
    pub site: Option<String>,
    pub department: Option<String>,
    pub employee: Option<String>,
    /// P, HD, A, WO, PH, WOP, PHP or L.
    pub status: Option<String>,
    /// `date` (default), `-date`, `employee` or `-employee`.
    pub sort: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A page of attendance rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttendancePage {
    pub items: Vec<AttendanceRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub site: Option<String>,
    pub pin: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// `json` (default) or `csv` (the page as a file; the next page's cursor in the `x-next-cursor` header).
    pub format: Option<String>,
}

/// A page of AllLogs rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub items: Vec<LogRow>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid("cursor", "is not a cursor this API returned"))
}

/// The filter an attendance (or ManDays) query asks for, checked against the caller's sites.
///
/// # Errors
/// `400` naming a bad parameter, `404` for a site out of scope.
pub fn attendance_filter(caller: &Caller, q: AttendanceQuery) -> Result<AttendanceFilter, ApiError> {
    let limit = page_size(q.limit)?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to < from {
            return Err(invalid("to", format!("{to} is before from {from}")));
        }
    }
    if let Some(status) = &q.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid("status", format!("{status:?} is not one of {}", STATUSES.join(", "))));
        }
    }
    let (by_employee, descending) = match q.sort.as_deref().unwrap_or("date") {
        "date" => (false, false),
        "-date" => (false, true),
        "employee" => (true, false),
        "-employee" => (true, true),
        other => return Err(invalid("sort", format!("{other:?} is not date, -date, employee or -employee"))),
    };
    let after = match &q.cursor {
        None => None,
        Some(c) => {
            let text = decode_cursor(c)?;
            let (date, employee) = text.split_once('|').ok_or_else(|| invalid("cursor", "is malformed"))?;
            let date = date.parse::<NaiveDate>().map_err(|_| invalid("cursor", "is malformed"))?;
            Some((date, employee.to_owned()))
        }
    };
    let site = scoped_site(caller, q.site.as_deref())?.map(str::to_owned);
    Ok(AttendanceFilter {
        scope: caller.scope().map(str::to_owned),
        from: q.from,
        to: q.to,
        site,
        department: q.department,
        employee: q.employee,
        status: q.status,
        by_employee,
        descending,
        after,
        limit,
        exception: None,
    })
}

/// Attendance rows of the caller's sites, with the explanation, punch counts, lunch, flags and the sandwich rule's
/// original status and neighbours.
#[utoipa::path(get, path = "/api/v1/attendance", tag = "attendance", params(AttendanceQuery),
    responses((status = 200, body = AttendancePage), (status = 400), (status = 401), (status = 404),
        (status = 503)))]
pub async fn list_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AttendanceQuery>,
) -> Result<Json<AttendancePage>, ApiError> {
    let filter = attendance_filter(&caller, q)?;
    let items = state.store.list_attendance(&filter).await.map_err(store_error)?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| items.last().map(|r| encode_cursor(&format!("{}|{}", r.work_date, r.employee_id))))
        .flatten();
    Ok(Json(AttendancePage { items, next_cursor }))
}

/// A page of ManDays rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManDaysPage {
    pub items: Vec<ManDaysRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// ManDays rows (up to ten IN/OUT slots per day, with their totals) of the caller's sites, with the attendance
/// filters, sort and cursor pages.
#[utoipa::path(get, path = "/api/v1/man-days", tag = "attendance", params(AttendanceQuery),
    responses((status = 200, body = ManDaysPage), (status = 400), (status = 401), (status = 404), (status = 503)))]
pub async fn list_man_days(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AttendanceQuery>,
) -> Result<Json<ManDaysPage>, ApiError> {
    let filter = attendance_filter(&caller, q)?;
    let items = state.store.list_man_days(&filter).await.map_err(store_error)?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| items.last().map(|r| encode_cursor(&format!("{}|{}", r.work_date, r.employee_id))))
        .flatten();
    Ok(Json(ManDaysPage { items, next_cursor }))
}

/// Raw punches (AllLogs) of the caller's sites, in the order they were stored, as JSON or CSV. Each carries the
/// normalised `state` / `verify` codes and the device's own `raw_state` / `raw_verify`.
#[utoipa::path(get, path = "/api/v1/logs", tag = "attendance", params(LogQuery),
    responses((status = 200, body = LogPage), (status = 400), (status = 401), (status = 404), (status = 503)))]
pub async fn list_logs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(invalid("format", format!("{other:?} is not json or csv"))),
    };
    let limit = page_size(q.limit)?;
    let after = match &q.cursor {
        None => 0,
        Some(c) => decode_cursor(c)?.parse::<i64>().map_err(|_| invalid("cursor", "is malformed"))?,
    };
    let site = scoped_site(&caller, q.site.as_deref())?;
    let items =
        state.store.list_logs(caller.scope(), site, q.pin.as_deref(), after, limit).await.map_err(store_error)?;
    let next_cursor =
        (items.len() as i64 == limit).then(|| items.last().map(|r| encode_cursor(&r.id.to_string()))).flatten();
    if !csv {
        return Ok(Json(LogPage { items, next_cursor }).into_response());
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"logs.csv\"".to_owned()),
        ],
        logs_csv(&items),
    )
        .into_response();
    if let Some(cursor) = next_cursor.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

/// AllLogs rows as CSV, the device's raw codes beside the normalised ones (empty when the source has none).
pub fn logs_csv(rows: &[LogRow]) -> String {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut lines = vec![[
        "id",
        "site_id",
        "device_serial",
        "pin",
        "local_time",
        "utc_time",
        "state",
        "raw_state",
        "verify",
        "raw_verify",
        "work_code",
        "source",
        "direction",
        "agent_id",
    ]
    .map(str::to_owned)
    .to_vec()];
    for r in rows {
        lines.push(vec![
            r.id.to_string(),
            r.site_id.clone(),
            r.device_serial.clone(),
            r.pin.clone(),
            r.local_time.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.utc_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            r.state.to_string(),
            opt(r.raw_state),
            r.verify.to_string(),
            opt(r.raw_verify),
            r.work_code.to_string(),
            r.source.clone(),
            r.direction.clone(),
            r.agent_id.clone(),
        ]);
    }
    crate::reports::csv::document(&lines)
}

/// PINs of the caller's sites that punched but match no employee.
#[utoipa::path(get, path = "/api/v1/unknown-pins", tag = "attendance",
    responses((status = 200, body = [UnknownPin])))]
pub async fn unknown_pins(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<UnknownPin>>, ApiError> {
    let pins = state.store.unknown_pins().await.map_err(store_error)?;
    Ok(Json(pins.into_iter().filter(|p| caller.sees(&p.site_id)).collect()))
}
