//! Reconciliation of receipts whose KKT outcome is unknown, the bound after which one is reported
//! stuck, and the operator's resolve action.
//!
//! Invariant: a receipt is marked unknown only after a byte of its close command may have reached
//! the device (every local failure is a definite [`KktError`]), so reconciliation has something real
//! to find out. It reads the FN backwards from its last document; a receipt found by its tag 1192 is
//! journaled as fiscalized, one proven absent is fiscalized afresh.
//! Invariant: a receipt unresolved longer than the policy's bound (time or attempts) is surfaced
//! loudly (health, buffer status, an error log line) but never guessed: only the FN decides, and the
//! admin resolve action only ends the retries of a receipt the FN proved absent.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::fiscalize::{Attempt, kkt_failure};
use super::{Fiscalizer, SubmitError};
use crate::fiscal::{DocKind, DocumentError, FiscalDocument};
use crate::journal::{AuditEntry, KktState, ReceiptRow, RejectCode};
use crate::kkt::KktError;
use crate::kkt::ops;
use crate::sale::journaled::{self, Journaled};

/// Documents scanned backwards from the FN's last one during reconciliation. Unresolved receipts are
/// always the newest documents (see the module invariant of `service`), so a handful suffices; the
/// bound keeps a confused device from turning reconciliation into an endless read.
const RECONCILE_SCAN_MAX: u32 = 64;
/// The longest retry interval once a receipt is stuck: it still retries, but stops hammering the
/// device.
const RECONCILE_RETRY_STUCK: Duration = Duration::from_secs(5);
/// How often a stuck receipt is logged again at error level.
const STUCK_LOG_EVERY: Duration = Duration::from_secs(60);

/// When an unresolved receipt counts as stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilePolicy {
    /// How often the background task retries.
    pub retry: Duration,
    /// Unresolved this long (since the row was journaled).
    pub stuck_after: Duration,
    /// Or this many reconciliation attempts in this process.
    pub stuck_attempts: u32,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        ReconcilePolicy {
            retry: Duration::from_millis(500),
            stuck_after: Duration::from_secs(60),
            stuck_attempts: 100,
        }
    }
}

/// What this process knows of one receipt's failed reconciliation attempts.
#[derive(Debug, Clone, Default)]
pub(super) struct Attempts {
    count: u32,
    /// When the row was journaled, Unix ms.
    since_ms: i64,
    last_error: Option<String>,
    logged_stuck_at: Option<Instant>,
}

/// One receipt whose KKT outcome is not known yet, for health and buffer status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedInfo {
    pub receipt_id: String,
    /// When the row was journaled, Unix ms.
    pub since_ms: i64,
    /// Reconciliation attempts in this process.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Past the policy's bound.
    pub stuck: bool,
}

/// Why reconciliation did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The device could not be read (no port, no answer, a refusal).
    #[error("{0}")]
    Device(KktError),
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Journal(String),
    /// An FN document could not be understood.
    #[error("FN document: {0}")]
    Document(String),
    /// Fiscalizing a receipt afresh left it unresolved again.
    #[error("receipt {receipt_id} is still unresolved: {cause}")]
    StillUnresolved { receipt_id: String, cause: String },
}

/// How the operator's resolve action ended.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub row: ReceiptRow,
    /// True when the FN holds the receipt (journaled as fiscalized), false when it proved absent.
    pub found: bool,
}

/// Why the resolve action could not run.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no receipt {0}")]
    NotFound(String),
    #[error("receipt {receipt_id} is not unresolved: its KKT state is {state}")]
    NotUnresolved {
        receipt_id: String,
        state: &'static str,
    },
    /// The FN could not be read, so nothing can be proved; nothing changed.
    #[error("the FN cannot be read, nothing changed: {0}")]
    Device(KktError),
    #[error("journal: {0}")]
    Journal(String),
    #[error("FN document: {0}")]
    Document(String),
}

impl From<ReconcileError> for ResolveError {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::Device(k) => ResolveError::Device(k),
            ReconcileError::Journal(m) => ResolveError::Journal(m),
            ReconcileError::Document(m) | ReconcileError::StillUnresolved { cause: m, .. } => {
                ResolveError::Document(m)
            }
        }
    }
}

