//! Phase 1: the fiscal service. It journals a sale, fiscalizes it on the KKT and records the outcome,
//! and it reconciles every receipt whose KKT outcome is unknown before the next sale goes out.
//!
//! Invariant: one sale at a time talks to the KKT (`fiscal_lock`), and no sale is sent while an
//! earlier one is unresolved, so the FN's newest documents always belong to the unresolved rows and a
//! backwards scan from the FN's last document proves presence or absence without guessing.
//! Invariant: a receipt is fiscalized afresh only after the scan proved no document carries its id.
//! Invariant: a shift command is sent only when nothing is unresolved either, since a shift
//! document journaled above an unresolved receipt would end the scan before it reached the receipt.

mod query;
mod reconcile;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kkt_proto::{DeviceError, ErrorClass};

use crate::fiscal::{DocKind, FiscalDocument};
use crate::journal::{InsertOutcome, Journal, NewReceipt};
use crate::kkt::KktHandle;
use crate::kkt::ops::{self, FiscalizeError};
use crate::sale::Sale;

/// Decodes a body journaled before the sale encoding was versioned ([`crate::sale::journaled`]):
/// the POS request as received, so the HTTP layer, which owns that wire format, provides it.
pub type LegacySaleDecoder = fn(&str) -> Result<Sale, String>;

pub use query::{
    BackupInfo, BufferCounts, DeviceStatus, DlqEntry, EffectiveSettings, JournalError, KktError,
    KktState, OfdExchange, OfdStatus, ReceiptRow,
};
pub use reconcile::{ReconcileError, ReconcilePolicy, ResolveError, Resolved, UnresolvedInfo};

/// Why a sale was not printed. The HTTP layer maps each to a stable code.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("idempotency key was used with a different body")]
    KeyReused,
    #[error("the first request with this idempotency key is still being processed")]
    InProgress,
    #[error("{0}")]
    BufferFull(String),
    #[error("journal cannot commit: {0}")]
    JournalUnavailable(String),
    /// The device definitely refused; `reason` is the device's own, `what` the operation.
    #[error("KKT refused {what}: {reason}")]
    KktRefused {
        what: &'static str,
        code: &'static str,
        reason: String,
    },
    /// An earlier receipt of this register is still being reconciled; nothing was journaled.
    #[error("{0}")]
    ReconciliationPending(String),
    /// Nothing reached the device (no link, port missing, earlier receipt not yet reconciled).
    #[error("KKT unavailable: {0}")]
    KktUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Background link probes started by readiness checks are at least this far apart.
const LINK_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What the last KKT exchange showed, for `/v1/health` and `/v1/ready`.
#[derive(Debug, Clone, Default)]
pub struct KktLinkState {
    pub ok: bool,
    pub last_error: Option<String>,
}

struct Inner {
    journal: Journal,
    kkt: KktHandle,
    auto_open_shift: bool,
    decode_legacy_sale: LegacySaleDecoder,
    /// Keys whose request is being processed, with the hash of their body.
    in_progress: Mutex<HashMap<String, String>>,
    policy: ReconcilePolicy,
    /// Attempts and last failure of each receipt reconciliation has not resolved yet.
    tracker: Mutex<HashMap<String, reconcile::Attempts>>,
    fiscal_lock: tokio::sync::Mutex<()>,
    unresolved: AtomicBool,
    link: Mutex<KktLinkState>,
    /// When the last background link probe started ([`Fiscalizer::refresh_link_if_down`]).
    link_probe_at: Mutex<Option<Instant>>,
    fiscalized: tokio::sync::Notify,
}

/// The phase-1 service; cheap to clone.
#[derive(Clone)]
pub struct Fiscalizer {
    inner: Arc<Inner>,
}

/// Removes the key from the in-progress set when the fiscal task ends, however it ends.
struct InProgressGuard(Arc<Inner>, String);

impl Drop for InProgressGuard {
    fn drop(&mut self) {
        self.0
            .in_progress
            .lock()
            .expect("in-progress set")
            .remove(&self.1);
    }
}

/// The error for a KKT failure that certainly produced no document: the device's own refusal, or
/// no device at all. `what` names the operation ("the receipt", "the shift opening").
fn kkt_failure(e: &KktError, what: &'static str) -> SubmitError {
    match e.device_error() {
        Some(error) => SubmitError::KktRefused {
            what,
            code: device_code(Some(error)),
            reason: e.to_string(),
        },
        None => SubmitError::KktUnavailable(e.to_string()),
    }
}

