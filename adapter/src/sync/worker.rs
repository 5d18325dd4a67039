//! The relay pass: FF39 -> FF30/FF31 -> send (the copy journaled meanwhile) -> journal the reply
//! (FF32 meanwhile) -> FF33 -> synced (the next FF30/FF31 meanwhile), repeated in FD order up to
//! `batch_size_max` documents.
//!
//! The FN hands out its documents strictly in order and never skips the head of its queue, so
//! the pass never gives up on the head either:
//!
//! **Invariant:** a reply is journaled before it is written to the FN (FF33 waits for the
//! commit; only FF32, the reply's size, goes meanwhile), so a crash between the two resumes by
//! writing the journaled reply without a second delivery; a crash before the reply is journaled
//! resends the same bytes, which the OFD acknowledges idempotently. The outgoing copy is
//! journaled while the message is on its way: a crash before it is durable leaves the document at
//! the FN's head with nothing journaled for it, which the next pass sends again, as after a crash
//! before the reply is journaled (its `send_count` then misses that one attempt).
//! **Invariant:** transient failures (connect, reset, timeout, garbage, a lost ack, an ack for
//! another document, an ack the FN refuses) never move a document to the DLQ: the document
//! stays pending and is retried after the jittered, capped backoff for as long as it takes.
//! The age of the oldest undelivered document is what raises the alarm.
//! **Invariant:** only a definite rejection of the document by the OFD (a non-zero response
//! code) stops its delivery. Its reply is journaled but never written to the FN, so the FN keeps
//! the document at the head of its queue; it becomes the stuck head, which health and buffer
//! status name, until an operator retries it.
//! **Invariant:** nothing is written to the FN unless every field the FN checks (header FN and
//! FD, body 1041 and 1040) matches the document sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ofd_proto::OperatorAck;
use tokio::time::Instant;

use super::lock::Held;
use super::ofd_client::OfdAnswer;
use super::ofd_client::TransportError;
use super::relay::{FnQueue, RelayError};
use super::{PassKind, Shared, StopReason, SyncError, SyncResult};
use crate::journal::{JournalError, OfdReply, OfdStatus, ReceiptRow};
use crate::kkt::Durable;

/// What the pass remembers between passes (guarded by the pass mutex).
#[derive(Debug, Default)]
pub(crate) struct PassMemory {
    /// The FN's serial number, read once.
    pub fn_number: Option<String>,
    /// The document whose consecutive failures while the OFD was reachable are being counted,
    /// and the count (for the one error line when it reaches `retry_max`; delivery goes on).
    pub doc_failures: Option<((String, u32), u32)>,
}

impl PassMemory {
    fn bump(&mut self, fn_number: &str, fd: u32) -> u32 {
        match &mut self.doc_failures {
            Some((key, n)) if key.0 == fn_number && key.1 == fd => {
                *n += 1;
                *n
            }
            _ => {
                self.doc_failures = Some(((fn_number.to_string(), fd), 1));
                1
            }
        }
    }

    fn clear(&mut self, fn_number: &str, fd: u32) {
        if matches!(&self.doc_failures, Some((key, _)) if key.0 == fn_number && key.1 == fd) {
            self.doc_failures = None;
        }
    }
}

/// One step's end: go on with the next document, or stop the pass.
enum Step {
    Continue,
    Stop(StopReason),
}

pub(crate) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The error code a definite OFD rejection journals (`ofd_response_14`, ...). Only rows with
/// such a code are a stuck head; a DLQ row with any other code was put there by an earlier
/// version for a transient failure and goes back to pending by itself.
fn is_ofd_rejection(error_code: Option<&str>) -> bool {
    error_code.is_some_and(|c| c.starts_with("ofd_response_"))
}

