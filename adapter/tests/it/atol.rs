//! The ATOL web-server compatible API end to end, with literal JSON of public clients of that API
//! (the Bedunkevich/atol TypeScript client's tests and types, a public Python client's tasks), the
//! real emulator over a pty and the real mock OFD: sales, refunds, shifts, queries, a repeated
//! uuid, a different body under one uuid, refused tasks, and a SIGKILL mid-sale.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Stack;

/// The uuid the public TypeScript client's tests post under.
const CLIENT_UUID: &str = "24efab70-4502-11eb-a6c8-1f6f568dbd0e";

/// The `sell` task as the public clients send it (PROTOCOLS.md 1.1, from the client's types).
fn bread_sell() -> Value {
    json!({"type":"sell","taxationType":"osn",
      "operator":{"name":"Иванов","vatin":"123654789507"},
      "items":[{"type":"position","name":"Хлеб","price":30,"quantity":2,"amount":60,
                "tax":{"type":"vat10"},"paymentMethod":"fullPayment","paymentObject":"commodity"}],
      "payments":[{"type":"cash","sum":60}],"total":60})
}

async fn post(s: &Stack, body: Value) -> (u16, Value) {
    s.call("POST", "/api/v2/requests", Some(body), &[]).await
}

/// Polls the request until every task is `want` (or ended in `error` or `interrupted`).
async fn poll_until(s: &Stack, uuid: &str, want: &str) -> Value {
    poll(s, uuid, want, usize::MAX).await
}

