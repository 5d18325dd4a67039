//! Generated sales against the real stack: proptest draws requests from the whole input domain
//! (boundary money and quantities, every type, VAT and payment combination, names of every class of
//! character, item counts up to the limit and past it) and the adapter must either print exactly
//! the request or refuse it with a definite 4xx before any fiscal command reached the KKT.
//!
//! The test carries its own oracle, written from the protocol's limits and not from the adapter's
//! code, so a validator that is too strict fails as surely as one that is too lax. The case budget
//! is 48 in CI; `ADAPTER_PROPTEST_CASES` raises it, and `ADAPTER_PROPTEST_VERBOSE=1` prints every
//! refusal.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::harness::Stack;

/// 2^40 - 1 kopecks: the widest a 5-byte money field goes, and FF46's "compute the sum" marker.
const MONEY_MAX: u64 = (1 << 40) - 1;
/// 2^48 - 1 millionths: the widest FF46 quantity.
const QUANTITY_MAX: u64 = (1 << 48) - 1;
const CASES_CI: u32 = 48;

/// One generated text: the text and whether a KKT can print it as sent.
#[derive(Debug, Clone)]
struct GenText(String, bool);

/// Characters every Shtrih-era KKT prints (windows-1251) and every FN stores (cp866).
const GOOD: &str = "abcXYZ0189 .,%()/-+*#№°·АБВЯабвяЁё";
/// Characters one of the two code pages lacks, or that no device prints.
const BAD: [&str; 12] = [
    "\u{0}", "\u{2}", "\u{5}", "\u{1b}", "\r", "\n", "\t", "😀", "镜", "\u{202e}", "«", "€",
];

/// Text a KKT prints as sent: good characters, no blank at either end, 1 to `max_bytes` bytes.
fn clean_text(max_bytes: usize) -> impl Strategy<Value = GenText> {
    let good: Vec<char> = GOOD.chars().collect();
    proptest::collection::vec(proptest::sample::select(good), 1..=max_bytes).prop_map(|cs| {
        let s: String = cs.into_iter().collect();
        let s = s.trim_matches(' ');
        GenText(
            if s.is_empty() {
                "x".into()
            } else {
                s.to_owned()
            },
            true,
        )
    })
}

fn text(max_bytes: usize) -> impl Strategy<Value = GenText> {
    let good: Vec<char> = GOOD.chars().collect();
    let good_chars = proptest::collection::vec(proptest::sample::select(good), 1..=max_bytes + 2);
    prop_oneof![
        24 => good_chars.prop_map(move |cs| {
            let s: String = cs.into_iter().collect();
            let ok = s.chars().count() <= max_bytes && !s.starts_with(' ') && !s.ends_with(' ');
            GenText(s, ok)
        }),
        1 => (0..=max_bytes + 1).prop_map(move |n| {
            let s = "Я".repeat(n);
            let ok = (1..=max_bytes).contains(&n);
            GenText(s, ok)
        }),
        2 => ("[a-zА-Я]{1,10}", proptest::sample::select(BAD.to_vec()), "[a-z]{0,5}")
            .prop_map(|(a, bad, b)| GenText(format!("{a}{bad}{b}"), false)),
        1 => ("[a-z]{1,10}", proptest::bool::ANY)
            .prop_map(|(a, lead)| GenText(if lead { format!(" {a}") } else { format!("{a} ") }, false)),
    ]
}

/// A money value as the POS sends it: its kopecks when the text is valid.
#[derive(Debug, Clone)]
struct GenMoney(Value, Option<u64>);

fn money_text(k: u64, style: u8) -> String {
    match style {
        0 if k.is_multiple_of(100) => (k / 100).to_string(),
        1 if k.is_multiple_of(10) => format!("{}.{}", k / 100, (k % 100) / 10),
        _ => format!("{}.{:02}", k / 100, k % 100),
    }
}

fn kopecks() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1u64..=10_000,
        6 => 1u64..=100_000_000,
        1 => (MONEY_MAX - 3)..=MONEY_MAX,
        1 => Just(0u64),
    ]
}

fn money() -> impl Strategy<Value = GenMoney> {
    prop_oneof![
        40 => (kopecks(), 0u8..3).prop_map(|(k, style)| GenMoney(json!(money_text(k, style)), Some(k))),
        4 => (0u64..1_000_000).prop_map(|k| GenMoney(json!(k), Some(k * 100))),
        1 => proptest::sample::select(vec![
            "1_000", "1e3", ".5", "5.", "+1.00", " 1.00", "1.001", "-1", "", "10995116277.76",
        ])
        .prop_map(|t| GenMoney(json!(t), None)),
    ]
}

