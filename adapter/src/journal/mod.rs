//! The durable journal: every sale and fiscal document, in SQLite (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the write connection and group-commits concurrent requests
//! ([`writer`]); reads use a small pool of read-only connections. Every write is stamped by
//! the hybrid logical clock ([`crate::hlc`]), whose high-water mark is committed with the
//! write. Each public write is one SAVEPOINT inside one `BEGIN IMMEDIATE` transaction: it
//! either happened entirely, durably, before its future resolves `Ok`, or not at all.
//!
//! **Invariant:** `receipts.status` is NULL until the row is fiscalized and then one of
//! `pending`/`synced`/`dlq`, so `count(*) WHERE status='pending'` is exactly the fiscalized
//! documents the OFD has not acknowledged.
//! **Boundary:** no serde and no knowledge of HTTP or device protocols; callers convert.

mod backup;
mod error;
mod invariants;
mod ops;
mod read;
mod schema;
mod tasks;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::mpsc;

use crate::fiscal::{DocKind, FiscalDocument};
pub use backup::{BackupInfo, backup_file};
pub use error::{JournalError, Result};
pub use schema::DEFAULT_KKT_ID;
pub use tasks::{TASK_KEY_PREFIX, task_receipt_key};
pub use types::{
    AuditEntry, BufferCounts, CheckpointInfo, DlqEntry, EffectiveSettings, InsertOutcome, KktState,
    Lease, NewReceipt, NewTaskRequest, OfdExchange, OfdReply, OfdStatus, ReceiptRow, RejectCode,
    Rejection, TaskInsert, TaskRequestRow, WriterStats,
};

use crate::hlc::{ClockSource, HlcClock, HlcStamp, SystemClock};
use writer::{Counters, Job, WriteCtx, Writer, write_job};

/// Journal settings; [`JournalConfig::new`] gives the defaults of the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// The database file; its directory is created if missing.
    pub path: PathBuf,
    /// Documents not yet delivered above which a new sale is refused (default 10,000).
    pub capacity_max: u64,
    /// `PRAGMA wal_autocheckpoint`, in pages (default 100).
    pub wal_autocheckpoint_pages: u32,
    /// `PRAGMA busy_timeout`, in ms (default 5,000).
    pub busy_timeout_ms: u64,
    /// Open with `synchronous=NORMAL`: acknowledged writes can be lost on power failure.
    /// Only for the power-loss negative control; logged as a warning at open.
    pub unsafe_synchronous_normal: bool,
    /// Most write requests committed in one transaction (default 256).
    pub batch_len_max: usize,
    /// Write requests waiting for the writer before callers wait to enqueue (default 1,024).
    pub queue_len_max: usize,
    /// Read-only connections kept for reuse (default 4).
    pub read_pool_len_max: usize,
    /// Hard cap on the database size in pages (`PRAGMA max_page_count`); beyond it writes
    /// fail like on a full disk. `None` = SQLite's default (no practical limit).
    pub db_pages_max: Option<u32>,
}

impl JournalConfig {
    /// The defaults, for the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            path: path.into(),
            capacity_max: 10_000,
            wal_autocheckpoint_pages: 100,
            busy_timeout_ms: 5_000,
            unsafe_synchronous_normal: false,
            batch_len_max: 256,
            queue_len_max: 1_024,
            read_pool_len_max: 4,
            db_pages_max: None,
        }
    }
}

/// A cheap, cloneable handle to the journal. The writer thread stops when the last handle is
/// dropped or [`Journal::close`] is called.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    config: JournalConfig,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.config.path)
            .finish()
    }
}

impl Journal {
    /// Opens (creating or migrating) the journal with the system clock. Blocking: call it
    /// before serving, or inside `spawn_blocking`.
    pub fn open(config: JournalConfig) -> Result<Journal> {
        Journal::open_with_clock(config, Box::new(SystemClock))
    }

