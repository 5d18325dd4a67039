//! Phase 2: the OFD sync worker. It relays every document the FN has not had acknowledged to
//! the OFD and the OFD's reply back to the FN, the way the device's "exchange through the host"
//! mode works, behind a circuit breaker, a jittered backoff and a sync lock.
//!
//! - [`breaker`]: CLOSED/OPEN/HALF_OPEN with transition counters;
//! - [`backoff`]: exponential backoff with full jitter;
//! - [`ofd_client`]: one message per TCP connection, timeouts, failure classification, probes;
//! - [`lock`]: the sync lock (journal lease by default, Redis on request) with fencing;
//! - [`relay`]: the FN boundary ([`FnRelay`]), implemented for the KKT driver in `kkt_relay`;
//! - `worker`: the relay pass itself.
//!
//! **Invariant:** at most one pass runs per process (the pass mutex) and per journal (the sync
//! lock); every acknowledgement is journaled under a fencing check.
//! **Boundary:** no HTTP here: the HTTP layer calls [`SyncHandle`] and converts its plain types.

pub mod backoff;
pub mod breaker;
mod kkt_relay;
pub mod lock;
pub mod ofd_client;
pub mod relay;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, BreakerState, TransitionCounts};
pub use lock::{LockError, SyncLock};
pub use ofd_client::{OfdAnswer, OfdClient, TransportError};
pub use relay::{FnQueue, FnRelay, RelayError, RelayFuture};

use crate::config::{Config, LockKind};
use crate::journal::{DlqEntry, Journal, JournalError, ReceiptRow};
use worker::{Pass, PassMemory};

/// Settings of the sync worker; [`SyncSettings::from_config`] takes them from the adapter's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// OFD address (`host:port`).
    pub ofd_addr: String,
    /// Background pass interval.
    pub interval: Duration,
    /// Documents per pass.
    pub batch_size_max: u32,
    /// First backoff after a transport failure.
    pub backoff_initial: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Consecutive failures of one document, the OFD reachable, before one error line says so.
    /// Delivery never gives up: transient failures never move a document to the DLQ.
    pub retry_max: u32,
    /// Breaker thresholds.
    pub breaker: BreakerConfig,
    /// OFD connect timeout.
    pub connect_timeout: Duration,
    /// OFD write and read timeout.
    pub io_timeout: Duration,
    /// Probe the OFD with a bare connect when nothing is waiting.
    pub probe_when_idle: bool,
}

impl SyncSettings {
    /// The worker's part of the adapter configuration.
    pub fn from_config(c: &Config) -> SyncSettings {
        SyncSettings {
            ofd_addr: c.ofd_addr.clone(),
            interval: c.sync_interval,
            batch_size_max: c.batch_size_max,
            backoff_initial: c.backoff_initial,
            backoff_max: c.backoff_max,
            retry_max: c.retry_max,
            breaker: BreakerConfig {
                failures_max: c.breaker_failures,
                open_for: c.breaker_open,
                probes_needed: c.breaker_probes,
            },
            connect_timeout: c.ofd_connect_timeout,
            io_timeout: c.ofd_io_timeout,
            probe_when_idle: c.probe_when_idle,
        }
    }
}

impl SyncLock {
    /// The lock the configuration asks for (`sqlite` or `redis://...`), owned by a fresh id and
    /// taken per FN (see [`lock::lease_name`]).
    pub fn from_config(c: &Config, journal: Journal) -> Result<SyncLock, LockError> {
        let owner = lock::owner_id();
        match &c.lock {
            LockKind::Sqlite => Ok(SyncLock::sqlite(journal, owner, c.lock_ttl)),
            LockKind::Redis(url) => SyncLock::redis(url, "adapter:", owner, c.lock_ttl),
        }
    }
}

/// The circuit breaker of the OFD endpoint, shared by the relays of every register: the OFD is
/// one endpoint, so one relay's failures open it for all.
pub type SharedBreaker = Arc<Mutex<Breaker>>;

/// Why a pass ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StopReason {
    /// The FN has nothing left to send.
    #[default]
    Drained,
    /// `batch_size_max` documents were handled; more may wait.
    BatchFull,
    /// The breaker is open: nothing was attempted.
    BreakerOpen,
    /// A background pass waits for its backoff.
    BackingOff,
    /// Another process or replica holds the sync lock.
    LockBusy,
    /// The lock was lost mid-pass; nothing more was journaled.
    LockLost,
    /// The head of the FN's queue was refused by the OFD (in the DLQ): nothing behind it can be
    /// sent until an operator retries it.
    DlqHead {
        /// FN number.
        fn_number: String,
        /// FD number.
        fd: u32,
    },
    /// The OFD could not be reached or answered badly.
    Transport(String),
    /// The FN refused the OFD's acknowledgement; it was dropped and the OFD is asked again
    /// after the backoff.
    FnRefusedAck(String),
    /// The KKT could not be reached or its answer was not understood.
    Kkt(String),
}