/// A quantity: its millionths when the text is valid.
fn quantity() -> impl Strategy<Value = GenMoney> {
    let valid = prop_oneof![
        Just(1u64),
        Just(1_000_000u64),
        Just(1_500_000u64),
        1u64..=1_000_000_000,
        (QUANTITY_MAX - 2)..=QUANTITY_MAX,
    ];
    prop_oneof![
        40 => valid.prop_map(|q| {
            let (int, frac) = (q / 1_000_000, q % 1_000_000);
            let text = if frac == 0 {
                int.to_string()
            } else {
                format!("{int}.{}", format!("{frac:06}").trim_end_matches('0'))
            };
            GenMoney(json!(text), Some(q))
        }),
        1 => proptest::sample::select(vec!["0", "0.0000001", "1.", "-1", "281474976.710656"])
            .prop_map(|t| GenMoney(json!(t), None)),
    ]
}

const VATS: [(&str, u64); 6] = [
    ("vat20", 1),
    ("vat10", 2),
    ("vat120", 3),
    ("vat110", 4),
    ("vat0", 5),
    ("none", 6),
];
const METHODS: [(&str, u64); 7] = [
    ("full_prepayment", 1),
    ("prepayment", 2),
    ("advance", 3),
    ("full_payment", 4),
    ("partial_payment", 5),
    ("credit", 6),
    ("credit_payment", 7),
];
const OBJECTS: [(&str, u64); 7] = [
    ("commodity", 1),
    ("excise", 2),
    ("job", 3),
    ("service", 4),
    ("payment", 10),
    ("composite", 12),
    ("another", 13),
];
const TYPES: [(&str, u64); 4] = [
    ("sale", 1),
    ("sale_refund", 2),
    ("buy", 3),
    ("buy_refund", 4),
];
const TAXATIONS: [&str; 6] = [
    "osn",
    "usn_income",
    "usn_income_outcome",
    "envd",
    "esn",
    "patent",
];

#[derive(Debug, Clone)]
struct GenItem {
    name: GenText,
    price: GenMoney,
    quantity: GenMoney,
    vat: usize,
    method: usize,
    object: usize,
}

/// An item the KKT prints: valid texts, a price up to a million roubles, a quantity up to 1,000.
fn clean_item() -> impl Strategy<Value = GenItem> {
    let price = (1u64..=100_000_000, 0u8..3)
        .prop_map(|(k, style)| GenMoney(json!(money_text(k, style)), Some(k)));
    let quantity = prop_oneof![Just(1_000_000u64), 1u64..=1_000_000_000].prop_map(|q| {
        let (int, frac) = (q / 1_000_000, q % 1_000_000);
        let text = if frac == 0 {
            int.to_string()
        } else {
            format!("{int}.{}", format!("{frac:06}").trim_end_matches('0'))
        };
        GenMoney(json!(text), Some(q))
    });
    (
        clean_text(128),
        price,
        quantity,
        0..6usize,
        0..7usize,
        0..7usize,
    )
        .prop_map(|(name, price, quantity, vat, method, object)| GenItem {
            name,
            price,
            quantity,
            vat,
            method,
            object,
        })
}

fn item() -> impl Strategy<Value = GenItem> {
    (
        text(128),
        money(),
        quantity(),
        0..6usize,
        0..7usize,
        0..7usize,
    )
        .prop_map(|(name, price, quantity, vat, method, object)| GenItem {
            name,
            price,
            quantity,
            vat,
            method,
            object,
        })
}

/// A generated request with what the oracle expects of it.
#[derive(Debug, Clone)]
struct GenSale {
    kind: usize,
    taxation: usize,
    operator: Option<GenText>,
    items: Vec<GenItem>,
    /// (is cash, amount)
    payments: Vec<(bool, GenMoney)>,
}

fn line_sum(price: u64, quantity: u64) -> u128 {
    (u128::from(price) * u128::from(quantity) + 500_000) / 1_000_000
}

impl GenSale {
    /// The total in kopecks when every item is valid.
    fn total(&self) -> Option<u128> {
        let mut total = 0u128;
        for i in &self.items {
            total += line_sum(i.price.1?, i.quantity.1?);
        }
        Some(total)
    }

    /// The oracle: can a KKT print this request exactly as sent? From the protocol's limits.
    fn printable(&self) -> bool {
        let texts_ok =
            self.items.iter().all(|i| i.name.1) && self.operator.as_ref().is_none_or(|o| o.1);
        let lines_ok = self.items.iter().all(|i| match (i.price.1, i.quantity.1) {
            (Some(p), Some(q)) => q > 0 && line_sum(p, q) < u128::from(MONEY_MAX),
            _ => false,
        });
        let Some(total) = self.total() else {
            return false;
        };
        let mut cash = 0u128;
        let mut card = 0u128;
        for (is_cash, m) in &self.payments {
            let Some(v) = m.1 else { return false };
            *if *is_cash { &mut cash } else { &mut card } += u128::from(v);
        }
        let max = u128::from(MONEY_MAX);
        texts_ok
            && lines_ok
            && (1..=100).contains(&self.items.len())
            && (1..=100).contains(&self.payments.len())
            && total > 0
            && total <= max
            && cash <= max
            && card <= max
            && cash + card >= total
            && cash + card - total <= cash
    }

