//! Receipts: a POS posts a sale, reads one back by id or by its idempotency key; and the answers
//! a journaled row gives (printed, buffered, or its stored refusal).

use std::sync::Arc;

use adapter_api as api;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AppError, AppState, KEY_CHARS_MAX, journal_error, sale_from_request};
use crate::fiscal::FiscalDocument;
use crate::service::{KktState, OfdStatus, ReceiptRow, RejectCode, SubmitError, TASK_KEY_PREFIX};
use api::ErrorCode;

/// Decodes a body journaled before the sale encoding was versioned (the POS request as received),
/// for reconciliation after a restart or an upgrade.
pub fn decode_legacy_journaled_sale(body: &str) -> Result<crate::sale::Sale, String> {
    let request: api::ReceiptRequest = serde_json::from_str(body).map_err(|e| e.to_string())?;
    sale_from_request(&request).map_err(|e| e.to_string())
}

pub(super) async fn post_receipt(
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
    if key.starts_with(TASK_KEY_PREFIX) {
        return Err(AppError::definite(
            ErrorCode::InvalidField,
            format!(
                "idempotency key: the prefix `{TASK_KEY_PREFIX}` is kept for the receipts of the                  ATOL-compatible API"
            ),
        ));
    }
    let sale = sale_from_request(&request)
        .map_err(|e| AppError::definite(ErrorCode::InvalidField, e.to_string()))?;
    // The canonical body (the key left out) decides "same request" for idempotency.
    let canonical = serde_json::to_string(&request)
        .map_err(|e| AppError::definite(ErrorCode::MalformedBody, e.to_string()))?;
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    let register = state.register(request.kkt_id.as_deref())?;
    let result = register.fiscalizer.submit(key, hash, sale).await;
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

pub(super) fn submit_error(e: SubmitError) -> AppError {
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
        SubmitError::Internal(_) => AppError::internal(message),
    }
}

/// The answer for a journaled row: 200 with the receipt, or the stored refusal.
fn receipt_answer(row: &ReceiptRow) -> Result<Response, AppError> {
    if row.kkt_state == KktState::Rejected {
        let reason = row.last_error.clone().unwrap_or_default();
        let code = match row.reject_code() {
            Some(RejectCode::KktUnavailable) => ErrorCode::KktUnavailable,
            Some(RejectCode::JournalUnavailable) => ErrorCode::JournalUnavailable,
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
        kkt_id: row.kkt_id.clone(),
        status,
        fiscal_doc_id: row.fiscal.as_ref().map(FiscalDocument::doc_id),
        fiscal,
        ofd_status,
    }
}

pub(super) async fn get_receipt(
    State(state): State<Arc<AppState>>,
    Path(receipt_id): Path<String>,
) -> Result<Response, AppError> {
    let row = state
        .any()
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
pub(super) struct KeyQuery {
    idempotency_key: String,
}

pub(super) async fn get_receipt_by_key(
    State(state): State<Arc<AppState>>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, AppError> {
    let row = state
        .any()
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
