//! Task requests (the ATOL-compatible API): a POS's list of tasks under its own id, run in order on
//! one register through the same journal, fiscal step and reconciliation as the native API.
//!
//! Invariant: a request is journaled (its validated tasks in the adapter's own encoding) before its
//! first task runs, and each task's outcome is journaled when it ends, so an id never runs twice
//! and a restarted adapter goes on with what was left (`resume`).
//! Invariant: a receipt task is a sale under the key `atol:<id>:<index>`: a repeat after a crash
//! is answered from the journal, and a receipt left in flight is settled by reconciliation like a
//! native one; the task reads as `blocked` until then and the register's queue waits for it.
//! Boundary: a shift task cut off by a crash is not run again (its outcome is unknown: the shift
//! may be open); it ends as an error that says so. Queries and the X report run again.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Fiscalizer, KktState, ReceiptRow, SubmitError};
pub use crate::journal::TASK_KEY_PREFIX;
use crate::journal::{JournalError, NewTaskRequest, TaskInsert, TaskRequestRow, task_receipt_key};
use crate::kkt::ops::{self, DeviceSnapshot};
use crate::sale::{Sale, journaled};

/// How often a task waiting for reconciliation (its own receipt's, or an earlier one's) looks again.
const BLOCKED_POLL: Duration = Duration::from_millis(200);

/// One validated task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A receipt (sale, refund, buy, buy refund).
    Receipt(Sale),
    OpenShift,
    CloseShift,
    /// An X report: printed, no fiscal document.
    ReportX,
    ShiftStatus,
    DeviceStatus,
    FnInfo,
    OfdExchangeStatus,
}

/// A task's kind, for the answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Receipt,
    OpenShift,
    CloseShift,
    ReportX,
    ShiftStatus,
    DeviceStatus,
    FnInfo,
    OfdExchangeStatus,
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Receipt(_) => JobKind::Receipt,
            Job::OpenShift => JobKind::OpenShift,
            Job::CloseShift => JobKind::CloseShift,
            Job::ReportX => JobKind::ReportX,
            Job::ShiftStatus => JobKind::ShiftStatus,
            Job::DeviceStatus => JobKind::DeviceStatus,
            Job::FnInfo => JobKind::FnInfo,
            Job::OfdExchangeStatus => JobKind::OfdExchangeStatus,
        }
    }
}

named_enum!(JobKind {
    Receipt => "receipt",
    OpenShift => "open_shift",
    CloseShift => "close_shift",
    ReportX => "report_x",
    ShiftStatus => "shift_status",
    DeviceStatus => "device_status",
    FnInfo => "fn_info",
    OfdExchangeStatus => "ofd_exchange_status",
});

impl JobKind {
    /// A task that changes the device's fiscal state and may not run twice.
    fn mutates_shift(self) -> bool {
        matches!(self, JobKind::OpenShift | JobKind::CloseShift)
    }
}

/// Version of the jobs encoding this build writes.
const JOBS_VERSION: u64 = 1;

/// The journal's encoding of a request's tasks: `{"v":1,"jobs":[{"job":"receipt","sale":"..."},..]}`,
/// a receipt's sale in the journal's own sale encoding.
fn encode_jobs(jobs: &[Job]) -> String {
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| match j {
            Job::Receipt(sale) => json!({"job": "receipt", "sale": journaled::encode(sale)}),
            other => json!({"job": other.kind().as_str()}),
        })
        .collect();
    json!({"v": JOBS_VERSION, "jobs": list}).to_string()
}

