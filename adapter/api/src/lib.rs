//! The adapter's public HTTP contract: request and response types and stable error codes.
//!
//! Boundary: this crate is a leaf. It knows serde, exact decimals and `utoipa`'s derives (the
//! adapter's OpenAPI document is generated from these types), nothing else: no tokio, no axum, no
//! SQLite. Only `adapter/src/http` converts between these types and the adapter's inner
//! types, so a rename here shows up as a compile error there, and scenario files spell out the
//! literal wire JSON, so a rename cannot pass silently on both sides at once.

mod money;

mod status;

pub use money::{Money, Quantity};
use serde::{Deserialize, Serialize};
pub use status::{
    BreakerState, BreakerTransitions, CircuitBreaker, DlqDocument, DlqHead, DlqList, DlqRejection,
    DlqRetryOneResponse, Health, HealthStatus, JournalHealth, KktHealth, KktMode, KktStatus,
    ProcessHealth, ShiftResponse, SyncCounts,
};
use utoipa::ToSchema;

/// `POST /v1/kkt/receipt` body. Unknown fields are refused, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Alternatively given as the `Idempotency-Key` header; one of the two is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    pub taxation: Taxation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_contact: Option<String>,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
}

/// Operation type, FFD tag 1054.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptType {
    Sale,
    SaleRefund,
    Buy,
    BuyRefund,
}

/// Taxation system, FFD tag 1055.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Taxation {
    Osn,
    UsnIncome,
    UsnIncomeOutcome,
    Envd,
    Esn,
    Patent,
}

/// One receipt line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    pub price: Money,
    pub quantity: Quantity,
    pub vat: Vat,
    #[serde(default = "PaymentMethod::default_full")]
    pub payment_method: PaymentMethod,
    #[serde(default = "PaymentObject::default_commodity")]
    pub payment_object: PaymentObject,
}

/// VAT rate of an item, FFD tag 1199.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vat {
    Vat20,
    Vat10,
    Vat120,
    Vat110,
    Vat0,
    None,
}

/// Payment method sign, FFD tag 1214.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    FullPrepayment,
    Prepayment,
    Advance,
    FullPayment,
    PartialPayment,
    Credit,
    CreditPayment,
}

impl PaymentMethod {
    fn default_full() -> Self {
        PaymentMethod::FullPayment
    }
}

/// Payment object sign, FFD tag 1212.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentObject {
    Commodity,
    Excise,
    Job,
    Service,
    Payment,
    Composite,
    Another,
}

impl PaymentObject {
    fn default_commodity() -> Self {
        PaymentObject::Commodity
    }
}

/// One payment of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Money,
}

/// How the buyer paid. Change is given only from cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentType {
    Cash,
    Card,
}

/// The answer to a receipt request (and to `GET /v1/kkt/receipt/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResponse {
    pub receipt_id: String,
    pub status: ReceiptStatus,
    /// `<fn>-<fd>` once fiscalized.
    pub fiscal_doc_id: Option<String>,
    pub fiscal: Option<Fiscal>,
    pub ofd_status: OfdStatus,
}

/// `printed` = fiscalized on the KKT; `buffered` = durably accepted, KKT outcome being reconciled;
/// `rejected` = the KKT definitely refused it (only visible when polling a stored receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Printed,
    Buffered,
    Rejected,
}

/// OFD delivery state of the fiscal document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfdStatus {
    Pending,
    Synced,
    Dlq,
}

/// Fiscal data of a printed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fiscal {
    pub fn_number: String,
    pub fd_number: u32,
    /// FPD as a decimal string, as printed on the receipt.
    pub fpd: String,
    pub shift_number: u32,
    pub receipt_number: u32,
    /// RFC 3339 time of the document, from the KKT clock.
    pub datetime: String,
    pub total: Money,
    /// The receipt QR string `t=..&s=..&fn=..&i=..&fp=..&n=..`.
    pub qr: String,
}

