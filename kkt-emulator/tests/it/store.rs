//! The file-backed FN store driven through the device: a reload after every command gives exactly the
//! state the device answered from, and a benchmark-style figure (printed, never asserted): time per
//! receipt with 10 and 1,000 documents in the FN, with real fsyncs. The commit cost must not grow with
//! the journal.

use std::time::Instant;

use kkt_emulator::device::{Conditions, Device};
use kkt_emulator::store::{FnState, Store};
use kkt_proto::request::{CloseReceipt, FnOperation};
use kkt_proto::wire::Text;

fn item() -> FnOperation {
    item_priced(10_000)
}

fn item_priced(price: u64) -> FnOperation {
    FnOperation {
        check_type: 1,
        quantity: 1_000_000,
        price,
        sum: None,
        tax_value: None,
        tax_bits: 1,
        department: 1,
        payment_method: 4,
        payment_object: 1,
        name: Text::from_raw(b"Tea".to_vec()),
    }
}

fn close() -> CloseReceipt {
    close_with(10_000)
}

fn close_with(cash: u64) -> CloseReceipt {
    let mut payments = [0u64; 16];
    payments[0] = cash;
    CloseReceipt {
        payments,
        rounding: 0,
        taxes: [0; 6],
        tax_system: 1,
        text: Text::from_raw(Vec::new()),
    }
}

fn sale(d: &mut Device) {
    let c = Conditions::default();
    d.fn_operation(c, 1, &item()).expect("item");
    d.close_receipt(c, &close()).expect("close");
}

/// Runs `receipts` sales (one item + close: two durable commits each) on an FN that already holds
/// `docs` documents; returns microseconds per receipt, checking that a reload sees every one of them.
fn per_receipt_us(docs: usize, receipts: u32) -> u128 {
    let mut mem = Device::new(FnState::fresh(1), Store::memory());
    mem.frozen_time = Some(1_700_000_000);
    mem.open_shift(Conditions::default(), true).expect("open");
    while mem.st.documents.len() < docs {
        sale(&mut mem);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fn.json");
    let mut store = Store::file(path.clone());
    store.create(&mem.st).expect("create");
    let mut d = Device::new(mem.st, store);
    d.frozen_time = Some(1_700_000_000);
    let t = Instant::now();
    for _ in 0..receipts {
        sale(&mut d);
    }
    let us = t.elapsed().as_micros() / u128::from(receipts);
    let log = std::fs::metadata(kkt_emulator::store::log_path(&path)).map_or(0, |m| m.len());
    let head = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "kkt-emulator store: {docs} docs + {receipts} receipts: head {head} bytes, log {log} bytes"
    );
    let back = Store::file(path).load().expect("load").expect("state");
    assert_eq!(back.documents.len(), docs + receipts as usize);
    assert_eq!(back, d.st);
    us
}

#[test]
fn time_per_receipt_does_not_grow_with_the_fn() {
    let small = per_receipt_us(10, 20);
    let large = per_receipt_us(1_000, 20);
    println!(
        "kkt-emulator store: per receipt (1 item + close, 2 durable commits) \
         with 10 docs in the FN: {small} us, with 1000 docs: {large} us"
    );
}

#[test]
fn after_every_command_a_reload_gives_the_state_the_device_answered_from() {
    let c = Conditions::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fn.json");
    let mut store = Store::file(path.clone());
    store.create(&FnState::fresh(1)).expect("create");
    let mut d = Device::new(FnState::fresh(1), store);
    d.frozen_time = Some(1_700_000_000);
    let reload = |d: &Device, step: &str| {
        let back = Store::file(path.clone()).load().expect("load");
        assert_eq!(back.as_ref(), Some(&d.st), "after {step}");
    };
    d.open_shift(c, true).expect("open");
    reload(&d, "shift open");
    for n in 0..3 {
        d.fn_operation(c, 1, &item_priced(100 + n)).expect("item");
        reload(&d, "item");
        d.send_tlv(&[0xA8, 0x04, 0x03, 0x00, b'a', b'b', b'c'])
            .expect("1192");
        reload(&d, "tlv");
        d.close_receipt(c, &close_with(500)).expect("close");
        reload(&d, "receipt");
    }
    d.fn_operation(c, 1, &item_priced(7)).expect("item");
    d.cancel().expect("cancel");
    reload(&d, "cancel");
    d.close_shift(c, true).expect("close shift");
    reload(&d, "shift close");
    d.open_shift(c, true).expect("reopen");
    d.fn_operation(c, 1, &item_priced(9)).expect("item");
    reload(&d, "open receipt in shift 2");
    assert_eq!((d.st.last_fd, d.st.shift_number), (6, 2));
}

/// The mode bits of `path` (permission bits only).
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn the_state_and_its_log_are_private_and_an_older_readable_state_is_tightened_at_load() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fn.json");
    let log = kkt_emulator::store::log_path(&path);
    let mut store = Store::file(path.clone());
    store.create(&FnState::fresh(1)).expect("create");
    let mut d = Device::new(FnState::fresh(1), store);
    d.open_shift(Conditions::default(), true).expect("open");
    sale(&mut d);
    assert_eq!((mode_of(&path), mode_of(&log)), (0o600, 0o600));
    drop(d);
    // A state written by an earlier version was world-readable; the next load tightens both files.
    for p in [&path, &log] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    Store::file(path.clone())
        .load()
        .expect("load")
        .expect("state");
    assert_eq!((mode_of(&path), mode_of(&log)), (0o600, 0o600));
}
