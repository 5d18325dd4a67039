//! The POS HTTP API (axum). This module is the only place that converts between the wire types of
//! `adapter-api` and the adapter's inner types; errors go through [`AppError`].

mod auth;
mod backup;
mod contract;
mod convert;
mod error;
mod limits;
mod metrics;
pub mod openapi;
mod request_log;
mod resolve;
mod serve;
mod status;

use std::sync::Arc;
use std::time::Instant;

use adapter_api as api;
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use auth::{OPEN_REQUESTER, Requester};
pub use convert::sale_from_request;
pub use error::AppError;
pub use serve::{ServeConfig, serve};

use crate::config::Config;
use crate::fiscal::FiscalDocument;
use crate::service::{Fiscalizer, KktState, OfdStatus, ReceiptRow, SubmitError};
use crate::sync::SyncHandle;
use api::ErrorCode;

/// Largest request body accepted; a receipt of 100 items fits many times over.
const BODY_BYTES_MAX: usize = 256 * 1024;
/// Idempotency keys are opaque strings of bounded length.
const KEY_CHARS_MAX: usize = 128;
/// Documents listed by `GET /v1/kkt/buffer/dlq`.
const DLQ_LIST_MAX: u32 = 1_000;

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub fiscalizer: Fiscalizer,
    pub sync: SyncHandle,
    pub started: Instant,
}

/// One route of the POS API: its method, its path pattern as `app()` declares it, its handler.
type Route = (Method, &'static str, MethodRouter<Arc<AppState>>);

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, Arc<AppState>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes by");
    (method, path, on(filter, handler))
}

/// Every route of the POS API. `app()` registers exactly these; the OpenAPI document
/// (`openapi.rs`) must describe exactly these, which a test checks through [`routes`].
fn route_table() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/kkt/receipt", post_receipt),
        route(Method::GET, "/v1/kkt/receipt", get_receipt_by_key),
        route(Method::GET, "/v1/kkt/receipt/{receipt_id}", get_receipt),
        route(
            Method::POST,
            "/v1/kkt/receipt/{receipt_id}/resolve",
            resolve::resolve,
        ),
        route(Method::GET, "/v1/kkt/buffer/status", status::buffer_status),
        route(Method::POST, "/v1/kkt/buffer/sync", buffer_sync),
        route(Method::GET, "/v1/kkt/buffer/dlq", status::dlq_list),
        route(
            Method::POST,
            "/v1/kkt/buffer/dlq/retry",
            status::dlq_retry_many,
        ),
        route(Method::POST, "/v1/admin/backup", backup::backup),
        route(
            Method::POST,
            "/v1/kkt/buffer/dlq/{receipt_id}/retry",
            status::dlq_retry,
        ),
        route(Method::POST, "/v1/kkt/shift/open", shift_open),
        route(Method::POST, "/v1/kkt/shift/close", shift_close),
        route(Method::GET, "/v1/kkt/status", kkt_status),
        route(Method::GET, "/v1/health", status::health),
        route(Method::GET, "/v1/ready", status::ready),
        route(Method::GET, "/metrics", metrics::metrics),
        route(Method::GET, "/openapi.json", openapi::serve),
    ]
}

/// The method and path pattern of every route of [`app`], in the order it registers them.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The router of the POS API.
pub fn app(state: Arc<AppState>) -> Router {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        // Inside the auth layer: only an authenticated request's body is waited for.
        .route_layer(axum::middleware::from_fn_with_state(
            (state.config.body_read_timeout, BODY_BYTES_MAX),
            limits::read_body,
        ))
        // After every route: the layer covers only routes added before it (auth.rs).
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(auth::Auth::new(&state.config)),
            auth::check,
        ))
        .route_layer(axum::middleware::from_fn(request_log::note_route))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .fallback(|| async { AppError::definite(ErrorCode::NotFound, "no such endpoint") })
        .with_state(state)
}

/// Decodes a body journaled before the sale encoding was versioned (the POS request as received),
/// for reconciliation after a restart or an upgrade.
pub fn decode_legacy_journaled_sale(body: &str) -> Result<crate::sale::Sale, String> {
    let request: api::ReceiptRequest = serde_json::from_str(body).map_err(|e| e.to_string())?;
    sale_from_request(&request).map_err(|e| e.to_string())
}

fn journal_error(e: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "journal read failed");
    AppError::indefinite(
        ErrorCode::JournalUnavailable,
        "the journal cannot be read right now",
    )
}

