//! Shifts: `GET /api/v1/shifts` (every field of the engine's [`Shift`]), `POST /api/v1/shifts` and
//! `PUT /api/v1/shifts/{code}` (root; a change marks the days of the shift's employees from `effective_from`,
//! within the backfill window). Every change is audited with the shift before and after.
//!
//! [`ShiftSettings`] is the one body both writes take, and [`changed_shift`] the one check the API, the web form and
//! the command line share: a refusal names the API field (`grace_late_in_mins: ...`), never an engine name.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, NaiveDate, NaiveTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::updates::FieldError;
use super::{store_error, Body};
use crate::access::{Action, Caller};
use crate::attendance::engine::{PairingMode, Shift, ShiftError, SinglePunchPolicy, MAX_DEBOUNCE, MAX_WINDOW};
use crate::audit::{self, Entry};
use crate::http::error::ApiError;
use crate::http::AppState;

/// The pairing modes, as the API names them.
pub const PAIRING_MODES: [&str; 4] = ["first_last", "pairs", "by_state", "mandays"];
/// The single-punch policies, as the API names them.
pub const SINGLE_PUNCH_POLICIES: [&str; 3] = ["absent", "half_day", "present"];

/// A shift with every setting, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShiftInfo {
    pub code: String,
    pub name: String,
    /// Local start time.
    pub start: NaiveTime,
    /// Local end time; earlier than `start` for a shift that crosses midnight.
    pub end: NaiveTime,
    /// Whether the shift crosses midnight (its days are dated by the start).
    pub overnight: bool,
    pub grace_late_in_mins: i64,
    pub grace_early_out_mins: i64,
    pub min_half_day_mins: i64,
    pub max_work_for_half_day_mins: i64,
    /// Absent: arriving early is never overtime.
    pub overtime_threshold_before_shift_mins: Option<i64>,
    /// Absent: staying late is never overtime.
    pub overtime_threshold_after_shift_mins: Option<i64>,
    pub deduct_lunch_break: bool,
    /// Absent: the break is centred on the middle of the shift.
    pub lunch_break_start: Option<NaiveTime>,
    pub lunch_break_duration_mins: i64,
    pub check_in_window_before_start_mins: i64,
    pub check_out_window_after_end_mins: i64,
    /// `first_last`, `pairs`, `by_state` or `mandays`.
    pub pairing: String,
    pub debounce_secs: i64,
    /// `absent`, `half_day` or `present`.
    pub single_punch: String,
}

impl ShiftInfo {
    /// The API view of a shift.
    pub fn of(name: &str, s: &Shift) -> Self {
        Self {
            code: s.code.clone(),
            name: name.to_owned(),
            start: s.start,
            end: s.end,
            overnight: s.is_overnight(),
            grace_late_in_mins: s.grace_late_in.num_minutes(),
            grace_early_out_mins: s.grace_early_out.num_minutes(),
            min_half_day_mins: s.min_half_day.num_minutes(),
            max_work_for_half_day_mins: s.max_work_for_half_day.num_minutes(),
            overtime_threshold_before_shift_mins: s.overtime_threshold_before_shift.map(|d| d.num_minutes()),
            overtime_threshold_after_shift_mins: s.overtime_threshold_after_shift.map(|d| d.num_minutes()),
            deduct_lunch_break: s.deduct_lunch_break,
            lunch_break_start: s.lunch_break_start,
            lunch_break_duration_mins: s.lunch_break_duration.num_minutes(),
            check_in_window_before_start_mins: s.check_in_window_before_start.num_minutes(),
            check_out_window_after_end_mins: s.check_out_window_after_end.num_minutes(),
            pairing: s.pairing.as_str().to_owned(),
            debounce_secs: s.debounce.num_seconds(),
            single_punch: s.single_punch.as_str().to_owned(),
        }
    }
}

