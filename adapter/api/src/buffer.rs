//! The buffer of fiscal documents on their way to the OFD: its status, a delivery pass, and the
//! DLQ of documents the OFD refused.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ErrorCode, OfdStatus, ReceiptResponse};

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
    /// The same counts for each register, in the configured order.
    #[serde(default)]
    pub devices: Vec<DeviceBuffer>,
}

/// One register's part of the buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceBuffer {
    pub kkt_id: String,
    pub total_receipts: u64,
    /// Not yet delivered: in the KKT, pending or in the DLQ.
    pub current_queued: u64,
    pub pending: u64,
    pub synced: u64,
    pub dlq_size: u64,
    /// Receipts whose KKT outcome is still being reconciled.
    pub in_flight: u64,
    pub oldest_undelivered_unix_ms: Option<i64>,
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
    pub error: Option<ErrorCode>,
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

/// A fiscal document by its FN and FD numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqHead {
    pub fn_number: String,
    pub fd_number: u32,
}

/// `GET /v1/kkt/buffer/dlq`: the documents the OFD refused, at most 1000, in FN/FD order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqList {
    /// The number of documents listed.
    pub dlq_size: u64,
    pub documents: Vec<DlqDocument>,
}

/// One document in the DLQ with its history of refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqDocument {
    pub receipt_id: String,
    /// `<fn>-<fd>`.
    pub fiscal_doc_id: Option<String>,
    pub fd_number: Option<u32>,
    /// The OFD's response code, absent for local failures.
    pub response_code: Option<i64>,
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    pub retry_count: u32,
    /// When the document was first sent, Unix ms.
    pub first_attempt_unix_ms: Option<i64>,
    /// When the last refusal was journaled, Unix ms.
    pub last_attempt_unix_ms: Option<i64>,
    /// Every refusal kept, oldest first.
    pub rejections: Vec<DlqRejection>,
}

/// One definite refusal of a document by the OFD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqRejection {
    pub at_unix_ms: i64,
    pub response_code: Option<i64>,
    /// The relay's stable code, e.g. `ofd_14`.
    pub error_code: String,
    pub message: String,
}

/// `POST /v1/kkt/buffer/dlq/{receipt_id}/retry` answer: the receipt after the delivery pass that
/// followed the retry, and that pass's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlqRetryOneResponse {
    pub receipt: ReceiptResponse,
    pub sync: SyncCounts,
}

/// What a delivery pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncCounts {
    pub synced: u64,
    pub failed: u64,
    pub skipped: u64,
}
