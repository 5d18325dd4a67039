//! The crash loop (sled's pattern, with the adapter as the child): start the adapter, post sales from
//! several tills, SIGKILL it at a seeded random moment, restart, repeat; then check against the
//! emulator's FN journal that no acknowledged sale was lost and none was fiscalized twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Lcg, Stack, bread};

/// Cycles in CI; `ADAPTER_CRASH_CYCLES` raises it for a longer local or nightly run.
const CYCLES_DEFAULT: u64 = 50;
const TILLS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_prints_nothing_twice() {
    let cycles: u64 = std::env::var("ADAPTER_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES_DEFAULT);
    let seed: u64 = std::env::var("ADAPTER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    println!("crash loop seed={seed} cycles={cycles}");
    let mut rng = Lcg(seed);
    let mut s = Stack::new().await;
    // Acknowledged "printed": key -> FD. Every key ever sent, to check afterwards.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent: BTreeSet<String> = BTreeSet::new();
    for cycle in 0..cycles {
        s.start_adapter();
        let kill_after = Duration::from_millis(rng.next(250));
        let mut posts = Vec::new();
        for till in 0..TILLS {
            // Sometimes a till retries the previous cycle's key, as a POS does after a timeout.
            let key = if cycle > 0 && rng.next(4) == 0 {
                format!("c{}-t{till}", cycle - 1)
            } else {
                format!("c{cycle}-t{till}")
            };
            sent.insert(key.clone());
            let url = format!("{}/v1/kkt/receipt", s.adapter_url);
            let http = s.http.clone();
            posts.push(tokio::spawn(async move {
                let resp = http.post(url).json(&bread(&key)).send().await;
                let answer = match resp {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    ),
                    Err(_) => (0, Value::Null),
                };
                (key, answer)
            }));
        }
        tokio::time::sleep(kill_after).await;
        s.kill_adapter();
        for p in posts {
            let (key, (code, body)) = p.await.unwrap();
            if code == 200 && body["status"] == "printed" {
                let fd = body["fiscal"]["fd_number"].as_u64().unwrap();
                if let Some(prev) = acked.insert(key.clone(), fd) {
                    assert_eq!(prev, fd, "key {key} acknowledged with two FDs");
                }
            }
        }
    }
    // Final start: reconciliation resolves whatever the last kill left in flight.
    s.start_adapter();
    s.wait_buffer("in_flight", 0, Duration::from_secs(30)).await;
    let fn_receipts = s.fn_receipts().await;
    let mut by_id: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in &fn_receipts {
        by_id
            .entry(d["tag_1192"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(d["fd"].as_u64().unwrap());
    }
    let twice: Vec<_> = by_id.iter().filter(|(_, fds)| fds.len() > 1).collect();
    let mut lost = Vec::new();
    let mut printed = 0;
    for key in &sent {
        let (code, r) = s
            .call(
                "GET",
                &format!("/v1/kkt/receipt?idempotency_key={key}"),
                None,
                &[],
            )
            .await;
        if let Some(fd) = acked.get(key) {
            // Acknowledged printed: the journal and the FN must both hold exactly that document.
            let id = r["receipt_id"].as_str().unwrap_or("");
            if code != 200
                || r["fiscal"]["fd_number"].as_u64() != Some(*fd)
                || by_id.get(id) != Some(&vec![*fd])
            {
                lost.push(key.clone());
            }
        }
        if code == 200 && r["status"] == "printed" {
            printed += 1;
            let id = r["receipt_id"].as_str().unwrap();
            assert_eq!(
                by_id.get(id).map(Vec::len),
                Some(1),
                "journal says printed but the FN disagrees for {key}"
            );
        }
    }
    // Every receipt in the FN belongs to a journaled sale.
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    println!(
        "cycles={cycles}, keys_sent={}, acked_printed={}, printed_total={printed}, fn_receipts={}, lost={}, fiscalized_twice={}",
        sent.len(),
        acked.len(),
        fn_receipts.len(),
        lost.len(),
        twice.len()
    );
    assert!(lost.is_empty(), "acknowledged sales lost: {lost:?}");
    assert!(twice.is_empty(), "fiscalized twice: {twice:?}");
    assert_eq!(
        fn_receipts.len(),
        printed,
        "FN receipts without a printed journal row; status {st}"
    );
    assert!(
        acked.len() as u64 >= cycles / 4,
        "too few sales acknowledged to mean anything: {}",
        acked.len()
    );
}
