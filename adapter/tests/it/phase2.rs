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
    let s =
        Stack::with_adapter(&["--sync-interval-ms", "600000", "--probe-when-idle", "false"]).await;
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
async fn a_rejected_document_goes_to_the_dlq_and_a_retry_delivers_it() {
    let s =
        Stack::with_adapter(&["--sync-interval-ms", "600000", "--probe-when-idle", "false"]).await;
    s.mock(
        "POST",
        "/_mock/mode",
        Some(json!({"mode": "reject", "code": 14})),
    )
    .await;
    sell(&s, "rej", 1).await;
    // Both the shift-open report and the sale are refused by the OFD: one attempt each, no loop.
    let (_, r) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!(
        (r["failed"].clone(), r["synced"].clone()),
        (json!(2), json!(0)),
        "{r}"
    );
    let stats = s.mock("GET", "/_mock/stats", None).await;
    assert_eq!(stats["rejected"], 2, "{stats}");
    let (_, dlq) = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await;
    assert_eq!(dlq["dlq_size"], 2, "{dlq}");
    assert!(
        dlq["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["response_code"] == 14),
        "{dlq}"
    );
    let (_, h) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(h["status"], "degraded", "{h}");
    s.mock("POST", "/_mock/mode", Some(json!({"mode": "online"})))
        .await;
    for d in dlq["documents"].as_array().unwrap() {
        let id = d["receipt_id"].as_str().unwrap();
        let (code, retried) = s
            .call("POST", &format!("/v1/kkt/buffer/dlq/{id}/retry"), None, &[])
            .await;
        assert_eq!(code, 200, "{retried}");
    }
    s.call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    let st = wait_pending(&s, 0, Duration::from_secs(5)).await;
    assert_eq!(st["synced"], 2, "{st}");
    let stats = s.mock("GET", "/_mock/stats", None).await;
    assert_eq!(stats["unique"], 2, "{stats}");
    let (_, dlq) = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await;
    assert_eq!(dlq["dlq_size"], 0, "{dlq}");
    let (code, e) = s
        .call("POST", "/v1/kkt/buffer/dlq/nope/retry", None, &[])
        .await;
    assert_eq!((code, e["code"].clone()), (404, json!("not_found")), "{e}");
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
