//! The register: its status and the shift reports it prints on request.

use std::sync::Arc;

use adapter_api as api;
use axum::Json;
use axum::extract::State;

use super::receipt::submit_error;
use super::{AppError, AppState};
use crate::fiscal::FiscalDocument;
use crate::service::SubmitError;
use api::ErrorCode;

pub(super) async fn shift_open(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::ShiftResponse>, AppError> {
    shift_answer(state.fiscalizer.open_shift().await)
}

pub(super) async fn shift_close(
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

pub(super) async fn kkt_status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::KktStatus>, AppError> {
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