/// Decodes a field that may be absent (keep), `null` (clear) or a value.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A shift's settings, to create one (`code`, `name`, `start`, `end` required; the rest default to the engine's
/// defaults, see `GET /api/v1/shifts` of a new shift) or to change one (anything left out keeps its value).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftSettings {
    /// The shift's code (creating); when changing, the path's code (may be repeated here).
    pub code: Option<String>,
    pub name: Option<String>,
    /// Local start time (`HH:MM:SS`).
    pub start: Option<NaiveTime>,
    /// Local end time; earlier than `start` for a shift that crosses midnight.
    pub end: Option<NaiveTime>,
    /// Minutes after the start an arrival is still on time (default 0).
    pub grace_late_in_mins: Option<i64>,
    /// Minutes before the end a departure is still on time (default 0).
    pub grace_early_out_mins: Option<i64>,
    /// Minutes of work below which a working day is absent (default 240).
    pub min_half_day_mins: Option<i64>,
    /// Minutes of work up to which a working day is a half day; more is present (default 360).
    pub max_work_for_half_day_mins: Option<i64>,
    /// Arriving more than this many minutes early is overtime; `null`: never (default 30).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, nullable)]
    pub overtime_threshold_before_shift_mins: Option<Option<i64>>,
    /// Staying more than this many minutes late is overtime; `null`: never (default 30).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, nullable)]
    pub overtime_threshold_after_shift_mins: Option<Option<i64>>,
    /// Deduct the lunch break from work time (default false).
    pub deduct_lunch_break: Option<bool>,
    /// When the lunch break starts; `null`: centred on the middle of the shift (default).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub lunch_break_start: Option<Option<NaiveTime>>,
    /// How long the lunch break is, in minutes (default 30).
    pub lunch_break_duration_mins: Option<i64>,
    /// Punches this many minutes before the start already belong to the shift (default 120).
    pub check_in_window_before_start_mins: Option<i64>,
    /// Punches this many minutes after the end still belong to the shift (default 240).
    pub check_out_window_after_end_mins: Option<i64>,
    /// `first_last` (default), `pairs`, `by_state` or `mandays`.
    pub pairing: Option<String>,
    /// Punches closer together than this many seconds are one (default 60).
    pub debounce_secs: Option<i64>,
    /// Status of a working day with punches but no complete pair: `absent` (default), `half_day`, `present`.
    pub single_punch: Option<String>,
    /// Changing: the first day the change applies to (recomputed from there, within the backfill window); today
    /// when absent.
    pub effective_from: Option<NaiveDate>,
}

fn minutes(field: &'static str, v: Option<i64>, current: Duration) -> Result<Duration, FieldError> {
    match v {
        None => Ok(current),
        Some(m) if (0..=24 * 60).contains(&m) => Ok(Duration::minutes(m)),
        Some(m) => Err(FieldError::new(field, format!("{m} is not between 0 and 1440 minutes"))),
    }
}

