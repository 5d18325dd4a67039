//! State shared by the OFD listener and the control plane: the mode, the record store and the counters, and
//! the handshake that lets a control call answer only once the listener has carried out its mode.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::mode::{Action, ModeEngine, ModeSpec};
use crate::store::Store;
use crate::traffic::Traffic;

/// Session counters (reset by `POST /_mock/reset` and by a restart; document totals come from the store).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted (including those then refused, dropped or over capacity).
    pub connections: u64,
    /// Connections being handled right now.
    pub active_connections: u64,
    /// Connections closed at accept because `connections_max` were busy.
    pub over_capacity: u64,
    /// Connections closed by the peer before sending a byte (connect probes).
    pub probes: u64,
    /// Messages that failed validation (size, signature, version, CRC, TLV) or timed out.
    pub invalid_messages: u64,
    /// Messages whose A-protocol version is not one `ofd-proto` accepts (also counted in `invalid_messages`);
    /// each was refused with a TCP reset and no answer.
    pub unsupported_versions: u64,
    /// Documents answered with a non-zero response code.
    pub rejected: u64,
    /// Documents whose FPD did not match `--verify-fpd` (also counted in `rejected`).
    pub fpd_mismatches: u64,
    /// Acknowledgements naming another document, written in `wrong_ack` mode (nothing stored).
    pub wrong_acks: u64,
    /// Complete answers written (acknowledgements and rejections).
    pub answers_sent: u64,
    /// Connections by the behaviour they got (`online`, `offline`, `slow`, ...).
    pub by_mode: BTreeMap<String, u64>,
}

/// Everything the listener tasks and the HTTP handlers share.
#[derive(Debug)]
pub struct MockState {
    /// The configuration the mock was started with.
    pub config: Config,
    /// The address the OFD listener is bound to (the real port when 0 was asked).
    pub ofd_addr: SocketAddr,
    /// The record store.
    pub store: Store,
    /// Byte and message counters of the OFD port and the last message (`/_mock/counters`).
    pub traffic: Traffic,
    mode: Mutex<ModeSlot>,
    counters: Mutex<Counters>,
    /// Wakes the listener supervisor after a mode change.
    pub mode_changed: Notify,
    listening: AtomicBool,
    /// The newest mode generation the listener supervisor has carried out (socket open or closed as asked).
    applied: watch::Sender<u64>,
}

/// The mode and its generation, which counts `set_mode` calls, under one lock so the supervisor reads a
/// generation together with the mode it belongs to.
#[derive(Debug)]
struct ModeSlot {
    engine: ModeEngine,
    generation: u64,
}

/// What the listener supervisor must carry out now: read under the mode lock in one go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenerPlan {
    /// Whether the listening socket should be open.
    pub open: bool,
    /// When `open` may change next without a new mode (flapping).
    pub next_change: Option<Instant>,
    /// The generation of the mode this plan comes from.
    pub generation: u64,
}

