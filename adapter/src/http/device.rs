//! The register: its status and the shift reports it prints on request.

use std::sync::Arc;

use adapter_api as api;
use axum::Json;
use axum::extract::{Path, State};

use super::receipt::submit_error;
use super::{AppError, AppState};
use crate::fiscal::FiscalDocument;
use crate::service::SubmitError;
use crate::shop::Register;
use api::ErrorCode;

/// `POST /v1/kkt/shift/open`: the one register's (400 `kkt_id_required` when there are several).
pub(super) async fn shift_open(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.register(None)?.fiscalizer.open_shift().await)
}

/// `POST /v1/kkt/shift/close`: the one register's.
pub(super) async fn shift_close(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.register(None)?.fiscalizer.close_shift().await)
}

/// `POST /v1/kkt/devices/{kkt_id}/shift/open`.
pub(super) async fn device_shift_open(
    State(state): State<Arc<AppState>>,
    Path(kkt_id): Path<String>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.register(Some(&kkt_id))?.fiscalizer.open_shift().await)
}

/// `POST /v1/kkt/devices/{kkt_id}/shift/close`.
pub(super) async fn device_shift_close(
    State(state): State<Arc<AppState>>,
    Path(kkt_id): Path<String>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(
        state
            .register(Some(&kkt_id))?
            .fiscalizer
            .close_shift()
            .await,
    )
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

/// `GET /v1/kkt/status`: the one register's.
pub(super) async fn kkt_status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::KktStatus>, AppError> {
    status_of(state.register(None)?).await
}

/// `GET /v1/kkt/devices/{kkt_id}/status`.
pub(super) async fn device_status(
    State(state): State<Arc<AppState>>,
    Path(kkt_id): Path<String>,
) -> Result<Json<api::KktStatus>, AppError> {
    status_of(state.register(Some(&kkt_id))?).await
}

async fn status_of(register: &Register) -> Result<Json<api::KktStatus>, AppError> {
    let status = register.fiscalizer.device_status().await;
    let s = status.map_err(|e| AppError::definite(ErrorCode::KktUnavailable, e.to_string()))?;
    Ok(Json(api::KktStatus {
        mode: api::KktMode::from_code(s.mode.code()),
        mode_code: s.mode.code(),
        fn_number: s.fn_number,
        last_fd: s.last_fd,
        unresolved_receipts: register.fiscalizer.has_unresolved(),
    }))
}

/// `GET /v1/kkt/devices`: every register, in the configured order, as the adapter last saw it
/// (no device is asked: a register that is unplugged answers nothing, and the list still does).
pub(super) async fn devices(State(state): State<Arc<AppState>>) -> Json<api::Devices> {
    let devices = state
        .shop
        .all()
        .iter()
        .map(|r| {
            let link = r.fiscalizer.link_state();
            let stuck = r.sync.network_status().dlq_head.is_some();
            api::Device {
                kkt_id: r.id().to_owned(),
                link_ok: link.ok,
                last_error: link.last_error,
                unresolved_receipts: r.fiscalizer.has_unresolved(),
                delivery_stuck: stuck,
            }
        })
        .collect();
    Json(api::Devices { devices })
}