/// The shift `code` becomes after `change`: `current`'s settings (the engine's defaults for a new shift) with the
/// submitted fields replaced, validated.
///
/// # Errors
/// The first field that is missing or out of range, named as in [`ShiftSettings`].
pub fn changed_shift(code: &str, current: Option<&Shift>, change: &ShiftSettings) -> Result<Shift, FieldError> {
    if code.trim().is_empty() || code.chars().count() > 50 {
        return Err(FieldError::new("code", "must be 1 to 50 characters"));
    }
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(FieldError::new("name", "must be 1 to 200 characters"));
        }
    } else if current.is_none() {
        return Err(FieldError::new("name", "is required"));
    }
    let start = change.start.or(current.map(|s| s.start)).ok_or_else(|| FieldError::new("start", "is required"))?;
    let end = change.end.or(current.map(|s| s.end)).ok_or_else(|| FieldError::new("end", "is required"))?;
    let fresh = Shift::new(code, start, end);
    let mut shift = match current {
        Some(current) => Shift { code: code.to_owned(), start: fresh.start, end: fresh.end, ..current.clone() },
        None => fresh,
    };
    shift.grace_late_in = minutes("grace_late_in_mins", change.grace_late_in_mins, shift.grace_late_in)?;
    shift.grace_early_out = minutes("grace_early_out_mins", change.grace_early_out_mins, shift.grace_early_out)?;
    shift.min_half_day = minutes("min_half_day_mins", change.min_half_day_mins, shift.min_half_day)?;
    shift.max_work_for_half_day =
        minutes("max_work_for_half_day_mins", change.max_work_for_half_day_mins, shift.max_work_for_half_day)?;
    if let Some(before) = change.overtime_threshold_before_shift_mins {
        shift.overtime_threshold_before_shift =
            before.map(|m| minutes("overtime_threshold_before_shift_mins", Some(m), Duration::zero())).transpose()?;
    }
    if let Some(after) = change.overtime_threshold_after_shift_mins {
        shift.overtime_threshold_after_shift =
            after.map(|m| minutes("overtime_threshold_after_shift_mins", Some(m), Duration::zero())).transpose()?;
    }
    if let Some(deduct) = change.deduct_lunch_break {
        shift.deduct_lunch_break = deduct;
    }
    if let Some(start) = change.lunch_break_start {
        shift.lunch_break_start = start.map(|t| t.with_nanosecond(0).unwrap_or(t));
    }
    shift.lunch_break_duration =
        minutes("lunch_break_duration_mins", change.lunch_break_duration_mins, shift.lunch_break_duration)?;
    shift.check_in_window_before_start = minutes(
        "check_in_window_before_start_mins",
        change.check_in_window_before_start_mins,
        shift.check_in_window_before_start,
    )?;
    shift.check_out_window_after_end = minutes(
        "check_out_window_after_end_mins",
        change.check_out_window_after_end_mins,
        shift.check_out_window_after_end,
    )?;
    if let Some(pairing) = &change.pairing {
        shift.pairing = PairingMode::from_name(pairing).ok_or_else(|| {
            FieldError::new("pairing", format!("{pairing:?} is not one of {}", PAIRING_MODES.join(", ")))
        })?;
    }
    if let Some(secs) = change.debounce_secs {
        let max = MAX_DEBOUNCE.num_seconds();
        if !(0..=max).contains(&secs) {
            return Err(FieldError::new("debounce_secs", format!("{secs} is not between 0 and {max} seconds")));
        }
        shift.debounce = Duration::seconds(secs);
    }
    if let Some(policy) = &change.single_punch {
        shift.single_punch = SinglePunchPolicy::from_name(policy).ok_or_else(|| {
            FieldError::new("single_punch", format!("{policy:?} is not one of {}", SINGLE_PUNCH_POLICIES.join(", ")))
        })?;
    }
    shift.validate().map_err(|e| shift_refusal(&shift, &e))?;
    Ok(shift)
}

/// The engine's refusal in the API's words: the field as the API names it, the value in the API's unit.
fn shift_refusal(shift: &Shift, e: &ShiftError) -> FieldError {
    match e {
        ShiftError::ZeroLength { at, .. } => FieldError::new(
            "end",
            format!("{} equals start; a shift must have a length (use 00:00-23:59 for all day)", at.format("%H:%M")),
        ),
        ShiftError::Negative { field, minutes, .. } => {
            let (name, unit, value) = api_field(field, *minutes);
            FieldError::new(name, format!("{value} {unit} must not be negative"))
        }
        ShiftError::TooLong { field, minutes, max_minutes, .. } => {
            let (name, unit, value) = api_field(field, *minutes);
            let (_, _, max) = api_field(field, *max_minutes);
            let why = if *max_minutes == MAX_WINDOW.num_minutes() {
                "a day".to_owned()
            } else if *field == "debounce" {
                "the longest debounce".to_owned()
            } else {
                format!("the shift's length, {}-{}", shift.start.format("%H:%M"), shift.end.format("%H:%M"))
            };
            FieldError::new(name, format!("{value} {unit} is more than {max} {unit} ({why})"))
        }
        ShiftError::HalfDayBand { min, max, .. } => FieldError::new(
            "min_half_day_mins",
            format!("{min} is more than max_work_for_half_day_mins ({max}); the half-day band would be empty"),
        ),
        ShiftError::LunchOutsideShift { start, minutes, shift_start, end, .. } => FieldError::new(
            if shift.lunch_break_start.is_some() { "lunch_break_start" } else { "lunch_break_duration_mins" },
            format!(
                "a lunch break from {} for {minutes} minutes does not lie inside the shift {}-{}",
                start.format("%H:%M"),
                shift_start.format("%H:%M"),
                end.format("%H:%M")
            ),
        ),
        ShiftError::EmptyCode { .. } => FieldError::new("code", "must not be empty"),
    }
}