    /// Opens with an injected clock source (tests drive time by hand).
    pub fn open_with_clock(config: JournalConfig, source: Box<dyn ClockSource>) -> Result<Journal> {
        let started = std::time::Instant::now();
        let conn = schema::open_writer(&config)?;
        let opened = started.elapsed();
        invariants::check_all(&conn)?;
        let checked = started.elapsed() - opened;
        let high_water = read::hlc_high_water(&conn)?;
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            conn,
            clock: HlcClock::new(source, high_water),
            mark: high_water,
            capacity_max: config.capacity_max,
            batch_len_max: config.batch_len_max.max(1),
            counters: Arc::clone(&counters),
        };
        let (tx, rx) = mpsc::channel(config.queue_len_max.max(1));
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| JournalError::Io {
                code: e.raw_os_error(),
                message: format!("spawning the journal writer: {e}"),
            })?;
        tracing::info!(
            path = %config.path.display(),
            ?high_water,
            open_ms = opened.as_millis() as u64,
            check_ms = checked.as_millis() as u64,
            "journal open"
        );
        Ok(Journal {
            inner: Arc::new(Inner {
                tx,
                readers: Mutex::new(Vec::new()),
                config,
                counters,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The configuration the journal was opened with.
    pub fn config(&self) -> &JournalConfig {
        &self.inner.config
    }

    /// Write requests waiting for the writer's channel (a queue-depth gauge).
    pub fn queue_len(&self) -> usize {
        self.inner.tx.max_capacity() - self.inner.tx.capacity()
    }

    /// Write requests submitted and not yet answered (queued, batched or committing).
    pub fn requests_waiting(&self) -> u64 {
        self.inner.counters.waiting()
    }

    /// Writer counters (transactions committed, requests, largest batch).
    pub fn stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }

    /// Queues one write and waits for it to commit.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (job, rx) = write_job(op);
        let _waiting = self.inner.counters.waiting_guard();
        self.inner
            .tx
            .send(job)
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => schema::open_reader(&inner.config.path, inner.config.busy_timeout_ms)?,
            };
            let result = op(&conn);
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < inner.config.read_pool_len_max
            {
                pool.push(conn);
            }
            result
        });
        task.await
            .map_err(|e| JournalError::Sqlite(format!("read task failed: {e}")))?
    }

    // ----- phase 1: sales and fiscal documents -----

    /// Journals a new sale as `received` (durable when this returns), or returns the row
    /// already journaled under the same idempotency key. Fails with `CapacityExceeded`
    /// before writing anything when the buffer is full.
    pub async fn insert_received(&self, new: NewReceipt) -> Result<InsertOutcome> {
        let outcome = self
            .write(move |ctx| ops::insert_received(ctx, new))
            .await?;
        if let InsertOutcome::Inserted(row) = &outcome {
            log_change(row, "received");
        }
        Ok(outcome)
    }

    /// `received` -> `kkt_in_flight`; a no-op if already in flight.
    pub async fn mark_in_flight(&self, receipt_id: &str) -> Result<ReceiptRow> {
        let id = receipt_id.to_string();
        self.write(move |ctx| ops::mark_in_flight(ctx, &id))
            .await
            .inspect(|row| log_change(row, "kkt_in_flight"))
    }

    /// `received`/`kkt_in_flight` -> `fiscalized` (`status='pending'`) with the fiscal data.
    pub async fn mark_fiscalized(
        &self,
        receipt_id: &str,
        fiscal: FiscalDocument,
    ) -> Result<ReceiptRow> {
        let id = receipt_id.to_string();
        self.write(move |ctx| ops::mark_fiscalized(ctx, &id, fiscal))
            .await
            .inspect(|row| log_change(row, "fiscalized"))
    }

    /// `received`/`kkt_in_flight` -> `rejected` after a definite KKT refusal.
    pub async fn mark_rejected(
        &self,
        receipt_id: &str,
        code: RejectCode,
        message: &str,
    ) -> Result<ReceiptRow> {
        let (id, msg) = (receipt_id.to_string(), message.to_string());
        self.write(move |ctx| ops::mark_rejected(ctx, &id, code.as_str(), &msg))
            .await
            .inspect(|row| log_change(row, "rejected"))
    }

    /// `received`/`kkt_in_flight` -> `rejected`, with the operator's audit entry in the same
    /// transaction (the admin resolve endpoint, after the FN proved the receipt absent).
    pub async fn mark_rejected_audited(
        &self,
        code: RejectCode,
        message: &str,
        entry: AuditEntry,
    ) -> Result<ReceiptRow> {
        let msg = message.to_string();
        self.write(move |ctx| {
            let row = ops::mark_rejected(ctx, &entry.receipt_id, code.as_str(), &msg)?;
            ops::insert_audit(ctx, &entry)?;
            Ok(row)
        })
        .await
        .inspect(|row| log_change(row, "rejected"))
    }

    /// Appends an operator action to the audit trail.
    pub async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        self.write(move |ctx| ops::insert_audit(ctx, &entry)).await
    }

    /// Journals a document the KKT issued by itself (shift open/close), as `pending`.
    pub async fn insert_fiscal_document(
        &self,
        kkt_id: &str,
        kind: DocKind,
        fiscal: FiscalDocument,
    ) -> Result<InsertOutcome> {
        let kkt_id = kkt_id.to_string();
        let outcome = self
            .write(move |ctx| ops::insert_fiscal_document(ctx, &kkt_id, kind, fiscal))
            .await?;
        if let InsertOutcome::Inserted(row) = &outcome {
            log_change(row, "fiscalized");
        }
        Ok(outcome)
    }

    // ----- task requests (the ATOL-compatible API) -----

    /// Journals a task request (durable when this returns), or returns the one journaled under
    /// its id before.
    pub async fn insert_task_request(&self, new: NewTaskRequest) -> Result<TaskInsert> {
        self.write(move |ctx| tasks::insert(ctx, new)).await
    }

    /// Records the outcome of one task of a request, once.
    pub async fn record_task_outcome(&self, id: &str, index: u32, outcome: &str) -> Result<()> {
        let (id, outcome) = (id.to_string(), outcome.to_string());
        self.write(move |ctx| tasks::record(ctx, &id, index, &outcome))
            .await
    }

    /// Retention of task requests: those finished before `age_ms` whose receipts are gone.
    pub async fn purge_task_requests(&self, age_ms: i64, batch_len_max: u32) -> Result<u64> {
        self.write(move |ctx| {
            let cutoff = (ctx.stamp().physical_ms() as i64).saturating_sub(age_ms);
            tasks::purge(ctx, cutoff, batch_len_max)
        })
        .await
    }

    /// The task request journaled under `id`, with the outcomes of its finished tasks.
    pub async fn task_request(&self, id: &str) -> Result<Option<TaskRequestRow>> {
        let id = id.to_string();
        self.read(move |c| tasks::get(c, &id)).await
    }

    /// Register `kkt_id`'s task requests with unfinished tasks, oldest first.
    pub async fn unfinished_task_requests(&self, kkt_id: &str) -> Result<Vec<TaskRequestRow>> {
        let kkt_id = kkt_id.to_string();
        self.read(move |c| tasks::unfinished(c, &kkt_id)).await
    }

    // ----- phase 2: OFD relay -----

    /// Journals the FN's outgoing message for (FN, FD) before sending it.
    pub async fn record_ofd_outgoing(
        &self,
        fn_number: &str,
        fd_number: u32,
        message: Vec<u8>,
    ) -> Result<OfdExchange> {
        let fn_number = fn_number.to_string();
        self.write(move |ctx| ops::record_ofd_outgoing(ctx, &fn_number, fd_number, &message))
            .await
    }

    /// Journals the OFD's reply before writing it to the FN; fenced by `lease` if given.
    pub async fn record_ofd_reply(
        &self,
        fn_number: &str,
        fd_number: u32,
        reply: OfdReply,
        lease: Option<&Lease>,
    ) -> Result<OfdExchange> {
        let (fn_number, lease) = (fn_number.to_string(), lease.cloned());
        self.write(move |ctx| {
            ops::record_ofd_reply(ctx, &fn_number, fd_number, reply, lease.as_ref())
        })
        .await
    }

    /// Notes that the journaled reply was written back to the FN.
    pub async fn mark_reply_written(&self, fn_number: &str, fd_number: u32) -> Result<OfdExchange> {
        let fn_number = fn_number.to_string();
        self.write(move |ctx| ops::mark_reply_written(ctx, &fn_number, fd_number))
            .await
    }

    /// Notes the journaled reply written back to the FN and marks the document `synced`, in one
    /// commit (the relay's last write for a delivered document). A crash before it leaves both
    /// undone, which the next pass settles from the journaled reply, as after a crash between
    /// the two; `Ok(None)` as [`Self::mark_synced`].
    pub async fn mark_written_and_synced(
        &self,
        fn_number: &str,
        fd_number: u32,
        lease: Option<&Lease>,
    ) -> Result<Option<ReceiptRow>> {
        let (fn_number, lease) = (fn_number.to_string(), lease.cloned());
        self.write(move |ctx| {
            ops::mark_reply_written(ctx, &fn_number, fd_number)?;
            ops::mark_synced(ctx, &fn_number, fd_number, lease.as_ref())
        })
        .await
        .inspect(|row| row.iter().for_each(|r| log_change(r, "synced")))
    }

    /// `pending` -> `synced`; `Ok(None)` if no journaled row holds (FN, FD).
    pub async fn mark_synced(
        &self,
        fn_number: &str,
        fd_number: u32,
        lease: Option<&Lease>,
    ) -> Result<Option<ReceiptRow>> {
        let (fn_number, lease) = (fn_number.to_string(), lease.cloned());
        self.write(move |ctx| ops::mark_synced(ctx, &fn_number, fd_number, lease.as_ref()))
            .await
            .inspect(|row| row.iter().for_each(|r| log_change(r, "synced")))
    }

    /// `pending` -> `dlq` with a code and message; `Ok(None)` if no journaled row holds it.
    pub async fn mark_dlq(
        &self,
        fn_number: &str,
        fd_number: u32,
        error_code: &str,
        message: &str,
        lease: Option<&Lease>,
    ) -> Result<Option<ReceiptRow>> {
        let (fn_number, code, msg) = (
            fn_number.to_string(),
            error_code.to_string(),
            message.to_string(),
        );
        let lease = lease.cloned();
        self.write(move |ctx| {
            ops::mark_dlq(ctx, &fn_number, fd_number, &code, &msg, lease.as_ref())
        })
        .await
        .inspect(|row| row.iter().for_each(|r| log_change(r, "dlq")))
    }

    /// A failed attempt for a pending document: `retry_count += 1`, next attempt time set.
    pub async fn record_delivery_failure(
        &self,
        fn_number: &str,
        fd_number: u32,
        message: &str,
        next_attempt_at_ms: i64,
    ) -> Result<Option<ReceiptRow>> {
        let (fn_number, msg) = (fn_number.to_string(), message.to_string());
        self.write(move |ctx| {
            ops::record_delivery_failure(ctx, &fn_number, fd_number, &msg, next_attempt_at_ms)
        })
        .await
    }

    /// The FN refused the journaled reply: forget it (so the OFD is asked again) and count the
    /// failed attempt. Refused once the reply is marked as written to the FN.
    pub async fn discard_ofd_reply(
        &self,
        fn_number: &str,
        fd_number: u32,
        message: &str,
        next_attempt_at_ms: i64,
    ) -> Result<Option<ReceiptRow>> {
        let (fn_number, msg) = (fn_number.to_string(), message.to_string());
        self.write(move |ctx| {
            ops::discard_ofd_reply(ctx, &fn_number, fd_number, &msg, next_attempt_at_ms)
        })
        .await
    }

    /// Explicit DLQ retry: back to `pending` with the reply cleared; `retry_count` is kept.
    pub async fn dlq_retry(&self, receipt_id: &str) -> Result<ReceiptRow> {
        let id = receipt_id.to_string();
        self.write(move |ctx| ops::dlq_retry(ctx, &id))
            .await
            .inspect(|row| log_change(row, "dlq_retried"))
    }

    /// Several DLQ retries in one transaction, one answer per id in order: the row back in
    /// `pending`, or the refusal (`NotFound`, `InvalidTransition`). Fails whole on a storage error.
    pub async fn dlq_retry_many(
        &self,
        receipt_ids: Vec<String>,
    ) -> Result<Vec<Result<ReceiptRow>>> {
        let answers = self
            .write(move |ctx| ops::dlq_retry_many(ctx, &receipt_ids))
            .await?;
        answers
            .iter()
            .flatten()
            .for_each(|row| log_change(row, "dlq_retried"));
        Ok(answers)
    }

    /// Takes the named lease for `ttl_ms`; `None` while someone else holds it.
    pub async fn lease_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.write(move |ctx| ops::lease_acquire(ctx, &name, &owner, ttl_ms))
            .await
    }

    /// Takes a lease over from a holder proven dead; `None` if it changed hands meanwhile.
    pub async fn lease_take_over(
        &self,
        name: &str,
        dead_owner: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let (name, dead, owner) = (name.to_string(), dead_owner.to_string(), owner.to_string());
        self.write(move |ctx| ops::lease_take_over(ctx, &name, &dead, &owner, ttl_ms))
            .await
    }

    /// Extends a held lease; `None` once it was lost to another owner.
    pub async fn lease_renew(&self, lease: &Lease, ttl_ms: i64) -> Result<Option<Lease>> {
        let lease = lease.clone();
        self.write(move |ctx| ops::lease_renew(ctx, &lease, ttl_ms))
            .await
    }

    /// Releases a held lease; `false` if it was no longer ours.
    pub async fn lease_release(&self, lease: &Lease) -> Result<bool> {
        let lease = lease.clone();
        self.write(move |ctx| ops::lease_release(ctx, &lease)).await
    }

    // ----- maintenance -----

    /// `PRAGMA wal_checkpoint(TRUNCATE)` on the writer connection, between batches.
    pub async fn checkpoint(&self) -> Result<CheckpointInfo> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Job::Checkpoint(tx))
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Retention, one bounded batch: deletes up to `batch_len_max` `synced` rows older than
    /// `age_ms` with their exchange and rejection history; never pending, DLQ, unresolved or
    /// rejected rows. Returns how many went; call again until it returns less than the batch.
    pub async fn purge_synced(&self, age_ms: i64, batch_len_max: u32) -> Result<u64> {
        self.write(move |ctx| ops::purge_synced(ctx, age_ms, batch_len_max))
            .await
    }

    /// An online backup to the new file `dest` (created 0600, never overwritten), checked before
    /// it returns; sales go on meanwhile. See [`backup_file`].
    pub async fn backup_to(&self, dest: PathBuf) -> Result<BackupInfo> {
        let (source, busy_ms) = (
            self.inner.config.path.clone(),
            self.inner.config.busy_timeout_ms,
        );
        tokio::task::spawn_blocking(move || backup_file(&source, &dest, busy_ms))
            .await
            .map_err(|e| JournalError::Sqlite(format!("backup task failed: {e}")))?
    }

    /// The settings in force on the writer connection (for `/v1/health`).
    pub async fn effective_settings(&self) -> Result<EffectiveSettings> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Job::Settings(tx))
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Stops the writer once the writes already queued are committed, and waits for its
    /// final checkpoint. Afterwards every handle's calls fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        // A send error means the writer already stopped; joining below is still right.
        let _ = self.inner.tx.send(Job::Shutdown).await;
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        let Some(thread) = thread else { return Ok(()) };
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| JournalError::Sqlite(format!("close task failed: {e}")))?;
        joined.map_err(|_| JournalError::Sqlite("journal writer thread panicked".into()))
    }

    // ----- reads -----

    /// The row with this receipt id.
    pub async fn get_by_id(&self, receipt_id: &str) -> Result<Option<ReceiptRow>> {
        let id = receipt_id.to_string();
        self.read(move |c| read::receipt_by_id(c, &id)).await
    }

    /// The row journaled under this idempotency key.
    pub async fn get_by_key(&self, idempotency_key: &str) -> Result<Option<ReceiptRow>> {
        let key = idempotency_key.to_string();
        self.read(move |c| read::receipt_by_key(c, &key)).await
    }

    /// The row holding FN document (FN, FD).
    pub async fn get_by_fiscal(
        &self,
        fn_number: &str,
        fd_number: u32,
    ) -> Result<Option<ReceiptRow>> {
        let fn_number = fn_number.to_string();
        self.read(move |c| read::receipt_by_fiscal(c, &fn_number, fd_number))
            .await
    }

    /// The audit trail of one receipt, oldest first.
    pub async fn audit_of(&self, receipt_id: &str) -> Result<Vec<AuditEntry>> {
        let id = receipt_id.to_string();
        self.read(move |c| read::audit_of(c, &id)).await
    }

    /// One register's rows in `received` or `kkt_in_flight`, oldest first: its reconciliation
    /// work list.
    pub async fn list_unresolved(&self, kkt_id: &str) -> Result<Vec<ReceiptRow>> {
        let id = kkt_id.to_string();
        self.read(move |c| read::list_unresolved(c, &id)).await
    }

    /// Pending rows in FN/FD order; with `due_at_ms`, only those due for an attempt.
    pub async fn list_pending(
        &self,
        due_at_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ReceiptRow>> {
        self.read(move |c| read::list_pending(c, due_at_ms, limit))
            .await
    }

    /// One FN's pending rows in FD order (each register's relay settles only its own FN's).
    pub async fn list_pending_of_fn(&self, fn_number: &str, limit: u32) -> Result<Vec<ReceiptRow>> {
        let fn_number = fn_number.to_string();
        self.read(move |c| read::list_pending_of_fn(c, &fn_number, limit))
            .await
    }

    /// The `limit` newest rows, newest first.
    pub async fn list_recent(&self, limit: u32) -> Result<Vec<ReceiptRow>> {
        self.read(move |c| read::list_recent(c, limit)).await
    }

    /// DLQ entries in FN/FD order with the OFD's response codes.
    pub async fn list_dlq(&self, limit: u32) -> Result<Vec<DlqEntry>> {
        self.read(move |c| read::list_dlq(c, limit)).await
    }

    /// Counts for the buffer status endpoint, from one snapshot.
    pub async fn counts(&self) -> Result<BufferCounts> {
        self.read(read::counts).await
    }

    /// [`Self::counts`] for each register that has rows, in id order.
    pub async fn counts_by_kkt(&self) -> Result<Vec<(String, BufferCounts)>> {
        self.read(read::counts_by_kkt).await
    }

    /// When the oldest undelivered document of each FN was journaled, Unix ms (for `/metrics`).
    pub async fn oldest_undelivered_by_fn(&self) -> Result<Vec<(String, i64)>> {
        self.read(read::oldest_undelivered_by_fn).await
    }

    /// The relay state of (FN, FD).
    pub async fn ofd_exchange(
        &self,
        fn_number: &str,
        fd_number: u32,
    ) -> Result<Option<OfdExchange>> {
        let fn_number = fn_number.to_string();
        self.read(move |c| read::exchange(c, &fn_number, fd_number))
            .await
    }

    /// The journal row of (FN, FD) and its OFD exchange, read in one snapshot: what the relay
    /// needs of the document at the head of the FN's queue (its DLQ state, a reply already
    /// journaled).
    pub async fn document_and_exchange(
        &self,
        fn_number: &str,
        fd_number: u32,
    ) -> Result<(Option<ReceiptRow>, Option<OfdExchange>)> {
        let fn_number = fn_number.to_string();
        self.read(move |c| {
            Ok((
                read::receipt_by_fiscal(c, &fn_number, fd_number)?,
                read::exchange(c, &fn_number, fd_number)?,
            ))
        })
        .await
    }

    /// The current holder of a lease, if any.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let name = name.to_string();
        self.read(move |c| read::lease(c, &name)).await
    }

    /// The persisted HLC high-water mark.
    pub async fn hlc_high_water(&self) -> Result<HlcStamp> {
        self.read(read::hlc_high_water).await
    }

    /// Checks every journal invariant over the committed state (run at open too).
    pub async fn check_invariants(&self) -> Result<()> {
        self.read(invariants::check_all).await
    }
}

/// One line per receipt state change, once the change is durable: what support staff follow a
/// receipt by (receipt id, register as its FN number, FD and the phase it entered: `received`,
/// `kkt_in_flight`, `fiscalized`, `rejected`, `synced`, `dlq` or `dlq_retried`). A move to the DLQ
/// is a warning, because it waits for a person.
fn log_change(row: &ReceiptRow, phase: &'static str) {
    let fiscal = row.fiscal.as_ref();
    let fn_number = fiscal.map(|f| f.fn_number.as_str());
    let fd = fiscal.map(|f| f.fd_number);
    let kind = row.kind.as_str();
    let receipt_id = row.receipt_id.as_str();
    if row.status == Some(OfdStatus::Dlq) {
        tracing::warn!(
            receipt_id,
            kind,
            fn_number,
            fd,
            phase,
            error_code = row.error_code.as_deref(),
            error = row.last_error.as_deref(),
            "document moved to the DLQ: the OFD refused it; it waits for an operator's retry"
        );
    } else {
        tracing::info!(receipt_id, kind, fn_number, fd, phase, "receipt state");
    }
}