/// One relay pass holding the sync lock.
pub(crate) struct Pass<'a> {
    pub sh: &'a Shared,
    pub mem: &'a mut PassMemory,
    pub held: Held,
    pub kind: PassKind,
    /// The FN this relay serves: `held` is its lock.
    fn_number: String,
    result: SyncResult,
    /// Sends attempted in this pass (an idle probe is made only when there were none).
    attempts: u32,
    /// The FN queue as last read, and whether the head of it was delivered or failed since.
    last_queue: Option<FnQueue>,
    /// The FN's queue after the document this pass just delivered (one shorter, its head one FD
    /// further), so the next document is read without asking the FN for its queue again (FF39).
    /// Only a queue known to hold more is predicted; an empty one is asked, since sales add to it.
    predicted_queue: Option<FnQueue>,
    /// The commit that concludes the last delivered document (reply written, synced), running
    /// while the FN hands out the next one; settled before the next journal write and before the
    /// pass ends, so the pass reports and releases its lock only after it is durable.
    concluding: Option<tokio::task::JoinHandle<Result<Option<ReceiptRow>, JournalError>>>,
    head_counted: bool,
}

impl<'a> Pass<'a> {
    pub fn new(
        sh: &'a Shared,
        mem: &'a mut PassMemory,
        fn_number: String,
        held: Held,
        kind: PassKind,
    ) -> Self {
        Pass {
            sh,
            mem,
            held,
            kind,
            fn_number,
            result: SyncResult::default(),
            attempts: 0,
            last_queue: None,
            predicted_queue: None,
            concluding: None,
            head_counted: false,
        }
    }

    fn force(&self) -> bool {
        matches!(self.kind, PassKind::Manual { force: true })
    }