fn decode_jobs(text: &str) -> Result<Vec<Job>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("v").and_then(Value::as_u64) != Some(JOBS_VERSION) {
        return Err(format!(
            "task encoding version {}; this build reads {JOBS_VERSION}",
            v.get("v").unwrap_or(&Value::Null)
        ));
    }
    let list = v
        .get("jobs")
        .and_then(Value::as_array)
        .ok_or("no job list")?;
    list.iter()
        .map(|j| {
            let name = j
                .get("job")
                .and_then(Value::as_str)
                .ok_or("a job without a name")?;
            match JobKind::parse(name).ok_or_else(|| format!("job `{name}`"))? {
                JobKind::Receipt => {
                    let body = j
                        .get("sale")
                        .and_then(Value::as_str)
                        .ok_or("a receipt without a sale")?;
                    match journaled::decode(body)? {
                        journaled::Journaled::Sale(sale) => Ok(Job::Receipt(sale)),
                        journaled::Journaled::Legacy => Err("a receipt without a version".into()),
                    }
                }
                JobKind::OpenShift => Ok(Job::OpenShift),
                JobKind::CloseShift => Ok(Job::CloseShift),
                JobKind::ReportX => Ok(Job::ReportX),
                JobKind::ShiftStatus => Ok(Job::ShiftStatus),
                JobKind::DeviceStatus => Ok(Job::DeviceStatus),
                JobKind::FnInfo => Ok(Job::FnInfo),
                JobKind::OfdExchangeStatus => Ok(Job::OfdExchangeStatus),
            }
        })
        .collect()
}

/// The device as a query task saw it, kept as the task's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub mode_code: u8,
    pub paper_present: bool,
    pub cover_open: bool,
    pub shift_open: bool,
    /// Mode 3: the shift is over 24 hours old; only closing it is allowed.
    pub shift_expired: bool,
    pub shift_number: u32,
    pub fn_number: String,
    pub fn_life_phase: u8,
    pub fn_warnings: u8,
    /// `YYYY-MM-DDTHH:MM`, the FN's clock.
    pub fn_datetime: String,
    pub last_fd: u32,
    pub ofd_queue_len: u16,
    pub ofd_first_fd: u32,
    pub ofd_first_datetime: String,
    /// A receipt of the register was being reconciled.
    pub blocked: bool,
}

/// `YYYY-MM-DDTHH:MM` from the FN's five date bytes.
fn fn_time(t: [u8; 5]) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        2000 + u32::from(t[0]),
        t[1],
        t[2],
        t[3],
        t[4]
    )
}

impl Snapshot {
    fn of(d: DeviceSnapshot, blocked: bool) -> Snapshot {
        let queue = d.ofd_queue_len;
        Snapshot {
            mode_code: d.mode.code(),
            paper_present: d.flags & 0x0002 != 0,
            cover_open: d.flags & 0x0400 != 0,
            shift_open: d.shift_open,
            shift_expired: d.mode == kkt_proto::DeviceMode::ShiftOpenOver24h,
            shift_number: d.shift_number,
            fn_number: d.fn_number,
            fn_life_phase: d.fn_life_phase,
            fn_warnings: d.fn_warnings,
            fn_datetime: fn_time(d.fn_datetime),
            last_fd: d.last_fd,
            ofd_queue_len: queue,
            ofd_first_fd: if queue > 0 { d.ofd_first_fd } else { 0 },
            ofd_first_datetime: if queue > 0 {
                fn_time(d.ofd_first_datetime)
            } else {
                String::new()
            },
            blocked,
        }
    }
}

/// The fiscal document a shift task made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub fn_number: String,
    pub fd_number: u32,
    pub fpd: u32,
    pub shift_number: u32,
    pub datetime: String,
    pub registration_number: String,
}

/// How a task ended, as journaled (written field by field: inner types carry no serde derives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A receipt task's sale reached a final state: its journal row tells which.
    Receipt,
    /// A shift task's document.
    Document(Document),
    /// The X report was printed.
    Printed,
    /// A query's answer.
    Snapshot(Snapshot),
    /// The task failed. `code` is the error code the native API would answer.
    Failed { code: String, message: String },
}