    fn body(&self, key: &str) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                json!({"name": i.name.0, "price": i.price.0, "quantity": i.quantity.0,
                    "vat": VATS[i.vat].0, "payment_method": METHODS[i.method].0,
                    "payment_object": OBJECTS[i.object].0})
            })
            .collect();
        let payments: Vec<Value> = self
            .payments
            .iter()
            .map(|(cash, m)| json!({"type": if *cash { "cash" } else { "card" }, "amount": m.0}))
            .collect();
        let mut b = json!({"idempotency_key": key, "type": TYPES[self.kind].0,
            "taxation": TAXATIONS[self.taxation], "items": items, "payments": payments});
        if let Some(o) = &self.operator {
            b["operator"] = json!(o.0);
        }
        b
    }
}

/// Payments that usually fit the total (exact card, cash with change, a split) and sometimes not.
fn payments_for(total: Option<u128>, clean: bool) -> BoxedStrategy<Vec<(bool, GenMoney)>> {
    let random = proptest::collection::vec((proptest::bool::ANY, money()), 0..4);
    let Some(total) = total
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t <= MONEY_MAX)
    else {
        return random.boxed();
    };
    let exact = |k: u64| GenMoney(json!(money_text(k, 2)), Some(k));
    prop_oneof![
        3 => Just(vec![(false, exact(total))]),
        3 => (0u64..=100_000).prop_map(move |extra| {
            let k = total.saturating_add(extra).min(MONEY_MAX);
            vec![(true, exact(k))]
        }),
        2 => (0u64..=total).prop_map(move |card| vec![(false, exact(card)), (true, exact(total - card))]),
        if clean { 0 } else { 2 } => random,
    ]
    .boxed()
}

/// Most sales are printable by construction, so both outcomes are exercised in every run; the
/// rest draw every field from the whole domain, valid or not.
fn sale() -> impl Strategy<Value = GenSale> {
    let clean_items = prop_oneof![
        9 => proptest::collection::vec(clean_item(), 1..=4),
        1 => proptest::collection::vec(clean_item(), 100..=100),
    ];
    let any_items = prop_oneof![
        8 => proptest::collection::vec(item(), 1..=4),
        1 => proptest::collection::vec(item(), 95..=101),
        1 => Just(Vec::new()),
    ];
    let clean = (
        0..4usize,
        0..6usize,
        proptest::option::weighted(0.3, clean_text(64)),
        clean_items,
        Just(true),
    );
    let any = (
        0..4usize,
        0..6usize,
        proptest::option::weighted(0.3, text(64)),
        any_items,
        Just(false),
    );
    prop_oneof![6 => clean, 4 => any].prop_flat_map(|(kind, taxation, operator, items, clean)| {
        let probe = GenSale {
            kind,
            taxation,
            operator: operator.clone(),
            items: items.clone(),
            payments: Vec::new(),
        };
        payments_for(probe.total(), clean).prop_map(move |payments| GenSale {
            payments,
            ..probe.clone()
        })
    })
}

/// What the stack did with the generated sales.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    printed: u64,
    refused: u64,
    unknown: u64,
    server_errors: u64,
}

fn quantity_micro(text: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = format!("{frac:0<6}");
    int.parse::<u64>().unwrap() * 1_000_000 + frac.parse::<u64>().unwrap()
}

