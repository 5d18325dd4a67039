//! No input can stop the shop: every bad sale gets a definite 4xx before anything is journaled or
//! sent to the KKT, the poison sale of issue #13 included, and a good sale right after still prints.

use std::time::Duration;

use rstest::rstest;
use serde_json::{Value, json};

use crate::harness::Stack;

/// A one-item sale of 10.00 paid in cash, the base every row of the table alters.
fn ten(key: &str) -> Value {
    json!({"idempotency_key": key, "type": "sale", "taxation": "osn",
        "items": [{"name": "Lens", "price": "10.00", "quantity": "1", "vat": "vat20"}],
        "payments": [{"type": "cash", "amount": "10.00"}]})
}

fn with_item(field: &str, value: Value) -> Value {
    let mut b = ten("k");
    b["items"][0][field] = value;
    b
}

fn with_payments(payments: Value) -> Value {
    let mut b = ten("k");
    b["payments"] = payments;
    b
}

fn with(field: &str, value: Value) -> Value {
    let mut b = ten("k");
    b[field] = value;
    b
}

fn items(n: usize) -> Value {
    let mut b = ten("k");
    b["items"] = Value::Array(vec![b["items"][0].clone(); n]);
    b["payments"][0]["amount"] = json!(format!("{}.00", 10 * n));
    b
}

/// Posts `body`, expects `status` and `code` with `definite: true` and a message naming `needle`,
/// and proves nothing was journaled and no fiscal command reached the KKT.
async fn check_refused(body: Value, status: u16, code: &str, needle: &str) {
    let s = Stack::with_adapter(&[]).await;
    let before = s.fiscal_commands().await;
    let (got, r) = s.post_receipt(body).await;
    assert_eq!(got, status, "{r}");
    assert_eq!(r["code"], code, "{r}");
    assert_eq!(r["definite"], true, "{r}");
    let message = r["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} lacks {needle:?}"
    );
    assert_eq!(
        s.fiscal_commands().await,
        before,
        "a fiscal command was sent"
    );
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(st["total_receipts"], 0, "something was journaled: {st}");
    assert_eq!(st["in_flight"], 0, "{st}");
    // The shop can still sell.
    let (code, good) = s.post_receipt(ten("good-after")).await;
    assert_eq!((code, &good["status"]), (200, &json!("printed")), "{good}");
}

#[rstest]
#[case::poison_sale_same_type_payments_overflow(with_payments(json!([
    {"type": "cash", "amount": "10995116277.75"}, {"type": "cash", "amount": "0.01"}])),
    400, "invalid_field", "cash payments add up")]