impl Outcome {
    fn failed(code: &str, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The journal's text of the outcome: `{"outcome":"receipt"}`, `{"outcome":"failed",...}`.
    fn encode(&self) -> String {
        match self {
            Outcome::Receipt => json!({"outcome": "receipt"}),
            Outcome::Printed => json!({"outcome": "printed"}),
            Outcome::Failed { code, message } => {
                json!({"outcome": "failed", "code": code, "message": message})
            }
            Outcome::Document(d) => json!({
                "outcome": "document",
                "fn_number": d.fn_number,
                "fd_number": d.fd_number,
                "fpd": d.fpd,
                "shift_number": d.shift_number,
                "datetime": d.datetime,
                "registration_number": d.registration_number,
            }),
            Outcome::Snapshot(s) => json!({
                "outcome": "snapshot",
                "mode_code": s.mode_code,
                "paper_present": s.paper_present,
                "cover_open": s.cover_open,
                "shift_open": s.shift_open,
                "shift_expired": s.shift_expired,
                "shift_number": s.shift_number,
                "fn_number": s.fn_number,
                "fn_life_phase": s.fn_life_phase,
                "fn_warnings": s.fn_warnings,
                "fn_datetime": s.fn_datetime,
                "last_fd": s.last_fd,
                "ofd_queue_len": s.ofd_queue_len,
                "ofd_first_fd": s.ofd_first_fd,
                "ofd_first_datetime": s.ofd_first_datetime,
                "blocked": s.blocked,
            }),
        }
        .to_string()
    }

    fn decode(text: &str) -> Result<Outcome, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let o = v.as_object().ok_or("not a JSON object")?;
        let kind = text_of(o, "outcome")?;
        Ok(match kind.as_str() {
            "receipt" => Outcome::Receipt,
            "printed" => Outcome::Printed,
            "failed" => Outcome::Failed {
                code: text_of(o, "code")?,
                message: text_of(o, "message")?,
            },
            "document" => Outcome::Document(Document {
                fn_number: text_of(o, "fn_number")?,
                fd_number: number_of(o, "fd_number")?,
                fpd: number_of(o, "fpd")?,
                shift_number: number_of(o, "shift_number")?,
                datetime: text_of(o, "datetime")?,
                registration_number: text_of(o, "registration_number")?,
            }),
            "snapshot" => Outcome::Snapshot(Snapshot {
                mode_code: number_of(o, "mode_code")?,
                paper_present: flag_of(o, "paper_present")?,
                cover_open: flag_of(o, "cover_open")?,
                shift_open: flag_of(o, "shift_open")?,
                shift_expired: flag_of(o, "shift_expired")?,
                shift_number: number_of(o, "shift_number")?,
                fn_number: text_of(o, "fn_number")?,
                fn_life_phase: number_of(o, "fn_life_phase")?,
                fn_warnings: number_of(o, "fn_warnings")?,
                fn_datetime: text_of(o, "fn_datetime")?,
                last_fd: number_of(o, "last_fd")?,
                ofd_queue_len: number_of(o, "ofd_queue_len")?,
                ofd_first_fd: number_of(o, "ofd_first_fd")?,
                ofd_first_datetime: text_of(o, "ofd_first_datetime")?,
                blocked: flag_of(o, "blocked")?,
            }),
            other => return Err(format!("outcome `{other}`")),
        })
    }
}

fn text_of(o: &Map<String, Value>, key: &str) -> Result<String, String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("`{key}` is not a string"))
}

fn flag_of(o: &Map<String, Value>, key: &str) -> Result<bool, String> {
    o.get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("`{key}` is not a boolean"))
}

fn number_of<T: TryFrom<u64>>(o: &Map<String, Value>, key: &str) -> Result<T, String> {
    o.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("`{key}` is not a number in range"))
}

