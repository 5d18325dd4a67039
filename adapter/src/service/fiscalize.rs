//! Phase 1, at the KKT: preparing the register, fiscalizing a journaled receipt and recording the
//! outcome (printed, definitely refused, or in flight for reconciliation), and the shift reports.
//!
//! Invariant: every device failure is sorted here into definite (no document can exist: the row
//! is rejected, or left in flight for a fresh attempt on a condition of the register) and
//! indeterminate (the close may have run: only reconciliation decides).

use std::sync::atomic::Ordering;

use kkt_proto::{DeviceError, ErrorClass};

use super::{Fiscalizer, SubmitError};
use crate::fiscal::{DocKind, FiscalDocument};
use crate::kkt::Durable;
use crate::kkt::ops::{self, FiscalizeError};
use crate::sale::Sale;
use crate::service::{KktError, KktState, ReceiptRow, RejectCode};

/// The error for a KKT failure that certainly produced no document: the device's own refusal, or
/// no device at all. `what` names the operation ("the receipt", "the shift opening").
pub(super) fn kkt_failure(e: &KktError, what: &'static str) -> SubmitError {
    match e.device_error() {
        Some(error) => SubmitError::KktRefused {
            what,
            code: device_code(Some(error)),
            reason: e.to_string(),
        },
        None => SubmitError::KktUnavailable(e.to_string()),
    }
}

/// The code of a device refusal, by the error's class (the exact byte goes in the message).
fn device_code(error: Option<DeviceError>) -> RejectCode {
    match error.map(DeviceError::class) {
        Some(ErrorClass::Printer) => RejectCode::KktPrinter,
        Some(ErrorClass::Shift) => RejectCode::KktShift,
        Some(ErrorClass::Document) => RejectCode::KktDocumentState,
        Some(ErrorClass::Parameters) => RejectCode::KktParameters,
        Some(ErrorClass::Busy) => RejectCode::KktBusy,
        Some(ErrorClass::FiscalStorage) => RejectCode::KktFiscalStorage,
        Some(ErrorClass::Other) => RejectCode::KktDeviceError,
        None => RejectCode::KktUnavailable,
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
    /// Sends an in-flight row's sale to the KKT and journals the outcome (see
    /// [`Self::record_outcome`]).
    pub(super) async fn fiscalize_row(
        &self,
        row: ReceiptRow,
        sale: Sale,
        attempt: Attempt,
    ) -> Result<ReceiptRow, SubmitError> {
        let fiscal = self
            .sell_on_kkt(&row.receipt_id, sale, Durable::already())
            .await;
        self.record_outcome(row, fiscal, attempt).await
    }

    /// Prepares the register and fiscalizes `sale` under `receipt_id`, its close only once
    /// `in_flight` says the row is journaled in flight; journals the shift documents made on the
    /// way.
    pub(super) async fn sell_on_kkt(
        &self,
        receipt_id: &str,
        sale: Sale,
        mut in_flight: Durable,
    ) -> Result<FiscalDocument, FiscalizeError> {
        let auto = self.inner.auto_open_shift;
        let receipt_id = receipt_id.to_owned();
        let outcome = self
            .inner
            .kkt
            .run(move |kkt| ops::sell(kkt, auto, &sale, &receipt_id, &mut in_flight))
            .await;
        match outcome {
            Ok(Ok((shifts, fiscal))) => {
                self.journal_shift_documents(shifts).await;
                fiscal
            }
            // Preparing failed: the close command was never sent for this sale.
            Ok(Err(e)) | Err(e) => Err(FiscalizeError::Definite(e)),
        }
    }

    /// Journals the outcome of an in-flight row's fiscalization. Once the close command may have
    /// reached the device, no journal failure turns into a definite error: the answer is built
    /// from what is known in memory, and reconciliation brings the journal up to date.
    pub(super) async fn record_outcome(
        &self,
        row: ReceiptRow,
        fiscal: Result<FiscalDocument, FiscalizeError>,
        attempt: Attempt,
    ) -> Result<ReceiptRow, SubmitError> {
        let id = row.receipt_id.as_str();
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
            Err(FiscalizeError::NotJournaled) => {
                // Only a row whose in-flight commit failed gets here, and its caller handles
                // that before asking for the outcome; kept so the row is never left to chance.
                let why = FiscalizeError::NotJournaled.to_string();
                self.reject_unjournaled(id, &why).await;
                Err(SubmitError::JournalUnavailable(why))
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

    /// A sale whose in-flight state could not be journaled: nothing fiscal was sent for it (its
    /// close waits for that state), so it is rejected. If even the refusal cannot be journaled, the
    /// row stays `received`, which reconciliation refuses for good: either way it never prints.
    pub(super) async fn reject_unjournaled(&self, id: &str, why: &str) {
        let _ = self
            .inner
            .journal
            .mark_rejected(id, RejectCode::JournalUnavailable, why)
            .await;
    }

    async fn journal_shift_documents(&self, docs: Vec<FiscalDocument>) {
        for doc in docs {
            let kind = match doc.kind() {
                Some(DocKind::ShiftClose) => DocKind::ShiftClose,
                _ => DocKind::ShiftOpen,
            };
            let fd = doc.fd_number;
            if let Err(e) = self
                .inner
                .journal
                .insert_fiscal_document(&self.inner.kkt_id, kind, doc)
                .await
            {
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
}
