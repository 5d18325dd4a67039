//! Several registers behind one adapter: each sells on its own FN, in parallel; one register's
//! trouble refuses only its own sales; a sale names its register; a restart mid-burst loses and
//! doubles nothing on any FN; and every document reaches the OFD once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Stack, lenses};

fn sale_on(till: usize, key: &str) -> Value {
    let mut body = lenses(key);
    body["kkt_id"] = json!(format!("till-{till}"));
    body
}

/// The receipts (type 3) register `till-N`'s FN holds, by their 1192 receipt id.
async fn fn_receipt_ids(s: &Stack, till: usize) -> Vec<String> {
    let j = s.emu_n(till, "GET", "/_emu/journal", None).await;
    j["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .filter(|d| d["type"] == "receipt" || d["type"] == 3)
        .map(|d| d["tag_1192"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn open_shifts(s: &Stack, registers: usize) {
    for till in 1..=registers {
        let (code, r) = s
            .call(
                "POST",
                &format!("/v1/kkt/devices/till-{till}/shift/open"),
                None,
                &[],
            )
            .await;
        assert_eq!(code, 200, "till-{till}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_sell_in_parallel_each_on_its_own_fn_and_each_document_reaches_the_ofd_once() {
    const REGISTERS: usize = 3;
    const SALES: usize = 6;
    let s = Stack::with_registers(REGISTERS, &[]).await;
    let (code, devices) = s.call("GET", "/v1/kkt/devices", None, &[]).await;
    assert_eq!(code, 200, "{devices}");
    let ids: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kkt_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["till-1", "till-2", "till-3"]);
    open_shifts(&s, REGISTERS).await;
    // Every register sells at once.
    let mut fns = Vec::new();
    let mut printed = vec![Vec::new(); REGISTERS + 1];
    let posts = (1..=REGISTERS).flat_map(|till| (0..SALES).map(move |n| (till, n)));
    let answers = futures_all(posts.map(|(till, n)| {
        let body = sale_on(till, &format!("t{till}-{n}"));
        let s = &s;
        async move { (till, s.post_receipt(body).await) }
    }))
    .await;
    for (till, (code, r)) in answers {
        assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
        assert_eq!(r["kkt_id"], format!("till-{till}"), "{r}");
        fns.push((till, r["fiscal"]["fn_number"].as_str().unwrap().to_owned()));
        printed[till].push(r["receipt_id"].as_str().unwrap().to_owned());
    }
    // Each register's receipts are on its own FN, exactly those, once each.
    for (till, mine) in printed.iter_mut().enumerate().skip(1) {
        let mut on_fn = fn_receipt_ids(&s, till).await;
        on_fn.sort();
        mine.sort();
        assert_eq!(&on_fn, mine, "till-{till}");
        let fn_numbers: std::collections::BTreeSet<&String> = fns
            .iter()
            .filter(|(t, _)| *t == till)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(fn_numbers.len(), 1, "till-{till}: {fn_numbers:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = fns.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), REGISTERS, "one FN per register");
    // Phase 2 relays every FN: shift reports and receipts, each stored once at the OFD.
    s.wait_buffer("pending", 0, Duration::from_secs(30)).await;
    let stats = s.mock("GET", "/_mock/stats", None).await;
    let documents = (REGISTERS * (SALES + 1)) as u64;
    // The buffer's status breaks the totals down by register.
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    let per: Vec<(Value, Value, Value)> = st["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["kkt_id"].clone(),
                d["total_receipts"].clone(),
                d["synced"].clone(),
            )
        })
        .collect();
    let each = json!(SALES + 1);
    assert_eq!(
        per,
        (1..=REGISTERS)
            .map(|t| (json!(format!("till-{t}")), each.clone(), each.clone()))
            .collect::<Vec<_>>(),
        "{st}"
    );
    assert_eq!(st["total_receipts"], json!(documents), "{st}");
    assert_eq!(
        (stats["unique"].as_u64(), stats["duplicates"].as_u64()),
        (Some(documents), Some(0)),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_in_trouble_refuses_only_its_own_sales_and_blocks_no_other() {
    let s = Stack::with_registers(3, &[]).await;
    open_shifts(&s, 3).await;
    // till-3 is out of paper: its sales are refused definitely, the others print.
    s.emu_n(3, "POST", "/_emu/fault", Some(json!({"kind": "paper_out"})))
        .await;
    let (code, r) = s.post_receipt(sale_on(3, "no-paper")).await;
    assert_eq!(
        (code, r["code"].clone()),
        (409, json!("kkt_refused")),
        "{r}"
    );
    assert_eq!(r["definite"], true);
    for till in [1, 2] {
        let (code, r) = s
            .post_receipt(sale_on(till, &format!("paper-{till}")))
            .await;
        assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
    }
    // till-2 answers every command slowly: while one of its sales is at the device, till-1's
    // sales go through. Sharing anything with till-2's sale, they would wait for it to end.
    s.emu_n(
        2,
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "slow", "ms": 1500, "probability": 1.0, "seed": 2})),
    )
    .await;
    let before = s.emu_n(2, "GET", "/_emu/commands", None).await["total"]
        .as_u64()
        .unwrap_or(0);
    let slow = {
        let (http, url, body) = (
            s.http.clone(),
            format!("{}/v1/kkt/receipt", s.adapter_url),
            sale_on(2, "slow-1"),
        );
        tokio::spawn(async move {
            let resp = http.post(url).json(&body).send().await.expect("answer");
            resp.status().as_u16()
        })
    };
    // Wait (bounded) until the slow sale holds till-2.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = s.emu_n(2, "GET", "/_emu/commands", None).await["total"]
            .as_u64()
            .unwrap_or(0);
        if now > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "till-2 saw no command"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..5 {
        let (code, r) = s
            .post_receipt(sale_on(1, &format!("beside-slow-{n}")))
            .await;
        assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
    }
    assert!(
        !slow.is_finished(),
        "till-2's slow sale ended before till-1's five: the registers waited for each other"
    );
    s.emu_n(2, "POST", "/_emu/clear", None).await;
    let code = slow.await.expect("slow sale task");
    assert_eq!(code, 200, "the slow sale still prints");
    assert_eq!(fn_receipt_ids(&s, 3).await.len(), 0);
    assert_eq!(fn_receipt_ids(&s, 2).await.len(), 2);
    assert_eq!(fn_receipt_ids(&s, 1).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_names_its_register_when_there_are_several_and_nothing_is_journaled_otherwise() {
    let s = Stack::with_registers(2, &[]).await;
    let (code, r) = s.post_receipt(lenses("nameless")).await;
    assert_eq!(
        (code, r["code"].clone()),
        (400, json!("kkt_id_required")),
        "{r}"
    );
    assert_eq!(r["definite"], true);
    let (code, r) = s.post_receipt(sale_on(9, "nowhere")).await;
    assert_eq!(
        (code, r["code"].clone()),
        (404, json!("kkt_not_found")),
        "{r}"
    );
    let (code, r) = s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    assert_eq!(
        (code, r["code"].clone()),
        (400, json!("kkt_id_required")),
        "{r}"
    );
    let (code, r) = s
        .call("GET", "/v1/kkt/devices/till-9/status", None, &[])
        .await;
    assert_eq!(
        (code, r["code"].clone()),
        (404, json!("kkt_not_found")),
        "{r}"
    );
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(st["total_receipts"], 0, "{st}");
    // Named, it sells; the device routes answer for each register.
    let (code, r) = s.post_receipt(sale_on(2, "named")).await;
    assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
    let (code, st2) = s
        .call("GET", "/v1/kkt/devices/till-2/status", None, &[])
        .await;
    assert_eq!(code, 200, "{st2}");
    assert_eq!(st2["fn_number"], r["fiscal"]["fn_number"]);
    let (_, st1) = s
        .call("GET", "/v1/kkt/devices/till-1/status", None, &[])
        .await;
    assert_ne!(st1["fn_number"], st2["fn_number"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_burst_loses_and_doubles_nothing_on_any_register() {
    const REGISTERS: usize = 3;
    let mut s = Stack::with_registers(REGISTERS, &[]).await;
    open_shifts(&s, REGISTERS).await;
    // till-2's close is committed and its answer lost in a power cut: that sale is in flight
    // when the adapter is killed.
    s.emu_n(
        2,
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "power_cut_after_commit", "command": "FF45"})),
    )
    .await;
    let mut answered = Vec::new();
    let mut buffered = 0;
    for n in 0..4 {
        for till in 1..=REGISTERS {
            let (code, r) = s
                .post_receipt(sale_on(till, &format!("burst-{till}-{n}")))
                .await;
            if code == 200 {
                buffered += usize::from(r["status"] == "buffered");
                answered.push((till, r["receipt_id"].as_str().unwrap().to_owned()));
            }
        }
    }
    // till-2's sale whose answer the power cut took is in flight; the other two kept selling.
    assert_eq!(buffered, 1, "{answered:?}");
    assert!(answered.len() >= 9, "{answered:?}");
    s.kill_adapter();
    s.emu_n(2, "POST", "/_emu/power_on", None).await;
    s.start_adapter();
    // Every answered sale ends printed, once, on its own register's FN.
    for (till, id) in &answered {
        let done = s
            .wait_receipt_status(id, "printed", Duration::from_secs(30))
            .await;
        assert_eq!(done["kkt_id"], format!("till-{till}"));
        let on_fn = fn_receipt_ids(&s, *till).await;
        assert_eq!(
            on_fn.iter().filter(|r| *r == id).count(),
            1,
            "{id} on till-{till}"
        );
    }
    for till in 1..=REGISTERS {
        let on_fn = fn_receipt_ids(&s, till).await;
        let unique: std::collections::BTreeSet<&String> = on_fn.iter().collect();
        assert_eq!(
            unique.len(),
            on_fn.len(),
            "till-{till} fiscalized one twice"
        );
    }
    s.wait_buffer("pending", 0, Duration::from_secs(30)).await;
    let stats = s.mock("GET", "/_mock/stats", None).await;
    assert_eq!(stats["duplicates"], 0, "{stats}");
}

#[test]
fn a_bad_register_list_exits_2_naming_the_setting() {
    let cases: [&[&str]; 3] = [
        &["--kkt", "a=/tmp/x-one", "--kkt", "a=/tmp/x-two"],
        &["--kkt", "a=/tmp/x-one", "--kkt", "b=/tmp/x-one"],
        &["--kkt", "a=/tmp/x-one", "--kkt-port", "/tmp/x-two"],
    ];
    for args in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_adapter"))
            .args(["--listen", "127.0.0.1:0", "--db", "/nonexistent/never.db"])
            .args(args)
            .output()
            .expect("adapter runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("setting `kkt`"), "{args:?}: {stderr}");
    }
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn futures_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