/// What one pass did: `POST /v1/kkt/buffer/sync` answers `{"synced","failed","skipped"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResult {
    /// Documents acknowledged with response code 0 in this pass.
    pub synced: u32,
    /// Attempts that did not deliver: transient failures (retried later) and documents the OFD
    /// refused (to the DLQ).
    pub failed: u32,
    /// Documents still waiting that this pass did not attempt.
    pub skipped: u32,
    /// Why the pass ended.
    pub stop: StopReason,
}

/// `network_status` of the buffer status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkStatus {
    /// Breaker closed and no DLQ document blocks the queue.
    Online,
    /// Breaker open: the OFD is unreachable.
    Offline,
    /// Probing (half-open), or a DLQ document at the head of the FN's queue blocks delivery.
    Degraded,
}

impl NetworkStatus {
    /// `online`, `offline` or `degraded`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkStatus::Online => "online",
            NetworkStatus::Offline => "offline",
            NetworkStatus::Degraded => "degraded",
        }
    }
}

/// The document at the head of an FN's queue that the OFD refused: nothing behind it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckHead {
    /// FN number.
    pub fn_number: String,
    /// FD number of the refused document.
    pub fd: u32,
    /// Documents in the FN's queue behind it, as last read.
    pub waiting_behind: u32,
}

/// Network status with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkView {
    /// The status.
    pub status: NetworkStatus,
    /// The breaker state behind it.
    pub breaker: BreakerState,
    /// The refused document blocking the head of the FN's queue.
    pub dlq_head: Option<StuckHead>,
}

/// Failures of the sync worker's own infrastructure (not OFD or KKT trouble, which end a pass
/// with a [`StopReason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The journal failed (or refused, e.g. a DLQ retry of a row not in the DLQ).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The sync lock backend failed.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Whether a pass was started by the timer or by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassKind {
    Background,
    Manual { force: bool },
}

pub(crate) struct Shared {
    journal: Journal,
    relay: Arc<dyn FnRelay>,
    client: OfdClient,
    lock: SyncLock,
    settings: SyncSettings,
    breaker: SharedBreaker,
    backoff: Mutex<Backoff>,
    pass: tokio::sync::Mutex<PassMemory>,
    dlq_head: Mutex<Option<StuckHead>>,
    wake: Notify,
    stop: watch::Sender<bool>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave a half-made change behind
    // (each critical section is a single method call), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn breaker_lock(&self) -> MutexGuard<'_, Breaker> {
        locked(&self.breaker)
    }

    fn breaker_state(&self) -> BreakerState {
        self.breaker_lock().state(Instant::now())
    }

    fn backoff_next_at(&self) -> Option<Instant> {
        locked(&self.backoff).next_at()
    }

    fn on_ofd_success(&self) {
        self.breaker_lock().on_success(Instant::now());
        locked(&self.backoff).reset();
    }

    /// Records a transport failure; returns when the next attempt is due.
    fn on_ofd_failure(&self) -> Instant {
        let now = Instant::now();
        self.breaker_lock().on_failure(now);
        locked(&self.backoff).on_failure(now)
    }

    /// Sets the stuck head; logs at error level when a head gets stuck (or another one does)
    /// and at info level when delivery moves again: once per state change, not once per pass.
    fn set_stuck_head(&self, head: Option<StuckHead>) {
        let mut cur = locked(&self.dlq_head);
        let same_doc = |a: &StuckHead, b: &StuckHead| a.fn_number == b.fn_number && a.fd == b.fd;
        match (cur.as_ref(), head.as_ref()) {
            (Some(a), Some(b)) if same_doc(a, b) => {}
            (_, Some(b)) => tracing::error!(
                fn_number = %b.fn_number,
                fd = b.fd,
                waiting_behind = b.waiting_behind,
                "OFD delivery is stopped: the OFD refused the document at the head of the FN's queue; retry it from the DLQ once the OFD fixed its side"
            ),
            (Some(a), None) => tracing::info!(
                fn_number = %a.fn_number,
                fd = a.fd,
                "OFD delivery moves again: the stuck head was retried"
            ),
            (None, None) => {}
        }
        *cur = head;
    }

    async fn pending(&self) -> Result<u32, SyncError> {
        let n = self.journal.counts().await?.pending;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn run_pass(&self, kind: PassKind) -> Result<SyncResult, SyncError> {
        let mut mem = self.pass.lock().await;
        let now = Instant::now();
        let stopped = |stop, skipped| SyncResult {
            skipped,
            stop,
            ..SyncResult::default()
        };
        // The lock is the FN's, so the FN's number comes first: read once from the device.
        let fn_number = match mem.fn_number.clone() {
            Some(n) => n,
            None => match self.relay.fn_number().await {
                Ok(n) => {
                    mem.fn_number = Some(n.clone());
                    n
                }
                Err(e) => {
                    let stop = StopReason::Kkt(format!("reading the FN number: {e}"));
                    return Ok(stopped(stop, self.pending().await?));
                }
            },
        };
        if kind != (PassKind::Manual { force: true }) {
            if !self.breaker_lock().try_acquire(now) {
                return Ok(stopped(StopReason::BreakerOpen, self.pending().await?));
            }
            if kind == PassKind::Background && !locked(&self.backoff).ready(now) {
                return Ok(stopped(StopReason::BackingOff, self.pending().await?));
            }
        }
        let Some(held) = self.lock.acquire(&fn_number).await? else {
            return Ok(stopped(StopReason::LockBusy, self.pending().await?));
        };
        let (held, result) = Pass::new(self, &mut mem, fn_number, held, kind).run().await;
        if let Err(e) = self.lock.release(held).await {
            tracing::warn!(error = %e, "releasing the sync lock failed; it expires by itself");
        }
        if let Ok(r) = &result {
            tracing::debug!(synced = r.synced, failed = r.failed, skipped = r.skipped, stop = ?r.stop, "sync pass");
        }
        result
    }

    async fn background(self: Arc<Self>) {
        let mut stop_rx = self.stop.subscribe();
        // Bounded by the stop signal; each round either runs a pass or sleeps until a deadline.
        while !*stop_rx.borrow() {
            let more = match self.run_pass(PassKind::Background).await {
                Ok(r) => r.stop == StopReason::BatchFull,
                Err(e) => {
                    tracing::error!(error = %e, "sync pass failed");
                    false
                }
            };
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            let wake = worker::next_wake(&self, Instant::now(), self.settings.interval);
            loop {
                tokio::select! {
                    _ = sleep_until(wake) => break,
                    _ = self.wake.notified() => {
                        let now = Instant::now();
                        let closed = self.breaker_lock().state(now) == BreakerState::Closed;
                        if closed && locked(&self.backoff).ready(now) {
                            break;
                        }
                    }
                    _ = stop_rx.changed() => return,
                }
            }
        }
    }
}