#[case::name_with_nul_inside(with_item("name", json!("Lens\u{0}X")), 400, "invalid_field", "items[0].name: control character U+0000 at position 5")]
#[case::name_with_leading_nul(with_item("name", json!("\u{0}Lens")), 400, "invalid_field", "U+0000 at position 1")]
#[case::name_whitespace_only(with_item("name", json!("   ")), 400, "invalid_field", "whitespace")]
#[case::name_trailing_space(with_item("name", json!("Lens ")), 400, "invalid_field", "whitespace")]
#[case::name_leading_space(with_item("name", json!(" Lens")), 400, "invalid_field", "whitespace")]
#[case::name_with_stx(with_item("name", json!("Le\u{2}ns")), 400, "invalid_field", "U+0002 at position 3")]
#[case::name_with_enq(with_item("name", json!("Le\u{5}ns")), 400, "invalid_field", "U+0005")]
#[case::name_with_esc(with_item("name", json!("Le\u{1b}ns")), 400, "invalid_field", "U+001B")]
#[case::name_with_crlf(with_item("name", json!("Le\r\nns")), 400, "invalid_field", "U+000D")]
#[case::name_with_del(with_item("name", json!("Le\u{7f}ns")), 400, "invalid_field", "U+007F")]
#[case::name_with_emoji(with_item("name", json!("Lens 😀")), 400, "invalid_field", "U+1F600 at position 6) cannot be printed")]
#[case::name_in_cjk(with_item("name", json!("镜片")), 400, "invalid_field", "windows-1251")]
#[case::name_with_rtl_override(with_item("name", json!("Lens\u{202e}")), 400, "invalid_field", "U+202E")]
#[case::name_with_guillemets_not_in_cp866(with_item("name", json!("Lens «Pro»")), 400, "invalid_field", "cp866")]
#[case::name_empty(with_item("name", json!("")), 400, "invalid_field", "must not be empty")]
#[case::name_129_bytes(with_item("name", json!("Л".repeat(129))), 400, "invalid_field", "items[0]")]
#[case::operator_65_bytes(with("operator", json!("O".repeat(65))), 400, "invalid_field", "operator")]
#[case::customer_contact_with_tab(with("customer_contact", json!("a\tb@example.org")), 400, "invalid_field", "customer_contact")]
#[case::price_at_the_auto_sum_marker(at_the_sum_marker(), 400, "invalid_field", "line sum")]
#[case::price_above_five_bytes(with_item("price", json!("10995116277.76")), 400, "malformed_body", "too large")]
#[case::zero_total(with_item("price", json!("0.00")), 400, "invalid_field", "total is 0.00")]
#[case::money_with_underscore(with_item("price", json!("1_000")), 400, "malformed_body", "not a plain decimal")]
#[case::money_with_exponent(with_item("price", json!("1e3")), 400, "malformed_body", "not a plain decimal")]
#[case::money_bare_fraction(with_item("price", json!(".5")), 400, "malformed_body", "not a plain decimal")]
#[case::money_bare_point(with_item("price", json!("5.")), 400, "malformed_body", "not a plain decimal")]
#[case::money_with_sign(with_item("price", json!("+10.00")), 400, "malformed_body", "not a plain decimal")]
#[case::money_with_blanks(with_item("price", json!(" 10.00 ")), 400, "malformed_body", "not a plain decimal")]
#[case::money_three_decimals(with_item("price", json!("10.001")), 400, "malformed_body", "more than 2 fraction digits")]
#[case::quantity_zero(with_item("quantity", json!("0")), 400, "malformed_body", "greater than zero")]
#[case::quantity_seven_decimals(with_item("quantity", json!("1.0000001")), 400, "malformed_body", "more than 6 fraction digits")]
#[case::items_101(items(101), 400, "invalid_field", "at most 100 items")]
#[case::items_none(with("items", json!([])), 400, "invalid_field", "at least one item")]
#[case::payments_none(with("payments", json!([])), 400, "invalid_field", "at least one payment")]
#[case::underpaid(with_payments(json!([{"type": "cash", "amount": "9.99"}])), 400, "invalid_field", "less than the total")]
#[case::change_from_card(with_payments(json!([{"type": "card", "amount": "20.00"}])), 400, "invalid_field", "only from cash")]
#[case::unknown_vat(with_item("vat", json!("vat18")), 400, "malformed_body", "unknown variant")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sales_are_refused_definitely_before_the_kkt(
    #[case] body: Value,
    #[case] status: u16,
    #[case] code: &str,
    #[case] needle: &str,
) {
    check_refused(body, status, code, needle).await;
}

