//! State shared by the OFD listener and the control plane: the mode, the record store and the counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::config::Config;
use crate::mode::{Action, ModeEngine, ModeSpec};
use crate::store::Store;

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
    /// Documents answered with a non-zero response code.
    pub rejected: u64,
    /// Documents whose FPD did not match `--verify-fpd` (also counted in `rejected`).
    pub fpd_mismatches: u64,
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
    mode: Mutex<ModeEngine>,
    counters: Mutex<Counters>,
    /// Wakes the listener supervisor after a mode change.
    pub mode_changed: Notify,
    listening: AtomicBool,
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
            mode: Mutex::new(ModeEngine::new(ModeSpec::default(), Instant::now())),
            counters: Mutex::new(Counters::default()),
            mode_changed: Notify::new(),
            listening: AtomicBool::new(false),
        }
    }

    /// Replaces the mode; schedules (flapping) start from now.
    pub fn set_mode(&self, spec: ModeSpec) {
        *lock(&self.mode) = ModeEngine::new(spec, Instant::now());
        self.mode_changed.notify_one();
    }

    /// The current mode as JSON, plus what a `fail_next` still owes.
    pub fn mode_json(&self) -> Value {
        let m = lock(&self.mode);
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
        f(&mut lock(&self.mode))
    }

    /// Decides the fate of a new connection and counts it under the behaviour it gets.
    pub fn decide(&self) -> Action {
        let action = lock(&self.mode).decide(Instant::now());
        *lock(&self.counters)
            .by_mode
            .entry(action.name().to_owned())
            .or_default() += 1;
        action
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

    /// Clears records and counters and returns to `online`.
    pub fn reset(&self) -> Result<(), crate::store::StoreError> {
        self.store.clear()?;
        let active = lock(&self.counters).active_connections;
        *lock(&self.counters) = Counters {
            active_connections: active,
            ..Counters::default()
        };
        self.set_mode(ModeSpec::default());
        Ok(())
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
            "documents_received": t.received,
            "unique": t.unique,
            "duplicates": t.duplicates,
            "conflicts": t.conflicts,
            "rejected": c.rejected,
            "fpd_mismatches": c.fpd_mismatches,
            "answers_sent": c.answers_sent,
            "by_mode": c.by_mode,
        })
    }
}
