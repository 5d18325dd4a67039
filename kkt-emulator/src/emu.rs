//! The emulator's shared state: the device, the fault menu and the power switch, behind one lock that the
//! wire loop and the control API share; plus the JSON views the control API serves. The traffic counters
//! sit beside the lock, never behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kkt_proto::Request;
use ofd_proto::DocCode;
use serde::Serialize;

use crate::counters::{Counters, CountersView};
use crate::device::{Conditions, Device, host_now};
use crate::exec::Executed;
use crate::faults::{ArmedFault, Effects, FaultKind, FaultView, Faults};
use crate::store::{FnState, StoreError, StoredDoc};

/// Device plus faults.
#[derive(Debug)]
pub struct Inner {
    /// The register.
    pub dev: Device,
    /// Armed faults and printer conditions.
    pub faults: Faults,
    /// Commands executed since start, by code (`GET /_emu/commands`): lets a test prove that a
    /// refused request sent nothing to the device.
    pub commands: std::collections::BTreeMap<String, u64>,
}

/// `GET /_emu/commands`: every decoded command this process executed, by code.
#[derive(Debug, Serialize)]
pub struct CommandsView {
    pub total: u64,
    /// Keyed by the command code as the protocol writes it (`10`, `FF46`).
    pub by_code: std::collections::BTreeMap<String, u64>,
}

/// Shared between the wire loop and the control API.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    powered: AtomicBool,
    allow_reset: bool,
    counters: Arc<Counters>,
}

/// `GET /_emu/state`.
#[derive(Debug, Serialize)]
pub struct StateView {
    /// 2 shift open, 3 shift over 24 h, 4 shift closed, 8 receipt open.
    pub mode: u8,
    /// False after a power cut until `POST /_emu/power_on`.
    pub powered: bool,
    /// "present" or "out".
    pub paper: &'static str,
    /// Cover condition.
    pub cover_open: bool,
    /// FN counters.
    pub fn_serial: String,
    /// KKT registration number.
    pub reg_number: String,
    /// Last FD number.
    pub last_fd: u32,
    /// Current or last shift number.
    pub shift_number: u32,
    /// Whether a shift is open.
    pub shift_open: bool,
    /// Receipts closed in the current shift.
    pub receipts_in_shift: u32,
    /// Lines in the open receipt, if one is open.
    pub open_receipt_items: Option<usize>,
    /// Documents not yet acknowledged by the OFD.
    pub unsent: usize,
    /// FD of the first unacknowledged document.
    pub first_unsent_fd: Option<u32>,
    /// Device clock minus host clock.
    pub clock_offset_s: i64,
    /// Device clock, Unix seconds.
    pub device_time: u32,
    /// Whether the device clock is stopped.
    pub clock_frozen: bool,
    /// The FPD key in hex, so a mock OFD can verify this FN's documents.
    pub fpd_secret_hex: String,
    /// Armed faults.
    pub faults: Vec<FaultView>,
}

/// One line of a receipt in the journal.
#[derive(Debug, Serialize)]
pub struct ItemView {
    /// Name.
    pub name: String,
    /// Quantity as a decimal string ("1.5").
    pub quantity: String,
    /// Unit price, kopecks.
    pub price: u64,
    /// Line total, kopecks.
    pub sum: u64,
    /// FFD 1199 rate code.
    pub vat: u8,
    /// FFD 1214 payment method sign.
    pub payment_method: u8,
    /// FFD 1212 payment object sign.
    pub payment_object: u8,
}

