//! The operator's resolve action on a receipt stuck in reconciliation, behind an admin token.
//!
//! Boundary: authentication here is the part of the token contract this action needs (`Bearer`
//! secrets from `--auth-token NAME:ROLE:SECRET`, compared in constant time); the other routes are
//! not behind tokens yet.

use std::sync::Arc;

use adapter_api as api;
use api::ErrorCode;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{AppError, AppState, receipt_response};
use crate::config::{AuthToken, Role};
use crate::service::ResolveError;

/// Reasons are for people; a bound keeps the audit trail bounded.
const REASON_CHARS_MAX: usize = 500;

/// The configured token whose secret the request carries, compared in constant time (digests of
/// equal length, every token compared).
fn authenticate<'a>(
    tokens: &'a [AuthToken],
    headers: &HeaderMap,
) -> Result<&'a AuthToken, AppError> {
    if tokens.is_empty() {
        return Err(AppError::definite(
            ErrorCode::Unauthorized,
            "no API token is configured; start the adapter with --auth-token NAME:admin:SECRET",
        ));
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            AppError::definite(
                ErrorCode::Unauthorized,
                "send the token as `Authorization: Bearer SECRET`",
            )
        })?;
    let presented = Sha256::digest(presented.trim().as_bytes());
    let mut found = None;
    for t in tokens {
        let expected = Sha256::digest(t.secret.as_bytes());
        let diff = expected
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            found = Some(t);
        }
    }
    found.ok_or_else(|| AppError::definite(ErrorCode::Unauthorized, "the token is not valid"))
}

/// `POST /v1/kkt/receipt/{receipt_id}/resolve`.
pub(super) async fn resolve(
    State(state): State<Arc<AppState>>,
    Path(receipt_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<api::ResolveResponse>, AppError> {
    let token = authenticate(&state.config.auth_tokens, &headers)?;
    if token.role != Role::Admin {
        return Err(AppError::definite(
            ErrorCode::Forbidden,
            format!(
                "token `{}` has the pos role; resolving needs an admin token",
                token.name
            ),
        ));
    }
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
    let resolved = state
        .fiscalizer
        .resolve(&receipt_id, &token.name, &reason)
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
        resolved_by: token.name.clone(),
        reason,
    }))
}
