//! Phase 1: the fiscal service. It journals a sale, fiscalizes it on the KKT and records the outcome,
//! and it reconciles every receipt whose KKT outcome is unknown before the next sale goes out.
//!
//! Invariant: one sale at a time talks to the KKT (`fiscal_lock`), and no sale is sent while an
//! earlier one is unresolved, so the FN's newest documents always belong to the unresolved rows and a
//! backwards scan from the FN's last document proves presence or absence without guessing.
//! Invariant: a receipt is fiscalized afresh only after the scan proved no document carries its id.
//! Invariant: a shift command is sent only when nothing is unresolved either, since a shift
//! document journaled above an unresolved receipt would end the scan before it reached the receipt.

mod fiscalize;
mod query;
mod reconcile;
mod submit;
mod tasks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::journal::Journal;
use crate::kkt::KktHandle;
use crate::kkt::ops;
use crate::sale::Sale;

/// Decodes a body journaled before the sale encoding was versioned ([`crate::sale::journaled`]):
/// the POS request as received, so the HTTP layer, which owns that wire format, provides it.
pub type LegacySaleDecoder = fn(&str) -> Result<Sale, String>;

/// A journaled task request before it is read as tasks ([`Fiscalizer::task_view`]).
pub use crate::journal::TaskRequestRow;
pub use query::{
    BackupInfo, BufferCounts, DeviceSnapshot, DeviceStatus, DlqEntry, EffectiveSettings, Glance,
    GlanceMiss, JournalError, KktError, KktState, OfdExchange, OfdStatus, ReceiptRow, RejectCode,
};
pub use reconcile::{ReconcileError, ReconcilePolicy, ResolveError, Resolved, UnresolvedInfo};
pub use tasks::{
    Accepted, Document, Job, JobKind, Outcome as TaskOutcome, RequestView, Snapshot,
    TASK_KEY_PREFIX, TaskState, TasksError,
};

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
        code: RejectCode,
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
    /// The register this service drives (`default` for `--kkt-port`).
    kkt_id: String,
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
    /// Task requests (ATOL API) run one at a time per register, in the order they came.
    task_queue: tokio::sync::Mutex<()>,
    /// Which task requests are being run, and where.
    running: Mutex<tasks::Running>,
    /// The last status snapshot read for a person's view, and when ([`Fiscalizer::glance`]).
    glanced: Mutex<Option<(Instant, query::DeviceSnapshot)>>,
}

/// The phase-1 service; cheap to clone.
#[derive(Clone)]
pub struct Fiscalizer {
    inner: Arc<Inner>,
}

impl Fiscalizer {
    pub fn new(
        kkt_id: String,
        journal: Journal,
        kkt: KktHandle,
        auto_open_shift: bool,
        decode_legacy_sale: LegacySaleDecoder,
        policy: ReconcilePolicy,
    ) -> Fiscalizer {
        let inner = Inner {
            kkt_id,
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
            task_queue: tokio::sync::Mutex::new(()),
            glanced: Mutex::new(None),
            running: Mutex::new(tasks::Running::default()),
        };
        Fiscalizer {
            inner: Arc::new(inner),
        }
    }

    /// The register this service drives.
    pub fn kkt_id(&self) -> &str {
        &self.inner.kkt_id
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

    /// Waits until no sale is at the KKT (used at shutdown, after the server stopped taking requests).
    pub async fn quiesce(&self) {
        drop(self.inner.fiscal_lock.lock().await);
    }
}