/// `GET /v1/kkt/buffer/status`: the seed's nine fields, then extras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BufferStatus {
    pub total_capacity: u64,
    pub current_queued: u64,
    pub percent_full: f64,
    pub network_status: NetworkStatus,
    pub total_receipts: u64,
    pub pending: u64,
    pub synced: u64,
    pub failed: u64,
    pub dlq_size: u64,
    /// Receipts whose KKT outcome is still being reconciled.
    #[serde(default)]
    pub in_flight: u64,
    /// Of those, the ones unresolved past the configured bound.
    #[serde(default)]
    pub unresolved_stuck: u64,
    /// When the oldest fiscal document not yet delivered to the OFD was journaled, Unix ms.
    #[serde(default)]
    pub oldest_undelivered_unix_ms: Option<i64>,
    /// Its age in seconds: the FN blocks sales when it reaches 30 days.
    #[serde(default)]
    pub oldest_undelivered_age_s: Option<u64>,
    /// The document the OFD refused at the head of the FN's queue, which stops all delivery.
    #[serde(default)]
    pub delivery_stuck: Option<DeliveryStuck>,
}

/// A document the OFD refused definitely (a non-zero response code) while it is the head of its
/// FN's queue: the FN never hands out what is behind it, so OFD delivery stands still until an
/// operator retries it (`POST /v1/kkt/buffer/dlq/{receipt_id}/retry`) after the OFD fixed its side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryStuck {
    pub fn_number: String,
    pub fd_number: u32,
    /// The journal row holding it, when the adapter issued it.
    pub receipt_id: Option<String>,
    /// When the refusal was journaled, Unix ms.
    pub since_unix_ms: Option<i64>,
    /// The OFD's response code (e.g. 14, format check failed).
    pub response_code: Option<i64>,
    pub last_error: Option<String>,
    /// Delivery attempts of this document that did not deliver it, manual retries included.
    pub retry_count: u32,
    /// Documents in the FN's queue behind it.
    pub waiting_behind: u64,
}

/// The `delivery` part of `/v1/health`: how far behind OFD delivery is, and whether it stands still.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryHealth {
    pub oldest_undelivered_unix_ms: Option<i64>,
    pub oldest_undelivered_age_s: Option<u64>,
    /// The configured age (`--backlog-age-alarm-ms`) past which health is `degraded`, in s.
    pub age_alarm_after_s: u64,
    /// The oldest undelivered document is older than that.
    pub age_alarm: bool,
    pub stuck: Option<DeliveryStuck>,
}

/// `GET /v1/ready`: whether the adapter can take a sale now; 200 when `ready`, else 503. Open to
/// every caller, so it names no path and no error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `journal_open` and `kkt_reachable` both hold.
    pub ready: bool,
    /// The journal answers reads.
    pub journal_open: bool,
    /// The last exchange with the KKT got an answer (a refusal such as paper out counts: the
    /// device is there).
    pub kkt_reachable: bool,
}

/// OFD reachability as the circuit breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkStatus {
    Online,
    Offline,
    Degraded,
}

/// `POST /v1/kkt/buffer/sync` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncResult {
    pub synced: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Why the pass stopped.
    pub stopped: SyncStop,
}

/// Why a delivery pass stopped. The names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SyncStop {
    /// The FN has nothing left to send.
    Drained,
    /// The pass handled its batch; more may wait.
    BatchFull,
    /// The circuit breaker is open: nothing was attempted.
    BreakerOpen,
    /// A background pass waits for its backoff.
    BackingOff,
    /// Another process or replica holds the sync lock.
    LockBusy,
    /// The lock was lost mid-pass.
    LockLost,
    /// The document at the head of the FN's queue is in the DLQ; see `delivery_stuck` of
    /// `GET /v1/kkt/buffer/status`.
    DlqHead,
    /// The OFD could not be reached or answered badly; details are in the adapter's log.
    Transport,
    /// The FN refused the OFD's acknowledgement; the OFD is asked again after the backoff.
    FnRefusedAck,
    /// The KKT could not be reached or its answer was not understood.
    Kkt,
}

