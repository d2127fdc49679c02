//! `/adms/commands` on the local endpoint: queue a command for a push (ADMS) device and read the results the device
//! reported. The device fetches queued commands on its next `getrequest` poll.
//!
//! - `POST /adms/commands` with JSON `{"device": "<serial>", "command": "info"}`,
//!   `{"device": .., "command": "set_time", "time": "2026-03-02 09:00:00"}` (the device's local time) or
//!   `{"device": .., "command": "reupload", "from": "2026-03-01 00:00:00", "until": "2026-03-02 23:59:59"}`;
//!   answers 202 with `{"id": <command id>}`, 400 naming what is wrong, 404 for a device that is not a push device.
//! - `GET /adms/commands?device=<serial>`: `{"device", "outstanding", "results": [{"id", "command", "code",
//!   "finished_at"}]}`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDateTime;
use protocol::DeviceSerial;
use serde::Deserialize;
use serde_json::json;

use super::state::AgentState;
use crate::adms::commands::QueueError;
use crate::adms::AdmsCommand;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    device: String,
    command: String,
    time: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

#[derive(Deserialize)]
pub struct ResultsQuery {
    device: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn local_time(key: &str, value: Option<&str>) -> Result<NaiveDateTime, String> {
    let value = value.ok_or_else(|| format!("{key} is missing"))?;
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| format!("{key} {value:?} is not YYYY-MM-DD HH:MM:SS ({e})"))
}

fn command(request: &CommandRequest) -> Result<AdmsCommand, String> {
    match request.command.as_str() {
        "info" => Ok(AdmsCommand::Info),
        "set_time" => Ok(AdmsCommand::SetTime(local_time("time", request.time.as_deref())?)),
        "reupload" => Ok(AdmsCommand::ReuploadSince {
            from: local_time("from", request.from.as_deref())?,
            until: local_time("until", request.until.as_deref())?,
        }),
        other => Err(format!("command {other:?} is not \"info\", \"set_time\" or \"reupload\"")),
    }
}

/// `POST /adms/commands`.
pub async fn queue(State(state): State<Arc<AgentState>>, Json(request): Json<CommandRequest>) -> Response {
    let device: DeviceSerial = match request.device.parse() {
        Ok(device) => device,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("device: {e}")),
    };
    let command = match command(&request) {
        Ok(command) => command,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.push_commands.enqueue(&device, command) {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response(),
        Err(e @ QueueError::UnknownDevice(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ QueueError::Full(_)) => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
    }
}

/// `GET /adms/commands?device=<serial>`.
pub async fn results(State(state): State<Arc<AgentState>>, Query(query): Query<ResultsQuery>) -> Response {
    let device: DeviceSerial = match query.device.parse() {
        Ok(device) => device,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("device: {e}")),
    };
    let results: Vec<_> = state
        .push_commands
        .results(&device)
        .into_iter()
        .map(|r| json!({ "id": r.id, "command": r.command.text(), "code": r.code, "finished_at": r.finished_at }))
        .collect();
    Json(json!({ "device": device.as_str(), "outstanding": state.push_commands.outstanding(&device), "results": results }))
        .into_response()
}
