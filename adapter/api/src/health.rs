//! Health and readiness: what support staff and monitors read.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{DeliveryStuck, DlqHead, NetworkStatus};

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

#[cfg(test)]
mod tests {
    use super::*;

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