/// `POST /v1/kkt/receipt/{receipt_id}/resolve` body (admin token): the operator asks the adapter to
/// settle a receipt stuck in reconciliation by reading the FN, and says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub reason: String,
}

/// `POST /v1/kkt/buffer/dlq/retry`: retry the listed DLQ documents, or every one (`all`), at most
/// a bounded number per call. Exactly one of the two is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DlqRetryRequest {
    #[serde(default)]
    pub receipt_ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

/// The answer for one id of a bulk DLQ retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqRetryItem {
    pub receipt_id: String,
    /// True when the document went back to pending (and took part in the pass).
    pub retried: bool,
    /// Why not, as an error code: `not_found` or `not_in_dlq`.
    pub error: Option<String>,
    /// Its OFD status after the pass (`synced`, `pending`, `dlq`), when it exists.
    pub ofd_status: Option<OfdStatus>,
}

/// `POST /v1/kkt/buffer/dlq/retry` answer: one item per id in request order, the pass's counts,
/// and how many documents the DLQ still holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqRetryResponse {
    pub results: Vec<DlqRetryItem>,
    pub synced: u64,
    pub failed: u64,
    pub skipped: u64,
    pub dlq_size: u64,
}

/// `POST /v1/admin/backup`: an empty body or `{}`. The file goes to the configured backup
/// directory under a name the adapter picks; a client never names a path on the shop's machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {}

/// `POST /v1/admin/backup` answer: the new file (created 0600) and what the checked copy holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupResponse {
    /// The file name inside the backup directory.
    pub file: String,
    pub pages: u64,
    pub receipts: u64,
}

/// How a resolve ended: the FN holds the receipt, or proved it absent (then it is `rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    Fiscalized,
    Absent,
}

/// The answer to a resolve request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResolveResponse {
    pub receipt: ReceiptResponse,
    pub outcome: ResolveOutcome,
    /// The token name that resolved it (also in the journal's audit trail).
    pub resolved_by: String,
    pub reason: String,
}

/// A receipt whose KKT outcome is not known yet, as `/v1/health` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnresolvedReceipt {
    pub receipt_id: String,
    /// When it was journaled, Unix ms.
    pub since_unix_ms: i64,
    /// Reconciliation attempts since the adapter started.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Past the configured bound: needs a person (see the resolve endpoint).
    pub stuck: bool,
}

/// Every error body: a stable machine `code`, a human `message`, and whether the operation
/// certainly did not happen (`definite`). A POS that gets `definite: false` must retry with the
/// SAME idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// One of the stable [`ErrorCode`] strings.
    #[schema(schema_with = error_code_schema)]
    pub code: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Unexpected internal failure; details are in the adapter's log.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 28] = [
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
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedBody
            | ErrorCode::InvalidField
            | ErrorCode::IdempotencyKeyMissing
            | ErrorCode::InvalidQuery => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_receipt_body_parses() {
        let body = r#"{"idempotency_key":"pos1-000123","type":"sale","taxation":"osn","operator":"Ivanova",
            "customer_contact":"+79990000000","items":[{"name":"Progressive lenses","price":"25000.00",
            "quantity":"1","vat":"vat20","payment_method":"full_payment","payment_object":"commodity"}],
            "payments":[{"type":"card","amount":"25000.00"}]}"#;
        let r: ReceiptRequest = serde_json::from_str(body).unwrap();
        assert_eq!(r.kind, ReceiptType::Sale);
        assert_eq!(r.items[0].price.kopecks(), 2_500_000);
        assert_eq!(r.items[0].quantity.millionths(), 1_000_000);
        assert_eq!(r.payments[0].kind, PaymentType::Card);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let body = r#"{"type":"sale","taxation":"osn","items":[],"payments":[],"discount":"1"}"#;
        let err = serde_json::from_str::<ReceiptRequest>(body)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `discount`"), "{err}");
    }

    #[test]
    fn error_codes_are_unique_and_mapped() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!((400..600).contains(&c.http_status()));
        }
    }
}
