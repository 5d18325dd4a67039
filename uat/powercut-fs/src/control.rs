//! The loopback HTTP control API the `powercut-fs` binary serves, so a test runner or a
//! shell can cut the power, inject failures and read counters.
//!
//! Routes (JSON bodies, unknown keys rejected):
//! - `POST /power_cut` → `CutReport`: drop everything unsynced, refuse IO until remounted.
//! - `POST /writeback {"seed", "fraction"}` → `CutReport`: persist a seeded subset, then cut.
//! - `POST /torn_write {"file", "seed"}` → `CutReport`: persist a prefix of the last unsynced
//!   write to `file` (relative to the mount root), then cut.
//! - `POST /crash_at_fsync {"n"}`: cut at the `n`th fsync from now.
//! - `POST /fail {"op": "write"|"fsync", "errno": "ENOSPC"|"EIO", "count"}` or with
//!   `"probability"` and `"seed"` instead of `"count"`.
//! - `POST /heal`: drop failure rules and an armed crash.
//! - `POST /remount` → `Stats`: unmount and mount again (after a cut: the "reboot").
//! - `GET /stats` → `Stats`.
//! - `POST /shutdown`: unmount and exit the binary.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{CutMode, Error, FailErrno, FailOp, FailRule, FailTrigger, Mounted};

/// What the handlers share: the mount and the shutdown signal.
#[derive(Clone)]
pub struct ControlState {
    pub mounted: Arc<Mutex<Mounted>>,
    pub shutdown: watch::Sender<bool>,
}

impl ControlState {
    pub fn new(mounted: Mounted) -> Self {
        Self {
            mounted: Arc::new(Mutex::new(mounted)),
            shutdown: watch::Sender::new(false),
        }
    }

    /// Resolves once `POST /shutdown` was called.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which also ends the wait.
        let _ = rx.wait_for(|requested| *requested).await;
    }
}

pub fn app(state: ControlState) -> Router {
    Router::new()
        .route("/power_cut", post(power_cut))
        .route("/writeback", post(writeback))
        .route("/torn_write", post(torn_write))
        .route("/crash_at_fsync", post(crash_at_fsync))
        .route("/fail", post(fail))
        .route("/heal", post(heal))
        .route("/remount", post(remount))
        .route("/stats", get(stats))
        .route("/shutdown", post(shutdown))
        .with_state(state)
}

/// Serves the control API until `POST /shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, state: ControlState) -> std::io::Result<()> {
    let waiter = state.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { waiter.shutdown_requested().await })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WritebackBody {
    seed: u64,
    fraction: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TornBody {
    file: PathBuf,
    seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashBody {
    n: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    op: FailOp,
    errno: FailErrno,
    count: Option<u64>,
    probability: Option<f64>,
    seed: Option<u64>,
}

impl FailBody {
    fn rule(self) -> Result<FailRule, Error> {
        let trigger = match (self.count, self.probability, self.seed) {
            (Some(n), None, None) => FailTrigger::Count(n),
            (None, Some(probability), seed) => FailTrigger::Probability {
                probability,
                seed: seed.unwrap_or(0),
            },
            _ => {
                return Err(Error::Invalid(
                    "give either count, or probability with an optional seed".into(),
                ));
            }
        };
        Ok(FailRule {
            op: self.op,
            errno: self.errno,
            trigger,
        })
    }
}

#[derive(Debug, Serialize)]
struct Done {
    ok: bool,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

fn error_response(e: &Error) -> Response {
    let (status, code) = match e {
        Error::AlreadyCut => (StatusCode::CONFLICT, "already_cut"),
        Error::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        Error::Backing(..) | Error::Mount(..) | Error::Unmount(..) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "io")
        }
    };
    let body = ErrorBody {
        code,
        message: e.to_string(),
    };
    (status, Json(body)).into_response()
}

/// Runs `action` on the mount off the async threads: cuts and remounts block on the
/// filesystem lock and on the kernel.
async fn with_mount<T, F>(state: &ControlState, action: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut Mounted) -> Result<T, Error> + Send + 'static,
{
    let mounted = Arc::clone(&state.mounted);
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = mounted.lock().unwrap_or_else(PoisonError::into_inner);
        action(&mut guard)
    })
    .await;
    match joined {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "control task failed").into_response(),
    }
}

async fn power_cut(State(state): State<ControlState>) -> Response {
    with_mount(&state, |m| m.cut(CutMode::DropAll)).await
}

async fn writeback(State(state): State<ControlState>, Json(b): Json<WritebackBody>) -> Response {
    let mode = CutMode::Writeback {
        seed: b.seed,
        fraction: b.fraction,
    };
    with_mount(&state, move |m| m.cut(mode)).await
}

async fn torn_write(State(state): State<ControlState>, Json(b): Json<TornBody>) -> Response {
    let mode = CutMode::TornWrite {
        file: b.file,
        seed: b.seed,
    };
    with_mount(&state, move |m| m.cut(mode)).await
}

async fn crash_at_fsync(State(state): State<ControlState>, Json(b): Json<CrashBody>) -> Response {
    with_mount(&state, move |m| {
        m.crash_at_fsync(b.n).map(|()| Done { ok: true })
    })
    .await
}

async fn fail(State(state): State<ControlState>, Json(b): Json<FailBody>) -> Response {
    let rule = match b.rule() {
        Ok(rule) => rule,
        Err(e) => return error_response(&e),
    };
    with_mount(&state, move |m| m.fail(rule).map(|()| Done { ok: true })).await
}

async fn heal(State(state): State<ControlState>) -> Response {
    with_mount(&state, |m| {
        m.heal();
        Ok(Done { ok: true })
    })
    .await
}

async fn remount(State(state): State<ControlState>) -> Response {
    with_mount(&state, |m| m.remount().map(|()| m.stats())).await
}

async fn stats(State(state): State<ControlState>) -> Response {
    with_mount(&state, |m| Ok(m.stats())).await
}

async fn shutdown(State(state): State<ControlState>) -> Response {
    state.shutdown.send_replace(true);
    Json(Done { ok: true }).into_response()
}