async fn post_receipt(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let mut request: api::ReceiptRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::definite(ErrorCode::MalformedBody, format!("receipt body: {e}")))?;
    let header_key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    AppError::definite(
                        ErrorCode::InvalidField,
                        "Idempotency-Key: not visible ASCII",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let key = match (header_key, request.idempotency_key.take()) {
        (Some(h), Some(f)) if h != f => {
            return Err(AppError::definite(
                ErrorCode::InvalidField,
                "Idempotency-Key header and idempotency_key field differ",
            ));
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => {
            return Err(AppError::definite(
                ErrorCode::IdempotencyKeyMissing,
                "send an Idempotency-Key header or an idempotency_key field",
            ));
        }
    };
    if key.is_empty() || key.chars().count() > KEY_CHARS_MAX || key.chars().any(char::is_control) {
        return Err(AppError::definite(
            ErrorCode::InvalidField,
            format!("idempotency key: 1 to {KEY_CHARS_MAX} printable characters"),
        ));
    }
    let sale = sale_from_request(&request)
        .map_err(|e| AppError::definite(ErrorCode::InvalidField, e.to_string()))?;
    // The canonical body (the key left out) decides "same request" for idempotency.
    let canonical = serde_json::to_string(&request)
        .map_err(|e| AppError::definite(ErrorCode::MalformedBody, e.to_string()))?;
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    let result = state.fiscalizer.submit(key, hash, sale).await;
    crate::metrics::receipt(receipt_outcome(&result));
    match result {
        Ok(row) => receipt_answer(&row),
        Err(e) => Err(submit_error(e)),
    }
}

/// The `outcome` label of `adapter_receipts_total` for a sale's answer.
fn receipt_outcome(result: &Result<ReceiptRow, SubmitError>) -> &'static str {
    match result {
        Ok(row) => match row.kkt_state {
            KktState::Fiscalized => "printed",
            KktState::Rejected => "refused",
            KktState::Received | KktState::InFlight => "buffered",
        },
        Err(SubmitError::KeyReused) => "key_reused",
        Err(SubmitError::InProgress) => "in_progress",
        Err(SubmitError::BufferFull(_)) => "buffer_full",
        Err(SubmitError::JournalUnavailable(_)) => "journal_unavailable",
        Err(SubmitError::KktRefused { .. }) => "refused",
        Err(SubmitError::KktUnavailable(_)) => "kkt_unavailable",
        Err(SubmitError::ReconciliationPending(_)) => "reconciliation_pending",
        Err(SubmitError::Internal(_)) => "internal",
    }
}

fn submit_error(e: SubmitError) -> AppError {
    let message = e.to_string();
    match e {
        SubmitError::KeyReused => AppError::definite(ErrorCode::IdempotencyKeyReused, message),
        SubmitError::InProgress => AppError::indefinite(ErrorCode::RequestInProgress, message),
        SubmitError::BufferFull(_) => AppError::definite(ErrorCode::BufferFull, message),
        SubmitError::JournalUnavailable(_) => {
            AppError::definite(ErrorCode::JournalUnavailable, message)
        }
        SubmitError::KktRefused { .. } => AppError::definite(ErrorCode::KktRefused, message),
        SubmitError::KktUnavailable(_) => AppError::definite(ErrorCode::KktUnavailable, message),
        SubmitError::ReconciliationPending(_) => {
            AppError::definite(ErrorCode::ReconciliationPending, message)
        }
        SubmitError::Internal(_) => {
            tracing::error!(error = %message, "internal error");
            AppError::indefinite(
                ErrorCode::Internal,
                "internal error; retry with the same idempotency key",
            )
        }
    }
}

/// The answer for a journaled row: 200 with the receipt, or the stored refusal.
fn receipt_answer(row: &ReceiptRow) -> Result<Response, AppError> {
    if row.kkt_state == KktState::Rejected {
        let reason = row.last_error.clone().unwrap_or_default();
        let code = match row.error_code.as_deref() {
            Some("kkt_unavailable") => ErrorCode::KktUnavailable,
            Some("journal_unavailable") => ErrorCode::JournalUnavailable,
            _ => ErrorCode::KktRefused,
        };
        return Err(AppError::definite(
            code,
            format!("receipt {} was not printed: {reason}", row.receipt_id),
        ));
    }
    Ok((StatusCode::OK, Json(receipt_response(row))).into_response())
}

