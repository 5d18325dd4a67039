//! The error contract: every error answer's body and the closed set of stable codes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// Every error body: a stable machine `code`, a human `message`, and whether the operation
/// certainly did not happen (`definite`). A POS that gets `definite: false` must retry with the
/// SAME idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// One of the stable [`ErrorCode`] strings.
    #[schema(schema_with = error_code_schema)]
    pub code: ErrorCode,
    pub message: String,
    pub definite: bool,
}

/// The schema of [`ErrorBody::code`]: a string, one of [`ErrorCode::ALL`].
fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .build()
}

/// The stable error codes. The strings are the contract; the enum keeps them in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not valid JSON or not of the documented shape.
    MalformedBody,
    /// A field has an invalid value (money scale, totals, lengths).
    InvalidField,
    /// Neither the `Idempotency-Key` header nor the `idempotency_key` field was given.
    IdempotencyKeyMissing,
    /// The key was used before with a different body.
    IdempotencyKeyReused,
    /// The first request with this key is still being processed.
    RequestInProgress,
    /// The buffer of undelivered documents is full; nothing was journaled.
    BufferFull,
    /// The journal could not commit (disk full, I/O error); nothing was sent to the KKT.
    JournalUnavailable,
    /// The KKT definitely refused the operation (paper out, cover open, shift expired ...).
    KktRefused,
    /// The KKT is not reachable; nothing was sent to it.
    KktUnavailable,
    /// The receipt does not exist.
    NotFound,
    /// A DLQ retry of a document that is not in the DLQ.
    NotInDlq,
    /// The adapter is shutting down.
    ShuttingDown,
    /// An earlier receipt on this register is still being reconciled with the FN; nothing was
    /// journaled for this request. Clears by itself, or through the admin resolve endpoint.
    ReconciliationPending,
    /// A resolve request for a receipt whose KKT outcome is already known.
    NotUnresolved,
    /// No credentials, or credentials that match no configured token.
    Unauthorized,
    /// The token's role may not use this route.
    Forbidden,
    /// The body is larger than the adapter accepts.
    BodyTooLarge,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request target (path and query) is longer than the adapter accepts.
    UriTooLong,
    /// The request headers are larger than the adapter accepts.
    HeadersTooLarge,
    /// The query string does not have the documented shape.
    InvalidQuery,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// `POST /v1/admin/backup` without a configured backup directory.
    BackupNotConfigured,
    /// The backup could not be written or did not check out; details are in the adapter's log.
    BackupFailed,
    /// The request body did not arrive within the body read timeout; nothing was done.
    RequestTimeout,
    /// The token sent more requests than its rate limit allows; nothing was done. Retry after the
    /// seconds in the `Retry-After` header.
    RateLimited,
    /// The adapter is at its bound of connections or concurrent requests; nothing was done.
    /// Retry after the seconds in the `Retry-After` header.
    Overloaded,
    /// No register has the `kkt_id` the request names.
    KktNotFound,
    /// The adapter drives several registers and the request named none (`kkt_id`).
    KktIdRequired,
    /// Unexpected internal failure; details are in the adapter's log.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::MalformedBody,
        ErrorCode::InvalidField,
        ErrorCode::IdempotencyKeyMissing,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::RequestInProgress,
        ErrorCode::BufferFull,
        ErrorCode::JournalUnavailable,
        ErrorCode::KktRefused,
        ErrorCode::KktUnavailable,
        ErrorCode::NotFound,
        ErrorCode::NotInDlq,
        ErrorCode::ShuttingDown,
        ErrorCode::ReconciliationPending,
        ErrorCode::NotUnresolved,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::BodyTooLarge,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::InvalidQuery,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::BackupNotConfigured,
        ErrorCode::BackupFailed,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::Overloaded,
        ErrorCode::KktNotFound,
        ErrorCode::KktIdRequired,
        ErrorCode::Internal,
    ];

    /// The wire string of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedBody => "malformed_body",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::IdempotencyKeyMissing => "idempotency_key_missing",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::RequestInProgress => "request_in_progress",
            ErrorCode::BufferFull => "buffer_full",
            ErrorCode::JournalUnavailable => "journal_unavailable",
            ErrorCode::KktRefused => "kkt_refused",
            ErrorCode::KktUnavailable => "kkt_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotInDlq => "not_in_dlq",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::ReconciliationPending => "reconciliation_pending",
            ErrorCode::NotUnresolved => "not_unresolved",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::BackupNotConfigured => "backup_not_configured",
            ErrorCode::BackupFailed => "backup_failed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::KktNotFound => "kkt_not_found",
            ErrorCode::KktIdRequired => "kkt_id_required",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedBody
            | ErrorCode::InvalidField
            | ErrorCode::IdempotencyKeyMissing
            | ErrorCode::InvalidQuery
            | ErrorCode::KktIdRequired => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::KktNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestInProgress
            | ErrorCode::KktRefused
            | ErrorCode::NotInDlq
            | ErrorCode::NotUnresolved
            | ErrorCode::BackupNotConfigured => 409,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::UriTooLong => 414,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::BufferFull
            | ErrorCode::JournalUnavailable
            | ErrorCode::KktUnavailable
            | ErrorCode::ReconciliationPending
            | ErrorCode::ShuttingDown
            | ErrorCode::Overloaded => 503,
            ErrorCode::Internal | ErrorCode::BackupFailed => 500,
        }
    }
}

impl ErrorCode {
    /// The code of a wire string; `None` for a string outside the contract.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code `{text}`")))
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        error_code_schema().into()
    }
}

impl ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_unique_and_mapped() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!((400..600).contains(&c.http_status()));
            let wire = serde_json::to_string(&c).unwrap();
            assert_eq!(wire, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&wire).unwrap(), c);
        }
    }
}