/// A price whose line sum is the FF46 "compute it yourself" marker (2^40 - 1 kopecks): a money
/// value the API can hold, but not as an explicit line sum.
fn at_the_sum_marker() -> Value {
    let mut b = with_payments(json!([{"type": "card", "amount": "10995116277.75"}]));
    b["items"][0]["price"] = json!("10995116277.75");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poison_sale_changes_nothing_across_a_restart() {
    let mut s = Stack::with_adapter(&[]).await;
    let poison = with_payments(json!([
        {"type": "cash", "amount": "10995116277.75"}, {"type": "cash", "amount": "0.01"}]));
    for _ in 0..3 {
        let (code, r) = s.post_receipt(poison.clone()).await;
        assert_eq!((code, &r["definite"]), (400, &json!(true)), "{r}");
    }
    let (code, r) = s.post_receipt(ten("after-poison")).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    s.kill_adapter();
    s.start_adapter();
    let (code, r) = s.post_receipt(ten("after-restart")).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(st["in_flight"], 0, "{st}");
    let (_, health) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(health["kkt"]["unresolved"], json!([]), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_amounts_the_kkt_carries_print_exactly() {
    let s = Stack::with_adapter(&[]).await;
    // One kopeck below the FF46 "compute it yourself" marker, paid in one card payment.
    let mut body = ten("largest");
    body["items"][0]["price"] = json!("10995116277.74");
    body["payments"] = json!([{"type": "card", "amount": "10995116277.74"}]);
    let (code, r) = s.post_receipt(body).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    let doc = &s.fn_receipts().await[0];
    assert_eq!(doc["total"], (1u64 << 40) - 2);
    // A name of 128 windows-1251 bytes, with characters at both code pages' edges.
    let name = format!("№Ёё{}", "Я".repeat(125));
    let mut body = ten("longest-name");
    body["items"][0]["name"] = json!(name);
    body["items"][0]["quantity"] = json!("0.000001");
    body["items"][0]["price"] = json!("10000000.00");
    body["payments"] = json!([{"type": "cash", "amount": "10.00"}]);
    let (code, r) = s.post_receipt(body).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    let docs = s.fn_receipts().await;
    assert_eq!(docs[1]["items"][0]["name"], json!(name));
    assert_eq!(docs[1]["items"][0]["quantity"], "0.000001");
    assert_eq!(docs[1]["total"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_with_different_bodies_at_once_is_always_422() {
    let s = Stack::with_adapter(&[]).await;
    let a = ten("shared-key");
    let mut b = ten("shared-key");
    b["items"][0]["price"] = json!("5.00");
    b["payments"][0]["amount"] = json!("5.00");
    // Twelve requests at once on separate connections, alternating the two bodies.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let body = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (http, url) = (s.http.clone(), format!("{}/v1/kkt/receipt", s.adapter_url));
        set.spawn(async move {
            let resp = http
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("adapter answers");
            let code = resp.status().as_u16();
            (
                body,
                (code, resp.json::<Value>().await.unwrap_or(Value::Null)),
            )
        });
    }
    let answers: Vec<(Value, (u16, Value))> = set.join_all().await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(_, (code, _))| *code == 200)
        .map(|(body, _)| body)
        .collect();
    assert!(!winners.is_empty(), "{answers:?}");
    let winner = winners[0];
    assert!(
        winners.iter().all(|w| *w == winner),
        "two bodies printed under one key"
    );
    for (body, (code, r)) in &answers {
        if body == winner {
            assert!(
                *code == 200 || (*code == 409 && r["code"] == "request_in_progress"),
                "{code} {r}"
            );
        } else {
            assert_eq!(
                (*code, &r["code"]),
                (422, &json!("idempotency_key_reused")),
                "{r}"
            );
        }
    }
    assert_eq!(s.fn_receipts().await.len(), 1);
}

const ADMIN: &str = "ops:admin:admin-secret-0123456789";
const ADMIN_BEARER: &str = "Bearer admin-secret-0123456789";
const POS: &str = "till1:pos:pos-secret-0123456789abc";

/// An adapter whose background reconciler waits an hour between attempts, so a test decides
/// when reconciliation runs, and which calls a receipt stuck after one failed attempt. Its sales
/// and reads go with the till's token.
async fn slow_reconciler() -> Stack {
    let mut s = Stack::with_adapter(&[
        "--reconcile-retry-ms",
        "3600000",
        "--reconcile-stuck-attempts",
        "1",
        "--auth-token",
        &format!("{ADMIN},{POS}"),
    ])
    .await;
    s.bearer = Some("Bearer pos-secret-0123456789abc".to_owned());
    s
}

async fn resolve(s: &Stack, id: &str, bearer: &str, reason: &str) -> (u16, Value) {
    s.call(
        "POST",
        &format!("/v1/kkt/receipt/{id}/resolve"),
        Some(json!({ "reason": reason })),
        &[("authorization", bearer)],
    )
    .await
}

fn audit_rows(s: &Stack, id: &str) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(s.db_path()).expect("journal opens");
    let mut stmt = conn
        .prepare("SELECT actor, outcome, reason FROM audit WHERE receipt_id = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_finds_a_receipt_the_fn_holds_and_health_shows_it_stuck_before() {
    let s = slow_reconciler().await;
    // The FN commits the receipt, then the KKT goes silent: the outcome is unknown.
    s.cut_power_after_the_next_close().await;
    let (code, r) = s.post_receipt(ten("lost-answer")).await;
    assert_eq!((code, &r["status"]), (200, &json!("buffered")), "{r}");
    let id = r["receipt_id"].as_str().unwrap().to_owned();
    // A sale now tries reconciliation once more, fails, and is refused with its own code.
    let (code, refused) = s.post_receipt(ten("blocked")).await;
    assert_eq!(
        (code, &refused["code"]),
        (503, &json!("reconciliation_pending")),
        "{refused}"
    );
    assert_eq!(refused["definite"], true);
    let (code, health) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let stuck = &health["kkt"]["unresolved"][0];
    assert_eq!(
        (&stuck["receipt_id"], &stuck["stuck"]),
        (&json!(id), &json!(true)),
        "{health}"
    );
    let (_, st) = s.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
    assert_eq!(st["unresolved_stuck"], 1, "{st}");
    // Credentials first: none, wrong, and a pos token.
    assert_eq!(resolve(&s, &id, "", "x").await.0, 401);
    assert_eq!(
        resolve(&s, &id, "Bearer wrong-secret-0000000000", "x")
            .await
            .0,
        401
    );
    let (code, r) = resolve(&s, &id, "Bearer pos-secret-0123456789abc", "x").await;
    assert_eq!((code, &r["code"]), (403, &json!("forbidden")), "{r}");
    // The FN cannot be read while the KKT is silent: nothing changes.
    let (code, r) = resolve(&s, &id, ADMIN_BEARER, "customer waiting").await;
    assert_eq!((code, &r["code"]), (503, &json!("kkt_unavailable")), "{r}");
    assert!(audit_rows(&s, &id).is_empty());
    s.emu("POST", "/_emu/power_on", None).await;
    let (code, r) = resolve(&s, &id, ADMIN_BEARER, "KKT back after a power cut").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["outcome"], "fiscalized");
    assert_eq!(r["resolved_by"], "ops");
    assert_eq!(r["receipt"]["status"], "printed");
    let fd = r["receipt"]["fiscal"]["fd_number"].clone();
    let docs = s.fn_receipts().await;
    assert_eq!(docs.len(), 1, "printed once");
    assert_eq!((&docs[0]["tag_1192"], &docs[0]["fd"]), (&json!(id), &fd));
    assert_eq!(
        audit_rows(&s, &id),
        vec![(
            "ops".into(),
            format!("fiscalized fd={fd}"),
            "KKT back after a power cut".into()
        )]
    );
    // Resolved twice is a definite 409, and sales flow again.
    let (code, r) = resolve(&s, &id, ADMIN_BEARER, "again").await;
    assert_eq!((code, &r["code"]), (409, &json!("not_unresolved")), "{r}");
    let (code, r) = s.post_receipt(ten("after-resolve")).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_rejects_a_receipt_the_fn_proves_absent() {
    let mut s = slow_reconciler().await;
    let (code, r) = s.post_receipt(ten("first")).await;
    assert_eq!(code, 200, "{r}");
    // The adapter stops after journaling a sale in flight and before sending it: written here
    // through the journal's own API while the adapter is down.
    s.kill_adapter();
    let id = s
        .journal_in_flight("never-sent", "h", &ten("never-sent").to_string())
        .await;
    // The KKT answers no status at start-up, so start-up reconciliation cannot finish.
    s.emu(
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "nak", "command": "10", "probability": 1.0, "seed": 1})),
    )
    .await;
    s.start_adapter();
    // Wait (bounded) until both early attempts have failed, start-up reconciliation's and the
    // background reconciler's first round (it runs at once, then an hour later): the fault may
    // only be cleared after that, or a late attempt would find the KKT answering and settle the
    // receipt by itself (seen under load, twice).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let health = loop {
        let (_, health) = s.call("GET", "/v1/health", None, &[]).await;
        let u = &health["kkt"]["unresolved"][0];
        let tried = u["stuck"] == json!(true) && u["attempts"].as_u64().unwrap_or(0) >= 2;
        if tried || std::time::Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let unresolved = &health["kkt"]["unresolved"][0];
    assert_eq!(
        (&unresolved["receipt_id"], &unresolved["stuck"]),
        (&json!(id), &json!(true)),
        "{health}"
    );
    s.emu("POST", "/_emu/clear", None).await;
    let (code, r) = resolve(&s, &id, ADMIN_BEARER, "till rebooted mid-sale").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["outcome"], "absent");
    assert_eq!(r["receipt"]["status"], "rejected");
    assert_eq!(s.fn_receipts().await.len(), 1, "nothing printed for it");
    assert_eq!(
        audit_rows(&s, &id),
        vec![(
            "ops".into(),
            "absent".into(),
            "till rebooted mid-sale".into()
        )]
    );
    // The POS retrying the key learns, definitely, that it was not printed.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let state: String = conn
        .query_row("SELECT kkt_state FROM receipts WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(state, "rejected");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, r) = s.post_receipt(ten("after-absent")).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_failures_say_what_happened() {
    // No serial port at all: the sale is refused as a device outage, not as a reconciliation.
    let s = Stack::with_adapter(&["--kkt-port", "/nonexistent/kkt.tty"]).await;
    let (code, r) = s.post_receipt(ten("no-port")).await;
    assert_eq!(
        (code, &r["code"], &r["definite"]),
        (503, &json!("kkt_unavailable"), &json!(true)),
        "{r}"
    );
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("cannot be opened") && !message.contains("reconcil"),
        "{message}"
    );
    // A shift refusal names the shift, not a receipt.
    let s = Stack::with_adapter(&[]).await;
    let (code, r) = s.call("POST", "/v1/kkt/shift/close", None, &[]).await;
    assert_eq!((code, &r["code"]), (409, &json!("kkt_refused")), "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with("KKT refused the shift closing"),
        "{message}"
    );
}
