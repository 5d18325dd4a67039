//! Plain data types of the journal: states, rows and the inputs of each write.
//!
//! No serde here on purpose: only `adapter/src/http` converts to and from the wire types.

use crate::fiscal::{DocKind, FiscalDocument};
use crate::hlc::HlcStamp;

/// Where a row stands with respect to the KKT (column `kkt_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KktState {
    /// Journaled; no command has been sent to the KKT for it yet.
    Received,
    /// Commands may have reached the KKT; only reconciliation may decide the outcome.
    InFlight,
    /// The KKT issued the fiscal document; fiscal data is present.
    Fiscalized,
    /// The KKT definitely refused it (error code recorded); nothing was fiscalized.
    Rejected,
}

/// OFD delivery state of a fiscalized row (column `status`). Rows that are not fiscalized have
/// `status = NULL`, so `WHERE status='pending'` counts exactly the fiscalized documents the
/// OFD has not acknowledged yet, whether or not earlier attempts failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfdStatus {
    /// Fiscalized, not yet acknowledged by the OFD.
    Pending,
    /// Acknowledged by the OFD.
    Synced,
    /// Needs a person: refused by the OFD or out of retries; left only by an explicit retry.
    Dlq,
}

named_enum!(DocKind { Receipt => "receipt", ShiftOpen => "shift_open", ShiftClose => "shift_close" });
named_enum!(KktState {
    Received => "received",
    InFlight => "kkt_in_flight",
    Fiscalized => "fiscalized",
    Rejected => "rejected",
});
named_enum!(OfdStatus { Pending => "pending", Synced => "synced", Dlq => "dlq" });

/// Why a receipt was rejected, as its row's `error_code` keeps it (a closed set: the POS is told
/// a code derived from it, and support staff read it in the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// The KKT refused: printer (paper, cover, head).
    KktPrinter,
    /// The KKT refused: the shift (closed, over 24 hours).
    KktShift,
    /// The KKT refused: the document state (a document open, a wrong sequence).
    KktDocumentState,
    /// The KKT refused a parameter of the receipt.
    KktParameters,
    /// The KKT stayed busy past the wait.
    KktBusy,
    /// The FN refused (full, expired, failed).
    KktFiscalStorage,
    /// Any other device error.
    KktDeviceError,
    /// Nothing reached the KKT (no link, port missing, not encodable).
    KktUnavailable,
    /// The journal could not record the sale as in flight; nothing was sent.
    JournalUnavailable,
    /// The adapter stopped before the sale reached the KKT.
    Interrupted,
    /// The journaled sale could not be read back (a newer version wrote it, or it is damaged).
    InvalidJournalBody,
    /// An operator's resolve found the receipt absent from the FN.
    ResolvedAbsent,
}

named_enum!(RejectCode {
    KktPrinter => "kkt_printer",
    KktShift => "kkt_shift",
    KktDocumentState => "kkt_document_state",
    KktParameters => "kkt_parameters",
    KktBusy => "kkt_busy",
    KktFiscalStorage => "kkt_fiscal_storage",
    KktDeviceError => "kkt_device_error",
    KktUnavailable => "kkt_unavailable",
    JournalUnavailable => "journal_unavailable",
    Interrupted => "interrupted",
    InvalidJournalBody => "invalid_journal_body",
    ResolvedAbsent => "resolved_absent",
});

/// Input of [`super::Journal::insert_received`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// The register that fiscalizes it.
    pub kkt_id: String,
    /// The POS's idempotency key (unique over the journal's lifetime, across registers).
    pub idempotency_key: String,
    /// Hash of the canonical request body, to tell a replay from a conflicting reuse.
    pub request_hash: String,
    /// The request body as received.
    pub request_body: String,
}

