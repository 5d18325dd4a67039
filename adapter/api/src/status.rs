//! Answers of the shift, KKT status, health and DLQ routes. Every field name here is wire
//! contract: scenario files, the UAT runner and support scripts read them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::{DeliveryHealth, NetworkStatus, ReceiptResponse, UnresolvedReceipt};

/// `POST /v1/kkt/shift/open` and `POST /v1/kkt/shift/close` answer: the shift report the KKT
/// printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShiftResponse {
    /// `<fn>-<fd>`.
    pub fiscal_doc_id: String,
    pub fn_number: String,
    pub fd_number: u32,
    /// FPD as a decimal string.
    pub fpd: String,
    pub shift_number: u32,
    /// Time of the document from the KKT clock, `YYYY-MM-DDTHH:MM:SS` (device local time).
    pub datetime: String,
}

/// `GET /v1/kkt/status` answer: the device's mode and its FN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KktStatus {
    pub mode: KktMode,
    /// The mode number (low nibble of the mode byte, 0 to 15).
    pub mode_code: u8,
    pub fn_number: String,
    /// Number of the last fiscal document in the FN.
    pub last_fd: u32,
    /// A receipt's KKT outcome is still being reconciled (see `/v1/health`).
    pub unresolved_receipts: bool,
}

/// The KKT's mode. On the wire `ShiftOpen`, `ShiftOpenOver24h`, `ShiftClosed`, `DocumentOpen`, or
/// `Other(N)` with the mode number N for any other mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KktMode {
    /// Mode 2: shift open, under 24 hours.
    ShiftOpen,
    /// Mode 3: shift open over 24 hours; only closing it is allowed.
    ShiftOpenOver24h,
    /// Mode 4: shift closed.
    ShiftClosed,
    /// Mode 8: a document is open.
    DocumentOpen,
    /// Any other mode number (0 to 15).
    Other(u8),
}

/// Mode numbers with a name of their own; every other number is `Other(N)`.
const NAMED_MODES: [(KktMode, u8, &str); 4] = [
    (KktMode::ShiftOpen, 2, "ShiftOpen"),
    (KktMode::ShiftOpenOver24h, 3, "ShiftOpenOver24h"),
    (KktMode::ShiftClosed, 4, "ShiftClosed"),
    (KktMode::DocumentOpen, 8, "DocumentOpen"),
];

impl KktMode {
    /// The mode of a mode number (the low nibble of the KKT's mode byte).
    pub fn from_code(code: u8) -> KktMode {
        let code = code & 0x0F;
        NAMED_MODES
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(KktMode::Other(code), |(m, _, _)| *m)
    }

    /// Every wire string the mode can take, in mode-number order.
    pub fn wire_values() -> Vec<String> {
        (0..16)
            .map(|code| KktMode::from_code(code).to_string())
            .collect()
    }
}

impl fmt::Display for KktMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMED_MODES.iter().find(|(m, _, _)| m == self) {
            Some((_, _, name)) => f.write_str(name),
            None => match self {
                KktMode::Other(code) => write!(f, "Other({code})"),
                named => unreachable!("{named:?} is in NAMED_MODES"),
            },
        }
    }
}

impl Serialize for KktMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KktMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        (0..16)
            .map(KktMode::from_code)
            .find(|m| m.to_string() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown KKT mode `{text}`")))
    }
}

impl utoipa::PartialSchema for KktMode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The KKT's mode: a name for modes 2, 3, 4 and 8, `Other(N)` for mode number N.",
            ))
            .enum_values(Some(KktMode::wire_values()))
            .into()
    }
}

impl ToSchema for KktMode {}

/// `GET /v1/health`: the whole picture for support staff. Answered with 200 when `status` is `ok`
/// and 503 when it is `degraded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    pub process: ProcessHealth,
    pub journal: JournalHealth,
    pub kkt: KktHealth,
    pub circuit_breaker: CircuitBreaker,
    pub network_status: NetworkStatus,
    /// The OFD-refused document at the head of the FN's queue, which stops delivery.
    pub dlq_head: Option<DlqHead>,
    pub dlq_size: u64,
    pub delivery: DeliveryHealth,
}

/// `degraded` when a person is needed: a DLQ document, a KKT link down, a stuck receipt, or a
/// backlog past its age alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// The `process` part of `/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProcessHealth {
    pub uptime_s: u64,
    /// The adapter's version.
    pub version: String,
}

/// The `journal` part of `/v1/health`: the SQLite settings in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JournalHealth {
    /// `PRAGMA journal_mode`, e.g. `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous` as a number: 0 off, 1 normal, 2 full, 3 extra.
    pub synchronous: u8,
    /// The same as a name: `off`, `normal`, `full` or `extra`.
    pub synchronous_name: String,
    /// `PRAGMA wal_autocheckpoint`, in pages.
    pub wal_autocheckpoint: i64,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
}

/// The `kkt` part of `/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KktHealth {
    /// The last exchange with the KKT got an answer.
    pub link_ok: bool,
    pub last_error: Option<String>,
    pub unresolved_receipts: bool,
    pub unresolved: Vec<UnresolvedReceipt>,
}

/// The OFD circuit breaker as `/v1/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CircuitBreaker {
    pub state: BreakerState,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the breaker last opened, Unix ms (wall clock, for display).
    pub opened_at_unix_ms: Option<i64>,
    /// When an open breaker lets the next probe through, Unix ms.
    pub next_probe_at_unix_ms: Option<i64>,
    pub transitions: BreakerTransitions,
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// Transitions of the breaker into each state since the adapter started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BreakerTransitions {
    pub to_closed: u64,
    pub to_open: u64,
    pub to_half_open: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kkt_modes_have_their_wire_names() {
        let names: Vec<String> = KktMode::wire_values();
        assert_eq!(names[2], "ShiftOpen");
        assert_eq!(names[3], "ShiftOpenOver24h");
        assert_eq!(names[4], "ShiftClosed");
        assert_eq!(names[8], "DocumentOpen");
        assert_eq!(names[5], "Other(5)");
        assert_eq!(KktMode::from_code(0x12), KktMode::ShiftOpen);
        for name in names {
            let json = serde_json::to_string(&name).unwrap();
            let mode: KktMode = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&mode).unwrap(), json);
        }
    }

    #[test]
    fn breaker_states_are_upper_case() {
        let s = serde_json::to_string(&[
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ])
        .unwrap();
        assert_eq!(s, r#"["CLOSED","OPEN","HALF_OPEN"]"#);
    }
}