/// One fiscal document in `GET /_emu/journal`.
#[derive(Debug, Serialize)]
pub struct DocView {
    /// FD number.
    pub fd: u32,
    /// "shift_open", "receipt" or "shift_close".
    #[serde(rename = "type")]
    pub doc_type: &'static str,
    /// Unix seconds (device clock).
    pub time: u32,
    /// Shift number.
    pub shift: u32,
    /// Receipt number in the shift (receipts only).
    pub receipt_no: Option<u32>,
    /// Tag 1054 (receipts only).
    pub operation_type: Option<u8>,
    /// Total, kopecks (0 for shift reports).
    pub total: u64,
    /// Cash part, kopecks.
    pub cash: u64,
    /// Electronic part, kopecks.
    pub card: u64,
    /// Change, kopecks.
    pub change: u64,
    /// Lines.
    pub items: Vec<ItemView>,
    /// Tag 1192 as passed by the host.
    pub tag_1192: Option<String>,
    /// The stand-in fiscal sign.
    pub fpd: u32,
    /// Whether the OFD's ticket was written back to the FN.
    pub ofd_acknowledged: bool,
    /// The ticket's response code.
    pub ofd_response_code: Option<u8>,
}

/// `GET /_emu/journal`.
#[derive(Debug, Serialize)]
pub struct JournalView {
    /// FN serial.
    pub fn_serial: String,
    /// Every fiscal document, in FD order.
    pub documents: Vec<DocView>,
}