/// Where one task of a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Not started.
    Wait,
    /// Running now.
    InProgress,
    /// Waiting for reconciliation: its own receipt's outcome, or an earlier receipt's.
    Blocked,
    /// Its receipt's row, once journaled (fiscalized, in flight, or rejected).
    Receipt(ReceiptRow),
    /// Ended with this outcome.
    Done(Outcome),
    /// Not run: an earlier task failed.
    Interrupted,
}

/// A request as the POS polls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub id: String,
    /// The register that runs it.
    pub kkt_id: String,
    pub number: u64,
    pub tasks: Vec<(JobKind, TaskState)>,
}

/// The answer to a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub number: u64,
    /// The id of the request whose receipt holds the register's queue, if one does.
    pub blocked_by: Option<String>,
}

/// Why a request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error("the uuid was used before with a different request")]
    IdReused,
    #[error("journal cannot commit: {0}")]
    JournalUnavailable(String),
}

/// What the register's task runner is doing, in memory.
#[derive(Default)]
pub(super) struct Running {
    /// Requests being run, with the index of the task at the register (or waiting for it).
    tasks: HashMap<String, (u32, bool)>,
}

impl Fiscalizer {
    /// Takes a request: journals it (durable when this returns) and runs its tasks in the
    /// background, in order, after the register's earlier requests. A repeat of a journaled id
    /// with the same `body_hash` answers as the first time (and runs what is left of it).
    pub async fn submit_tasks(
        &self,
        id: String,
        body_hash: String,
        jobs: Vec<Job>,
    ) -> Result<Accepted, TasksError> {
        let new = NewTaskRequest {
            id: id.clone(),
            kkt_id: self.inner.kkt_id.clone(),
            body_hash: body_hash.clone(),
            jobs: encode_jobs(&jobs),
            task_count: u32::try_from(jobs.len()).unwrap_or(u32::MAX),
        };
        let row = match self.inner.journal.insert_task_request(new).await {
            Ok(TaskInsert::Inserted(row)) => row,
            Ok(TaskInsert::Existing(row)) if row.body_hash != body_hash => {
                return Err(TasksError::IdReused);
            }
            Ok(TaskInsert::Existing(row)) => row,
            Err(e) => return Err(TasksError::JournalUnavailable(e.to_string())),
        };
        let number = row.number;
        if !row.finished() {
            self.spawn_tasks(row, jobs, false);
        }
        Ok(Accepted {
            number,
            blocked_by: self.blocked_by().await,
        })
    }

    /// Goes on with this register's requests a stopped adapter left unfinished (at start).
    pub async fn resume_tasks(&self) -> Result<usize, JournalError> {
        let rows = self
            .inner
            .journal
            .unfinished_task_requests(&self.inner.kkt_id)
            .await?;
        let n = rows.len();
        for row in rows {
            match decode_jobs(&row.jobs) {
                Ok(jobs) => self.spawn_tasks(row, jobs, true),
                Err(e) => {
                    tracing::error!(uuid = %row.id, error = %e, "a journaled task request does not read; its tasks are not run");
                }
            }
        }
        if n > 0 {
            tracing::info!(requests = n, kkt_id = %self.inner.kkt_id, "going on with unfinished task requests");
        }
        Ok(n)
    }

    /// The request journaled under `id`, as the POS polls it; `None` if there is none. Only the
    /// register that runs it knows which of its tasks is at the device now: when it may be
    /// another's, read the row with [`Self::task_request_row`] and ask that register's
    /// [`Self::task_view`].
    pub async fn task_request(&self, id: &str) -> Result<Option<RequestView>, JournalError> {
        match self.task_request_row(id).await? {
            Some(row) => self.task_view(row).await.map(Some),
            None => Ok(None),
        }
    }

    /// The journaled request under `id`, not yet read as tasks; its `kkt_id` names the register
    /// whose [`Self::task_view`] makes the view.
    pub async fn task_request_row(&self, id: &str) -> Result<Option<TaskRequestRow>, JournalError> {
        self.inner.journal.task_request(id).await
    }

