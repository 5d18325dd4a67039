//! The KKT driver: one owner thread holds the serial port and runs every device command, so device
//! access is serialized; async callers hand it closures through [`KktHandle::run`].
//!
//! Invariant: an error says whether the device certainly did not execute the command
//! ([`KktError::is_definite`]); everything else is indeterminate and must be reconciled against the
//! FN before anything is sent again.

pub mod commands;
mod durable;
mod link;
pub mod ops;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kkt_proto::{
    Answer, DeviceError, DeviceMode, ErrorClass, LinkConfig, LinkFailure, Reply, Request,
};

pub use durable::{Durable, DurableTell};
pub use link::SerialLink;

/// Why a KKT command failed.
#[derive(Debug, thiserror::Error)]
pub enum KktError {
    /// The port could not be opened: nothing was sent.
    #[error("KKT port {path} cannot be opened: {message}")]
    Open { path: PathBuf, message: String },
    /// Reading or writing the port failed after the command may have been written.
    #[error("KKT port I/O failed: {0}")]
    Io(String),
    /// The link gave up (see [`LinkFailure`] for whether the device may have run the command).
    #[error("KKT link: {0}")]
    Link(LinkFailure),
    /// The device answered with an error byte.
    #[error("KKT refused {cmd}: {error:?} (0x{code:02X})", code = error.code())]
    Device { cmd: String, error: DeviceError },
    /// The command could not be encoded: nothing was sent.
    #[error("the KKT command cannot carry the request: {0}")]
    Encode(String),
    /// The answer could not be decoded or was not the expected one.
    #[error("KKT answer not understood: {0}")]
    Protocol(String),
    /// Commands of an earlier session ran on the device in the middle of this operation.
    #[error(
        "the KKT ran {answers} command(s) of an earlier session in the middle of this receipt; it was cancelled"
    )]
    Interfered { answers: usize },
    /// The driver thread is gone (the adapter is shutting down).
    #[error("KKT driver stopped")]
    Stopped,
}

impl KktError {
    /// True when the failure says nothing about the receipt, only that the register or its line
    /// cannot take one now: no paper, cover open, busy printing, the port or the link gone, the
    /// driver stopping. Retrying later can succeed without changing the receipt.
    pub fn is_condition(&self) -> bool {
        match self {
            KktError::Open { .. }
            | KktError::Link(_)
            | KktError::Io(_)
            | KktError::Interfered { .. }
            | KktError::Stopped => true,
            KktError::Device { error, .. } => {
                matches!(error.class(), ErrorClass::Printer | ErrorClass::Busy)
            }
            KktError::Encode(_) | KktError::Protocol(_) => false,
        }
    }

    /// True when the device certainly did not execute the command.
    pub fn is_definite(&self) -> bool {
        match self {
            KktError::Open { .. } | KktError::Interfered { .. } | KktError::Encode(_) => true,
            KktError::Link(LinkFailure::NotDelivered(_)) => true,
            KktError::Device { error, .. } => error.is_definite(),
            KktError::Link(LinkFailure::Indeterminate(_))
            | KktError::Io(_)
            | KktError::Protocol(_)
            | KktError::Stopped => false,
        }
    }

    /// The `code` label of the KKT error counter: the device's error byte in hex, or the kind
    /// of failure when the device gave none.
    pub fn metric_code(&self) -> String {
        match self {
            KktError::Device { error, .. } => format!("{:02X}", error.code()),
            KktError::Open { .. } => "open".to_owned(),
            KktError::Io(_) => "io".to_owned(),
            KktError::Link(LinkFailure::NotDelivered(_)) => "not_delivered".to_owned(),
            KktError::Link(LinkFailure::Indeterminate(_)) => "indeterminate".to_owned(),
            KktError::Encode(_) => "encode".to_owned(),
            KktError::Protocol(_) => "protocol".to_owned(),
            KktError::Interfered { .. } => "interfered".to_owned(),
            KktError::Stopped => "stopped".to_owned(),
        }
    }

    /// The device error byte, when the device answered with one.
    pub fn device_error(&self) -> Option<DeviceError> {
        match self {
            KktError::Device { error, .. } => Some(*error),
            _ => None,
        }
    }
}

/// Settings of the serial link.
#[derive(Debug, Clone)]
pub struct KktConfig {
    pub port: PathBuf,
    pub baud: u32,
    pub password: u32,
    pub link: LinkConfig,
}

/// Blocking access to the device, owned by the driver thread.
pub struct Kkt {
    link: SerialLink,
    password: u32,
    /// Answers drained from the device that belonged to earlier commands (ENQ -> ACK), oldest first.
    stale: Vec<Vec<u8>>,
    /// When this driver last saw the register at "shift open, no receipt open": a short status
    /// saying so, or a receipt it closed itself. Any command that may change the register's mode,
    /// and any failure, forgets it. See [`Kkt::known_ready`].
    ready_seen: Option<Instant>,
}

impl Kkt {
    pub fn new(config: &KktConfig) -> Kkt {
        Kkt {
            link: SerialLink::new(config.port.clone(), config.baud, config.link.clone()),
            password: config.password,
            stale: Vec::new(),
            ready_seen: None,
        }
    }

    /// True when the register is known to be at "shift open, no receipt open" without asking it:
    /// this driver saw it so less than [`READY_KNOWN_FOR`] ago and has sent nothing since that
    /// could change it. A sale then skips its short status (one command of seven). What can still
    /// change the mode behind the driver (the shift passing 24 hours, a device restarted by hand)
    /// makes the device refuse the first item, definitely, and the sale asks the status then
    /// ([`ops::sell`]).
    pub fn known_ready(&self) -> bool {
        self.ready_seen
            .is_some_and(|seen| seen.elapsed() < READY_KNOWN_FOR)
    }