/// Checks the FN's document against the request, field by field.
fn check_document(g: &GenSale, doc: &Value, receipt_id: &str) -> Result<(), String> {
    let total = g.total().ok_or("no total")? as u64;
    let eq = |what: &str, got: &Value, want: Value| {
        if *got == want {
            Ok(())
        } else {
            Err(format!("{what}: FN has {got}, request {want}"))
        }
    };
    eq("tag 1192", &doc["tag_1192"], json!(receipt_id))?;
    eq(
        "operation type",
        &doc["operation_type"],
        json!(TYPES[g.kind].1),
    )?;
    eq("total", &doc["total"], json!(total))?;
    let cash: u64 = g
        .payments
        .iter()
        .filter(|p| p.0)
        .map(|p| p.1.1.unwrap())
        .sum();
    let card: u64 = g
        .payments
        .iter()
        .filter(|p| !p.0)
        .map(|p| p.1.1.unwrap())
        .sum();
    let change = cash + card - total;
    eq("card", &doc["card"], json!(card))?;
    eq("change", &doc["change"], json!(change))?;
    eq("cash", &doc["cash"], json!(cash - change))?;
    let items = doc["items"].as_array().ok_or("no items")?;
    if items.len() != g.items.len() {
        return Err(format!(
            "{} items in the FN, {} asked",
            items.len(),
            g.items.len()
        ));
    }
    for (i, (want, got)) in g.items.iter().zip(items).enumerate() {
        let (price, quantity) = (want.price.1.unwrap(), want.quantity.1.unwrap());
        eq(
            &format!("items[{i}].name"),
            &got["name"],
            json!(want.name.0),
        )?;
        eq(&format!("items[{i}].price"), &got["price"], json!(price))?;
        let q = quantity_micro(got["quantity"].as_str().ok_or("quantity")?);
        eq(&format!("items[{i}].quantity"), &json!(q), json!(quantity))?;
        eq(
            &format!("items[{i}].sum"),
            &got["sum"],
            json!(line_sum(price, quantity) as u64),
        )?;
        eq(
            &format!("items[{i}].vat"),
            &got["vat"],
            json!(VATS[want.vat].1),
        )?;
        eq(
            &format!("items[{i}].payment_method"),
            &got["payment_method"],
            json!(METHODS[want.method].1),
        )?;
        eq(
            &format!("items[{i}].payment_object"),
            &got["payment_object"],
            json!(OBJECTS[want.object].1),
        )?;
    }
    Ok(())
}

/// Drives one generated sale through the stack and judges the outcome.
async fn run_case(s: &Stack, g: &GenSale, n: u64, tally: &mut Tally) -> Result<(), String> {
    tally.cases += 1;
    let key = format!("gen-{n}");
    let before = s.fiscal_commands().await;
    let receipts_before = s.fn_receipts().await.len();
    let (code, r) = s.post_receipt(g.body(&key)).await;
    let printable = g.printable();
    match code {
        200 if r["status"] == "printed" => {
            tally.printed += 1;
            if !printable {
                return Err(format!("printed a sale the KKT cannot carry as sent: {r}"));
            }
            let docs = s.fn_receipts().await;
            let doc = docs.last().ok_or("no FN document")?;
            check_document(g, doc, r["receipt_id"].as_str().unwrap_or_default())
        }
        200 => {
            tally.unknown += 1;
            Err(format!("outcome unknown: {r}"))
        }
        400..=499 => {
            tally.refused += 1;
            if std::env::var_os("ADAPTER_PROPTEST_VERBOSE").is_some() {
                eprintln!("refused: {}", r["message"]);
            }
            if r["definite"] != true {
                return Err(format!("a 4xx that is not definite: {r}"));
            }
            if s.fiscal_commands().await != before || s.fn_receipts().await.len() != receipts_before
            {
                return Err(format!("refused, but fiscal commands reached the KKT: {r}"));
            }
            if printable {
                return Err(format!("refused a sale the KKT can print: {code} {r}"));
            }
            // A good sale right after always prints.
            let (code, good) = s.post_receipt(good_sale(&format!("good-{n}"))).await;
            if code != 200 || good["status"] != "printed" {
                return Err(format!("the next good sale did not print: {code} {good}"));
            }
            Ok(())
        }
        _ => {
            tally.server_errors += 1;
            Err(format!("server error {code}: {r}"))
        }
    }
}

fn good_sale(key: &str) -> Value {
    json!({"idempotency_key": key, "type": "sale", "taxation": "osn",
        "items": [{"name": "Хлеб", "price": "45.50", "quantity": "1", "vat": "vat10"}],
        "payments": [{"type": "cash", "amount": "50"}]})
}

#[test]
fn generated_sales_print_exactly_or_are_refused_before_the_kkt() {
    let cases = std::env::var("ADAPTER_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES_CI);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stack = rt.block_on(Stack::with_adapter(&[]));
    let counter = AtomicU64::new(0);
    let tally = std::sync::Mutex::new(Tally::default());
    let mut runner = TestRunner::new(Config {
        cases,
        // Every case talks to a real device: keep shrinking bounded.
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&sale(), |g| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let mut t = tally.lock().unwrap();
        rt.block_on(run_case(&stack, &g, n, &mut t))
            .map_err(TestCaseError::fail)
    });
    let t = tally.lock().unwrap();
    println!(
        "generated sales: {} cases, {} printed, {} refused, {} unknown, {} 5xx",
        t.cases, t.printed, t.refused, t.unknown, t.server_errors
    );
    if let Err(e) = result {
        let log = stack.log();
        panic!(
            "{e}\nadapter log tail:\n{}",
            &log[log.len().saturating_sub(3000)..]
        );
    }
    assert_eq!((t.unknown, t.server_errors), (0, 0));
    assert!(
        t.printed > 0 && t.refused > 0,
        "the generator must reach both outcomes: {t:?}"
    );
    drop(t);
    drop(stack);
}