    /// The POS's view of a journaled request this register runs.
    pub async fn task_view(&self, row: TaskRequestRow) -> Result<RequestView, JournalError> {
        let id = row.id.as_str();
        let jobs = decode_jobs(&row.jobs).map_err(JournalError::Invariant)?;
        let running = self
            .inner
            .running
            .lock()
            .expect("task runner state")
            .tasks
            .get(id)
            .copied();
        let mut tasks = Vec::with_capacity(jobs.len());
        let mut failed = false;
        for (i, job) in jobs.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let kind = job.kind();
            let state = if failed {
                TaskState::Interrupted
            } else if let Some(text) = row.outcome(i) {
                let outcome = Outcome::decode(text).map_err(JournalError::Invariant)?;
                match outcome {
                    Outcome::Receipt => match self.receipt_of(&row.id, i).await? {
                        Some(r) => r,
                        None => TaskState::Done(Outcome::failed(
                            "not_found",
                            "the receipt is no longer in the journal",
                        )),
                    },
                    other => TaskState::Done(other),
                }
            } else if kind == JobKind::Receipt
                && let Some(state) = self.receipt_of(&row.id, i).await?
            {
                let waiting = running.is_some_and(|(at, waiting)| at == i && waiting);
                match state {
                    // At the device or being reconciled: blocked while reconciliation has it.
                    TaskState::Receipt(r)
                        if matches!(r.kkt_state, KktState::Received | KktState::InFlight)
                            && (waiting || self.has_unresolved()) =>
                    {
                        TaskState::Blocked
                    }
                    other => other,
                }
            } else {
                match running {
                    Some((at, waiting)) if at == i => match waiting {
                        true => TaskState::Blocked,
                        false => TaskState::InProgress,
                    },
                    _ => TaskState::Wait,
                }
            };
            failed = match &state {
                TaskState::Done(Outcome::Failed { .. }) => true,
                TaskState::Receipt(r) => r.kkt_state == KktState::Rejected,
                _ => false,
            };
            tasks.push((kind, state));
        }
        Ok(RequestView {
            kkt_id: row.kkt_id,
            id: row.id,
            number: row.number,
            tasks,
        })
    }

    async fn receipt_of(&self, id: &str, index: u32) -> Result<Option<TaskState>, JournalError> {
        let row = self
            .inner
            .journal
            .get_by_key(&task_receipt_key(id, index))
            .await?;
        Ok(row.map(TaskState::Receipt))
    }

    /// The id of the task request whose receipt this register is reconciling, if one is.
    async fn blocked_by(&self) -> Option<String> {
        if !self.has_unresolved() {
            return None;
        }
        let rows = self
            .inner
            .journal
            .list_unresolved(&self.inner.kkt_id)
            .await
            .ok()?;
        rows.iter().find_map(|r| {
            let rest = r.idempotency_key.strip_prefix(TASK_KEY_PREFIX)?;
            rest.rsplit_once(':').map(|(id, _)| id.to_owned())
        })
    }

    fn spawn_tasks(&self, row: TaskRequestRow, jobs: Vec<Job>, resumed: bool) {
        {
            let mut running = self.inner.running.lock().expect("task runner state");
            if running.tasks.contains_key(&row.id) {
                return;
            }
            // Queued behind the register's earlier requests: no task of it is at the device yet.
            running.tasks.insert(row.id.clone(), (u32::MAX, false));
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = row.id.clone();
            // The register's requests run one at a time, in the order they came.
            let queue = this.inner.task_queue.lock().await;
            this.run_tasks(row, jobs, resumed).await;
            drop(queue);
            this.inner
                .running
                .lock()
                .expect("task runner state")
                .tasks
                .remove(&id);
        });
    }

    fn note_running(&self, id: &str, index: u32, waiting: bool) {
        if let Some(at) = self
            .inner
            .running
            .lock()
            .expect("task runner state")
            .tasks
            .get_mut(id)
        {
            *at = (index, waiting);
        }
    }

    async fn run_tasks(&self, row: TaskRequestRow, jobs: Vec<Job>, resumed: bool) {
        let mut first_unfinished = true;
        for (i, job) in jobs.into_iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if let Some(text) = row.outcome(i) {
                if matches!(Outcome::decode(text), Ok(Outcome::Failed { .. })) {
                    return;
                }
                continue;
            }
            self.note_running(&row.id, i, false);
            let outcome = if resumed && first_unfinished && job.kind().mutates_shift() {
                Outcome::failed(
                    "outcome_unknown",
                    "the adapter stopped while this shift task ran; whether the shift changed is \
                     unknown: ask getShiftStatus before sending it again",
                )
            } else {
                self.run_job(&row, i, job).await
            };
            first_unfinished = false;
            let text = outcome.encode();
            if let Err(e) = self
                .inner
                .journal
                .record_task_outcome(&row.id, i, &text)
                .await
            {
                // The request stays unfinished; a restart or a repeat of the request goes on.
                tracing::error!(uuid = %row.id, task = i, error = %e, "task outcome not journaled; the request is left unfinished");
                return;
            }
            let failed = match &outcome {
                Outcome::Failed { .. } => true,
                Outcome::Receipt => matches!(
                    self.receipt_of(&row.id, i).await,
                    Ok(Some(TaskState::Receipt(r))) if r.kkt_state == KktState::Rejected
                ),
                _ => false,
            };
            if failed {
                return;
            }
        }
    }

    async fn run_job(&self, row: &TaskRequestRow, i: u32, job: Job) -> Outcome {
        match job {
            Job::Receipt(sale) => self.run_receipt(row, i, sale).await,
            Job::OpenShift | Job::CloseShift => {
                let open = job == Job::OpenShift;
                loop {
                    let r = match open {
                        true => self.open_shift().await,
                        false => self.close_shift().await,
                    };
                    match r {
                        Ok(doc) => {
                            return Outcome::Document(Document {
                                registration_number: doc.registration_number(),
                                fn_number: doc.fn_number,
                                fd_number: doc.fd_number,
                                fpd: doc.fpd,
                                shift_number: doc.shift_number,
                                datetime: doc.fiscal_time,
                            });
                        }
                        Err(SubmitError::ReconciliationPending(_)) => {
                            self.wait_blocked(&row.id, i).await;
                        }
                        Err(e) => return failure(&e),
                    }
                }
            }
            Job::ReportX => {
                let _device = self.inner.fiscal_lock.lock().await;
                let r = self.inner.kkt.run(ops::x_report).await.and_then(|r| r);
                self.note_link(r.as_ref().map(|_| ()));
                match r {
                    Ok(()) => Outcome::Printed,
                    Err(e) => Outcome::failed(device_code(&e), e.to_string()),
                }
            }
            Job::ShiftStatus | Job::DeviceStatus | Job::FnInfo | Job::OfdExchangeStatus => {
                match self.device_snapshot().await {
                    Ok(d) => Outcome::Snapshot(Snapshot::of(d, self.has_unresolved())),
                    Err(e) => Outcome::failed(device_code(&e), e.to_string()),
                }
            }
        }
    }

    /// A receipt task: the sale under its task key, waiting (blocked) while the register
    /// reconciles, and until its own receipt's outcome is known.
    async fn run_receipt(&self, row: &TaskRequestRow, i: u32, sale: Sale) -> Outcome {
        let key = task_receipt_key(&row.id, i);
        loop {
            match self
                .submit(key.clone(), row.body_hash.clone(), sale.clone())
                .await
            {
                Ok(r) if matches!(r.kkt_state, KktState::Fiscalized | KktState::Rejected) => {
                    return Outcome::Receipt;
                }
                // In flight: reconciliation settles it; the task is blocked until then.
                Ok(_) => self.wait_blocked(&row.id, i).await,
                Err(SubmitError::ReconciliationPending(_) | SubmitError::InProgress) => {
                    self.wait_blocked(&row.id, i).await;
                }
                Err(e) => return failure(&e),
            }
        }
    }

    async fn wait_blocked(&self, id: &str, i: u32) {
        self.note_running(id, i, true);
        tokio::time::sleep(BLOCKED_POLL).await;
        self.note_running(id, i, false);
    }
}