/// Polls the request until its first `n` tasks are `want` (or ended in `error` or `interrupted`).
async fn poll(s: &Stack, uuid: &str, want: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        let (code, v) = s
            .call("GET", &format!("/api/v2/requests/{uuid}"), None, &[])
            .await;
        if code == 200
            && v["results"].as_array().is_some_and(|r| {
                r.iter().take(n).all(|t| {
                    t["status"] == want || t["status"] == "interrupted" || t["status"] == "error"
                })
            })
        {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {uuid} did not reach {want} within 20 s; last: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_clients_sale_is_fiscalized_once_and_polled_with_the_fns_exact_figures() {
    let s = Stack::with_adapter(&[]).await;
    let (code, accepted) = post(&s, json!({"uuid": CLIENT_UUID, "request": [bread_sell()]})).await;
    assert_eq!(code, 201, "{accepted}");
    assert_eq!(
        accepted,
        json!({"uuid": CLIENT_UUID, "number": 1, "isBlocked": false, "blockedUUID": ""})
    );
    let done = poll_until(&s, CLIENT_UUID, "ready").await;
    let task = &done["results"][0];
    assert_eq!(
        (task["status"].clone(), task["errorCode"].clone()),
        (json!("ready"), json!(0)),
        "{done}"
    );
    let p = &task["result"]["fiscalParams"];
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1, "one receipt in the FN");
    let doc = &receipts[0];
    let emu = s.emu("GET", "/_emu/state", None).await;
    assert_eq!(p["fiscalDocumentNumber"], doc["fd"]);
    assert_eq!(p["fiscalDocumentSign"], doc["fpd"].to_string());
    assert_eq!(p["fiscalReceiptNumber"], doc["receipt_no"]);
    assert_eq!(p["shiftNumber"], doc["shift"]);
    assert_eq!(p["fnNumber"], emu["fn_serial"]);
    assert_eq!(p["registrationNumber"], emu["reg_number"]);
    assert_eq!(p["total"], json!(60.0));
    assert_eq!(p["fnsUrl"], "www.nalog.gov.ru");
    assert_eq!(
        (doc["total"].clone(), doc["cash"].clone()),
        (json!(6_000), json!(6_000))
    );
    // The same receipt through the native API, under the task's key.
    let (code, native) = s
        .call(
            "GET",
            &format!("/v1/kkt/receipt?idempotency_key=atol:{CLIENT_UUID}:0"),
            None,
            &[],
        )
        .await;
    assert_eq!(code, 200, "{native}");
    assert_eq!(native["fiscal"]["fd_number"], doc["fd"]);
    // Phase 2 relays it like any other receipt.
    s.wait_buffer("pending", 0, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shifts_a_refund_and_queries_run_in_order_with_their_own_answers() {
    let s = Stack::with_adapter(&[]).await;
    // As a public Python client sends them: one task object, not a list.
    let (code, _) = post(
        &s,
        json!({"uuid": "shift-q-1", "request": {"type": "getShiftStatus"}}),
    )
    .await;
    assert_eq!(code, 201);
    let closed = poll_until(&s, "shift-q-1", "ready").await;
    assert_eq!(
        closed["results"][0]["result"]["shiftStatus"]["state"], "closed",
        "{closed}"
    );

    let mut refund = bread_sell();
    refund["type"] = json!("sellReturn");
    let open =
        json!({"type": "openShift", "electronically": false, "operator": {"name": "Иванов"}});
    let close =
        json!({"type": "closeShift", "electronically": false, "operator": {"name": "Иванов"}});
    let tasks = json!([open, refund, {"type": "reportX"}, {"type": "getShiftStatus"},
        {"type": "getDeviceStatus"}, {"type": "getFnInfo"}, {"type": "ofdExchangeStatus"}, close]);
    let (code, accepted) = post(&s, json!({"uuid": "day-1", "request": tasks})).await;
    assert_eq!(
        (code, accepted["number"].clone()),
        (201, json!(2)),
        "{accepted}"
    );
    let done = poll_until(&s, "day-1", "ready").await;
    let r = done["results"].as_array().unwrap();
    assert!(r.iter().all(|t| t["status"] == "ready"), "{done}");
    let journal = s.emu("GET", "/_emu/journal", None).await;
    let docs = journal["documents"].as_array().unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["shift_open", "receipt", "shift_close"], "{journal}");
    assert_eq!(
        r[0]["result"]["fiscalParams"]["fiscalDocumentNumber"],
        docs[0]["fd"]
    );
    assert_eq!(r[0]["result"]["fiscalParams"]["shiftNumber"], 1);
    assert_eq!(docs[1]["operation_type"], 2, "a sale refund");
    assert_eq!(
        r[1]["result"]["fiscalParams"]["fiscalDocumentNumber"],
        docs[1]["fd"]
    );
    assert_eq!(r[2]["result"], json!({}), "the X report makes no document");
    assert_eq!(
        r[3]["result"]["shiftStatus"],
        json!({"state": "opened", "number": 1})
    );
    let device = &r[4]["result"]["deviceStatus"];
    assert_eq!(
        (device["shift"].clone(), device["paperPresent"].clone()),
        (json!("opened"), json!(true))
    );
    assert_eq!(
        (device["fiscal"].clone(), device["blocked"].clone()),
        (json!(true), json!(false))
    );
    let emu = s.emu("GET", "/_emu/state", None).await;
    let info = &r[5]["result"]["fnInfo"];
    assert_eq!(
        (info["serial"].clone(), info["lastDocumentNumber"].clone()),
        (emu["fn_serial"].clone(), docs[1]["fd"].clone())
    );
    assert_eq!(info["livePhase"], "fiscalMode");
    let queue = &r[6]["result"]["status"];
    assert!(queue["notSentCount"].as_u64().unwrap() <= 2, "{queue}");
    assert_eq!(
        r[7]["result"]["fiscalParams"]["fiscalDocumentNumber"],
        docs[2]["fd"]
    );
    // The X report went to the device: command 40.
    let commands = s.emu("GET", "/_emu/commands", None).await;
    assert_eq!(commands["by_code"]["40"], 1, "{commands}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_uuid_answers_the_same_task_and_another_body_under_it_gets_409() {
    let mut s = Stack::with_adapter(&[]).await;
    let body = json!({"uuid": "rep-1", "request": [bread_sell()]});
    let (code, first) = post(&s, body.clone()).await;
    assert_eq!(code, 201, "{first}");
    poll_until(&s, "rep-1", "ready").await;
    let (code, again) = post(&s, body.clone()).await;
    assert_eq!((code, &again), (201, &first));
    // Key order and blanks do not make another request.
    let reordered: Value = serde_json::from_str(
        r#"{"request":[{"total":60,"payments":[{"sum":60,"type":"cash"}],"items":[{"type":"position",
        "name":"Хлеб","price":30,"quantity":2,"amount":60,"tax":{"type":"vat10"},
        "paymentMethod":"fullPayment","paymentObject":"commodity"}],"taxationType":"osn",
        "operator":{"vatin":"123654789507","name":"Иванов"},"type":"sell"}],"uuid":"rep-1"}"#,
    )
    .unwrap();
    let (code, _) = post(&s, reordered).await;
    assert_eq!(code, 201);
    let mut other = body.clone();
    other["request"][0]["items"][0]["price"] = json!(31);
    other["request"][0]["items"][0]["amount"] = json!(62);
    other["request"][0]["payments"][0]["sum"] = json!(62);
    other["request"][0]["total"] = json!(62);
    let (code, e) = post(&s, other).await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(
        (e["error"]["code"].clone(), e["code"].clone()),
        (json!(8), json!("idempotency_key_reused"))
    );
    assert_eq!(e["definite"], true);
    // Also across a restart.
    s.kill_adapter();
    s.start_adapter();
    let (code, after) = post(&s, body).await;
    assert_eq!((code, &after), (201, &first));
    assert_eq!(s.fn_receipts().await.len(), 1, "fiscalized once");
    let polled = poll_until(&s, "rep-1", "ready").await;
    assert_eq!(
        polled["results"][0]["result"]["fiscalParams"]["total"],
        json!(60.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_the_adapter_cannot_honour_are_refused_by_name_and_nothing_reaches_the_register() {
    let s = Stack::with_adapter(&[]).await;
    // The public TypeScript client's own sell test: a marked good, paid half cash, half "1".
    let marked = json!({"uuid": CLIENT_UUID, "request": [{"type":"sell","taxationType":"usnIncome",
        "operator":{"name":"Иванов","vatin":"123654789507"},
        "items":[{"type":"position","name":"Бананы","price":10.0,"quantity":0.5,"amount":5.0,
                  "tax":{"type":"none"},"markingCode":{"type":"other","mark":"BASE64"}}],
        "payments":[{"type":"cash","sum":2.5},{"type":"1","sum":2.5}]}]});
    let refused = [
        (marked, "markingCode"),
        (
            json!({"uuid": "c-1", "request": [{"type": "cashIn", "operator": {"name": "Иванов"}, "cashSum": 100}]}),
            "cashIn",
        ),
        (
            json!({"uuid": "c-2", "request": [{"type": "openShift"}, {"type": "printLastReceiptCopy"}]}),
            "request[1]",
        ),
        (
            json!({"uuid": "c/3", "request": [{"type": "openShift"}]}),
            "uuid",
        ),
        (json!({"uuid": "c-4", "request": []}), "1 to 100 tasks"),
        (json!({"uuid": "c-5"}), "request"),
    ];
    for (body, named) in refused {
        let (code, e) = post(&s, body.clone()).await;
        assert_eq!(code, 400, "{body}: {e}");
        let description = e["error"]["description"].as_str().unwrap_or_default();
        assert!(description.contains(named), "{body}: {e}");
        assert_eq!(
            (e["error"]["code"].clone(), e["definite"].clone()),
            (json!(1), json!(true)),
            "{e}"
        );
    }
    assert_eq!(s.fiscal_commands().await, 0, "nothing reached the register");
    let (code, e) = s
        .call("GET", &format!("/api/v2/requests/{CLIENT_UUID}"), None, &[])
        .await;
    assert_eq!((code, e["error"]["code"].clone()), (404, json!(9)), "{e}");
    // The same client's sale without the marking code is sold.
    let (code, _) = post(&s, json!({"uuid": CLIENT_UUID, "request": [{"type":"sell","taxationType":"usnIncome",
        "operator":{"name":"Иванов","vatin":"123654789507"},
        "items":[{"type":"position","name":"Бананы","price":10.0,"quantity":0.5,"amount":5.0,"tax":{"type":"none"}}],
        "payments":[{"type":"cash","sum":2.5},{"type":"1","sum":2.5}]}]})).await;
    assert_eq!(code, 201);
    poll_until(&s, CLIENT_UUID, "ready").await;
    let doc = &s.fn_receipts().await[0];
    assert_eq!(
        (doc["cash"].clone(), doc["card"].clone()),
        (json!(250), json!(250))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_cut_off_by_a_sigkill_is_reconciled_once_and_its_answer_polled_after_the_restart() {
    let mut s = Stack::with_adapter(&[]).await;
    s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    // The device commits the receipt and loses power before it answers: the outcome is unknown.
    s.cut_power_after_the_next_close().await;
    let (code, _) = post(
        &s,
        json!({"uuid": "cut-1", "request": [bread_sell(), {"type": "getShiftStatus"}]}),
    )
    .await;
    assert_eq!(code, 201);
    let blocked = poll(&s, "cut-1", "blocked", 1).await;
    assert_eq!(
        blocked["results"][1]["status"], "wait",
        "the rest waits: {blocked}"
    );
    // A new request sees the register held by it.
    let (code, next) = post(
        &s,
        json!({"uuid": "cut-2", "request": [{"type": "getShiftStatus"}]}),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        (next["isBlocked"].clone(), next["blockedUUID"].clone()),
        (json!(true), json!("cut-1")),
        "{next}"
    );
    s.kill_adapter();
    s.emu("POST", "/_emu/power_on", None).await;
    s.start_adapter();
    let done = poll_until(&s, "cut-1", "ready").await;
    let receipts = s.fn_receipts().await;
    assert_eq!(receipts.len(), 1, "fiscalized once: {receipts:?}");
    assert_eq!(
        done["results"][0]["result"]["fiscalParams"]["fiscalDocumentNumber"],
        receipts[0]["fd"]
    );
    assert_eq!(
        done["results"][1]["result"]["shiftStatus"]["state"],
        "opened"
    );
    let later = poll_until(&s, "cut-2", "ready").await;
    assert_eq!(
        later["results"][0]["result"]["shiftStatus"]["state"],
        "opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atol_clients_may_sign_in_with_http_basic_and_the_token_roles_hold() {
    let s = Stack::with_adapter(&[
        "--auth-token",
        "till1:pos:pos-secret-0123456789,ops:admin:admin-secret-0123456789",
    ])
    .await;
    use base64::Engine as _;
    let basic = |u: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(u)
        )
    };
    let body = json!({"uuid": "auth-1", "request": [{"type": "getShiftStatus"}]});
    let url = format!("{}/api/v2/requests", s.adapter_url);
    let send = |auth: Option<String>| {
        let mut r = s.http.post(&url).json(&body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(send(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        send(Some(basic("ops:pos-secret-0123456789")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        send(Some(basic("till1:pos-secret-0123456789")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    assert_eq!(
        send(Some("Bearer pos-secret-0123456789".into()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
}
