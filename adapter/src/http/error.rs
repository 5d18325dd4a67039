//! `AppError`: the one place that maps failures to HTTP answers with a stable code, a message and
//! whether the operation certainly did not happen (`definite`).
//!
//! Internal details go to the log; the client gets the code and a message fit for a cashier's screen.

use adapter_api::{ErrorBody, ErrorCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to the POS.
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub definite: bool,
}

impl AppError {
    /// The operation certainly did not happen (validation, buffer full before journaling, ...).
    pub fn definite(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            definite: true,
        }
    }

    /// An unexpected failure: its text goes to the log, never to the client (it may name files,
    /// SQL or other internals); the client is told to retry with the same idempotency key.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        AppError::indefinite(
            ErrorCode::Internal,
            "internal error; retry with the same idempotency key",
        )
    }

    /// The outcome is unknown: the POS must retry with the SAME idempotency key.
    pub fn indefinite(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            definite: false,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            definite: self.definite,
        };
        (status, Json(body)).into_response()
    }
}