/// The native API's error code for a failed task.
fn failure(e: &SubmitError) -> Outcome {
    let code = match e {
        SubmitError::KeyReused => "idempotency_key_reused",
        SubmitError::InProgress => "request_in_progress",
        SubmitError::BufferFull(_) => "buffer_full",
        SubmitError::JournalUnavailable(_) => "journal_unavailable",
        SubmitError::KktRefused { .. } => "kkt_refused",
        SubmitError::ReconciliationPending(_) => "reconciliation_pending",
        SubmitError::KktUnavailable(_) => "kkt_unavailable",
        SubmitError::Internal(_) => "internal",
    };
    if let SubmitError::Internal(detail) = e {
        tracing::error!(error = %detail, "task failed inside the adapter");
        return Outcome::failed(code, "internal error; see the adapter's log");
    }
    Outcome::failed(code, e.to_string())
}

fn device_code(e: &super::KktError) -> &'static str {
    if e.device_error().is_some() {
        "kkt_refused"
    } else {
        "kkt_unavailable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sale::{Operation, SaleItem, Taxation, Vat};

    #[test]
    fn jobs_read_back_as_written_and_a_newer_encoding_is_refused() {
        let item = SaleItem {
            name: "Хлеб".into(),
            price_kopecks: 3_000,
            quantity_millionths: 2_000_000,
            sum_kopecks: 0,
            vat: Vat::Vat10,
            payment_method: 4,
            payment_object: 1,
        };
        let sale = Sale::new(
            Operation::Sale,
            Taxation::Osn,
            Some("Иванов".into()),
            None,
            vec![item],
            6_000,
            0,
        )
        .unwrap();
        let jobs = vec![
            Job::OpenShift,
            Job::Receipt(sale),
            Job::OfdExchangeStatus,
            Job::ReportX,
        ];
        assert_eq!(decode_jobs(&encode_jobs(&jobs)).unwrap(), jobs);
        let newer = encode_jobs(&jobs).replace("\"v\":1", "\"v\":2");
        let e = decode_jobs(&newer).unwrap_err();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn outcomes_read_back_as_written() {
        let outcomes = [
            Outcome::Receipt,
            Outcome::Printed,
            Outcome::failed("kkt_refused", "paper out"),
            Outcome::Snapshot(Snapshot {
                mode_code: 2,
                paper_present: true,
                cover_open: false,
                shift_open: true,
                shift_expired: false,
                shift_number: 4,
                fn_number: "9999078900000001".into(),
                fn_life_phase: 3,
                fn_warnings: 0,
                fn_datetime: "2026-12-03T10:00".into(),
                last_fd: 9,
                ofd_queue_len: 2,
                ofd_first_fd: 8,
                ofd_first_datetime: "2026-12-03T09:59".into(),
                blocked: false,
            }),
            Outcome::Document(Document {
                fn_number: "9999078900000001".into(),
                fd_number: 7,
                fpd: 123,
                shift_number: 2,
                datetime: "2026-12-03T10:00:00".into(),
                registration_number: "0000000001012345".into(),
            }),
        ];
        for o in outcomes {
            let text = o.encode();
            assert_eq!(Outcome::decode(&text).unwrap(), o, "{text}");
        }
        let e = Outcome::decode(r#"{"outcome":"document","fn_number":"1"}"#).unwrap_err();
        assert!(e.contains("fd_number"), "{e}");
    }
}