/// The API's name, unit and value of an engine field measured in minutes.
fn api_field(engine: &str, minutes: i64) -> (&'static str, &'static str, i64) {
    match engine {
        "grace_late_in" => ("grace_late_in_mins", "minutes", minutes),
        "grace_early_out" => ("grace_early_out_mins", "minutes", minutes),
        "min_half_day" => ("min_half_day_mins", "minutes", minutes),
        "max_work_for_half_day" => ("max_work_for_half_day_mins", "minutes", minutes),
        "overtime_threshold_before_shift" => ("overtime_threshold_before_shift_mins", "minutes", minutes),
        "overtime_threshold_after_shift" => ("overtime_threshold_after_shift_mins", "minutes", minutes),
        "lunch_break_duration" => ("lunch_break_duration_mins", "minutes", minutes),
        "check_in_window_before_start" => ("check_in_window_before_start_mins", "minutes", minutes),
        "check_out_window_after_end" => ("check_out_window_after_end_mins", "minutes", minutes),
        "debounce" => ("debounce_secs", "seconds", minutes * 60),
        _ => ("code", "minutes", minutes),
    }
}

/// Every shift with every setting.
#[utoipa::path(get, path = "/api/v1/shifts", tag = "settings",
    responses((status = 200, body = [ShiftInfo]), (status = 401), (status = 503)))]
pub async fn list_shifts(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<ShiftInfo>>, ApiError> {
    caller.require(Action::Read, None)?;
    let shifts = state.store.shifts().await.map_err(store_error)?;
    Ok(Json(shifts.iter().map(|s| ShiftInfo::of(&s.name, &s.shift)).collect()))
}

/// One shift.
#[utoipa::path(get, path = "/api/v1/shifts/{code}", tag = "settings", params(("code" = String, Path)),
    responses((status = 200, body = ShiftInfo), (status = 401), (status = 404), (status = 503)))]
pub async fn get_shift(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<ShiftInfo>, ApiError> {
    caller.require(Action::Read, None)?;
    let (name, shift) = current_shift(&state, &code).await?;
    Ok(Json(ShiftInfo::of(&name, &shift)))
}

/// The stored shift `code`.
///
/// # Errors
/// `404` when there is none.
pub async fn current_shift(state: &AppState, code: &str) -> Result<(String, Shift), ApiError> {
    let shifts = state.store.shifts().await.map_err(store_error)?;
    shifts
        .into_iter()
        .find(|s| s.shift.code == code)
        .map(|s| (s.name, s.shift))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("shift {code:?} does not exist")))
}

/// Creates a shift (root): the engine's defaults with the given fields.
#[utoipa::path(post, path = "/api/v1/shifts", tag = "settings", request_body = ShiftSettings,
    responses((status = 201, body = ShiftInfo), (status = 400), (status = 401), (status = 403), (status = 409),
        (status = 413), (status = 503)))]
pub async fn create_shift(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<ShiftSettings>,
) -> Result<(StatusCode, Json<ShiftInfo>), ApiError> {
    Ok((StatusCode::CREATED, Json(add_shift(&state, &caller, &req).await?)))
}

/// Checks, creates and audits a shift (the API and the web form share it).
///
/// # Errors
/// `403` unless root, `400` naming the field, `409` for a taken code.
pub async fn add_shift(state: &AppState, caller: &Caller, req: &ShiftSettings) -> Result<ShiftInfo, ApiError> {
    caller.require(Action::Write, None)?;
    let code = req.code.as_deref().map(str::trim).unwrap_or_default();
    if code.is_empty() {
        return Err(FieldError::new("code", "is required").into());
    }
    let shift = changed_shift(code, None, req)?;
    let name = req.name.as_deref().unwrap_or_default().trim();
    state.store.create_shift(name, &shift).await.map_err(store_error)?;
    let info = ShiftInfo::of(name, &shift);
    audit::record(&state.store, caller, Entry::new("create", "shift", code).after(&info)).await;
    Ok(info)
}

/// Changes a shift (root); the days of its employees from `effective_from` are recomputed.
#[utoipa::path(put, path = "/api/v1/shifts/{code}", tag = "settings", params(("code" = String, Path)),
    request_body = ShiftSettings, responses((status = 200, body = ShiftInfo), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 413), (status = 503)))]
pub async fn update_shift(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    Body(change): Body<ShiftSettings>,
) -> Result<Json<ShiftInfo>, ApiError> {
    Ok(Json(change_shift(&state, &caller, &code, &change).await?))
}