    /// Runs one command and returns its typed answer, or the device's error. A device that answers
    /// "busy" (still printing the previous command) is asked again after a short pause, a bounded
    /// number of times: it did not execute the command, so repeating it is safe.
    pub fn call(&mut self, req: &Request) -> Result<Answer, KktError> {
        let started = Instant::now();
        let result = self.call_retrying_busy(req);
        self.ready_seen = match &result {
            Ok(Answer::ShortStatus(s)) => {
                (DeviceMode::from_byte(s.mode).0 == DeviceMode::ShiftOpen).then_some(started)
            }
            // A receipt closed: the shift was open for it, and no receipt is open now.
            Ok(Answer::CloseReceipt(_)) => Some(started),
            Ok(_) if leaves_mode_alone(req) => self.ready_seen,
            _ => None,
        };
        let error_code = result.as_ref().err().map(KktError::metric_code);
        crate::metrics::kkt_command(
            &req.code().to_string(),
            started.elapsed(),
            error_code.as_deref(),
        );
        result
    }

    fn call_retrying_busy(&mut self, req: &Request) -> Result<Answer, KktError> {
        let mut attempt = 0;
        loop {
            match self.call_once(req) {
                Err(KktError::Device { error, .. })
                    if error.is_retryable() && attempt < BUSY_RETRIES_MAX =>
                {
                    attempt += 1;
                    std::thread::sleep(BUSY_PAUSE * attempt);
                }
                other => return other,
            }
        }
    }

    fn call_once(&mut self, req: &Request) -> Result<Answer, KktError> {
        // A command that cannot be encoded never reaches the port: a definite failure.
        let payload = req
            .to_payload(self.password)
            .map_err(|e| KktError::Encode(e.to_string()))?;
        let (answer, stale) = self.link.exchange(&payload)?;
        for s in &stale {
            tracing::warn!(answer = %hex::encode_upper(s), "drained an answer the KKT held from an earlier command");
        }
        self.stale.extend(stale);
        match Reply::from_payload(&answer).map_err(|e| KktError::Protocol(e.to_string()))? {
            Reply::Ok(a) => Ok(a),
            Reply::Error { cmd, error, .. } => Err(KktError::Device {
                cmd: format!("{cmd:?}"),
                error,
            }),
        }
    }

    /// Takes the stale answers drained so far.
    pub fn take_stale(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.stale)
    }

    /// Drops the port so the next command reopens it (the device may have been replugged).
    pub fn reset_port(&mut self) {
        self.ready_seen = None;
        self.link.close();
    }
}

/// Commands that only read the register or move data between the FN and the OFD: none opens,
/// closes or cancels a receipt or a shift, so the register's mode is what it was before them.
fn leaves_mode_alone(req: &Request) -> bool {
    matches!(
        req,
        Request::ShortStatus
            | Request::FnStatus
            | Request::FnShiftParams
            | Request::FnExchangeStatus
            | Request::FnUnconfirmedCount
            | Request::FnFindDocument { .. }
            | Request::FnReadDocument { .. }
            | Request::FnReadDocumentBlock
            | Request::FnReadTicket { .. }
            | Request::FnReadBufferStatus
            | Request::FnReadBufferBlock { .. }
            | Request::FnStartWriteBuffer { .. }
            | Request::FnWriteBufferBlock { .. }
            | Request::DeviceType
    )
}

/// How long a register seen ready is taken to stay so without asking. Sales seconds apart (a
/// busy till, a drained backlog) skip the status; an idle register is asked first, as before.
const READY_KNOWN_FOR: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce(&mut Kkt) + Send>;

/// Async handle to the driver thread. Cloning it shares the same thread and port.
#[derive(Clone)]
pub struct KktHandle {
    tx: mpsc::SyncSender<Job>,
}

/// Jobs waiting for the device; a full queue makes callers wait, which bounds memory.
const JOBS_QUEUED_MAX: usize = 64;

impl KktHandle {
    /// Starts the driver thread.
    pub fn spawn(config: KktConfig) -> KktHandle {
        let (tx, rx) = mpsc::sync_channel::<Job>(JOBS_QUEUED_MAX);
        std::thread::Builder::new()
            .name("kkt-driver".into())
            .spawn(move || {
                let mut kkt = Kkt::new(&config);
                while let Ok(job) = rx.recv() {
                    job(&mut kkt);
                }
            })
            .expect("spawn the KKT driver thread");
        KktHandle { tx }
    }

    /// Runs `f` on the driver thread with exclusive access to the device.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Kkt) -> R + Send + 'static,
    ) -> Result<R, KktError> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |kkt| {
            let _ = done_tx.send(f(kkt));
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(KktError::Stopped),
            Err(mpsc::TrySendError::Full(job)) => {
                // The queue is bounded: waiting for a slot must not block the async runtime.
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(job))
                    .await
                    .map_err(|_| KktError::Stopped)?
                    .map_err(|_| KktError::Stopped)?;
            }
        }
        done_rx.await.map_err(|_| KktError::Stopped)
    }
}

/// How often a busy device is asked again, and the pause that grows with each attempt (1.5 s in all).
const BUSY_RETRIES_MAX: u32 = 5;
const BUSY_PAUSE: Duration = Duration::from_millis(100);

/// A short pause between reconnect attempts, so a missing device does not spin the thread.
pub(crate) const REOPEN_PAUSE: Duration = Duration::from_millis(50);
