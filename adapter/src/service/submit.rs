//! Phase 1, taking a sale: the idempotency key (a replay answers from the journal, a concurrent
//! duplicate waits its turn), journaling it durably, and handing it to the fiscal step in a task of
//! its own, so a POS that disconnects never cancels a fiscalization half-way.

use std::sync::Arc;

use super::fiscalize::Attempt;
use super::{Fiscalizer, Inner, SubmitError};
use crate::journal::{InsertOutcome, NewReceipt};
use crate::kkt::Durable;
use crate::sale::Sale;
use crate::service::{JournalError, ReceiptRow};

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

impl Fiscalizer {
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
                kkt_id: this.inner.kkt_id.clone(),
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
        // The in-flight state is committed while the register is prepared and takes the items;
        // the close, the first command that can make a fiscal document, waits for it on the
        // driver thread (`ops::fiscalize`).
        let (tell, in_flight) = Durable::pending();
        let marked = async {
            let marked = self.inner.journal.mark_in_flight(&row.receipt_id).await;
            tell.tell(marked.is_ok());
            marked
        };
        let (marked, fiscal) =
            tokio::join!(marked, self.sell_on_kkt(&row.receipt_id, sale, in_flight));
        match marked {
            Ok(row) => self.record_outcome(row, fiscal, Attempt::First).await,
            // The close never went: the receipt was cancelled before it, or failed earlier.
            Err(e) if fiscal.is_err() => {
                self.reject_unjournaled(&row.receipt_id, &e.to_string())
                    .await;
                Err(SubmitError::JournalUnavailable(e.to_string()))
            }
            Err(e) => {
                // Cannot happen (the close waits for the commit that failed); should it ever, a
                // receipt printed and the cashier is told so, never "failed".
                tracing::error!(receipt_id = %row.receipt_id, error = %e, "a receipt closed although its in-flight state was not journaled");
                self.record_outcome(row, fiscal, Attempt::First).await
            }
        }
    }
}
