//! Phase 1 end to end: sales, idempotency, validation, capacity and every emulator fault kind.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Stack, bread, lenses};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_end_to_end_has_exact_fiscal_data() {
    let s = Stack::with_adapter(&[]).await;
    let (code, r) = s.post_receipt(lenses("pos1-000123")).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "printed");
    assert_eq!(r["ofd_status"], "pending");
    let fiscal = &r["fiscal"];
    // The shift was closed: FD 1 is the shift-open report, FD 2 our receipt.
    assert_eq!(fiscal["fd_number"], 2);
    assert_eq!(fiscal["shift_number"], 1);
    assert_eq!(fiscal["receipt_number"], 1);
    assert_eq!(fiscal["total"], "25000.00");
    let fn_number = fiscal["fn_number"].as_str().unwrap();
    assert_eq!(r["fiscal_doc_id"], format!("{fn_number}-2"));
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1);
    let doc = &receipts[0];
    assert_eq!(doc["fd"], 2);
    assert_eq!(doc["tag_1192"], r["receipt_id"]);
    assert_eq!(doc["total"], 2_500_000);
    assert_eq!(doc["card"], 2_500_000);
    assert_eq!(fiscal["fpd"], doc["fpd"].to_string().trim_matches('"'));
    let qr = fiscal["qr"].as_str().unwrap();
    assert!(
        qr.contains(&format!(
            "&s=25000.00&fn={fn_number}&i=2&fp={}&n=1",
            fiscal["fpd"].as_str().unwrap()
        )),
        "{qr}"
    );
    // The shift-open report is journaled too, so it reaches the OFD.
    let (_, status) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(status["total_receipts"], 2, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_sale_with_change_and_numbers_in_json() {
    let s = Stack::with_adapter(&[]).await;
    let (code, r) = s.post_receipt(bread("pos1-bread")).await;
    assert_eq!(code, 200, "{r}");
    // 45.50 x 2 = 91.00, 89.90 x 1.5 = 134.85; total 225.85 of 300 cash.
    assert_eq!(r["fiscal"]["total"], "225.85");
    let doc = &s.fn_receipts().await[0];
    assert_eq!(doc["total"], 22_585);
    assert_eq!(doc["change"], 7_415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_replay_returns_the_stored_answer_without_a_second_fd() {
    let mut s = Stack::with_adapter(&[]).await;
    let (_, first) = s.post_receipt(lenses("k-1")).await;
    let (code, again) = s.post_receipt(lenses("k-1")).await;
    assert_eq!(code, 200);
    assert_eq!(first, again);
    // Header form of the key, same body: the same answer.
    let mut body = lenses("k-1");
    body.as_object_mut().unwrap().remove("idempotency_key");
    let (code, by_header) = s
        .call(
            "POST",
            "/v1/kkt/receipt",
            Some(body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!((code, &by_header), (200, &first));
    // Across a restart too.
    s.kill_adapter();
    s.start_adapter();
    let (code, after_restart) = s.post_receipt(lenses("k-1")).await;
    assert_eq!((code, &after_restart), (200, &first));
    assert_eq!(s.fn_receipts().await.len(), 1);
    let (code, by_key) = s
        .call("GET", "/v1/kkt/receipt?idempotency_key=k-1", None, &[])
        .await;
    assert_eq!((code, &by_key), (200, &first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_other_body_is_422_and_same_key_in_progress_is_409() {
    let s = Stack::with_adapter(&[]).await;
    let (code, _) = s.post_receipt(lenses("k-2")).await;
    assert_eq!(code, 200);
    let (code, e) = s.post_receipt(bread("k-2")).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["code"], "idempotency_key_reused");
    assert_eq!(e["definite"], true);
    // Hold the close command on the device for a while and send the same key twice.
    s.emu(
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "slow", "ms": 1500, "command": "FF45"})),
    )
    .await;
    let first = s.post_receipt(lenses("k-3"));
    let second = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.post_receipt(lenses("k-3")).await
    };
    let ((c1, r1), (c2, r2)) = tokio::join!(first, second);
    assert_eq!(c1, 200, "{r1}");
    assert_eq!(c2, 409, "{r2}");
    assert_eq!(r2["code"], "request_in_progress");
    assert_eq!(r2["definite"], false);
    assert_eq!(s.fn_receipts().await.len(), 2);
}

async fn check_invalid(s: &Stack, body: Value, code: &str, message_part: &str) {
    let (status, e) = s.post_receipt(body).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["code"], code, "{e}");
    assert_eq!(e["definite"], true);
    assert!(e["message"].as_str().unwrap().contains(message_part), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sales_get_a_definite_400_and_reach_nothing() {
    let s = Stack::with_adapter(&[]).await;
    let mut no_key = lenses("x");
    no_key.as_object_mut().unwrap().remove("idempotency_key");
    check_invalid(&s, no_key, "idempotency_key_missing", "Idempotency-Key").await;
    let mut underpaid = lenses("v-1");
    underpaid["payments"][0]["amount"] = json!("100.00");
    check_invalid(&s, underpaid, "invalid_field", "less than the total").await;
    let mut card_change = lenses("v-2");
    card_change["payments"][0]["amount"] = json!("26000.00");
    check_invalid(&s, card_change, "invalid_field", "only from cash").await;
    let mut three_digits = lenses("v-3");
    three_digits["items"][0]["price"] = json!("1.001");
    check_invalid(
        &s,
        three_digits,
        "malformed_body",
        "more than 2 fraction digits",
    )
    .await;
    let mut typo = lenses("v-4");
    typo["itemz"] = json!([]);
    check_invalid(&s, typo, "malformed_body", "unknown field `itemz`").await;
    let mut vat = lenses("v-5");
    vat["items"][0]["vat"] = json!("vat18");
    check_invalid(&s, vat, "malformed_body", "vat18").await;
    assert!(s.fn_receipts().await.is_empty());
    let (_, status) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(status["total_receipts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_refuses_before_journaling_or_printing() {
    // The OFD is unreachable, so nothing drains: capacity 3 = shift report + 2 sales.
    let s = Stack::with_adapter(&["--capacity", "3", "--ofd-addr", "127.0.0.1:9"]).await;
    for i in 0..2 {
        let (code, r) = s.post_receipt(lenses(&format!("cap-{i}"))).await;
        assert_eq!(code, 200, "{r}");
    }
    let (code, e) = s.post_receipt(lenses("cap-2")).await;
    assert_eq!(code, 503, "{e}");
    assert_eq!(e["code"], "buffer_full");
    assert_eq!(e["definite"], true);
    assert_eq!(s.fn_receipts().await.len(), 2);
    let (_, status) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(status["percent_full"], 100.0);
    assert_eq!(status["pending"], 3);
}

/// Arms one emulator fault, posts one sale and returns the answer and the FN's receipts.
async fn sale_under_fault(fault: Value) -> (Stack, u16, Value) {
    let s = Stack::with_adapter(&[]).await;
    // Open the shift first, and aim the fault at a sale command (the sync worker talks to the
    // device too, so an untargeted one-shot fault could hit its status poll instead).
    let (code, shift) = s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    assert_eq!(code, 200, "{shift}");
    s.emu("POST", "/_emu/fault", Some(fault)).await;
    let (code, r) = s.post_receipt(lenses("fault-1")).await;
    (s, code, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_and_cover_open_are_definite_refusals() {
    for kind in ["paper_out", "cover_open"] {
        let (s, code, e) = sale_under_fault(json!({"kind": kind})).await;
        assert_eq!(code, 409, "{kind}: {e}");
        assert_eq!(e["code"], "kkt_refused");
        assert_eq!(e["definite"], true);
        assert!(s.fn_receipts().await.is_empty(), "{kind}");
        // The refusal is stored: a retry with the same key gets the same definite answer.
        let (code, again) = s.post_receipt(lenses("fault-1")).await;
        assert_eq!((code, again["code"].clone()), (409, json!("kkt_refused")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_device_is_waited_for_then_refused_definitely() {
    // A device still printing answers 0x50: the driver waits and repeats the command.
    let (s, code, r) =
        sale_under_fault(json!({"kind": "busy", "count": 2, "command": "FF46"})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(s.fn_receipts().await.len(), 1);
    // Busy for longer than the driver waits: a definite refusal, nothing printed.
    let (s, code, e) =
        sale_under_fault(json!({"kind": "busy", "count": 50, "command": "FF46"})).await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(e["definite"], true);
    assert!(e["message"].as_str().unwrap().contains("0x50"), "{e}");
    assert!(s.fn_receipts().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_noise_is_retried_transparently() {
    for fault in [
        json!({"kind": "nak", "count": 2, "command": "FF46"}),
        json!({"kind": "garbage", "count": 3, "command": "FF45"}),
        json!({"kind": "bad_lrc", "count": 2, "command": "FF45"}),
        json!({"kind": "slow", "ms": 300, "count": 2, "command": "FF45"}),
    ] {
        let (s, code, r) = sale_under_fault(fault.clone()).await;
        assert_eq!(code, 200, "{fault}: {r}");
        assert_eq!(r["status"], "printed", "{fault}");
        let receipts = s.fn_receipts().await;
        assert_eq!(receipts.len(), 1, "{fault}");
        assert_eq!(receipts[0]["tag_1192"], r["receipt_id"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_close_answer_ends_printed_with_one_fd() {
    let (s, code, r) = sale_under_fault(json!({"kind": "drop_answer", "command": "FF45"})).await;
    assert_eq!(code, 200, "{r}");
    let id = r["receipt_id"].as_str().unwrap().to_owned();
    let done = s
        .wait_receipt_status(&id, "printed", Duration::from_secs(20))
        .await;
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["tag_1192"], json!(id));
    assert_eq!(done["fiscal"]["fd_number"], receipts[0]["fd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_after_commit_ends_printed_with_one_fd() {
    let (s, code, r) =
        sale_under_fault(json!({"kind": "power_cut_after_commit", "command": "FF45"})).await;
    // The device went silent after committing: the outcome is unknown, never "failed".
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "buffered");
    assert_eq!(r["fiscal_doc_id"], Value::Null);
    let id = r["receipt_id"].as_str().unwrap().to_owned();
    // A new sale meanwhile is refused definitely: nothing goes out before the first is resolved.
    let (code, e) = s.post_receipt(lenses("fault-2")).await;
    assert_eq!(code, 503, "{e}");
    assert_eq!(e["definite"], true);
    s.emu("POST", "/_emu/power_on", None).await;
    let done = s
        .wait_receipt_status(&id, "printed", Duration::from_secs(20))
        .await;
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["tag_1192"], json!(id));
    assert_eq!(done["fiscal"]["fd_number"], receipts[0]["fd"]);
    let (code, _) = s.post_receipt(lenses("fault-3")).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_receipt_in_flight_reconciles_it_once() {
    let mut s = Stack::with_adapter(&[]).await;
    s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    s.cut_power_after_the_next_close().await;
    let (code, r) = s.post_receipt(lenses("restart-1")).await;
    assert_eq!((code, r["status"].clone()), (200, json!("buffered")));
    let id = r["receipt_id"].as_str().unwrap().to_owned();
    s.kill_adapter();
    s.emu("POST", "/_emu/power_on", None).await;
    s.start_adapter();
    let done = s
        .wait_receipt_status(&id, "printed", Duration::from_secs(20))
        .await;
    assert_eq!(s.fn_receipts().await.len(), 1);
    // The POS retrying with the same key gets the printed answer.
    let (code, again) = s.post_receipt(lenses("restart-1")).await;
    assert_eq!((code, &again), (200, &done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_running_out_at_the_close_keeps_the_buffered_receipt_until_it_prints() {
    // Found by the nightly chaos run: the paper ran out as the close command came, the outcome was
    // unknown (a printer error at the close may follow the FN's commit), the POS got `buffered`,
    // and reconciliation, finding the receipt absent from the FN, printed it afresh into the same
    // empty paper tray and rejected it: a sale told `buffered` that never printed.
    let s = Stack::with_adapter(&[]).await;
    let (code, shift) = s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    assert_eq!(code, 200, "{shift}");
    s.emu(
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "paper_out", "command": "FF45"})),
    )
    .await;
    let (code, r) = s.post_receipt(lenses("paper-1")).await;
    assert_eq!((code, r["status"].clone()), (200, json!("buffered")), "{r}");
    let id = r["receipt_id"].as_str().unwrap().to_owned();
    // Reconciliation tries afresh while the paper is out: the items are refused each time (0x6B).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let commands = s.emu("GET", "/_emu/commands", None).await;
        if commands["by_code"]["FF46"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reconciliation did not try the receipt again twice: {commands}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, polled) = s
        .call("GET", &format!("/v1/kkt/receipt/{id}"), None, &[])
        .await;
    assert_eq!(
        (code, polled["status"].clone()),
        (200, json!("buffered")),
        "{polled}"
    );
    assert!(s.fn_receipts().await.is_empty(), "nothing printed yet");
    // New sales wait for it, definitely.
    let (code, e) = s.post_receipt(lenses("paper-2")).await;
    assert_eq!(
        (code, e["code"].clone()),
        (503, json!("reconciliation_pending")),
        "{e}"
    );
    // Paper back: the receipt prints once, by itself.
    s.emu("POST", "/_emu/clear", None).await;
    let done = s
        .wait_receipt_status(&id, "printed", Duration::from_secs(20))
        .await;
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["tag_1192"], json!(id));
    assert_eq!(done["fiscal"]["fd_number"], receipts[0]["fd"]);
    let (code, _) = s.post_receipt(lenses("paper-3")).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_adapters_own_journal_settings() {
    let s = Stack::with_adapter(&[]).await;
    let (code, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!((code, &h["status"]), (200, &json!("ok")), "{h}");
    // Health is open to every caller: no file path and no process id.
    let text = h.to_string();
    assert!(
        !text.contains("buffer.db") && !text.contains("\"pid\""),
        "{h}"
    );
    assert_eq!(h["journal"]["journal_mode"], "wal");
    assert_eq!(h["journal"]["synchronous"], 2);
    assert_eq!(h["journal"]["wal_autocheckpoint"], 100);
    assert!(h["circuit_breaker"]["state"].is_string(), "{h}");
    let (code, st) = s.call("GET", "/v1/kkt/status", None, &[]).await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["mode_code"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_exit_code_zero() {
    let mut s = Stack::with_adapter(&[]).await;
    let (code, _) = s.post_receipt(lenses("term-1")).await;
    assert_eq!(code, 200);
    assert_eq!(s.stop_adapter(), Some(0), "log: {}", s.log());
    // The checkpoint at shutdown leaves an empty WAL.
    let wal = s.db_path().with_extension("db-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_journaled_by_an_older_version_is_fiscalized_afresh_from_its_request() {
    // Before the journal had its own versioned sale encoding, it kept the POS request itself. A
    // receipt left in flight by such a version (and never sent to the KKT) must still print, once,
    // exactly as requested, after an upgrade.
    let mut s = Stack::with_adapter(&[]).await;
    s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    s.kill_adapter();
    let request = lenses("from-an-older-version");
    let id = s
        .journal_in_flight("from-an-older-version", "older", &request.to_string())
        .await;
    s.start_adapter();
    let done = s
        .wait_receipt_status(&id, "printed", Duration::from_secs(20))
        .await;
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    // The total the FN signed is the requested one.
    let (code, fresh) = s.post_receipt(lenses("a-new-sale")).await;
    assert_eq!(code, 200, "{fresh}");
    assert_eq!(done["fiscal"]["total"], fresh["fiscal"]["total"], "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_sale_of_a_newer_version_is_refused_by_name_never_guessed() {
    let mut s = Stack::with_adapter(&[]).await;
    s.kill_adapter();
    let id = s
        .journal_in_flight("from-a-newer-version", "newer", r#"{"v":2,"lines":[]}"#)
        .await;
    s.start_adapter();
    // Proven absent from the FN and unreadable: refused for good, and nothing printed.
    s.wait_receipt_status(&id, "rejected", Duration::from_secs(20))
        .await;
    s.kill_adapter();
    let journal =
        adapter::journal::Journal::open(adapter::journal::JournalConfig::new(s.db_path()))
            .expect("journal opens");
    let row = journal.get_by_id(&id).await.expect("read").expect("row");
    assert_eq!(row.error_code.as_deref(), Some("invalid_journal_body"));
    let why = row.last_error.unwrap_or_default();
    assert!(why.contains("version 2"), "{why}");
    assert!(s.fn_receipts().await.is_empty());
}

/// How many times the emulator ran command `code` between two `/_emu/commands` readings.
fn ran(before: &Value, after: &Value, code: &str) -> u64 {
    let count = |v: &Value| v["by_code"][code].as_u64().unwrap_or(0);
    count(after) - count(before)
}

/// Posts a sale and returns its answer with the emulator's `/_emu/commands` before and after.
async fn sale_between_command_counts(s: &Stack, key: &str) -> (u16, Value, Value, Value) {
    let before = s.emu("GET", "/_emu/commands", None).await;
    let (code, answer) = s.post_receipt(lenses(key)).await;
    let after = s.emu("GET", "/_emu/commands", None).await;
    (code, answer, before, after)
}

/// A register the adapter saw ready a moment ago is not asked its mode before the next sale; when
/// it stopped being ready behind the adapter (its shift passed 24 hours), the first item is refused
/// definitely, and the same sale then reads the status, closes and opens the shift, and prints once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_seen_ready_is_not_asked_again_and_a_shift_past_24_hours_is_caught_at_the_first_item()
 {
    let s = Stack::with_manual_sync().await;
    let (code, first) = s.post_receipt(lenses("ready-1")).await;
    assert_eq!(
        (code, first["fiscal"]["fd_number"].clone()),
        (200, json!(2)),
        "{first}"
    );

    let (code, second, before, after) = sale_between_command_counts(&s, "ready-2").await;
    assert_eq!(
        (code, second["status"].clone()),
        (200, json!("printed")),
        "{second}"
    );
    assert_eq!(second["fiscal"]["fd_number"], 3, "{second}");
    assert_eq!(
        (
            ran(&before, &after, "10"),
            ran(&before, &after, "FF46"),
            ran(&before, &after, "FF45")
        ),
        (0, 1, 1),
        "the second sale went straight to its item: {before} -> {after}"
    );

    // The shift passes 24 hours while the adapter still holds the register as ready.
    s.emu("POST", "/_emu/clock", Some(json!({"offset_s": 25 * 3600})))
        .await;
    let state = s.emu("GET", "/_emu/state", None).await;
    assert_eq!(
        state["mode"], 3,
        "the emulator's shift is past 24 hours: {state}"
    );
    let (code, third, before, after) = sale_between_command_counts(&s, "ready-3").await;
    assert_eq!(
        (code, third["status"].clone()),
        (200, json!("printed")),
        "{third}"
    );
    // FD 4 closes the old shift, FD 5 opens shift 2, FD 6 is the receipt.
    assert_eq!(third["fiscal"]["fd_number"], 6, "{third}");
    assert_eq!(third["fiscal"]["shift_number"], 2, "{third}");
    assert_eq!(
        (
            ran(&before, &after, "FF46"),
            ran(&before, &after, "FF43"),
            ran(&before, &after, "FF0B"),
            ran(&before, &after, "FF45")
        ),
        (2, 1, 1, 1),
        "the first item was refused, the shift closed and opened, the item sent again: {before} -> {after}"
    );
    assert!(ran(&before, &after, "10") >= 1, "{before} -> {after}");
    let receipts = s.fn_receipts().await;
    let ids: Vec<_> = receipts.iter().map(|r| r["tag_1192"].clone()).collect();
    assert_eq!(
        ids,
        vec![
            first["receipt_id"].clone(),
            second["receipt_id"].clone(),
            third["receipt_id"].clone()
        ],
        "each sale printed once"
    );

    // A refusal the status could not have foreseen (no paper) is the sale's answer, with no
    // second try.
    s.emu("POST", "/_emu/fault", Some(json!({"kind": "paper_out"})))
        .await;
    let (code, e, before, after) = sale_between_command_counts(&s, "ready-4").await;
    assert_eq!(
        (code, e["code"].clone(), e["definite"].clone()),
        (409, json!("kkt_refused"), json!(true)),
        "{e}"
    );
    assert_eq!(ran(&before, &after, "FF46"), 1, "{before} -> {after}");
    assert_eq!(s.fn_receipts().await.len(), 3);
}

/// The sale's in-flight commit runs while its items are on the line, and its close waits for it.
/// When that commit fails (here a trigger makes SQLite refuse exactly that change, as a failing
/// disk would), the close is never sent: the half-built receipt is cancelled, the POS gets a
/// definite `journal_unavailable`, nothing is fiscalized, and the register sells on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_whose_in_flight_state_cannot_be_journaled_is_cancelled_before_its_close() {
    let s = Stack::with_manual_sync().await;
    let (code, first) = s.post_receipt(lenses("journal-ok-1")).await;
    assert_eq!(code, 200, "{first}");

    let conn = rusqlite::Connection::open(s.db_path()).expect("journal opens");
    conn.execute_batch(
        "CREATE TRIGGER refuse_in_flight BEFORE UPDATE OF kkt_state ON receipts \
         WHEN NEW.kkt_state = 'kkt_in_flight' \
         BEGIN SELECT RAISE(ABORT, 'injected: the in-flight state cannot be written'); END;",
    )
    .expect("trigger");
    let (code, refused, before, after) = sale_between_command_counts(&s, "journal-bad").await;
    assert_eq!(code, 503, "{refused}");
    assert_eq!(refused["code"], "journal_unavailable", "{refused}");
    assert_eq!(refused["definite"], true, "{refused}");
    assert_eq!(
        (
            ran(&before, &after, "FF46"),
            ran(&before, &after, "FF45"),
            ran(&before, &after, "88")
        ),
        (1, 0, 1),
        "the item went while the commit ran; the close never did; the receipt was cancelled"
    );
    assert_eq!(
        s.fn_receipts().await.len(),
        1,
        "only the first sale printed"
    );
    let state: String = conn
        .query_row(
            "SELECT kkt_state FROM receipts WHERE idempotency_key = 'journal-bad'",
            [],
            |r| r.get(0),
        )
        .expect("the refused sale's row");
    assert_eq!(state, "rejected");
    // The same key keeps its definite answer.
    let (code, again) = s.post_receipt(lenses("journal-bad")).await;
    assert_eq!(
        (code, again["code"].clone()),
        (503, json!("journal_unavailable"))
    );

    conn.execute_batch("DROP TRIGGER refuse_in_flight")
        .expect("drop trigger");
    let (code, next) = s.post_receipt(lenses("journal-ok-2")).await;
    assert_eq!(
        (code, next["status"].clone()),
        (200, json!("printed")),
        "{next}"
    );
    assert_eq!(s.fn_receipts().await.len(), 2);
}