/// The handle the HTTP layer and the start-up code use. Cheap to clone.
#[derive(Clone)]
pub struct SyncHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("ofd_addr", &self.shared.settings.ofd_addr)
            .field("lock", &self.shared.lock)
            .finish()
    }
}

impl SyncHandle {
    /// A worker over `journal` and the FN behind `relay`. Nothing runs until [`Self::start`]
    /// or [`Self::sync_now`]. The breaker starts HALF_OPEN.
    pub fn new(
        journal: Journal,
        relay: Arc<dyn FnRelay>,
        lock: SyncLock,
        settings: SyncSettings,
    ) -> SyncHandle {
        let breaker = Arc::new(Mutex::new(Breaker::new(settings.breaker)));
        SyncHandle::sharing(journal, relay, lock, settings, breaker)
    }

    /// A worker like [`Self::new`] whose breaker is `breaker`, shared with other registers'.
    pub fn sharing(
        journal: Journal,
        relay: Arc<dyn FnRelay>,
        lock: SyncLock,
        settings: SyncSettings,
        breaker: SharedBreaker,
    ) -> SyncHandle {
        let (stop, _) = watch::channel(false);
        let client = OfdClient::new(
            settings.ofd_addr.clone(),
            settings.connect_timeout,
            settings.io_timeout,
        );
        SyncHandle {
            shared: Arc::new(Shared {
                journal,
                relay,
                client,
                lock,
                breaker,
                backoff: Mutex::new(Backoff::new(settings.backoff_initial, settings.backoff_max)),
                settings,
                pass: tokio::sync::Mutex::new(PassMemory::default()),
                dlq_head: Mutex::new(None),
                wake: Notify::new(),
                stop,
            }),
        }
    }

    /// The worker of a register for the adapter's configuration, relaying its FN through its KKT
    /// driver, behind the OFD endpoint's shared `breaker`.
    pub fn from_config(
        config: &Config,
        journal: Journal,
        kkt: crate::kkt::KktHandle,
        breaker: SharedBreaker,
    ) -> Result<SyncHandle, LockError> {
        let lock = SyncLock::from_config(config, journal.clone())?;
        let settings = SyncSettings::from_config(config);
        Ok(SyncHandle::sharing(
            journal,
            Arc::new(kkt),
            lock,
            settings,
            breaker,
        ))
    }