/// One row of the `receipts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    /// Receipt id: 16 lowercase hex digits of the creation HLC stamp, so it fits tag 1192.
    pub receipt_id: String,
    /// The register that fiscalizes (or fiscalized) it.
    pub kkt_id: String,
    /// Idempotency key (for shift documents `kind:fn:fd`).
    pub idempotency_key: String,
    /// Hash of the request body (`None` for shift documents).
    pub request_hash: Option<String>,
    /// The request body (`None` for shift documents).
    pub request_body: Option<String>,
    /// HLC stamp of the latest write to this row.
    pub hlc: HlcStamp,
    /// Document kind.
    pub kind: DocKind,
    /// KKT-side state.
    pub kkt_state: KktState,
    /// OFD-side state; `Some` exactly when `kkt_state` is `Fiscalized`.
    pub status: Option<OfdStatus>,
    /// Last error text (KKT refusal or OFD failure).
    pub last_error: Option<String>,
    /// Stable error code of a KKT refusal or a DLQ entry.
    pub error_code: Option<String>,
    /// Fiscal data; `Some` exactly when fiscalized.
    pub fiscal: Option<FiscalDocument>,
    /// Failed OFD attempts since the last success or DLQ retry.
    pub retry_count: u32,
    /// Earliest time of the next OFD attempt, Unix ms.
    pub next_attempt_at_ms: Option<i64>,
    /// Creation time, Unix ms (physical part of the creation stamp).
    pub created_at_ms: i64,
    /// Time of the latest write, Unix ms.
    pub updated_at_ms: i64,
}

impl ReceiptRow {
    /// Why the row was rejected, when it was (`None` for any other row, or an OFD code).
    pub fn reject_code(&self) -> Option<RejectCode> {
        match self.kkt_state {
            KktState::Rejected => self.error_code.as_deref().and_then(RejectCode::parse),
            _ => None,
        }
    }
}

/// What [`super::Journal::insert_received`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new row in state `received`.
    Inserted(ReceiptRow),
    /// The key was already journaled: the existing row, untouched (compare `request_hash`).
    Existing(ReceiptRow),
}

impl InsertOutcome {
    /// The row, whichever way it came.
    pub fn row(&self) -> &ReceiptRow {
        match self {
            InsertOutcome::Inserted(row) | InsertOutcome::Existing(row) => row,
        }
    }
}

/// One row of `ofd_exchange`: the relay state of one FN document (phase 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdExchange {
    /// FN serial number.
    pub fn_number: String,
    /// Fiscal document number.
    pub fd_number: u32,
    /// The FN's outgoing message, byte for byte as it goes to the OFD.
    pub outgoing_message: Vec<u8>,
    /// The OFD's reply, byte for byte, once received.
    pub reply: Option<Vec<u8>>,
    /// The OFD's response code (0 = accepted).
    pub response_code: Option<i64>,
    /// The operator's fiscal sign from the reply.
    pub operator_sign: Option<Vec<u8>>,
    /// When the reply was journaled, Unix ms.
    pub replied_at_ms: Option<i64>,
    /// True once the reply was written back to the FN.
    pub written_to_fn: bool,
    /// How many times the outgoing message was journaled as sent.
    pub send_count: u32,
}

/// The OFD's answer to one document, as [`super::Journal::record_ofd_reply`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdReply {
    /// The reply bytes, to be written back to the FN.
    pub reply: Vec<u8>,
    /// Response code (0 = accepted).
    pub response_code: i64,
    /// Operator's fiscal sign.
    pub operator_sign: Option<Vec<u8>>,
}

/// A held sync lease: only the holder of the current `token` may journal acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Lease name (one per kind of exclusive work, e.g. `ofd_sync`).
    pub name: String,
    /// Owner id (process or task identity).
    pub owner: String,
    /// Fencing token: strictly increases with every new acquisition.
    pub token: i64,
    /// Expiry, Unix ms.
    pub expires_at_ms: i64,
}

/// Counts for the buffer status endpoint, all taken in one read transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferCounts {
    /// Every row.
    pub total: u64,
    /// Rows in `received` or `kkt_in_flight`.
    pub in_kkt: u64,
    /// `status='pending'`.
    pub pending: u64,
    /// `status='synced'`.
    pub synced: u64,
    /// Pending rows whose last OFD attempt failed (`retry_count > 0`).
    pub failed: u64,
    /// `status='dlq'`.
    pub dlq: u64,
    /// `kkt_state='rejected'`.
    pub rejected: u64,
    /// Not yet delivered = `in_kkt + pending + dlq`: what the capacity limit counts.
    pub undelivered: u64,
    /// When the oldest fiscal document not yet delivered to the OFD (`pending` or `dlq`) was
    /// journaled, Unix ms. The FN stops selling 30 days after its oldest unacknowledged
    /// document, so this age is what the backlog alarm watches.
    pub oldest_undelivered_ms: Option<i64>,
}