/// Checks, stores and audits a change of shift `code` (the API, the web form share it).
///
/// # Errors
/// `403` unless root, `404` for an unknown shift, `400` naming the field.
pub async fn change_shift(
    state: &AppState,
    caller: &Caller,
    code: &str,
    change: &ShiftSettings,
) -> Result<ShiftInfo, ApiError> {
    caller.require(Action::Write, None)?;
    if let Some(other) = change.code.as_deref().filter(|c| *c != code) {
        return Err(FieldError::new("code", format!("{other:?} differs from the path's {code:?}")).into());
    }
    let (old_name, old) = current_shift(state, code).await?;
    let shift = changed_shift(code, Some(&old), change)?;
    let name = change.name.as_deref().map_or(old_name.as_str(), str::trim).to_owned();
    let from = state.backfill_from(change.effective_from);
    state.store.update_shift(&name, &shift, from).await.map_err(store_error)?;
    let info = ShiftInfo::of(&name, &shift);
    audit::record(
        &state.store,
        caller,
        Entry::new("update", "shift", code).before(&ShiftInfo::of(&old_name, &old)).after(&info),
    )
    .await;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    fn new(start: (u32, u32), end: (u32, u32)) -> ShiftSettings {
        ShiftSettings {
            name: Some("General".into()),
            start: Some(t(start.0, start.1)),
            end: Some(t(end.0, end.1)),
            ..ShiftSettings::default()
        }
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let mut current = Shift::new("GEN", NaiveTime::MIN, t(8, 0));
        current.grace_late_in = Duration::minutes(7);
        current.debounce = Duration::seconds(30);
        current.overtime_threshold_after_shift = None;
        let change = ShiftSettings { start: Some(t(9, 30)), grace_early_out_mins: Some(5), ..Default::default() };
        let shift = changed_shift("GEN", Some(&current), &change).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((shift.start, shift.end), (t(9, 30), t(8, 0)));
        assert_eq!(shift.grace_late_in, Duration::minutes(7));
        assert_eq!(shift.grace_early_out, Duration::minutes(5));
        assert_eq!(shift.debounce, Duration::seconds(30));
        assert_eq!(shift.overtime_threshold_after_shift, None);
    }

    #[test]
    fn every_field_is_settable_and_null_clears() {
        let json = r#"{"code": "L", "name": "Lunch", "start": "09:00:00", "end": "18:00:00",
            "overtime_threshold_before_shift_mins": null, "overtime_threshold_after_shift_mins": 15,
            "deduct_lunch_break": true, "lunch_break_start": "13:00:00", "lunch_break_duration_mins": 45,
            "check_in_window_before_start_mins": 60, "check_out_window_after_end_mins": 180,
            "pairing": "by_state", "debounce_secs": 90, "single_punch": "half_day"}"#;
        let change: ShiftSettings = serde_json::from_str(json).unwrap_or_default();
        let s = changed_shift("L", None, &change).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.overtime_threshold_before_shift, None);
        assert_eq!(s.overtime_threshold_after_shift, Some(Duration::minutes(15)));
        assert!(s.deduct_lunch_break);
        assert_eq!((s.lunch_break_start, s.lunch_break_duration), (Some(t(13, 0)), Duration::minutes(45)));
        assert_eq!(s.check_in_window_before_start, Duration::minutes(60));
        assert_eq!(s.check_out_window_after_end, Duration::minutes(180));
        assert_eq!((s.pairing, s.debounce), (PairingMode::ByState, Duration::seconds(90)));
        assert_eq!(s.single_punch, SinglePunchPolicy::HalfDay);
        let info = ShiftInfo::of("Lunch", &s);
        assert_eq!(info.overtime_threshold_before_shift_mins, None);
        assert_eq!(info.lunch_break_duration_mins, 45);
        let keep: ShiftSettings = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(keep.lunch_break_start, None, "absent: keep");
        let clear: ShiftSettings = serde_json::from_str(r#"{"lunch_break_start": null}"#).unwrap_or_default();
        assert_eq!(clear.lunch_break_start, Some(None), "null: clear");
    }

    proptest::proptest! {
        // Any settings: a valid shift, or a refusal naming one of the API's fields; never a panic.
        #[test]
        fn any_settings_give_a_valid_shift_or_a_named_field(
            start in 0u32..1440, end in 0u32..1440, minutes in proptest::collection::vec(-100i64..2000, 9),
            pairing in "(first_last|pairs|by_state|mandays|x)", deduct in proptest::bool::ANY,
            lunch in proptest::option::of(0u32..1440), debounce in -10i64..4000,
        ) {
            let time = |m: u32| NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap_or_default();
            let settings = ShiftSettings {
                name: Some("N".into()),
                start: Some(time(start)),
                end: Some(time(end)),
                grace_late_in_mins: Some(minutes[0]),
                grace_early_out_mins: Some(minutes[1]),
                min_half_day_mins: Some(minutes[2]),
                max_work_for_half_day_mins: Some(minutes[3]),
                overtime_threshold_before_shift_mins: Some(Some(minutes[4])),
                overtime_threshold_after_shift_mins: Some(None),
                deduct_lunch_break: Some(deduct),
                lunch_break_start: Some(lunch.map(time)),
                lunch_break_duration_mins: Some(minutes[5]),
                check_in_window_before_start_mins: Some(minutes[6]),
                check_out_window_after_end_mins: Some(minutes[7]),
                pairing: Some(pairing),
                debounce_secs: Some(debounce),
                ..ShiftSettings::default()
            };
            match changed_shift("P", None, &settings) {
                Ok(shift) => proptest::prop_assert_eq!(shift.validate(), Ok(())),
                Err(e) => {
                    let fields = [
                        "end", "grace_late_in_mins", "grace_early_out_mins", "min_half_day_mins",
                        "max_work_for_half_day_mins", "overtime_threshold_before_shift_mins", "lunch_break_start",
                        "lunch_break_duration_mins", "check_in_window_before_start_mins",
                        "check_out_window_after_end_mins", "pairing", "debounce_secs",
                    ];
                    proptest::prop_assert!(fields.contains(&e.field), "{:?}", e);
                }
            }
        }
    }

    #[test]
    fn refusals_start_with_the_api_field() {
        let refusal = |c: &ShiftSettings| {
            let e = changed_shift("GEN", None, c).expect_err("refused");
            format!("{}: {}", e.field, e.message)
        };
        assert!(refusal(&new((9, 0), (9, 0))).starts_with("end: "));
        let mut c = new((9, 0), (18, 0));
        c.grace_late_in_mins = Some(600);
        let m = refusal(&c);
        assert!(m.starts_with("grace_late_in_mins: 600 minutes is more than 540 minutes"), "{m}");
        c.grace_late_in_mins = Some(5000);
        assert!(refusal(&c).starts_with("grace_late_in_mins: 5000 is not between 0 and 1440"));
        let mut c = new((9, 0), (18, 0));
        c.min_half_day_mins = Some(400);
        c.max_work_for_half_day_mins = Some(300);
        assert!(refusal(&c).starts_with("min_half_day_mins: 400 is more than max_work_for_half_day_mins"));
        let mut c = new((9, 0), (18, 0));
        c.deduct_lunch_break = Some(true);
        c.lunch_break_start = Some(Some(t(17, 45)));
        assert!(refusal(&c).starts_with("lunch_break_start: "));
        let mut c = new((9, 0), (18, 0));
        c.debounce_secs = Some(3600);
        assert!(refusal(&c).starts_with("debounce_secs: 3600 is not between 0 and 1800 seconds"));
        let mut c = new((9, 0), (18, 0));
        c.pairing = Some("fifo".into());
        assert!(refusal(&c).starts_with("pairing: \"fifo\" is not one of first_last"));
        let mut c = new((9, 0), (18, 0));
        c.single_punch = Some("maybe".into());
        assert!(refusal(&c).starts_with("single_punch: "));
        let mut c = new((9, 0), (18, 0));
        c.check_out_window_after_end_mins = Some(-1);
        assert!(refusal(&c).starts_with("check_out_window_after_end_mins: -1 is not between"));
        let mut c = new((9, 0), (18, 0));
        c.name = Some(" ".into());
        assert!(refusal(&c).starts_with("name: "));
        c.name = None;
        assert!(refusal(&c).starts_with("name: is required"));
        assert_eq!(changed_shift("", None, &new((9, 0), (18, 0))).expect_err("refused").field, "code");
    }
}
