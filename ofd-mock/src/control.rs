//! The HTTP control plane: mode selection, statistics, traffic counters, the document record, the last
//! message's bytes, reset and health.
//!
//! **Invariant:** with a control token configured, no route (the fallback included) runs for a request
//! without `Authorization: Bearer TOKEN`; it gets 401 `unauthorized`. Without a token every request is
//! served, and `serve` binds the control plane to loopback only.
//!
//! **Invariant:** a call that changes the mode (`/set_mode`, `POST /_mock/mode`, `/_mock/reset`) answers 200
//! only once the change is in effect: the next connection gets the new behaviour, and the OFD listening
//! socket is already open or closed as the mode asks. If the socket cannot be reopened within
//! [`APPLY_WAIT_MAX`], the answer is 503 `not_in_effect` (indefinite: the mode stays selected and the mock
//! keeps trying).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::mode::{Behaviour, ModeSpec, Refuse};
use crate::schedule::Flap;
use crate::state::{MockState, NotInEffect};
use crate::store::StoreError;
use crate::traffic::TrafficView;

/// Largest control request body.
pub const BODY_LEN_MAX: usize = 64 * 1024;

/// Longest flapping timeline `GET /_mock/timeline` renders.
pub const TIMELINE_UNTIL_MS_MAX: u64 = 86_400_000;

/// Longest a mode change waits for the OFD listener to carry it out before answering 503. Closing is
/// immediate and reopening takes one bind, so only a port taken by another process gets near this.
pub const APPLY_WAIT_MAX: Duration = Duration::from_secs(3);

/// An error answer: a stable machine `code`, a human `message`, and `definite` (true when the request
/// certainly changed nothing).
#[derive(Debug)]
pub struct ControlError {
    status: StatusCode,
    code: &'static str,
    message: String,
    definite: bool,
}

impl ControlError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ControlError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            definite: true,
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "message": self.message, "definite": self.definite});
        (self.status, Json(body)).into_response()
    }
}

impl From<NotInEffect> for ControlError {
    fn from(e: NotInEffect) -> Self {
        tracing::warn!(error = %e, "a mode change is not in effect in time");
        ControlError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "not_in_effect",
            message: e.to_string(),
            // The mode is selected and the listener keeps trying: the change may still happen.
            definite: false,
        }
    }
}

impl From<JsonRejection> for ControlError {
    fn from(r: JsonRejection) -> Self {
        ControlError {
            status: r.status(),
            code: "bad_json",
            message: r.body_text(),
            definite: true,
        }
    }
}

impl From<QueryRejection> for ControlError {
    fn from(r: QueryRejection) -> Self {
        ControlError::bad("bad_query", r.body_text())
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure in the control plane");
        ControlError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "store_failed",
            message: "the record store failed; see the mock's log".into(),
            // `reset` clears the store before the mode, so a failure there changed nothing.
            definite: true,
        }
    }
}

type Shared = State<Arc<MockState>>;

/// The control plane router.
pub fn app(state: Arc<MockState>) -> Router {
    let routes = Router::new()
        .route("/set_mode", post(set_mode))
        .route("/_mock/mode", post(post_mode).get(get_mode))
        .route("/_mock/stats", get(stats))
        .route("/_mock/counters", get(counters))
        .route("/_mock/counters/reset", post(reset_counters))
        .route("/_mock/last_message_raw", get(last_message_raw))
        .route("/_mock/documents", get(documents))
        .route("/_mock/timeline", get(timeline))
        .route("/_mock/reset", post(reset))
        .route("/_mock/health", get(health))
        .layer(DefaultBodyLimit::max(BODY_LEN_MAX));
    let token = state.config.control_token.clone();
    tool_http::require_bearer(routes, token, unauthorized).with_state(state)
}

/// The answer to a control request without the control token (`tool_http` makes it a 401 with
/// `WWW-Authenticate: Bearer`).
fn unauthorized(refused: &tool_http::Refused<'_>) -> Response {
    tracing::info!(path = %refused.path, presented = refused.presented, "control request refused: no valid token");
    ControlError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: "this control plane needs `Authorization: Bearer TOKEN` with its control token"
            .into(),
        definite: true,
    }
    .into_response()
}

/// The seed's two-mode switch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMode {
    mode: SeedMode,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SeedMode {
    Online,
    Offline,
}

