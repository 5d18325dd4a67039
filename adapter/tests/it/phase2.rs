//! Phase 2 through the adapter binary: manual sync, the DLQ endpoints, and the crash loop that
//! SIGKILLs the adapter while it drains a backlog into the mock OFD.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Lcg, Stack, bread};

/// Posts `n` sales with keys `{prefix}-{i}` and asserts each printed.
async fn sell(s: &Stack, prefix: &str, n: usize) {
    for i in 0..n {
        let (code, r) = s.post_receipt(bread(&format!("{prefix}-{i}"))).await;
        assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
    }
}

async fn wait_pending(s: &Stack, pending: u64, timeout: Duration) -> Value {
    s.wait_buffer("pending", pending, timeout).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_sales_succeed_then_a_manual_sync_delivers_each_once() {
    // A long interval: only the manual sync delivers.
    let s = Stack::with_manual_sync().await;
    s.mock("POST", "/set_mode", Some(json!({"mode": "offline"})))
        .await;
    sell(&s, "off", 3).await;
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(st["pending"], 4, "shift report + 3 sales: {st}");
    let (code, r) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["synced"], 0, "{r}");
    s.mock("POST", "/set_mode", Some(json!({"mode": "online"})))
        .await;
    let (code, r) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!((code, r["synced"].clone()), (200, json!(4)), "{r}");
    let st = wait_pending(&s, 0, Duration::from_secs(5)).await;
    assert_eq!(st["synced"], 4);
    let stats = s.mock("GET", "/_mock/stats", None).await;
    assert_eq!(
        (stats["unique"].clone(), stats["duplicates"].clone()),
        (json!(4), json!(0)),
        "{stats}"
    );
    let fn_state = s.emu("GET", "/_emu/state", None).await;
    assert_eq!(fn_state["unsent"], 0, "{fn_state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_shows_in_health_and_buffer_status_until_a_retry_delivers_everything() {
    let s = Stack::with_manual_sync_and_a_rejecting_ofd().await;
    sell(&s, "rej", 2).await;
    // The shift-open report at the head of the FN's queue is refused: one attempt, then nothing
    // behind it moves.
    s.force_sync_past_a_refused_head(3).await;
    let (_, dlq) = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await;
    assert_eq!(dlq["dlq_size"], 1, "{dlq}");
    assert_eq!(dlq["documents"][0]["response_code"], 14, "{dlq}");
    let head = dlq["documents"][0]["receipt_id"].clone();

    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    let stuck = &st["delivery_stuck"];
    assert_eq!(
        (
            stuck["fd_number"].clone(),
            stuck["waiting_behind"].clone(),
            stuck["response_code"].clone(),
            stuck["receipt_id"].clone(),
            stuck["retry_count"].clone()
        ),
        (json!(1), json!(2), json!(14), head.clone(), json!(1)),
        "{st}"
    );
    assert!(stuck["fn_number"].is_string(), "{st}");
    assert!(
        stuck["since_unix_ms"].as_i64().is_some_and(|t| t > 0),
        "{st}"
    );
    assert!(
        stuck["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("14")),
        "{st}"
    );
    assert_eq!(
        (
            st["pending"].clone(),
            st["dlq_size"].clone(),
            st["network_status"].clone()
        ),
        (json!(2), json!(1), json!("degraded")),
        "{st}"
    );
    assert!(st["oldest_undelivered_unix_ms"].as_i64().is_some(), "{st}");
    let (code, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!((code, &h["status"]), (503, &json!("degraded")), "{h}");
    assert_eq!(h["delivery"]["stuck"], *stuck, "{h}");
    assert_eq!(h["delivery"]["age_alarm"], false, "{h}");

    s.mock("POST", "/_mock/mode", Some(json!({"mode": "online"})))
        .await;
    let id = head.as_str().unwrap();
    let (code, retried) = s
        .call("POST", &format!("/v1/kkt/buffer/dlq/{id}/retry"), None, &[])
        .await;
    assert_eq!(code, 200, "{retried}");
    assert_eq!(retried["sync"]["synced"], 3, "{retried}");
    let st = wait_pending(&s, 0, Duration::from_secs(5)).await;
    assert_eq!(
        (
            st["synced"].clone(),
            st["dlq_size"].clone(),
            st["delivery_stuck"].clone()
        ),
        (json!(3), json!(0), Value::Null),
        "{st}"
    );
    assert_eq!(st["oldest_undelivered_unix_ms"], Value::Null, "{st}");
    let (code, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!((code, &h["status"]), (200, &json!("ok")), "{h}");
    let stats = s.mock("GET", "/_mock/stats", None).await;
    assert_eq!(stats["unique"], 3, "{stats}");
    let (code, e) = s
        .call("POST", "/v1/kkt/buffer/dlq/nope/retry", None, &[])
        .await;
    assert_eq!((code, e["code"].clone()), (404, json!("not_found")), "{e}");
}

/// The DLQ list of a stack whose only DLQ document is the refused head.
async fn dlq_head(s: &Stack) -> Value {
    let (code, dlq) = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await;
    assert_eq!((code, dlq["dlq_size"].clone()), (200, json!(1)), "{dlq}");
    dlq["documents"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dlq_keeps_every_rejection_and_a_bulk_retry_answers_per_id() {
    let s = Stack::with_manual_sync_and_a_rejecting_ofd().await;
    sell(&s, "bulk", 2).await;
    s.call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    let doc = dlq_head(&s).await;
    let id = doc["receipt_id"].as_str().expect("id").to_string();
    // Refused again after a retry of it by the bulk route: both refusals are listed.
    s.mock(
        "POST",
        "/_mock/mode",
        Some(json!({"mode": "reject", "code": 15})),
    )
    .await;
    let (code, r) = s
        .call(
            "POST",
            "/v1/kkt/buffer/dlq/retry",
            Some(json!({"receipt_ids": [id, "nope"]})),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        r["results"],
        json!([
            {"receipt_id": id, "retried": true, "error": null, "ofd_status": "dlq"},
            {"receipt_id": "nope", "retried": false, "error": "not_found", "ofd_status": null},
        ]),
        "{r}"
    );
    assert_eq!(
        (r["failed"].clone(), r["dlq_size"].clone()),
        (json!(1), json!(1)),
        "{r}"
    );
    let doc = dlq_head(&s).await;
    let codes: Vec<_> = doc["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|x| (x["response_code"].clone(), x["error_code"].clone()))
        .collect();
    assert_eq!(codes.len(), 2, "{doc}");
    assert_eq!(
        (&codes[0].0, &codes[1].0),
        (&json!(14), &json!(15)),
        "{doc}"
    );
    assert_eq!(
        (doc["response_code"].clone(), doc["retry_count"].clone()),
        (json!(15), json!(2)),
        "{doc}"
    );
    let first = doc["first_attempt_unix_ms"].as_i64().expect("first");
    let last = doc["last_attempt_unix_ms"].as_i64().expect("last");
    assert!(first > 0 && first <= last, "{doc}");
    assert_eq!(doc["rejections"][1]["at_unix_ms"], last, "{doc}");

    // Bad bodies are definite 400s and retry nothing.
    let too_many: Vec<String> = (0..101).map(|i| format!("id-{i}")).collect();
    for body in [
        json!({}),
        json!({"all": true, "receipt_ids": [id]}),
        json!({"receipt_ids": too_many}),
        json!({"all": "yes"}),
    ] {
        let (code, e) = s
            .call("POST", "/v1/kkt/buffer/dlq/retry", Some(body.clone()), &[])
            .await;
        assert_eq!(
            (code, e["definite"].clone()),
            (400, json!(true)),
            "{body} -> {e}"
        );
    }
    assert_eq!(dlq_head(&s).await["retry_count"], 2);

    s.mock("POST", "/_mock/mode", Some(json!({"mode": "online"})))
        .await;
    let (code, r) = s
        .call(
            "POST",
            "/v1/kkt/buffer/dlq/retry",
            Some(json!({"all": true})),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (
            r["results"][0]["retried"].clone(),
            r["results"][0]["ofd_status"].clone(),
            r["synced"].clone(),
            r["dlq_size"].clone()
        ),
        (json!(true), json!("synced"), json!(3), json!(0)),
        "{r}"
    );
    let st = wait_pending(&s, 0, Duration::from_secs(5)).await;
    assert_eq!(st["synced"], 3, "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_backlog_raises_the_age_alarm_in_health() {
    // An alarm after 1 ms: any undelivered document is past it.
    let s = Stack::with_adapter(&[
        "--sync-interval-ms",
        "600000",
        "--probe-when-idle",
        "false",
        "--backlog-age-alarm-ms",
        "1",
    ])
    .await;
    s.mock("POST", "/set_mode", Some(json!({"mode": "offline"})))
        .await;
    sell(&s, "old", 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (code, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(
        (h["status"].clone(), h["delivery"]["age_alarm"].clone()),
        (json!("degraded"), json!(true)),
        "{h}"
    );
    assert_eq!(h["delivery"]["age_alarm_after_s"], 0, "{h}");
    s.mock("POST", "/set_mode", Some(json!({"mode": "online"})))
        .await;
    s.call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    wait_pending(&s, 0, Duration::from_secs(5)).await;
    let (code, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(
        (h["status"].clone(), h["delivery"]["age_alarm"].clone()),
        (json!("ok"), json!(false)),
        "{h}"
    );
}

/// Backlog size for the drain crash loop; `ADAPTER_DRAIN_DOCS` changes it.
const DRAIN_DOCS_DEFAULT: usize = 1_000;
/// Kill cycles while draining; `ADAPTER_DRAIN_CYCLES` changes it.
const DRAIN_CYCLES_DEFAULT: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_draining_a_backlog_delivers_every_document_once() {
    let docs: usize = std::env::var("ADAPTER_DRAIN_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DRAIN_DOCS_DEFAULT);
    let cycles: u64 = std::env::var("ADAPTER_DRAIN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DRAIN_CYCLES_DEFAULT);
    let mut s =
        Stack::with_adapter(&["--probe-when-idle", "false", "--sync-interval-ms", "50"]).await;
    s.mock("POST", "/set_mode", Some(json!({"mode": "offline"})))
        .await;
    let started = std::time::Instant::now();
    // Two items per receipt keeps the backlog realistic; one KKT serializes the sales anyway, so
    // they are posted one after the other. With the shift-open report that makes `docs` documents.
    sell(&s, "drain", docs - 1).await;
    let fill_s = started.elapsed().as_secs_f64();
    let st = wait_pending(&s, docs as u64, Duration::from_secs(5)).await;
    assert_eq!(st["pending"], docs as u64);
    s.mock("POST", "/set_mode", Some(json!({"mode": "online"})))
        .await;
    let drain_started = std::time::Instant::now();
    let mut rng = Lcg(0xd4a1);
    for _ in 0..cycles {
        tokio::time::sleep(Duration::from_millis(50 + rng.next(250))).await;
        s.kill_adapter();
        s.start_adapter();
    }
    let st = wait_pending(&s, 0, Duration::from_secs(240)).await;
    let drain_s = drain_started.elapsed().as_secs_f64();
    let stats = s.mock("GET", "/_mock/stats", None).await;
    let mock_docs = s.mock("GET", "/_mock/documents", None).await;
    let mut fds: BTreeMap<u64, u64> = BTreeMap::new();
    for d in mock_docs["documents"].as_array().unwrap() {
        *fds.entry(d["fd"].as_u64().unwrap()).or_default() += 1;
    }
    let fn_state = s.emu("GET", "/_emu/state", None).await;
    println!(
        "drain: documents={docs}, cycles={cycles}, fill_s={fill_s:.1}, drain_s={drain_s:.1}, unique_at_ofd={}, resent_duplicates={}, conflicts={}, fn_unsent={}",
        stats["unique"], stats["duplicates"], stats["conflicts"], fn_state["unsent"]
    );
    assert_eq!(st["synced"], docs as u64, "{st}");
    assert_eq!(stats["unique"], docs as u64, "lost at the OFD: {stats}");
    assert_eq!(stats["conflicts"], 0, "{stats}");
    assert!(
        fds.values().all(|n| *n == 1),
        "a document stored twice at the OFD"
    );
    assert_eq!(
        (1..=docs as u64).collect::<Vec<_>>(),
        fds.keys().copied().collect::<Vec<_>>()
    );
    assert_eq!(fn_state["unsent"], 0, "{fn_state}");
}