    /// A breaker for the configuration's OFD endpoint, to share among the registers' workers.
    pub fn breaker_for(config: &Config) -> SharedBreaker {
        Arc::new(Mutex::new(Breaker::new(
            SyncSettings::from_config(config).breaker,
        )))
    }

    /// Spawns the background task: a pass every interval, at once after a fiscalization while
    /// the breaker is closed, at the backoff or breaker deadline after failures.
    pub fn start(&self) -> JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.shared).background())
    }

    /// Asks the background task to stop after its current pass.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// `POST /v1/kkt/buffer/sync`: one pass now, respecting the breaker unless `force`.
    /// Waits for a pass already running in this process to end first.
    pub async fn sync_now(&self, force: bool) -> Result<SyncResult, SyncError> {
        self.shared.run_pass(PassKind::Manual { force }).await
    }

    /// Wakes the background task after a new document was fiscalized.
    pub fn notify_fiscalized(&self) {
        self.shared.wake.notify_one();
    }

    /// The breaker for `/v1/health`.
    pub fn breaker_snapshot(&self) -> BreakerSnapshot {
        self.shared.breaker_lock().snapshot(Instant::now())
    }

    /// `network_status` for the buffer status endpoint.
    pub fn network_status(&self) -> NetworkView {
        let breaker = self.shared.breaker_state();
        let dlq_head = locked(&self.shared.dlq_head).clone();
        let status = match (breaker, &dlq_head) {
            (_, Some(_)) => NetworkStatus::Degraded,
            (BreakerState::Closed, None) => NetworkStatus::Online,
            (BreakerState::Open, None) => NetworkStatus::Offline,
            (BreakerState::HalfOpen, None) => NetworkStatus::Degraded,
        };
        NetworkView {
            status,
            breaker,
            dlq_head,
        }
    }

    /// `GET /v1/kkt/buffer/dlq`: DLQ documents with their last error and response code.
    pub async fn dlq_list(&self, limit: u32) -> Result<Vec<DlqEntry>, SyncError> {
        Ok(self.shared.journal.list_dlq(limit).await?)
    }

    /// `POST /v1/kkt/buffer/dlq/{receipt_id}/retry`: back to pending (its `retry_count` kept),
    /// then one pass (respecting the breaker) that sends the journaled copy again. Fails with
    /// `NotFound`/`InvalidTransition` journal errors for unknown ids or rows not in the DLQ.
    pub async fn dlq_retry(&self, receipt_id: &str) -> Result<(ReceiptRow, SyncResult), SyncError> {
        {
            let mut mem = self.shared.pass.lock().await;
            let row = self.shared.journal.dlq_retry(receipt_id).await?;
            mem.doc_failures = None;
            if let Some(f) = &row.fiscal {
                let head = locked(&self.shared.dlq_head).clone();
                if head.is_some_and(|h| h.fn_number == f.fn_number && h.fd == f.fd_number) {
                    self.shared.set_stuck_head(None);
                }
            }
        }
        let result = self
            .shared
            .run_pass(PassKind::Manual { force: false })
            .await?;
        let row = self
            .shared
            .journal
            .get_by_id(receipt_id)
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("receipt {receipt_id}")))?;
        Ok((row, result))
    }

    /// Retries several DLQ documents (each back to pending, in one journal transaction), then runs
    /// one pass for all of them. One answer per id, in order: the row after the pass, or why the
    /// id was not retried (`NotFound`, `InvalidTransition`).
    pub async fn dlq_retry_many(
        &self,
        receipt_ids: Vec<String>,
    ) -> Result<(Vec<Result<ReceiptRow, JournalError>>, SyncResult), SyncError> {
        let answers = {
            let mut mem = self.shared.pass.lock().await;
            let answers = self.shared.journal.dlq_retry_many(receipt_ids).await?;
            mem.doc_failures = None;
            let head = locked(&self.shared.dlq_head).clone();
            let retried_head = head.is_some_and(|h| {
                answers.iter().flatten().any(|row| {
                    row.fiscal
                        .as_ref()
                        .is_some_and(|f| h.fn_number == f.fn_number && h.fd == f.fd_number)
                })
            });
            if retried_head {
                self.shared.set_stuck_head(None);
            }
            answers
        };
        let result = self
            .shared
            .run_pass(PassKind::Manual { force: false })
            .await?;
        let mut after = Vec::with_capacity(answers.len());
        for answer in answers {
            after.push(match answer {
                Ok(row) => Ok(self
                    .shared
                    .journal
                    .get_by_id(&row.receipt_id)
                    .await?
                    .unwrap_or(row)),
                Err(e) => Err(e),
            });
        }
        Ok((after, result))
    }
}
