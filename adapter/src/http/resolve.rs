//! The operator's resolve action on a receipt stuck in reconciliation. The auth layer (`auth.rs`)
//! lets only admin tokens through; the token's name is the actor journaled in the audit table.

use std::sync::Arc;

use adapter_api as api;
use api::ErrorCode;
use axum::Json;
use axum::extract::{Extension, Path, State};

use super::receipt::receipt_response;
use super::{AppError, AppState, Requester};
use crate::service::ResolveError;

/// Reasons are for people; a bound keeps the audit trail bounded.
const REASON_CHARS_MAX: usize = 500;

/// `POST /v1/kkt/receipt/{receipt_id}/resolve`.
pub(super) async fn resolve(
    State(state): State<Arc<AppState>>,
    Path(receipt_id): Path<String>,
    Extension(requester): Extension<Requester>,
    body: axum::body::Bytes,
) -> Result<Json<api::ResolveResponse>, AppError> {
    let request: api::ResolveRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::definite(ErrorCode::MalformedBody, format!("resolve body: {e}")))?;
    let reason = request.reason;
    if reason.trim().is_empty()
        || reason.chars().count() > REASON_CHARS_MAX
        || reason.chars().any(char::is_control)
    {
        return Err(AppError::definite(
            ErrorCode::InvalidField,
            format!("reason: 1 to {REASON_CHARS_MAX} printable characters saying why"),
        ));
    }
    // The register that fiscalizes the receipt reads its own FN.
    let owner = match state.any().fiscalizer.receipt(&receipt_id).await {
        Ok(Some(row)) => row.kkt_id,
        Ok(None) => {
            return Err(AppError::definite(
                ErrorCode::NotFound,
                format!("no receipt {receipt_id}"),
            ));
        }
        Err(e) => return Err(super::journal_error(e)),
    };
    let resolved = state
        .register(Some(&owner))?
        .fiscalizer
        .resolve(&receipt_id, &requester.name, &reason)
        .await
        .map_err(|e| match e {
            ResolveError::NotFound(_) => AppError::definite(ErrorCode::NotFound, e.to_string()),
            ResolveError::NotUnresolved { .. } => {
                AppError::definite(ErrorCode::NotUnresolved, e.to_string())
            }
            ResolveError::Device(_) | ResolveError::Document(_) => {
                AppError::definite(ErrorCode::KktUnavailable, e.to_string())
            }
            ResolveError::Journal(_) => {
                tracing::error!(error = %e, "resolve: journal");
                AppError::indefinite(
                    ErrorCode::JournalUnavailable,
                    "the journal could not record the resolution; ask again",
                )
            }
        })?;
    Ok(Json(api::ResolveResponse {
        receipt: receipt_response(&resolved.row),
        outcome: if resolved.found {
            api::ResolveOutcome::Fiscalized
        } else {
            api::ResolveOutcome::Absent
        },
        resolved_by: requester.name,
        reason,
    }))
}