/// The settings in force on the writer connection (per-connection, so only it can tell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// `PRAGMA journal_mode`, e.g. `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous` as a name: `off`, `normal`, `full` or `extra`.
    pub synchronous: String,
    /// `PRAGMA wal_autocheckpoint` in pages.
    pub wal_autocheckpoint: i64,
    /// `PRAGMA busy_timeout` in ms.
    pub busy_timeout_ms: i64,
    /// `PRAGMA user_version`: the schema version.
    pub schema_version: i64,
}

/// Result of a `wal_checkpoint(TRUNCATE)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// True if a reader or writer prevented a complete checkpoint.
    pub busy: bool,
    /// Frames in the WAL before the checkpoint.
    pub wal_frames: i64,
    /// Frames copied back into the database.
    pub checkpointed_frames: i64,
}

/// Counters of the writer thread, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Write transactions committed.
    pub transactions_committed: u64,
    /// Write requests that ran inside a committed transaction (succeeded or not).
    pub requests_committed: u64,
    /// The largest batch seen.
    pub batch_len_max: u64,
}

/// One DLQ entry for review: the row and the OFD's response code, if the OFD answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqEntry {
    /// The receipt or shift document.
    pub receipt: ReceiptRow,
    /// The OFD's response code from `ofd_exchange` (absent for local failures).
    pub response_code: Option<i64>,
    /// When the relay journaled the outgoing message, just before its first send, Unix ms.
    pub first_attempt_ms: Option<i64>,
    /// When the last rejection was journaled, Unix ms.
    pub last_attempt_ms: Option<i64>,
    /// Every rejection kept (oldest first, at most the journal's per-document bound).
    pub rejections: Vec<Rejection>,
}

/// One definite refusal of a document by the OFD (`delivery_rejection` table), kept when an
/// operator's retry clears the reply, so the history of a document survives its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// When it was journaled, Unix ms.
    pub at_ms: i64,
    /// The OFD's response code, when the OFD answered.
    pub response_code: Option<i64>,
    /// The stable error code the relay gave it (`ofd_14`).
    pub error_code: String,
    pub message: String,
}

/// One operator action in the audit trail (`audit` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix ms; filled in by the journal when written.
    pub at_ms: i64,
    /// The token name of whoever acted (never the secret).
    pub actor: String,
    /// What was done (`resolve`).
    pub action: String,
    pub receipt_id: String,
    /// How it ended (`fiscalized fd=12`, `absent`).
    pub outcome: String,
    /// Why, in the operator's words.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::RejectCode;

    #[test]
    fn every_reject_code_reads_back_from_its_stored_text() {
        let all = RejectCode::ALL;
        let texts: std::collections::BTreeSet<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), all.len(), "two codes share a text");
        for &code in all {
            assert_eq!(RejectCode::parse(code.as_str()), Some(code));
        }
        // An OFD code in the same column is not a rejection of the receipt.
        assert_eq!(RejectCode::parse("ofd_response_14"), None);
    }
}

/// Input of [`super::Journal::insert_task_request`]: a POS's list of tasks under its own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTaskRequest {
    /// The POS's id of the request (unique over the journal's lifetime).
    pub id: String,
    /// The register that runs the tasks.
    pub kkt_id: String,
    /// Hash of the canonical request, to tell a replay from a conflicting reuse of the id.
    pub body_hash: String,
    /// The caller's encoding of the validated tasks.
    pub jobs: String,
    /// How many tasks `jobs` holds.
    pub task_count: u32,
}

/// One task request with the outcomes of its finished tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequestRow {
    /// The POS's id of the request.
    pub id: String,
    /// Sequence number, from 1, in the order requests were journaled.
    pub number: u64,
    /// The register that runs the tasks.
    pub kkt_id: String,
    /// Hash of the canonical request.
    pub body_hash: String,
    /// The caller's encoding of the validated tasks.
    pub jobs: String,
    /// How many tasks `jobs` holds.
    pub task_count: u32,
    /// `(index, outcome)` of each finished task, by index.
    pub outcomes: Vec<(u32, String)>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl TaskRequestRow {
    /// Every task has an outcome.
    pub fn finished(&self) -> bool {
        self.outcomes.len() >= self.task_count as usize
    }

    /// The outcome of task `index`, if it finished.
    pub fn outcome(&self, index: u32) -> Option<&str> {
        self.outcomes
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, o)| o.as_str())
    }
}

/// What [`super::Journal::insert_task_request`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskInsert {
    /// Journaled now.
    Inserted(TaskRequestRow),
    /// A request with that id was journaled before (its hash tells whether it is the same one).
    Existing(TaskRequestRow),
}