async fn set_mode(
    State(s): Shared,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let Json(body) = body?;
    let req: SetMode = serde_json::from_value(body).map_err(|e| {
        ControlError::bad("bad_mode", format!("{e}; /set_mode takes {{\"mode\": \"online\"|\"offline\"}}, /_mock/mode has the full menu"))
    })?;
    let behaviour = match req.mode {
        SeedMode::Online => Behaviour::Online {},
        SeedMode::Offline => Behaviour::Offline {
            refuse: Refuse::CloseListener,
        },
    };
    let generation = s.set_mode(ModeSpec {
        behaviour,
        ..ModeSpec::default()
    });
    s.in_effect(generation, APPLY_WAIT_MAX).await?;
    Ok(Json(json!({"status": "ok", "mode": s.mode_json()})))
}

async fn post_mode(
    State(s): Shared,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    let Json(body) = body?;
    let spec =
        ModeSpec::from_json(body).map_err(|e| ControlError::bad("bad_mode", e.to_string()))?;
    tracing::info!(mode = %spec.to_json(), "mode changed");
    let generation = s.set_mode(spec);
    s.in_effect(generation, APPLY_WAIT_MAX).await?;
    Ok(Json(json!({"status": "ok", "mode": s.mode_json()})))
}

async fn get_mode(State(s): Shared) -> Json<Value> {
    Json(s.mode_json())
}

async fn stats(State(s): Shared) -> Json<Value> {
    Json(s.stats_json())
}

async fn counters(State(s): Shared) -> Json<TrafficView> {
    Json(s.traffic.view())
}

/// Answers only after every counter is zero, with the zeroed figures.
async fn reset_counters(State(s): Shared) -> Json<TrafficView> {
    Json(s.traffic.reset())
}

/// The last complete message the OFD port read, byte for byte: what a client replays to measure the mock.
async fn last_message_raw(State(s): Shared) -> Result<Json<Value>, ControlError> {
    let raw = s.traffic.last_message_raw().ok_or(ControlError {
        status: StatusCode::NOT_FOUND,
        code: "no_message",
        message: "no complete message received since start or the last /_mock/reset".into(),
        definite: true,
    })?;
    Ok(Json(json!({"hex": hex::encode(&raw)})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocFilter {
    #[serde(rename = "fn")]
    fn_number: Option<String>,
    fd: Option<u32>,
}

async fn documents(
    State(s): Shared,
    q: Result<Query<DocFilter>, QueryRejection>,
) -> Result<Json<Value>, ControlError> {
    let Query(q) = q?;
    let docs: Vec<Value> = s
        .store
        .list(q.fn_number.as_deref())
        .iter()
        .filter(|r| q.fd.is_none_or(|fd| r.fd_number == fd))
        .map(|r| r.to_json())
        .collect();
    Ok(Json(json!({"count": docs.len(), "documents": docs})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    until_ms: u64,
}

async fn timeline(
    State(s): Shared,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Json<Value>, ControlError> {
    let Query(q) = q?;
    if q.until_ms > TIMELINE_UNTIL_MS_MAX {
        return Err(ControlError::bad(
            "bad_query",
            format!("until_ms must be at most {TIMELINE_UNTIL_MS_MAX}"),
        ));
    }
    let spec = s.with_mode(|m| m.spec().clone());
    let Behaviour::Flapping {
        online_ms,
        offline_ms,
        jitter_ms,
        ..
    } = spec.behaviour
    else {
        return Err(ControlError::bad(
            "not_flapping",
            "the current mode is not flapping; it has no timeline",
        ));
    };
    let flap = Flap {
        online_ms,
        offline_ms,
        jitter_ms,
        seed: spec.seed,
    };
    let entries: Vec<Value> = flap
        .timeline(q.until_ms)
        .into_iter()
        .map(|(at_ms, online)| json!({"at_ms": at_ms, "state": if online { "online" } else { "offline" }}))
        .collect();
    Ok(Json(json!({"seed": spec.seed, "timeline": entries})))
}

async fn reset(State(s): Shared) -> Result<Json<Value>, ControlError> {
    let generation = s.reset()?;
    s.in_effect(generation, APPLY_WAIT_MAX).await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn health(State(s): Shared) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "ofd_addr": s.ofd_addr.to_string(),
        "listening": s.listening(),
        "persistent": s.config.db.is_some(),
        "mode": s.mode_json()["mode"],
    }))
}
