//! The single writer thread: group commit of concurrent write requests, one SAVEPOINT each.
//!
//! Every write request is a closure queued on a bounded channel. The thread takes the first
//! request, then whatever else is already queued (up to `batch_len_max`), and runs them all in
//! one `BEGIN IMMEDIATE` transaction, so N concurrent tills cost one fsync, not N. Each request
//! runs inside its own SAVEPOINT: a request that fails is rolled back alone and the others
//! still commit. Results are released only after COMMIT returns, so no caller ever sees
//! success for a write that is not durable; if COMMIT fails, every request of the batch gets
//! that error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::error::{JournalError, Result};
use super::read;
use super::schema::{self, META_HLC_HIGH_WATER};
use super::types::{CheckpointInfo, EffectiveSettings, WriterStats};
use crate::hlc::{HlcClock, HlcStamp};

/// What a write operation sees: the connection inside the open transaction and the clock.
pub(crate) struct WriteCtx<'a> {
    pub(crate) conn: &'a Connection,
    clock: &'a mut HlcClock,
    pub(crate) capacity_max: u64,
}

impl WriteCtx<'_> {
    /// A fresh HLC stamp for this write.
    pub(crate) fn stamp(&mut self) -> HlcStamp {
        self.clock.now()
    }

    /// Wall-clock milliseconds (lease expiry uses real time, not the HLC).
    pub(crate) fn wall_ms(&self) -> i64 {
        i64::try_from(self.clock.wall_ms()).unwrap_or(i64::MAX)
    }
}

/// How far ahead of the clock the committed HLC high-water mark is set. A restart after a crash
/// starts its clock at the mark, so for at most this long its stamps run ahead of the wall clock
/// (still strictly increasing); in exchange the mark is written about once in this time.
pub(crate) const MARK_AHEAD_MS: u64 = 250;

/// Delivers one request's result once the batch's fate is known (`Some` = commit failed).
type Finisher = Box<dyn FnOnce(Option<JournalError>) + Send>;
/// Runs one request (or, given `Err`, reports that it could not run); returns success and
/// the finisher that delivers its result.
type WriteFn = Box<
    dyn FnOnce(std::result::Result<&mut WriteCtx<'_>, JournalError>) -> (bool, Finisher) + Send,
>;

/// A message to the writer thread.
pub(crate) enum Job {
    Write(WriteFn),
    Checkpoint(oneshot::Sender<Result<CheckpointInfo>>),
    Settings(oneshot::Sender<Result<EffectiveSettings>>),
    /// Stop accepting jobs, finish those queued, checkpoint and exit.
    Shutdown,
}

/// Wraps a typed operation into a queued job and the receiver of its result.
pub(crate) fn write_job<T, F>(op: F) -> (Job, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let run: WriteFn = Box::new(move |ctx| {
        let result = match ctx {
            Ok(ctx) => op(ctx),
            Err(e) => Err(e),
        };
        let ok = result.is_ok();
        let finish: Finisher = Box::new(move |commit_error| {
            // The caller may have gone away (request cancelled); the write stands regardless.
            let _ = tx.send(match commit_error {
                None => result,
                Some(e) => Err(e),
            });
        });
        (ok, finish)
    });
    (Job::Write(run), rx)
}

/// Counters shared with the handles.
#[derive(Default)]
pub(crate) struct Counters {
    transactions_committed: AtomicU64,
    requests_committed: AtomicU64,
    batch_len_max: AtomicU64,
    requests_waiting: Arc<AtomicU64>,
}

/// Counts one request as waiting until dropped (answered, or its caller went away).
pub(crate) struct WaitingGuard(Arc<AtomicU64>);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn waiting_guard(&self) -> WaitingGuard {
        self.requests_waiting.fetch_add(1, Ordering::Relaxed);
        WaitingGuard(Arc::clone(&self.requests_waiting))
    }

    pub(crate) fn waiting(&self) -> u64 {
        self.requests_waiting.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            transactions_committed: self.transactions_committed.load(Ordering::Relaxed),
            requests_committed: self.requests_committed.load(Ordering::Relaxed),
            batch_len_max: self.batch_len_max.load(Ordering::Relaxed),
        }
    }
}

/// The state owned by the writer thread.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) clock: HlcClock,
    /// The HLC high-water mark as committed in `meta`: no stamp issued so far exceeds it.
    pub(crate) mark: HlcStamp,
    pub(crate) capacity_max: u64,
    pub(crate) batch_len_max: usize,
    pub(crate) counters: Arc<Counters>,
}