/// A mode was selected but the listener did not carry it out in time (the port could not be taken back).
#[derive(Debug, thiserror::Error)]
#[error(
    "mode generation {generation} is selected, but the OFD listener on {addr} is not yet {want} after {waited_ms} ms; \
     the mock keeps trying"
)]
pub struct NotInEffect {
    /// The generation that was waited for.
    pub generation: u64,
    /// The OFD address.
    pub addr: SocketAddr,
    /// "open" or "closed".
    pub want: &'static str,
    /// How long the control call waited, milliseconds.
    pub waited_ms: u128,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few field updates that cannot be left half done, so poison is harmless.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockState {
    /// Fresh state in mode `online`.
    pub fn new(config: Config, ofd_addr: SocketAddr, store: Store) -> Self {
        MockState {
            config,
            ofd_addr,
            store,
            traffic: Traffic::new(),
            mode: Mutex::new(ModeSlot {
                engine: ModeEngine::new(ModeSpec::default(), Instant::now()),
                generation: 0,
            }),
            counters: Mutex::new(Counters::default()),
            mode_changed: Notify::new(),
            listening: AtomicBool::new(false),
            // Generation 0 (online) is in effect once `serve` has bound the listener, before anyone can ask.
            applied: watch::Sender::new(0),
        }
    }

    /// Replaces the mode and returns its generation; schedules (flapping) start from now.
    ///
    /// The decisions about new connections change at once; the listening socket changes when the supervisor
    /// wakes, so a caller that promises the change is in effect then awaits [`Self::in_effect`].
    pub fn set_mode(&self, spec: ModeSpec) -> u64 {
        let generation = {
            let mut slot = lock(&self.mode);
            slot.engine = ModeEngine::new(spec, Instant::now());
            slot.generation += 1;
            slot.generation
        };
        self.mode_changed.notify_one();
        generation
    }

    /// Waits until the listener supervisor has carried out mode `generation` (or a newer one), at most `wait`.
    pub async fn in_effect(&self, generation: u64, wait: Duration) -> Result<(), NotInEffect> {
        let mut applied = self.applied.subscribe();
        let done = tokio::time::timeout(wait, applied.wait_for(|g| *g >= generation)).await;
        if matches!(done, Ok(Ok(_))) {
            return Ok(());
        }
        let want = self.with_mode(|m| m.listener_open(Instant::now()));
        Err(NotInEffect {
            generation,
            addr: self.ofd_addr,
            want: if want { "open" } else { "closed" },
            waited_ms: wait.as_millis(),
        })
    }

    /// The supervisor's view of the mode: whether to listen, until when, and which generation that is.
    pub(crate) fn listener_plan(&self, now: Instant) -> ListenerPlan {
        let slot = lock(&self.mode);
        ListenerPlan {
            open: slot.engine.listener_open(now),
            next_change: slot.engine.next_change(now),
            generation: slot.generation,
        }
    }

    /// Records that the listener now is as mode `generation` asks; wakes the control calls waiting for it.
    pub(crate) fn mark_applied(&self, generation: u64) {
        self.applied.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
    }

    /// The current mode as JSON, plus what a `fail_next` still owes.
    pub fn mode_json(&self) -> Value {
        let slot = lock(&self.mode);
        let m = &slot.engine;
        let mut v = m.spec().to_json();
        if let Value::Object(o) = &mut v
            && m.fail_left() > 0
        {
            o.insert("fail_left".into(), m.fail_left().into());
        }
        v
    }

    /// Runs `f` on the mode engine under its lock.
    pub fn with_mode<R>(&self, f: impl FnOnce(&mut ModeEngine) -> R) -> R {
        f(&mut lock(&self.mode).engine)
    }

    /// Decides the fate of a new connection, with the FN the decision is limited to (a mode's
    /// `fn`); nothing is counted until [`Self::count_action`] says what the connection got.
    pub fn decide(&self) -> (Action, Option<String>) {
        let mut mode = lock(&self.mode);
        let only_fn = mode.engine.spec().only_fn.clone();
        (mode.engine.decide(Instant::now()), only_fn)
    }

    /// Counts a connection under the behaviour it got.
    pub fn count_action(&self, action: &Action) {
        *lock(&self.counters)
            .by_mode
            .entry(action.name().to_owned())
            .or_default() += 1;
    }

    /// Updates the counters.
    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    /// Whether the OFD listener currently accepts connections.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    pub(crate) fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::SeqCst);
    }

    /// Clears records, counters (the traffic counters too) and the last message, and returns to `online`;
    /// returns the generation of that mode.
    pub fn reset(&self) -> Result<u64, crate::store::StoreError> {
        self.store.clear()?;
        self.traffic.reset();
        self.traffic.forget_last_message();
        let active = lock(&self.counters).active_connections;
        *lock(&self.counters) = Counters {
            active_connections: active,
            ..Counters::default()
        };
        Ok(self.set_mode(ModeSpec::default()))
    }

    /// The `GET /_mock/stats` body.
    pub fn stats_json(&self) -> Value {
        let c = lock(&self.counters).clone();
        let t = self.store.totals();
        json!({
            "mode": self.mode_json(),
            "listening": self.listening(),
            "connections": c.connections,
            "active_connections": c.active_connections,
            "over_capacity": c.over_capacity,
            "probes": c.probes,
            "invalid_messages": c.invalid_messages,
            "unsupported_versions": c.unsupported_versions,
            "documents_received": t.received,
            "unique": t.unique,
            "duplicates": t.duplicates,
            "conflicts": t.conflicts,
            "rejected": c.rejected,
            "fpd_mismatches": c.fpd_mismatches,
            "wrong_acks": c.wrong_acks,
            "answers_sent": c.answers_sent,
            "by_mode": c.by_mode,
        })
    }
}
