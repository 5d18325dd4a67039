//! What the POS edge may ask the service, beside selling: receipts by id, idempotency key or fiscal
//! number, the buffer's counts and ages, the journal's settings, a backup, and the device's status.
//!
//! The edge reaches the journal and the KKT only through these methods (the tidy test
//! `adapter_layers_point_one_way` holds `http` off `journal` and `kkt`), so a second register or a
//! second API beside the native one answers from the same reads. The row types the answers carry
//! are re-exported here as the service's read model.

use std::path::PathBuf;

use super::Fiscalizer;
pub use crate::journal::{
    BackupInfo, BufferCounts, DlqEntry, EffectiveSettings, JournalError, KktState, OfdExchange,
    OfdStatus, ReceiptRow, RejectCode,
};
pub use crate::kkt::KktError;
pub use crate::kkt::ops::{DeviceSnapshot, DeviceStatus};

impl Fiscalizer {
    /// The receipt with this adapter id.
    pub async fn receipt(&self, receipt_id: &str) -> Result<Option<ReceiptRow>, JournalError> {
        self.inner.journal.get_by_id(receipt_id).await
    }

    /// The receipt the POS posted under this idempotency key.
    pub async fn receipt_by_key(&self, key: &str) -> Result<Option<ReceiptRow>, JournalError> {
        self.inner.journal.get_by_key(key).await
    }

    /// The document with this FN and FD number (a receipt or a shift report).
    pub async fn document(
        &self,
        fn_number: &str,
        fd_number: u32,
    ) -> Result<Option<ReceiptRow>, JournalError> {
        self.inner.journal.get_by_fiscal(fn_number, fd_number).await
    }

    /// The OFD exchange journaled for a document, if one was sent.
    pub async fn ofd_exchange(
        &self,
        fn_number: &str,
        fd_number: u32,
    ) -> Result<Option<OfdExchange>, JournalError> {
        self.inner.journal.ofd_exchange(fn_number, fd_number).await
    }

    /// Counts of the buffer by state, with the oldest undelivered document's time.
    pub async fn counts(&self) -> Result<BufferCounts, JournalError> {
        self.inner.journal.counts().await
    }

    /// Counts of the buffer for each register that has rows, in id order.
    pub async fn counts_by_register(&self) -> Result<Vec<(String, BufferCounts)>, JournalError> {
        self.inner.journal.counts_by_kkt().await
    }

    /// Per FN, the Unix ms of its oldest undelivered document.
    pub async fn oldest_undelivered_by_fn(&self) -> Result<Vec<(String, i64)>, JournalError> {
        self.inner.journal.oldest_undelivered_by_fn().await
    }

    /// The journal's settings as SQLite reports them (also a check that the writer answers).
    pub async fn journal_settings(&self) -> Result<EffectiveSettings, JournalError> {
        self.inner.journal.effective_settings().await
    }

    /// An online backup of the journal into `dest`, checked before it is reported.
    pub async fn backup_to(&self, dest: PathBuf) -> Result<BackupInfo, JournalError> {
        self.inner.journal.backup_to(dest).await
    }

    /// The `limit` newest journal rows (receipts and shift documents), newest first.
    pub async fn recent_receipts(&self, limit: u32) -> Result<Vec<ReceiptRow>, JournalError> {
        self.inner.journal.list_recent(limit).await
    }

    /// The device's mode, shift, FN counters and OFD queue, asked of the KKT now: four status
    /// commands, taken between fiscal operations (never inside a sale's), and the link state noted.
    pub async fn device_snapshot(&self) -> Result<DeviceSnapshot, KktError> {
        let _device = self.inner.fiscal_lock.lock().await;
        self.snapshot_now().await
    }

    /// The four status commands and the link state noted; the caller holds the fiscal lock.
    async fn snapshot_now(&self) -> Result<DeviceSnapshot, KktError> {
        let r = self
            .inner
            .kkt
            .run(crate::kkt::ops::snapshot)
            .await
            .and_then(|r| r);
        self.note_link(r.as_ref().map(|_| ()));
        r
    }

    /// The device's snapshot for a person's view (the status page), never at a sale's expense: a
    /// snapshot younger than `fresh_for` is answered from memory, so any number of viewers cost
    /// at most one read per `fresh_for`; a device busy with a fiscal operation is not waited for,
    /// the last snapshot is answered ([`Glance::Stale`] with its age) or none.
    pub async fn glance(&self, fresh_for: std::time::Duration) -> Glance {
        let now = std::time::Instant::now();
        let last = self.inner.glanced.lock().expect("glance cache").clone();
        if let Some((at, snapshot)) = &last
            && now.duration_since(*at) < fresh_for
        {
            return Glance::Read {
                snapshot: snapshot.clone(),
                age: now.duration_since(*at),
            };
        }
        let stale = |why: GlanceMiss| match &last {
            Some((at, snapshot)) => Glance::Stale {
                snapshot: snapshot.clone(),
                age: now.duration_since(*at),
                why,
            },
            None => Glance::None(why),
        };
        let Ok(_device) = self.inner.fiscal_lock.try_lock() else {
            return stale(GlanceMiss::Busy);
        };
        match self.snapshot_now().await {
            Ok(snapshot) => {
                *self.inner.glanced.lock().expect("glance cache") =
                    Some((std::time::Instant::now(), snapshot.clone()));
                Glance::Read {
                    snapshot,
                    age: std::time::Duration::ZERO,
                }
            }
            Err(e) => stale(GlanceMiss::Failed(e)),
        }
    }

    /// The device's mode, FN number and last document number, asked of the KKT now.
    pub async fn device_status(&self) -> Result<DeviceStatus, KktError> {
        self.inner
            .kkt
            .run(crate::kkt::ops::status)
            .await
            .and_then(|r| r)
    }
}

/// What [`Fiscalizer::glance`] saw.
#[derive(Debug)]
pub enum Glance {
    /// A snapshot read now or within the freshness asked for; `age` since it was read.
    Read {
        snapshot: DeviceSnapshot,
        age: std::time::Duration,
    },
    /// No new read: the last snapshot, `age` old, and why it was not read again.
    Stale {
        snapshot: DeviceSnapshot,
        age: std::time::Duration,
        why: GlanceMiss,
    },
    /// No snapshot at all yet, and why.
    None(GlanceMiss),
}

/// Why a glance did not read the device.
#[derive(Debug)]
pub enum GlanceMiss {
    /// A fiscal operation (a sale, a shift report, reconciliation) held the device.
    Busy,
    /// The device did not answer or refused.
    Failed(KktError),
}