/// A stable code for a device refusal, by the error's class (the exact byte goes in the message).
fn device_code(error: Option<DeviceError>) -> &'static str {
    match error.map(DeviceError::class) {
        Some(ErrorClass::Printer) => "kkt_printer",
        Some(ErrorClass::Shift) => "kkt_shift",
        Some(ErrorClass::Document) => "kkt_document_state",
        Some(ErrorClass::Parameters) => "kkt_parameters",
        Some(ErrorClass::Busy) => "kkt_busy",
        Some(ErrorClass::FiscalStorage) => "kkt_fiscal_storage",
        Some(ErrorClass::Other) => "kkt_device_error",
        None => "kkt_unavailable",
    }
}

/// Whose fiscalization this is: the sale's own, whose refusal the POS is told, or
/// reconciliation's retry of a receipt the POS was already answered `buffered` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    First,
    Afresh,
}

impl Fiscalizer {
    pub fn new(
        journal: Journal,
        kkt: KktHandle,
        auto_open_shift: bool,
        decode_legacy_sale: LegacySaleDecoder,
        policy: ReconcilePolicy,
    ) -> Fiscalizer {
        let inner = Inner {
            journal,
            kkt,
            auto_open_shift,
            decode_legacy_sale,
            in_progress: Mutex::new(HashMap::new()),
            policy,
            tracker: Mutex::new(HashMap::new()),
            fiscal_lock: tokio::sync::Mutex::new(()),
            // Unknown until the first reconciliation has looked at the journal.
            unresolved: AtomicBool::new(true),
            link: Mutex::new(KktLinkState::default()),
            link_probe_at: Mutex::new(None),
            fiscalized: tokio::sync::Notify::new(),
        };
        Fiscalizer {
            inner: Arc::new(inner),
        }
    }

    /// Signalled after every new fiscal document, so phase 2 can relay it at once.
    pub fn fiscalized_signal(&self) -> &tokio::sync::Notify {
        &self.inner.fiscalized
    }

    pub fn link_state(&self) -> KktLinkState {
        self.inner.link.lock().expect("link state").clone()
    }

    pub fn has_unresolved(&self) -> bool {
        self.inner.unresolved.load(Ordering::SeqCst)
    }

