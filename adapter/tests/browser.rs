//! The status page `GET /` in a real browser (issue #19): Debian's Chromium, headless, driven over
//! WebDriver (Debian's `chromedriver` on loopback) by the fantoccini client. The page is read as a
//! person reads it: the backlog number and the breaker state off the page, a document put into the
//! DLQ by an OFD refusal, its retry button clicked, and the document seen leaving the DLQ. The
//! adapter runs with tokens, as in a shop, so the browser signs in with HTTP Basic.
//!
//! Screenshots of each stage are kept in `target/tmp/browser/` (the run folder of cargo's
//! integration tests).
//!
//! The test setup (`ci/test.sh`) installs `chromium` and `chromium-driver`; a missing browser fails
//! this test, it never skips it.

#[path = "it/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_browser::{Browser, Locator};

use harness::{Stack, lenses};

const SUPPORT: &str = "support";
const SECRET: &str = "page-test-secret-3f9c2a";
/// Every wait of this test is bounded.
const WAIT: Duration = Duration::from_secs(30);

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser")
}

async fn health(s: &Stack) -> Value {
    s.call("GET", "/v1/health", None, &[]).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_reads_the_backlog_and_breaker_and_retries_a_dlq_document_from_the_page() {
    let mut s = Stack::with_adapter(&[
        "--auth-token",
        &format!("{SUPPORT}:admin:{SECRET}"),
        // The breaker opens after two failed passes and stays open while the page is read.
        "--breaker-failures",
        "2",
        "--breaker-open-ms",
        "600000",
    ])
    .await;
    s.bearer = Some(format!("Bearer {SECRET}"));
    // The OFD is unreachable: three sales wait in the backlog and the breaker opens.
    s.mock("POST", "/_mock/mode", Some(json!({"mode": "offline"})))
        .await;
    for n in 0..3 {
        let (code, v) = s.post_receipt(lenses(&format!("page-{n}"))).await;
        assert_eq!(code, 200, "{v}");
    }
    let deadline = Instant::now() + WAIT;
    while health(&s).await["circuit_breaker"]["state"] != "OPEN" {
        assert!(
            Instant::now() < deadline,
            "breaker never opened: {}",
            health(&s).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A phone's viewport, as a shop's support person sees the page on the move.
    let b = Browser::start(412, 915)
        .await
        .expect("headless Chromium starts");
    let c = &b.client;
    let addr = s.adapter_url.trim_start_matches("http://").to_owned();
    // Signed in as the browser's Basic prompt would: the token's name and its secret.
    c.goto(&format!("http://{SUPPORT}:{SECRET}@{addr}/"))
        .await
        .expect("page loads");
    let page = format!("http://{addr}/");
    let backlog = b.text_of("#backlog").await;
    let breaker = b.text_of("#breaker").await;
    let status = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await.1;
    // Three sales and the shift-open report the first sale opened.
    assert_eq!(status["current_queued"], 4, "{status}");
    assert_eq!(backlog, "4", "backlog on the page");
    assert_eq!(breaker, "open", "breaker on the page");
    assert!(
        b.text_of("#breaker + .k").await.contains("next probe"),
        "the open breaker shows its next probe"
    );
    // The register's row says what the emulator's FN holds.
    let registers = b.text_of("#registers").await;
    let emu = s.emu("GET", "/_emu/state", None).await;
    let fn_serial = emu["fn_serial"].as_str().expect("the FN's serial");
    assert!(registers.contains("open #1"), "the shift: {registers}");
    assert!(
        registers.contains(fn_serial),
        "FN {fn_serial} in {registers}"
    );
    assert!(
        registers.contains(&format!("{} from FD 1", emu["unsent"])),
        "the FN's unsent documents ({}) in {registers}",
        emu["unsent"]
    );
    let shot = b.screenshot(&shots(), "status-page-offline.png").await;

    // The OFD refuses the documents (code 14): a forced pass puts the queue's head (the shift-open
    // report) into the DLQ, and the three receipts wait behind it in the FN's order.
    s.mock(
        "POST",
        "/_mock/mode",
        Some(json!({"mode": "reject", "code": 14})),
    )
    .await;
    let (code, v) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!(code, 200, "{v}");
    s.wait_buffer("dlq_size", 1, WAIT).await;
    s.mock("POST", "/_mock/mode", Some(json!({"mode": "online"})))
        .await;

    b.reload_until(&page, WAIT, "one DLQ row", async |b: &Browser| {
        b.count("#dlq tr[data-receipt]").await == 1
    })
    .await;
    assert_eq!(b.text_of("#dlq-size").await, "1");
    let stuck = b.text_of("#stuck").await;
    assert!(
        stuck.contains("blocks 3 behind it"),
        "the stuck head: {stuck}"
    );
    let row = c
        .find(Locator::Css("#dlq tr[data-receipt]"))
        .await
        .expect("a DLQ row");
    let receipt_id = row
        .attr("data-receipt")
        .await
        .expect("attribute")
        .expect("the row names its receipt");
    assert!(
        row.text().await.unwrap().contains("OFD code 14"),
        "the refusal is shown"
    );
    b.screenshot(&shots(), "status-page-dlq.png").await;

    // Retry, clicked as a person clicks it.
    row.find(Locator::Css("button"))
        .await
        .expect("the row's retry button")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + WAIT;
    loop {
        let url = c.current_url().await.expect("url");
        if url.query().is_some_and(|q| q.contains("retried=")) {
            break;
        }
        if Instant::now() >= deadline {
            let source = c.source().await.unwrap_or_default();
            panic!("the retry never came back to the page; at {url}: {source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = b.text_of("#notice").await;
    assert!(
        notice.contains(&receipt_id) && notice.contains("sent back"),
        "{notice}"
    );
    let gone = format!("#dlq tr[data-receipt='{receipt_id}']");
    let phase2_of = format!("#recent tr[data-receipt='{receipt_id}'] td.phase2");
    // It left the DLQ for the OFD queue; the breaker, still open from the outage, holds the queue
    // until its next probe, which the page shows.
    b.reload_until(
        &page,
        WAIT,
        "the retried document back in the queue",
        async |b: &Browser| b.count(&gone).await == 0 && b.count(&phase2_of).await == 1,
    )
    .await;
    assert_eq!(b.text_of(&phase2_of).await, "pending");
    assert_eq!(b.text_of("#dlq-size").await, "0");
    b.screenshot(&shots(), "status-page-retried.png").await;
    // Support sends the queue now instead of waiting for the probe: the document and the receipts
    // behind it reach the OFD.
    let (code, v) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!(code, 200, "{v}");
    b.reload_until(&page, WAIT, "an empty backlog", async |b: &Browser| {
        b.text_of("#backlog").await == "0"
    })
    .await;
    assert_eq!(b.text_of("#dlq-size").await, "0");
    assert_eq!(b.text_of(&phase2_of).await, "delivered");
    assert_eq!(b.count("#stuck").await, 0, "no stuck head left");
    b.screenshot(&shots(), "status-page-delivered.png").await;

    // The adapter agrees with the page.
    let r = s
        .call("GET", &format!("/v1/kkt/receipt/{receipt_id}"), None, &[])
        .await
        .1;
    assert_eq!(r["ofd_status"], "synced", "{r}");
    b.client.clone().close().await.expect("session closes");
    assert!(shot.exists());
    s.stop_adapter();
}