fn journal_err(e: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::Journal(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Fiscalizer {
    /// Runs reconciliation now (under the fiscal lock).
    pub async fn reconcile(&self) -> Result<(), ReconcileError> {
        let _lock = self.inner.fiscal_lock.lock().await;
        self.reconcile_locked().await
    }

    /// Called under the fiscal lock before anything new goes to the KKT: reconciles what is
    /// unresolved, and refuses (definitely: nothing was journaled) while anything still is.
    pub(super) async fn reconciled_before(&self, what: &'static str) -> Result<(), SubmitError> {
        if !self.has_unresolved() {
            return Ok(());
        }
        let Err(e) = self.reconcile_locked().await else {
            return Ok(());
        };
        match self.inner.journal.list_unresolved(&self.inner.kkt_id).await {
            Ok(rows) if !rows.is_empty() => {
                let ids: Vec<&str> = rows.iter().map(|r| r.receipt_id.as_str()).collect();
                Err(SubmitError::ReconciliationPending(format!(
                    "{what} was not sent: receipt {} of this register awaits reconciliation with \
                     the FN ({e}); nothing was journaled for this request",
                    ids.join(", ")
                )))
            }
            Err(j) => Err(SubmitError::JournalUnavailable(j.to_string())),
            Ok(_) => Err(match e {
                ReconcileError::Device(k) => kkt_failure(&k, what),
                ReconcileError::Journal(m) => SubmitError::JournalUnavailable(m),
                other => SubmitError::KktUnavailable(other.to_string()),
            }),
        }
    }

    /// Keeps retrying reconciliation in the background while anything is unresolved.
    pub fn spawn_reconciler(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let mut pause = this.inner.policy.retry;
                if this.has_unresolved()
                    && let Err(e) = this.reconcile().await
                {
                    tracing::debug!(error = %e, "reconciliation not finished yet");
                    if this.unresolved().iter().any(|u| u.stuck) {
                        pause = pause.max(RECONCILE_RETRY_STUCK);
                    }
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    /// The receipts reconciliation has not resolved yet, as last seen, oldest first.
    pub fn unresolved(&self) -> Vec<UnresolvedInfo> {
        let policy = self.inner.policy;
        let now = now_ms();
        let tracker = self.inner.tracker.lock().expect("reconcile tracker");
        let mut out: Vec<UnresolvedInfo> = tracker
            .iter()
            .map(|(id, a)| {
                let since_ms = a.since_ms;
                let age = Duration::from_millis((now - since_ms).max(0) as u64);
                UnresolvedInfo {
                    receipt_id: id.clone(),
                    since_ms,
                    attempts: a.count,
                    last_error: a.last_error.clone(),
                    stuck: age >= policy.stuck_after || a.count >= policy.stuck_attempts,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.since_ms, &a.receipt_id).cmp(&(b.since_ms, &b.receipt_id)));
        out
    }

    pub(super) async fn reconcile_locked(&self) -> Result<(), ReconcileError> {
        let rows = self
            .inner
            .journal
            .list_unresolved(&self.inner.kkt_id)
            .await
            .map_err(journal_err)?;
        let result = self.reconcile_rows(rows.clone()).await;
        self.track(&rows, result.as_ref().err()).await;
        if result.is_ok() {
            self.inner.unresolved.store(false, Ordering::SeqCst);
        }
        result
    }

    /// Counts an attempt for every row still unresolved after it, and logs the stuck ones.
    async fn track(&self, before: &[ReceiptRow], error: Option<&ReconcileError>) {
        let mut still = Vec::new();
        for row in before {
            if self.has_unresolved_row(&row.receipt_id).await {
                still.push(row);
            }
        }
        let policy = self.inner.policy;
        let mut tracker = self.inner.tracker.lock().expect("reconcile tracker");
        tracker.retain(|id, _| still.iter().any(|r| &r.receipt_id == id));
        for row in still {
            let a = tracker.entry(row.receipt_id.clone()).or_default();
            a.count += 1;
            a.last_error = error.map(ToString::to_string);
            a.since_ms = row.created_at_ms;
            let age = Duration::from_millis((now_ms() - row.created_at_ms).max(0) as u64);
            let stuck = age >= policy.stuck_after || a.count >= policy.stuck_attempts;
            if stuck
                && a.logged_stuck_at
                    .is_none_or(|t| t.elapsed() >= STUCK_LOG_EVERY)
            {
                a.logged_stuck_at = Some(Instant::now());
                tracing::error!(
                    receipt_id = %row.receipt_id,
                    attempts = a.count,
                    age_s = age.as_secs(),
                    last_error = a.last_error.as_deref().unwrap_or(""),
                    "receipt stuck in reconciliation: sales on this register are refused until \
                     it resolves; an operator can resolve it with POST /v1/kkt/receipt/{{id}}/resolve"
                );
            }
        }
    }

    async fn reconcile_rows(&self, rows: Vec<ReceiptRow>) -> Result<(), ReconcileError> {
        let status = self.inner.kkt.run(ops::status).await.and_then(|r| r);
        if let Err(e) = &status {
            self.note_link(Err(e));
        }
        let status = status.map_err(ReconcileError::Device)?;
        self.note_link(Ok(()));
        let mut in_flight: Vec<ReceiptRow> = Vec::new();
        for row in rows {
            match row.kkt_state {
                // Never sent to the KKT (the adapter stopped in between): refuse it for good, so a
                // POS that was told anything definite is never contradicted by a late print.
                KktState::Received => {
                    let msg = "the adapter stopped before the sale reached the KKT; nothing was fiscalized";
                    self.inner
                        .journal
                        .mark_rejected(&row.receipt_id, RejectCode::Interrupted, msg)
                        .await
                        .map_err(journal_err)?;
                }
                _ => in_flight.push(row),
            }
        }
        self.scan_documents(&status, &mut in_flight).await?;
        // Whatever the scan did not find is proven absent: fiscalize it afresh.
        for row in in_flight {
            let body = row.request_body.clone().unwrap_or_default();
            let decoded = journaled::decode(&body).and_then(|j| match j {
                Journaled::Sale(sale) => Ok(sale),
                Journaled::Legacy => (self.inner.decode_legacy_sale)(&body),
            });
            let sale = match decoded {
                Ok(sale) => sale,
                Err(e) => {
                    // A journaled body this version cannot carry (an older version's validation
                    // let it through): proven absent, so refusing it for good is safe.
                    self.inner
                        .journal
                        .mark_rejected(&row.receipt_id, RejectCode::InvalidJournalBody, &e)
                        .await
                        .map_err(journal_err)?;
                    continue;
                }
            };
            tracing::info!(receipt_id = %row.receipt_id, "not in the FN: fiscalizing afresh");
            let id = row.receipt_id.clone();
            let outcome = self.fiscalize_row(row, sale, Attempt::Afresh).await;
            if self.has_unresolved_row(&id).await {
                let cause = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "the KKT outcome is unknown again".to_owned(),
                };
                return Err(ReconcileError::StillUnresolved {
                    receipt_id: id,
                    cause,
                });
            }
        }
        Ok(())
    }

    /// True unless the journal positively shows the row resolved (a read error counts as unresolved).
    pub(super) async fn has_unresolved_row(&self, id: &str) -> bool {
        !matches!(self.inner.journal.get_by_id(id).await, Ok(Some(r)) if matches!(r.kkt_state, KktState::Fiscalized | KktState::Rejected))
    }

    /// Reads documents backwards from the FN's last one until it reaches one the journal knows,
    /// journaling what it finds: in-flight receipts by their tag 1192, and shift reports.
    async fn scan_documents(
        &self,
        status: &ops::DeviceStatus,
        in_flight: &mut Vec<ReceiptRow>,
    ) -> Result<(), ReconcileError> {
        let journal = &self.inner.journal;
        let lowest = status.last_fd.saturating_sub(RECONCILE_SCAN_MAX);
        let mut fd = status.last_fd;
        while fd > lowest {
            if journal
                .get_by_fiscal(&status.fn_number, fd)
                .await
                .map_err(journal_err)?
                .is_some()
            {
                break;
            }
            let tlv = self
                .inner
                .kkt
                .run(move |kkt| ops::read_document(kkt, fd))
                .await
                .and_then(|r| r)
                .map_err(ReconcileError::Device)?;
            let data = match FiscalDocument::from_tlv(tlv) {
                Ok(data) => data,
                Err(DocumentError::Foreign(code)) => {
                    // A registration report or the like, issued by the KKT's own service tools.
                    tracing::warn!(
                        fd,
                        kind = code.name_json(),
                        "FN document not issued through this adapter"
                    );
                    fd -= 1;
                    continue;
                }
                Err(e) => return Err(ReconcileError::Document(e.to_string())),
            };
            match (data.kind(), data.receipt_id()) {
                (Some(DocKind::Receipt), Some(id)) => {
                    if let Some(pos) = in_flight.iter().position(|r| r.receipt_id == id) {
                        tracing::info!(receipt_id = %id, fd, "reconciled: the FN holds the receipt");
                        in_flight.remove(pos);
                        journal
                            .mark_fiscalized(&id, data)
                            .await
                            .map_err(journal_err)?;
                        self.inner.fiscalized.notify_one();
                    } else {
                        tracing::warn!(receipt_id = %id, fd, "FN document with an id the journal does not hold in flight");
                    }
                }
                (Some(kind @ (DocKind::ShiftOpen | DocKind::ShiftClose)), _) => {
                    journal
                        .insert_fiscal_document(&self.inner.kkt_id, kind, data)
                        .await
                        .map_err(journal_err)?;
                    self.inner.fiscalized.notify_one();
                }
                (other, _) => {
                    tracing::warn!(fd, kind = ?other, "FN document not issued through this adapter")
                }
            }
            fd -= 1;
        }
        Ok(())
    }

    /// The operator's resolve action: reads the FN for the receipt. Found: journaled as fiscalized.
    /// Proved absent: journaled as rejected, never fiscalized afresh. Either way the action is
    /// written to the audit trail with `actor` and `reason`. Nothing changes if the FN cannot be
    /// read.
    pub async fn resolve(
        &self,
        receipt_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Resolved, ResolveError> {
        let _lock = self.inner.fiscal_lock.lock().await;
        let journal = &self.inner.journal;
        let row = journal
            .get_by_id(receipt_id)
            .await
            .map_err(|e| ResolveError::Journal(e.to_string()))?
            .ok_or_else(|| ResolveError::NotFound(receipt_id.to_owned()))?;
        match row.kkt_state {
            KktState::Received | KktState::InFlight => {}
            KktState::Fiscalized | KktState::Rejected => {
                return Err(ResolveError::NotUnresolved {
                    receipt_id: receipt_id.to_owned(),
                    state: row.kkt_state.as_str(),
                });
            }
        }
        let mut in_flight = Vec::new();
        if row.kkt_state == KktState::InFlight {
            let status = self.inner.kkt.run(ops::status).await.and_then(|r| r);
            let status = status.map_err(ResolveError::Device)?;
            // Every unresolved row takes part, so the scan's proof holds for all of them.
            in_flight = journal
                .list_unresolved(&self.inner.kkt_id)
                .await
                .map_err(|e| ResolveError::Journal(e.to_string()))?
                .into_iter()
                .filter(|r| r.kkt_state == KktState::InFlight)
                .collect();
            self.scan_documents(&status, &mut in_flight).await?;
        }
        let absent = in_flight.iter().any(|r| r.receipt_id == receipt_id)
            || row.kkt_state == KktState::Received;
        let entry = |outcome: String| AuditEntry {
            at_ms: 0,
            actor: actor.to_owned(),
            action: "resolve".into(),
            receipt_id: receipt_id.to_owned(),
            outcome,
            reason: reason.to_owned(),
        };
        let result = if absent {
            let message = format!(
                "resolved by {actor}: the FN holds no document of this receipt; it was not printed ({reason})"
            );
            let row = journal
                .mark_rejected_audited(RejectCode::ResolvedAbsent, &message, entry("absent".into()))
                .await
                .map_err(|e| ResolveError::Journal(e.to_string()))?;
            Resolved { row, found: false }
        } else {
            let row = journal
                .get_by_id(receipt_id)
                .await
                .map_err(|e| ResolveError::Journal(e.to_string()))?
                .ok_or_else(|| ResolveError::NotFound(receipt_id.to_owned()))?;
            let fd = row.fiscal.as_ref().map_or(0, |f| f.fd_number);
            journal
                .record_audit(entry(format!("fiscalized fd={fd}")))
                .await
                .map_err(|e| ResolveError::Journal(e.to_string()))?;
            Resolved { row, found: true }
        };
        tracing::warn!(
            receipt_id,
            actor,
            reason,
            found = result.found,
            "receipt resolved by an operator"
        );
        // The others may still be unresolved: the background reconciler looks again.
        self.inner.unresolved.store(true, Ordering::SeqCst);
        self.inner
            .tracker
            .lock()
            .expect("reconcile tracker")
            .remove(receipt_id);
        Ok(result)
    }
}