impl Writer {
    /// The thread body: runs until every handle is dropped, then checkpoints once.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut other = None;
            match first {
                Job::Write(w) => batch.push(w),
                job => other = Some(job),
            }
            while other.is_none() && batch.len() < self.batch_len_max {
                match rx.try_recv() {
                    Ok(Job::Write(w)) => batch.push(w),
                    Ok(job) => other = Some(job),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.run_batch(batch);
            }
            match other {
                // Closing the receiver refuses new jobs; those already queued still drain.
                Some(Job::Shutdown) => rx.close(),
                Some(job) => self.run_other(job),
                None => {}
            }
        }
        // Closed, or every handle is gone: leave a small WAL behind for the next start.
        if let Err(e) = checkpoint(&self.conn) {
            tracing::warn!(error = %e, "journal checkpoint at shutdown failed");
        }
    }

    fn run_other(&mut self, job: Job) {
        match job {
            Job::Write(w) => self.run_batch(vec![w]),
            Job::Checkpoint(tx) => {
                let _ = tx.send(checkpoint(&self.conn));
            }
            Job::Settings(tx) => {
                let _ = tx.send(schema::effective_settings(&self.conn));
            }
            Job::Shutdown => {}
        }
    }

    fn run_batch(&mut self, batch: Vec<WriteFn>) {
        let len = batch.len() as u64;
        if let Err(e) = self.begin() {
            for w in batch {
                let (_, finish) = w(Err(e.clone()));
                finish(None);
            }
            return;
        }
        // Each finisher is kept with its request's success: only successful requests are
        // overridden by a batch failure, a failed one keeps its own (more precise) error.
        let mut finishers: Vec<(bool, Finisher)> = Vec::with_capacity(batch.len());
        let mut jobs = batch.into_iter();
        let mut abort = None;
        for w in jobs.by_ref() {
            let (ok, finish, fatal) = self.run_one(w);
            finishers.push((ok, finish));
            if fatal.is_some() {
                abort = fatal;
                break;
            }
        }
        let outcome = match abort {
            Some(e) => Err(e),
            None => self.commit(),
        };
        match outcome {
            Ok(()) => {
                self.counters
                    .transactions_committed
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .requests_committed
                    .fetch_add(len, Ordering::Relaxed);
                self.counters
                    .batch_len_max
                    .fetch_max(len, Ordering::Relaxed);
                finishers.into_iter().for_each(|(_, f)| f(None));
            }
            Err(e) => {
                tracing::error!(error = %e, batch_len = len, "journal write batch failed");
                // Nothing of this batch is durable: every request, run or not, gets an error.
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                for (ok, f) in finishers {
                    f(ok.then(|| e.clone()));
                }
                for w in jobs {
                    let (_, finish) = w(Err(e.clone()));
                    finish(None);
                }
            }
        }
    }

    /// Opens the batch transaction and folds in the persisted high-water mark when another
    /// process on the same file advanced it (it is then above the mark this writer committed;
    /// the writer's own mark runs ahead of its clock and is not folded in).
    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match read::hlc_meta(&self.conn) {
            Ok(seen) => {
                if seen > self.mark {
                    self.clock.observe(seen);
                    self.mark = seen;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs one request inside its own SAVEPOINT. The third value is set when the batch
    /// cannot go on: the savepoint machinery failed, or SQLite rolled the whole transaction
    /// back itself (it does so on disk full and some I/O errors).
    fn run_one(&mut self, w: WriteFn) -> (bool, Finisher, Option<JournalError>) {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT request") {
            let e = JournalError::from(e);
            let (ok, finish) = w(Err(e.clone()));
            return (ok, finish, Some(e));
        }
        let mut ctx = WriteCtx {
            conn: &self.conn,
            clock: &mut self.clock,
            capacity_max: self.capacity_max,
        };
        let (ok, finish) = w(Ok(&mut ctx));
        if self.conn.is_autocommit() {
            let e = JournalError::Io {
                code: None,
                message: "the write transaction was rolled back after a storage error \
                          in the same batch"
                    .into(),
            };
            return (ok, finish, Some(e));
        }
        let end = if ok {
            "RELEASE request"
        } else {
            "ROLLBACK TO request; RELEASE request"
        };
        match self.conn.execute_batch(end) {
            Ok(()) => (ok, finish, None),
            Err(e) => (ok, finish, Some(JournalError::from(e))),
        }
    }

    /// Commits; when the batch issued a stamp above the committed high-water mark, first moves
    /// the mark to [`MARK_AHEAD_MS`] past the wall clock (or to the stamp, if that is higher) in
    /// the same transaction. So no committed
    /// stamp ever exceeds the committed mark, and `meta`'s page is written about once in that
    /// time instead of with every commit (one WAL frame less a commit under load).
    fn commit(&mut self) -> Result<()> {
        let high = self.clock.high_water();
        let mark = if high > self.mark {
            // Ahead of the wall clock, not of `high`: `high` may already be another process's
            // mark, and each turn of two processes would otherwise push the stamps further ahead.
            let wall_ahead = HlcStamp::new(self.clock.wall_ms().saturating_add(MARK_AHEAD_MS), 0);
            let ahead = high.max(wall_ahead);
            self.conn
                .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)")?
                .execute(rusqlite::params![META_HLC_HIGH_WATER, ahead.as_i64()])?;
            Some(ahead)
        } else {
            None
        };
        let started = std::time::Instant::now();
        self.conn.execute_batch("COMMIT")?;
        crate::metrics::journal_commit(started.elapsed());
        // Only a committed mark counts: a batch that failed leaves the one before in force.
        if let Some(mark) = mark {
            self.mark = mark;
        }
        Ok(())
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL back and truncates it to zero bytes.
pub(crate) fn checkpoint(conn: &Connection) -> Result<CheckpointInfo> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok(CheckpointInfo {
            busy: r.get::<_, i64>(0)? != 0,
            wal_frames: r.get(1)?,
            checkpointed_frames: r.get(2)?,
        })
    })?)
}