    /// While the last exchange found no device, asks it for its status in the background, at most
    /// once a [`LINK_PROBE_INTERVAL`] and never while a fiscal operation holds the device (that
    /// operation updates the link state itself). Readiness calls this, so it turns back to ready
    /// once the KKT answers again, even when no sale comes to prove it.
    pub fn refresh_link_if_down(&self) {
        if self.link_state().ok {
            return;
        }
        {
            let mut at = self.inner.link_probe_at.lock().expect("link probe time");
            if at.is_some_and(|t| t.elapsed() < LINK_PROBE_INTERVAL) {
                return;
            }
            *at = Some(Instant::now());
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_device) = this.inner.fiscal_lock.try_lock() else {
                return;
            };
            let status = this.inner.kkt.run(ops::status).await.and_then(|r| r);
            this.note_link(status.as_ref().map(|_| ()));
        });
    }

    fn note_link(&self, result: Result<(), &KktError>) {
        let mut link = self.inner.link.lock().expect("link state");
        match result {
            Ok(()) => {
                *link = KktLinkState {
                    ok: true,
                    last_error: None,
                }
            }
            // A device refusal (paper out, ...) still proves the link works.
            Err(e) if e.device_error().is_some() => {
                *link = KktLinkState {
                    ok: true,
                    last_error: Some(e.to_string()),
                }
            }
            Err(e) => {
                *link = KktLinkState {
                    ok: false,
                    last_error: Some(e.to_string()),
                }
            }
        }
    }

    /// Submits a sale under an idempotency key; `request_hash` tells a replay of the POS's request
    /// from a different request under the same key. Returns the journaled row: fiscalized
    /// (`printed`), or still in flight (`buffered`) when the KKT outcome is not known yet.
    pub async fn submit(
        &self,
        key: String,
        request_hash: String,
        sale: Sale,
    ) -> Result<ReceiptRow, SubmitError> {
        if let Some(row) = self.lookup_existing(&key, &request_hash).await? {
            return Ok(row);
        }
        {
            let mut in_progress = self.inner.in_progress.lock().expect("in-progress set");
            match in_progress.get(&key) {
                // Concurrent requests with one key and different bodies: always a misuse.
                Some(hash) if *hash != request_hash => return Err(SubmitError::KeyReused),
                Some(_) => return Err(SubmitError::InProgress),
                None => {
                    in_progress.insert(key.clone(), request_hash.clone());
                }
            }
        }
        let guard = InProgressGuard(self.inner.clone(), key.clone());
        let this = self.clone();
        // Its own task: a POS that disconnects never cancels a fiscalization half-way.
        let task = tokio::spawn(async move {
            let _guard = guard;
            let new = NewReceipt {
                idempotency_key: key,
                request_hash,
                request_body: crate::sale::journaled::encode(&sale),
            };
            this.run_sale(new, sale).await
        });
        task.await
            .map_err(|e| SubmitError::Internal(format!("fiscal task failed: {e}")))?
    }

    async fn lookup_existing(
        &self,
        key: &str,
        request_hash: &str,
    ) -> Result<Option<ReceiptRow>, SubmitError> {
        let existing = self
            .inner
            .journal
            .get_by_key(key)
            .await
            .map_err(|e| SubmitError::JournalUnavailable(e.to_string()))?;
        match existing {
            Some(row) if row.request_hash.as_deref() != Some(request_hash) => {
                Err(SubmitError::KeyReused)
            }
            Some(_)
                if self
                    .inner
                    .in_progress
                    .lock()
                    .expect("in-progress set")
                    .contains_key(key) =>
            {
                Err(SubmitError::InProgress)
            }
            other => Ok(other),
        }
    }

    async fn run_sale(&self, new: NewReceipt, sale: Sale) -> Result<ReceiptRow, SubmitError> {
        let _lock = self.inner.fiscal_lock.lock().await;
        self.reconciled_before("the receipt").await?;
        let row = match self.inner.journal.insert_received(new).await {
            Ok(InsertOutcome::Inserted(row)) => row,
            Ok(InsertOutcome::Existing(row)) => return Ok(row),
            Err(e @ JournalError::CapacityExceeded { .. }) => {
                return Err(SubmitError::BufferFull(e.to_string()));
            }
            Err(e) if e.is_storage_failure() => {
                return Err(SubmitError::JournalUnavailable(e.to_string()));
            }
            Err(e) => return Err(SubmitError::Internal(e.to_string())),
        };
        let row = match self.inner.journal.mark_in_flight(&row.receipt_id).await {
            Ok(row) => row,
            Err(e) => {
                // Nothing was sent. If even the refusal cannot be journaled, the row stays
                // `received`, which reconciliation refuses for good: either way it never prints.
                let _ = self
                    .inner
                    .journal
                    .mark_rejected(&row.receipt_id, "journal_unavailable", &e.to_string())
                    .await;
                return Err(SubmitError::JournalUnavailable(e.to_string()));
            }
        };
        self.fiscalize_row(row, sale, Attempt::First).await
    }

    /// Sends an in-flight row's sale to the KKT and journals the outcome. Once the close command may
    /// have reached the device, no journal failure turns into a definite error: the answer is built
    /// from what is known in memory, and reconciliation brings the journal up to date.
    async fn fiscalize_row(
        &self,
        row: ReceiptRow,
        sale: Sale,
        attempt: Attempt,
    ) -> Result<ReceiptRow, SubmitError> {
        let auto = self.inner.auto_open_shift;
        let id = row.receipt_id.as_str();
        let receipt_id = id.to_owned();
        let outcome = self
            .inner
            .kkt
            .run(
                move |kkt| -> Result<
                    (Vec<FiscalDocument>, Result<FiscalDocument, FiscalizeError>),
                    KktError,
                > {
                    let mut shifts = ops::prepare_for_sale(kkt, auto)?;
                    let mut result = ops::fiscalize(kkt, &sale, &receipt_id);
                    // An earlier session's commands ran in the middle of the receipt and it was
                    // cancelled before its close: once more, now that the line is clean.
                    if matches!(
                        result,
                        Err(FiscalizeError::Definite(KktError::Interfered { .. }))
                    ) {
                        shifts.extend(ops::prepare_for_sale(kkt, auto)?);
                        result = ops::fiscalize(kkt, &sale, &receipt_id);
                    }
                    Ok((shifts, result))
                },
            )
            .await;
        let fiscal = match outcome {
            Ok(Ok((shifts, fiscal))) => {
                self.journal_shift_documents(shifts).await;
                fiscal
            }
            // Preparing failed: the close command was never sent for this sale.
            Ok(Err(e)) | Err(e) => Err(FiscalizeError::Definite(e)),
        };
        match fiscal {
            Ok(data) => {
                self.note_link(Ok(()));
                self.inner.fiscalized.notify_one();
                match self.inner.journal.mark_fiscalized(id, data.clone()).await {
                    Ok(row) => Ok(row),
                    Err(e) => {
                        // The receipt printed: never report a failure. Answer from memory; the
                        // row stays in flight and reconciliation journals it by its tag 1192.
                        tracing::error!(receipt_id = id, error = %e, "fiscalized but not journaled; will reconcile");
                        self.inner.unresolved.store(true, Ordering::SeqCst);
                        Ok(ReceiptRow {
                            kkt_state: KktState::Fiscalized,
                            status: Some(crate::journal::OfdStatus::Pending),
                            fiscal: Some(data),
                            ..row
                        })
                    }
                }
            }
            Err(FiscalizeError::Definite(e)) if attempt == Attempt::Afresh && e.is_condition() => {
                // The POS was answered `buffered`: a register that cannot print right now (no
                // paper, busy, unplugged) does not make that promise false. The row stays in
                // flight and reconciliation tries again; only a refusal of the receipt itself
                // rejects it.
                self.note_link(Err(&e));
                tracing::warn!(receipt_id = id, error = %e, "buffered receipt not fiscalized yet: the KKT cannot print now; reconciliation retries");
                self.inner.unresolved.store(true, Ordering::SeqCst);
                Err(kkt_failure(&e, "the receipt"))
            }
            Err(FiscalizeError::Definite(e)) => {
                self.note_link(Err(&e));
                let code = device_code(e.device_error());
                if let Err(journal) = self
                    .inner
                    .journal
                    .mark_rejected(id, code, &e.to_string())
                    .await
                {
                    // Unjournaled, the row stays in flight and reconciliation may fiscalize it
                    // afresh, so the POS must not be told "certainly not": it retries the key.
                    tracing::error!(receipt_id = id, error = %journal, "refusal not journaled");
                    self.inner.unresolved.store(true, Ordering::SeqCst);
                    return Err(SubmitError::Internal(format!(
                        "KKT refused ({e}) but the journal could not record it"
                    )));
                }
                Err(kkt_failure(&e, "the receipt"))
            }
            Err(FiscalizeError::Indeterminate(e)) => {
                self.note_link(Err(&e));
                tracing::warn!(receipt_id = id, error = %e, "KKT outcome unknown; receipt left in flight for reconciliation");
                self.inner.unresolved.store(true, Ordering::SeqCst);
                // The in-flight row as journaled: answered `buffered`.
                Ok(row)
            }
        }
    }

    async fn journal_shift_documents(&self, docs: Vec<FiscalDocument>) {
        for doc in docs {
            let kind = match doc.kind() {
                Some(DocKind::ShiftClose) => DocKind::ShiftClose,
                _ => DocKind::ShiftOpen,
            };
            let fd = doc.fd_number;
            if let Err(e) = self.inner.journal.insert_fiscal_document(kind, doc).await {
                // The FN still holds it and phase 2 relays it from there; reconciliation retries the copy.
                tracing::error!(fd, error = %e, "shift document not journaled");
                self.inner.unresolved.store(true, Ordering::SeqCst);
            } else {
                self.inner.fiscalized.notify_one();
            }
        }
    }

    /// Opens the shift explicitly; returns the shift-open document.
    pub async fn open_shift(&self) -> Result<FiscalDocument, SubmitError> {
        self.shift_command(true).await
    }

    /// Closes the shift explicitly; returns the shift-close document.
    pub async fn close_shift(&self) -> Result<FiscalDocument, SubmitError> {
        self.shift_command(false).await
    }

    async fn shift_command(&self, open: bool) -> Result<FiscalDocument, SubmitError> {
        let _lock = self.inner.fiscal_lock.lock().await;
        let what = if open {
            "the shift opening"
        } else {
            "the shift closing"
        };
        self.reconciled_before(what).await?;
        let result = self
            .inner
            .kkt
            .run(move |kkt| {
                if open {
                    ops::open_shift(kkt)
                } else {
                    ops::close_shift(kkt)
                }
            })
            .await
            .and_then(|r| r);
        match result {
            Ok(doc) => {
                self.note_link(Ok(()));
                self.journal_shift_documents(vec![doc.clone()]).await;
                Ok(doc)
            }
            Err(e) => {
                self.note_link(Err(&e));
                if !e.is_definite() {
                    self.inner.unresolved.store(true, Ordering::SeqCst);
                }
                Err(kkt_failure(&e, what))
            }
        }
    }

    /// Waits until no sale is at the KKT (used at shutdown, after the server stopped taking requests).
    pub async fn quiesce(&self) {
        drop(self.inner.fiscal_lock.lock().await);
    }
}
