//! The HTTP control API under `/_emu/`: health, state, journal, traffic counters, the fault menu, power,
//! clock and reset.
//!
//! **Invariant:** with a control token, no route (the fallback included) runs for a request without
//! `Authorization: Bearer TOKEN`; it gets 401. Without one every request is served, and `serve` binds
//! the control API to loopback only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::emu::{ControlError, Shared};
use crate::faults::FaultRequest;
use tool_http::{Refused, Secret};

/// Largest control request body accepted.
const BODY_MAX_BYTES: usize = 16 * 1024;

/// A control-API error: a status and a clear message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::ResetDisabled => Self(StatusCode::FORBIDDEN, e.to_string()),
            ControlError::Store(_) => Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

/// Parses a JSON body strictly (unknown fields are errors) with a message that names the problem.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > BODY_MAX_BYTES {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

/// The router; `state` is shared with the wire loop. With a `token`, every request must carry it.
pub fn app(state: Arc<Shared>, token: Option<Secret>) -> Router {
    let routes = Router::new()
        .route("/_emu/health", get(health))
        .route("/_emu/state", get(state_view))
        .route("/_emu/journal", get(journal))
        .route("/_emu/commands", get(commands))
        .route("/_emu/counters", get(counters))
        .route("/_emu/counters/reset", post(reset_counters))
        .route("/_emu/fault", post(fault))
        .route("/_emu/clear", post(clear))
        .route("/_emu/power_on", post(power_on))
        .route("/_emu/clock", post(clock))
        .route("/_emu/reset", post(reset))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such control endpoint".into()) });
    tool_http::require_bearer(routes, token, unauthorized).with_state(state)
}

/// The answer to a control request without the control token (`tool_http` makes it a 401 with
/// `WWW-Authenticate: Bearer`).
fn unauthorized(refused: &Refused<'_>) -> Response {
    tracing::info!(path = %refused.path, presented = refused.presented, "control request refused: no valid token");
    ApiError(
        StatusCode::UNAUTHORIZED,
        "this control API needs `Authorization: Bearer TOKEN` with its control token".into(),
    )
    .into_response()
}

async fn health(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "powered": s.powered(), "host_time": Shared::host_time() }))
}

async fn state_view(State(s): State<Arc<Shared>>) -> Json<crate::emu::StateView> {
    Json(s.state_view())
}

async fn journal(State(s): State<Arc<Shared>>) -> Json<crate::emu::JournalView> {
    Json(s.journal_view())
}

async fn commands(State(s): State<Arc<Shared>>) -> Json<crate::emu::CommandsView> {
    Json(s.commands_view())
}

async fn counters(State(s): State<Arc<Shared>>) -> Json<crate::counters::CountersView> {
    Json(s.counters_view())
}

/// Answers only after every counter is zero, with the zeroed figures.
async fn reset_counters(State(s): State<Arc<Shared>>) -> Json<crate::counters::CountersView> {
    Json(s.reset_counters())
}

async fn fault(
    State(s): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: FaultRequest = parse(&body)?;
    let armed = req
        .arm()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.0))?;
    Ok(Json(json!({ "armed": s.arm(armed) })))
}

async fn clear(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    s.clear();
    Json(json!({ "cleared": true }))
}

async fn power_on(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let disarmed = s.power_on();
    Json(json!({ "powered": true, "power_cuts_disarmed": disarmed }))
}

/// `POST /_emu/clock`: exactly one of an absolute offset or a device time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    /// Device clock minus host clock, seconds.
    offset_s: Option<i64>,
    /// Set the device clock to this Unix time.
    unix: Option<i64>,
    /// Stop the device clock at this Unix time (until the next offset change).
    frozen_unix: Option<u32>,
}

async fn clock(
    State(s): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: ClockRequest = parse(&body)?;
    let offset = match (req.offset_s, req.unix, req.frozen_unix) {
        (Some(o), None, None) => o,
        (None, Some(t), None) => t - Shared::host_time(),
        (None, None, Some(t)) => {
            let now = s.freeze_clock(t);
            return Ok(Json(json!({ "frozen": true, "device_time": now })));
        }
        _ => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "give exactly one of `offset_s`, `unix` or `frozen_unix`".into(),
            ));
        }
    };
    // Ten years either way covers every test and keeps the device clock inside u32 seconds.
    if offset.abs() > 10 * 366 * 86_400 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "clock offset beyond ten years".into(),
        ));
    }
    let now = s.set_clock_offset(offset)?;
    Ok(Json(json!({ "offset_s": offset, "device_time": now })))
}

async fn reset(State(s): State<Arc<Shared>>) -> Result<Json<serde_json::Value>, ApiError> {
    let fn_serial = s.reset()?;
    Ok(Json(json!({ "reset": true, "fn_serial": fn_serial })))
}