    /// Runs the pass to its end and says why it ended.
    pub async fn run(mut self) -> (Held, Result<SyncResult, SyncError>) {
        let outcome = match (self.steps().await, self.settle_concluding().await) {
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(_), Ok(Some(lost))) => Ok(lost),
            (Ok(stop), Ok(None)) => Ok(stop),
        };
        let result = match outcome {
            Ok(stop) => self.finish(stop).await,
            Err(e) => Err(e),
        };
        (self.held, result)
    }

    async fn steps(&mut self) -> Result<StopReason, SyncError> {
        if let Some(stop) = self.settle_acknowledged().await? {
            return Ok(stop);
        }
        for _ in 0..self.sh.settings.batch_size_max.max(1) {
            if !self.sh.lock.renew_if_due(&mut self.held).await? {
                return Ok(StopReason::LockLost);
            }
            match self.relay_head().await? {
                Step::Continue => {}
                Step::Stop(stop) => return Ok(stop),
            }
        }
        Ok(StopReason::BatchFull)
    }

    async fn finish(&mut self, stop: StopReason) -> Result<SyncResult, SyncError> {
        let idle = matches!(
            stop,
            StopReason::Drained | StopReason::DlqHead { .. } | StopReason::Kkt(_)
        );
        if idle && self.attempts == 0 && self.kind == PassKind::Background {
            self.idle_probe().await;
        }
        self.result.skipped = match self.last_queue {
            Some(q) if stop != StopReason::Drained => {
                u32::from(q.queue_len).saturating_sub(u32::from(self.head_counted))
            }
            Some(_) => 0,
            None => {
                let pending = self.sh.journal.counts().await?.pending;
                u32::try_from(pending).unwrap_or(u32::MAX)
            }
        };
        self.result.stop = stop;
        Ok(self.result.clone())
    }

    /// A bare connect when nothing was sent, so health reflects reachability with an empty
    /// backlog. A half-open breaker gets enough probes to close at once.
    async fn idle_probe(&mut self) {
        if !self.sh.settings.probe_when_idle {
            return;
        }
        let probes = match self.sh.breaker_state() {
            super::BreakerState::HalfOpen => self.sh.settings.breaker.probes_needed.max(1),
            _ => 1,
        };
        for _ in 0..probes {
            if !self.sh.breaker_lock().try_acquire(Instant::now()) {
                return;
            }
            match self.sh.client.probe().await {
                Ok(()) => self.sh.on_ofd_success(),
                Err(e) => {
                    tracing::debug!(error = %e, "OFD idle probe failed");
                    self.sh.on_ofd_failure();
                    return;
                }
            }
        }
    }

    /// Settles pending journal rows the FN no longer offers: it holds a ticket for them, from a
    /// reply journaled before a crash, from a sale journaled after its document was relayed, or
    /// an explicit DLQ retry whose journaled copy must be sent again.
    async fn settle_acknowledged(&mut self) -> Result<Option<StopReason>, SyncError> {
        let batch = self.sh.settings.batch_size_max.max(1);
        if self.sh.journal.list_pending(None, 1).await?.is_empty() {
            return Ok(None);
        }
        let queue = match self.sh.relay.queue().await {
            Ok(q) => q,
            Err(e) => return Ok(Some(StopReason::Kkt(e.to_string()))),
        };
        let fn_now = self.fn_number.clone();
        // Only this FN's rows: another register's relay settles the others, and they must not use
        // up this pass's batch.
        let pending = self.sh.journal.list_pending_of_fn(&fn_now, batch).await?;
        for row in pending {
            let Some(f) = row.fiscal else { continue };
            let in_queue = queue.queue_len > 0 && f.fd_number >= queue.first_fd;
            if f.fn_number != fn_now || in_queue {
                continue;
            }
            if let Some(stop) = self.settle_one(&f.fn_number, f.fd_number).await? {
                return Ok(Some(stop));
            }
        }
        Ok(None)
    }

    async fn settle_one(
        &mut self,
        fn_number: &str,
        fd: u32,
    ) -> Result<Option<StopReason>, SyncError> {
        let journal = &self.sh.journal;
        let code = match journal.ofd_exchange(fn_number, fd).await? {
            Some(x) if x.reply.is_some() && x.response_code.is_some() => {
                if !x.written_to_fn {
                    journal.mark_reply_written(fn_number, fd).await?;
                }
                x.response_code.unwrap_or_default()
            }
            Some(x) => match self.deliver(fn_number, fd, x.outgoing_message).await? {
                Ok(answer) => {
                    let (reply, code) = reply_of(&answer);
                    if let Some(stop) = self.record_reply(fn_number, fd, reply).await? {
                        return Ok(Some(stop));
                    }
                    code
                }
                Err(stop) => return Ok(Some(stop)),
            },
            None => match self.sh.relay.read_ticket(fd).await {
                Ok(ticket) => match OperatorAck::decode(&ticket) {
                    Ok(ack) => i64::from(ack.response_code),
                    Err(_) => {
                        tracing::warn!(fn_number, fd, "FN ticket does not parse; left pending");
                        return Ok(None);
                    }
                },
                Err(e) => return Ok(Some(StopReason::Kkt(e.to_string()))),
            },
        };
        tracing::info!(
            fn_number,
            fd,
            code,
            "settled a document the FN already holds a ticket for"
        );
        self.conclude(fn_number, fd, code).await
    }

    /// One document at the head of the FN's queue.
    async fn relay_head(&mut self) -> Result<Step, SyncError> {
        self.head_counted = false;
        let predicted = self.predicted_queue.take();
        let queue = match predicted {
            Some(q) => q,
            None => match self.sh.relay.queue().await {
                Ok(q) => q,
                Err(e) => return Ok(Step::Stop(StopReason::Kkt(e.to_string()))),
            },
        };
        self.last_queue = Some(queue);
        if queue.queue_len == 0 {
            self.sh.set_stuck_head(None);
            return Ok(Step::Stop(StopReason::Drained));
        }
        // What the journal knows of the head is read while the FN hands its message out; it is
        // used only when the message turns out to be that document.
        let (message, known) = tokio::join!(
            self.sh.relay.read_message(),
            self.sh
                .journal
                .document_and_exchange(&self.fn_number, queue.first_fd)
        );
        let message = match message {
            Ok(m) => m,
            Err(e) => return Ok(Step::Stop(StopReason::Kkt(e.to_string()))),
        };
        // The last document's commit ran while the FN handed this one out.
        if let Some(stop) = self.settle_concluding().await? {
            return Ok(Step::Stop(stop));
        }
        let Ok((fn_number, fd)) = ofd_proto::envelope::message_ids(&message) else {
            let why = format!(
                "FN outgoing message for FD {} is unreadable",
                queue.first_fd
            );
            return Ok(Step::Stop(StopReason::Kkt(why)));
        };
        if fd != queue.first_fd && predicted.is_some() {
            // The FN's queue is not what the last delivery left: ask it.
            tracing::debug!(%fn_number, fd, predicted = queue.first_fd, "the FN's queue moved; reading it");
            return Ok(Step::Continue);
        }
        if fd != queue.first_fd {
            let why = format!(
                "FN offers FD {} but its message carries FD {fd}",
                queue.first_fd
            );
            return Ok(Step::Stop(StopReason::Kkt(why)));
        }
        if fn_number != self.fn_number {
            // The register's FN was replaced since its number was read: this pass holds the old
            // FN's lock, so it relays nothing; the next one reads the number again.
            self.mem.fn_number = None;
            let why = format!(
                "the FN's message names FN {fn_number}, but this relay holds the lock of FN {}",
                self.fn_number
            );
            return Ok(Step::Stop(StopReason::Kkt(why)));
        }
        let behind = u32::from(queue.queue_len).saturating_sub(1);
        let journal = &self.sh.journal;
        // The message is the document `known` was read for (`fd` is the queue's first, the FN
        // this relay's).
        let (row, mut exchange) = known?;
        if let Some(row) = row
            && row.status == Some(OfdStatus::Dlq)
        {
            if is_ofd_rejection(row.error_code.as_deref()) {
                return Ok(Step::Stop(self.stuck(&fn_number, fd, behind)));
            }
            // A transient failure that an earlier version dead-lettered: delivery goes on.
            tracing::warn!(%fn_number, fd, error_code = ?row.error_code, "a DLQ document at the head of the FN's queue was not refused by the OFD; retrying it");
            tolerate(journal.dlq_retry(&row.receipt_id).await)?;
            // The retry clears a journaled reply: read the exchange as it is now.
            exchange = journal.ofd_exchange(&fn_number, fd).await?;
        }
        self.sh.set_stuck_head(None);
        let journaled = exchange.and_then(|x| Some((x.reply?, x.response_code?)));
        // The reply to write to the FN, its code, and its record when it is not journaled yet.
        let (reply, code, record) = match journaled {
            Some((reply, code)) => {
                tracing::info!(%fn_number, fd, "resuming with the journaled OFD reply");
                (reply, code, None)
            }
            None => match self.deliver(&fn_number, fd, message).await? {
                Ok(answer) => {
                    let (record, code) = reply_of(&answer);
                    (answer.reply, code, Some(record))
                }
                Err(stop) => return Ok(Step::Stop(stop)),
            },
        };
        if code != 0 {
            // A definite rejection: the reply stays in the journal and never reaches the FN,
            // which keeps the document at the head of its queue for a later retry.
            if let Some(record) = record
                && let Some(stop) = self.record_reply(&fn_number, fd, record).await?
            {
                return Ok(Step::Stop(stop));
            }
            self.head_counted = true;
            if let Some(stop) = self.conclude(&fn_number, fd, code).await? {
                return Ok(Step::Stop(stop));
            }
            return Ok(Step::Stop(self.stuck(&fn_number, fd, behind)));
        }
        self.write_back(&fn_number, fd, reply, code, record).await
    }

    /// Records `fd` as the stuck head of the FN's queue, with `behind` documents waiting.
    fn stuck(&mut self, fn_number: &str, fd: u32, behind: u32) -> StopReason {
        self.sh.set_stuck_head(Some(super::StuckHead {
            fn_number: fn_number.to_string(),
            fd,
            waiting_behind: behind,
        }));
        StopReason::DlqHead {
            fn_number: fn_number.to_string(),
            fd,
        }
    }

    /// Writes the reply to the FN and concludes the document. A `record` not journaled yet is
    /// committed while FF32 goes, and FF33 waits for it.
    async fn write_back(
        &mut self,
        fn_number: &str,
        fd: u32,
        reply: Vec<u8>,
        code: i64,
        record: Option<OfdReply>,
    ) -> Result<Step, SyncError> {
        let written = match record {
            None => self.sh.relay.write_reply(reply, Durable::already()).await,
            Some(record) => {
                let (tell, journaled) = Durable::pending();
                let commit = async {
                    let committed = self.record_reply(fn_number, fd, record).await;
                    tell.tell(matches!(committed, Ok(None)));
                    committed
                };
                let (committed, written) =
                    tokio::join!(commit, self.sh.relay.write_reply(reply, journaled));
                if let Some(stop) = committed? {
                    return Ok(Step::Stop(stop));
                }
                written
            }
        };
        match written {
            Ok(()) => {}
            Err(RelayError::Refused(dev)) => {
                // The FN's own check failed: the OFD's ack is at fault. Forget it, back off and
                // ask the OFD again; the FN still holds the document at the head of its queue.
                let text = format!("the FN refused the OFD's acknowledgement: {dev:?}");
                let wait = self.backoff_after_failure();
                tracing::warn!(
                    fn_number,
                    fd,
                    ?dev,
                    retry_in_ms = wait.0,
                    "FN refused the OFD's acknowledgement; asking the OFD again"
                );
                tolerate(
                    self.sh
                        .journal
                        .discard_ofd_reply(fn_number, fd, &text, wait.1)
                        .await,
                )?;
                self.head_counted = true;
                self.result.failed += 1;
                return Ok(Step::Stop(StopReason::FnRefusedAck(text)));
            }
            Err(RelayError::Unavailable(e)) => return Ok(Step::Stop(StopReason::Kkt(e))),
            // The commit said so and its own outcome was returned above; kept for the type.
            Err(e @ RelayError::NotJournaled) => {
                return Ok(Step::Stop(StopReason::Kkt(e.to_string())));
            }
        }
        self.head_counted = true;
        // Only an accepted document comes here (a refusal stays at the FN's head): the reply is
        // noted written and the document synced in one commit.
        debug_assert_eq!(code, 0, "write_back of a refused document");
        self.mem.clear(fn_number, fd);
        // Committed while the FN hands out the next document (`settle_concluding`): a crash
        // before the commit leaves the FN ahead of the journal, which the next pass settles from
        // the journaled reply, as it does after a crash between the FN's write and the commit.
        let journal = self.sh.journal.clone();
        let lease = self.held.journal_lease().cloned();
        let f = fn_number.to_owned();
        self.concluding = Some(tokio::spawn(async move {
            journal
                .mark_written_and_synced(&f, fd, lease.as_ref())
                .await
        }));
        self.predicted_queue = self
            .last_queue
            .filter(|q| q.queue_len > 1)
            .map(|q| FnQueue {
                queue_len: q.queue_len - 1,
                first_fd: q.first_fd + 1,
            });
        Ok(Step::Continue)
    }

    /// Waits for the commit of the last delivered document; `Some` stops the pass.
    async fn settle_concluding(&mut self) -> Result<Option<StopReason>, SyncError> {
        let Some(commit) = self.concluding.take() else {
            return Ok(None);
        };
        match commit.await {
            Ok(Ok(_)) => {
                self.result.synced += 1;
                Ok(None)
            }
            Ok(Err(JournalError::Fenced { .. })) => Ok(Some(StopReason::LockLost)),
            Ok(Err(e)) => Err(e.into()),
            // A journal invariant broken in the commit panics, as it would have in this task.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(JournalError::Closed.into()),
        }
    }

    /// Sends one message, its copy journaled while it is on its way, and returns the OFD's
    /// answer, not journaled yet. `Ok(Err(stop))` ends the pass.
    async fn deliver(
        &mut self,
        fn_number: &str,
        fd: u32,
        message: Vec<u8>,
    ) -> Result<Result<OfdAnswer, StopReason>, SyncError> {
        if !self.force() && !self.sh.breaker_lock().try_acquire(Instant::now()) {
            return Ok(Err(StopReason::BreakerOpen));
        }
        self.attempts += 1;
        // Both end before anything else: a failure is recorded on a journaled copy, and a
        // journal that failed stops the pass whatever the OFD said (the FN still holds the
        // document, so the next pass sends it again).
        let (recorded, sent) = tokio::join!(
            self.sh
                .journal
                .record_ofd_outgoing(fn_number, fd, message.clone()),
            self.sh.client.send(&message)
        );
        recorded?;
        match sent.and_then(|a| a.check_for(fn_number, fd).map(|()| a)) {
            Ok(answer) => {
                self.sh.on_ofd_success();
                Ok(Ok(answer))
            }
            Err(e) => {
                self.transport_failure(fn_number, fd, &e).await?;
                Ok(Err(StopReason::Transport(e.to_string())))
            }
        }
    }

    /// Journals the OFD's reply, fenced by the sync lock; `Some(stop)` once the lock was lost.
    async fn record_reply(
        &self,
        fn_number: &str,
        fd: u32,
        reply: OfdReply,
    ) -> Result<Option<StopReason>, SyncError> {
        // The journal's lease fences the commit itself; a Redis lock is asked first.
        let lease = self.held.journal_lease();
        if lease.is_none() && !self.sh.lock.check_fence(&self.held).await? {
            return Ok(Some(StopReason::LockLost));
        }
        match self
            .sh
            .journal
            .record_ofd_reply(fn_number, fd, reply, lease)
            .await
        {
            Ok(_) => Ok(None),
            Err(JournalError::Fenced { .. }) => Ok(Some(StopReason::LockLost)),
            Err(e) => Err(e.into()),
        }
    }

    /// Feeds a failure to the breaker and the backoff; returns (milliseconds until the next
    /// attempt, that moment as Unix ms).
    fn backoff_after_failure(&self) -> (u64, i64) {
        let now = Instant::now();
        let wait = self.sh.on_ofd_failure().saturating_duration_since(now);
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let at = unix_ms_now().saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
        (ms, at)
    }

    /// A transient failure: counted on the row, retried after the backoff, never dead-lettered.
    async fn transport_failure(
        &mut self,
        fn_number: &str,
        fd: u32,
        err: &TransportError,
    ) -> Result<(), SyncError> {
        let (wait_ms, next_ms) = self.backoff_after_failure();
        tracing::warn!(fn_number, fd, kind = err.kind(), error = %err, retry_in_ms = wait_ms, "OFD delivery failed");
        let text = format!("ofd {}: {err}", err.kind());
        tolerate(
            self.sh
                .journal
                .record_delivery_failure(fn_number, fd, &text, next_ms)
                .await,
        )?;
        self.result.failed += 1;
        self.head_counted = true;
        if err.reached() {
            let n = self.mem.bump(fn_number, fd);
            if n == self.sh.settings.retry_max.max(1) {
                // Said once per document: the backlog's age alarm is what pages a person.
                tracing::error!(fn_number, fd, failures = n, error = %err, "the OFD is reachable but keeps failing this document; delivery goes on with backoff");
            }
        }
        Ok(())
    }

    /// Response code 0 -> synced; anything else -> DLQ with the code. `Some(stop)` if fenced.
    async fn conclude(
        &mut self,
        fn_number: &str,
        fd: u32,
        code: i64,
    ) -> Result<Option<StopReason>, SyncError> {
        self.mem.clear(fn_number, fd);
        let lease = self.held.journal_lease();
        let outcome = if code == 0 {
            self.sh
                .journal
                .mark_synced(fn_number, fd, lease)
                .await
                .map(|_| ())
        } else {
            let text = format!("the OFD refused the document with response code {code}");
            self.sh
                .journal
                .mark_dlq(fn_number, fd, &format!("ofd_response_{code}"), &text, lease)
                .await
                .map(|_| ())
        };
        match outcome {
            Ok(()) if code == 0 => self.result.synced += 1,
            Ok(()) => self.result.failed += 1,
            Err(JournalError::Fenced { .. }) => return Ok(Some(StopReason::LockLost)),
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }
}

/// The journal's record of the OFD's answer, and its response code.
fn reply_of(answer: &OfdAnswer) -> (OfdReply, i64) {
    let code = i64::from(answer.ack.response_code);
    let record = OfdReply {
        reply: answer.reply.clone(),
        response_code: code,
        operator_sign: answer.ack.operator_sign.clone(),
    };
    (record, code)
}

/// A state-machine refusal on a bookkeeping write (e.g. a row already moved by an explicit
/// action) is logged, not fatal: the FN and the next pass stay authoritative.
fn tolerate<T>(r: Result<T, JournalError>) -> Result<(), SyncError> {
    match r {
        Ok(_) => Ok(()),
        Err(e @ JournalError::InvalidTransition { .. }) => {
            tracing::warn!(error = %e, "sync bookkeeping skipped");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// How long to wait before the next background pass.
pub(crate) fn next_wake(sh: &Shared, now: Instant, interval: Duration) -> Instant {
    let mut wake = now + interval;
    if let Some(at) = sh.backoff_next_at()
        && at > now
    {
        wake = at;
    }
    if let Some(at) = sh.breaker_lock().next_probe_at() {
        wake = wake.max(at);
    }
    wake
}