fn quantity_str(micro: u64) -> String {
    let (int, frac) = (micro / 1_000_000, micro % 1_000_000);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

fn doc_view(d: &StoredDoc) -> DocView {
    let receipt = d.code() == Some(DocCode::Receipt);
    DocView {
        fd: d.fd,
        doc_type: match d.code() {
            Some(DocCode::ShiftOpen) => "shift_open",
            Some(DocCode::ShiftClose) => "shift_close",
            _ => "receipt",
        },
        time: d.time,
        shift: d.shift,
        receipt_no: receipt.then_some(d.receipt_no),
        operation_type: receipt.then_some(d.op_type),
        total: d.total,
        cash: d.cash,
        card: d.card,
        change: d.change,
        items: d
            .items
            .iter()
            .map(|i| ItemView {
                name: i.name.clone(),
                quantity: quantity_str(i.quantity_micro),
                price: i.price,
                sum: i.sum,
                vat: i.vat,
                payment_method: i.payment_method,
                payment_object: i.payment_object,
            })
            .collect(),
        tag_1192: d.tag_1192.clone(),
        fpd: d.fpd,
        ofd_acknowledged: d.ack.is_some(),
        ofd_response_code: d.ack.as_ref().map(|a| a.response_code),
    }
}

/// Why a control request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// `POST /_emu/reset` without `--allow-reset`.
    #[error("reset is disabled; start the emulator with --allow-reset")]
    ResetDisabled,
    /// The FN state could not be saved.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Shared {
    /// Wraps a device.
    pub fn new(dev: Device, allow_reset: bool) -> Self {
        Self {
            inner: Mutex::new(Inner {
                dev,
                faults: Faults::default(),
                commands: std::collections::BTreeMap::new(),
            }),
            powered: AtomicBool::new(true),
            allow_reset,
            counters: Arc::new(Counters::new()),
        }
    }

    /// The lock; a panic elsewhere while holding it does not make the emulator unusable.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Executes one command with the current printer conditions.
    pub fn execute(&self, password: Option<u32>, req: &Request) -> Executed {
        let mut g = self.lock();
        g.faults.start_conditions(req.code().value());
        let c = Conditions {
            paper_out: g.faults.paper_out,
            cover_open: g.faults.cover_open,
        };
        *g.commands.entry(req.code().to_string()).or_default() += 1;
        self.counters.command();
        g.dev.execute(c, password, req)
    }

    /// The traffic counters (`GET /_emu/counters`), shared with the pty.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The traffic counters' current figures.
    pub fn counters_view(&self) -> CountersView {
        self.counters.view()
    }

    /// Zeroes the traffic counters; returns the zeroed figures.
    pub fn reset_counters(&self) -> CountersView {
        self.counters.reset()
    }

    /// The command counters.
    pub fn commands_view(&self) -> CommandsView {
        let g = self.lock();
        CommandsView {
            total: g.commands.values().sum(),
            by_code: g.commands.clone(),
        }
    }

    /// Lets the armed faults of `kinds` decide about command `cmd`.
    pub fn take_faults(&self, cmd: u16, kinds: &[FaultKind], fx: &mut Effects) {
        self.lock().faults.take(cmd, kinds, fx);
    }

    /// Whether a power cut is armed specifically for `cmd`.
    pub fn power_cut_armed_for(&self, cmd: u16) -> bool {
        self.lock().faults.power_cut_armed_for(cmd)
    }

    /// Whether the device is powered.
    pub fn powered(&self) -> bool {
        self.powered.load(Ordering::SeqCst)
    }

    /// Cuts the power: volatile state is lost, the FN keeps what it committed.
    pub fn power_off(&self) {
        let mut state = self.lock();
        state.dev.power_cycle();
        self.powered.store(false, Ordering::SeqCst);
    }

    /// Restores power, and disarms a power cut still waiting for its commit: "power back" leaves
    /// the device on. Without this, a cut armed before a pause whose commit came only after the
    /// power-on would switch the device off for good. Returns the cuts disarmed.
    pub fn power_on(&self) -> usize {
        let mut state = self.lock();
        let disarmed = state.faults.disarm_power_cuts();
        self.powered.store(true, Ordering::SeqCst);
        disarmed
    }

    /// Arms a fault.
    pub fn arm(&self, f: ArmedFault) -> FaultView {
        let view = f.view();
        self.lock().faults.arm(f);
        view
    }

    /// Clears every fault and condition.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// Sets the device clock offset and saves it (the RTC survives restarts).
    pub fn set_clock_offset(&self, offset_s: i64) -> Result<u32, ControlError> {
        let mut g = self.lock();
        g.dev.frozen_time = None;
        g.dev.st.clock_offset_s = offset_s;
        g.dev.persist()?;
        Ok(g.dev.now())
    }

    /// Stops the device clock at `unix` until the next offset change (not persisted).
    pub fn freeze_clock(&self, unix: u32) -> u32 {
        let mut g = self.lock();
        g.dev.frozen_time = Some(unix);
        g.dev.now()
    }

    /// Replaces the FN with a fresh one (next seed), if allowed.
    pub fn reset(&self) -> Result<String, ControlError> {
        if !self.allow_reset {
            return Err(ControlError::ResetDisabled);
        }
        let mut g = self.lock();
        let mut fresh = FnState::fresh(g.dev.st.seed.wrapping_add(1));
        fresh.clock_offset_s = g.dev.st.clock_offset_s;
        g.dev.power_cycle();
        g.dev.replace_fn(fresh)?;
        g.faults.clear();
        Ok(g.dev.st.fn_serial.clone())
    }

    /// The state view.
    pub fn state_view(&self) -> StateView {
        let g = self.lock();
        let st = &g.dev.st;
        StateView {
            mode: g.dev.mode(),
            powered: self.powered(),
            paper: if g.faults.paper_out { "out" } else { "present" },
            cover_open: g.faults.cover_open,
            fn_serial: st.fn_serial.clone(),
            reg_number: st.reg_number.clone(),
            last_fd: st.last_fd,
            shift_number: st.shift_number,
            shift_open: st.shift_open,
            receipts_in_shift: st.receipts_in_shift,
            open_receipt_items: st.open_receipt.as_ref().map(|r| r.items.len()),
            unsent: st.unsent().count(),
            first_unsent_fd: st.unsent().next().map(|d| d.fd),
            clock_offset_s: st.clock_offset_s,
            device_time: g.dev.now(),
            clock_frozen: g.dev.frozen_time.is_some(),
            fpd_secret_hex: st.secret.iter().map(|b| format!("{b:02x}")).collect(),
            faults: g.faults.armed.iter().map(ArmedFault::view).collect(),
        }
    }

    /// The journal view.
    pub fn journal_view(&self) -> JournalView {
        let g = self.lock();
        JournalView {
            fn_serial: g.dev.st.fn_serial.clone(),
            documents: g.dev.st.documents.iter().map(doc_view).collect(),
        }
    }

    /// Host clock, for the health answer.
    pub fn host_time() -> i64 {
        host_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_render_exactly() {
        assert_eq!(quantity_str(1_000_000), "1");
        assert_eq!(quantity_str(1_500_000), "1.5");
        assert_eq!(quantity_str(1_234), "0.001234");
    }
}