pub(super) fn receipt_response(row: &ReceiptRow) -> api::ReceiptResponse {
    let status = match row.kkt_state {
        KktState::Fiscalized => api::ReceiptStatus::Printed,
        KktState::Rejected => api::ReceiptStatus::Rejected,
        KktState::Received | KktState::InFlight => api::ReceiptStatus::Buffered,
    };
    let ofd_status = match row.status {
        Some(OfdStatus::Synced) => api::OfdStatus::Synced,
        Some(OfdStatus::Dlq) => api::OfdStatus::Dlq,
        Some(OfdStatus::Pending) | None => api::OfdStatus::Pending,
    };
    let fiscal = row.fiscal.as_ref().map(|f| api::Fiscal {
        fn_number: f.fn_number.clone(),
        fd_number: f.fd_number,
        fpd: f.fpd.to_string(),
        shift_number: f.shift_number,
        receipt_number: f.receipt_number,
        datetime: f.fiscal_time.clone(),
        total: api::Money::from_kopecks(f.total_kopecks.max(0) as u64),
        qr: f.qr(),
    });
    api::ReceiptResponse {
        receipt_id: row.receipt_id.clone(),
        status,
        fiscal_doc_id: row.fiscal.as_ref().map(FiscalDocument::doc_id),
        fiscal,
        ofd_status,
    }
}

async fn get_receipt(
    State(state): State<Arc<AppState>>,
    Path(receipt_id): Path<String>,
) -> Result<Response, AppError> {
    let row = state
        .fiscalizer
        .receipt(&receipt_id)
        .await
        .map_err(journal_error)?;
    let row = row.ok_or_else(|| {
        AppError::definite(ErrorCode::NotFound, format!("no receipt {receipt_id}"))
    })?;
    Ok(Json(receipt_response(&row)).into_response())
}

#[derive(Deserialize)]
struct KeyQuery {
    idempotency_key: String,
}

async fn get_receipt_by_key(
    State(state): State<Arc<AppState>>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, AppError> {
    let row = state
        .fiscalizer
        .receipt_by_key(&q.idempotency_key)
        .await
        .map_err(journal_error)?;
    let row = row.ok_or_else(|| {
        AppError::definite(
            ErrorCode::NotFound,
            format!("no receipt with key {}", q.idempotency_key),
        )
    })?;
    Ok(Json(receipt_response(&row)).into_response())
}

#[derive(Deserialize)]
struct SyncQuery {
    #[serde(default)]
    force: bool,
}

async fn buffer_sync(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SyncQuery>,
) -> Result<Json<api::SyncResult>, AppError> {
    let r = state
        .sync
        .sync_now(q.force)
        .await
        .map_err(|e| AppError::indefinite(ErrorCode::Internal, e.to_string()))?;
    Ok(Json(api::SyncResult {
        synced: r.synced.into(),
        failed: r.failed.into(),
        skipped: r.skipped.into(),
        stopped: sync_stop(&r.stop),
    }))
}

/// The wire name of why a pass stopped: the name alone. The text some reasons carry (an OFD or
/// KKT error) is internal detail, not answered; `GET /v1/kkt/buffer/status` names a stuck head.
fn sync_stop(stop: &crate::sync::StopReason) -> api::SyncStop {
    use crate::sync::StopReason as S;
    match stop {
        S::Drained => api::SyncStop::Drained,
        S::BatchFull => api::SyncStop::BatchFull,
        S::BreakerOpen => api::SyncStop::BreakerOpen,
        S::BackingOff => api::SyncStop::BackingOff,
        S::LockBusy => api::SyncStop::LockBusy,
        S::LockLost => api::SyncStop::LockLost,
        S::DlqHead { .. } => api::SyncStop::DlqHead,
        S::Transport(_) => api::SyncStop::Transport,
        S::FnRefusedAck(_) => api::SyncStop::FnRefusedAck,
        S::Kkt(_) => api::SyncStop::Kkt,
    }
}

async fn shift_open(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.fiscalizer.open_shift().await)
}

async fn shift_close(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.fiscalizer.close_shift().await)
}

fn shift_answer(
    result: Result<FiscalDocument, SubmitError>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    let doc = result.map_err(submit_error)?;
    Ok(Json(api::ShiftResponse {
        fiscal_doc_id: format!("{}-{}", doc.fn_number, doc.fd_number),
        fd_number: doc.fd_number,
        fpd: doc.fpd.to_string(),
        shift_number: doc.shift_number,
        datetime: doc.fiscal_time,
        fn_number: doc.fn_number,
    }))
}

async fn kkt_status(State(state): State<Arc<AppState>>) -> Result<Json<api::KktStatus>, AppError> {
    let status = state.fiscalizer.device_status().await;
    let s = status.map_err(|e| AppError::definite(ErrorCode::KktUnavailable, e.to_string()))?;
    Ok(Json(api::KktStatus {
        mode: api::KktMode::from_code(s.mode.code()),
        mode_code: s.mode.code(),
        fn_number: s.fn_number,
        last_fd: s.last_fd,
        unresolved_receipts: state.fiscalizer.has_unresolved(),
    }))
}
