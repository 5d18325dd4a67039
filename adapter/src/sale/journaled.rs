//! The adapter's own encoding of a validated sale in the journal (`request_body`), versioned, so a
//! receipt journaled before a crash is fiscalized afresh from exactly what was validated, whatever
//! the POS API looks like by then.
//!
//! Version 1 is a JSON object `{"v":1, ...}` written field by field here (the inner types carry no
//! serde derives): amounts in kopecks, quantities in millionths, codes as FFD numbers. Decoding
//! builds the sale through [`Sale::new`], so a journaled sale meets every invariant a new one does.
//! Rows journaled before the encoding was versioned hold the POS request itself (no `v`); they
//! decode as [`Journaled::Legacy`] and the caller reads them with the API's own decoder.

use serde_json::{Map, Value, json};

use super::{Operation, Sale, SaleItem, Taxation, Vat};

/// The version this build writes.
pub const VERSION: u64 = 1;

/// What a journaled body holds.
#[derive(Debug)]
pub enum Journaled {
    /// A sale in a version this build reads.
    Sale(Sale),
    /// A body written before the encoding was versioned: the POS request as received.
    Legacy,
}

/// Encodes a validated sale for the journal.
pub fn encode(sale: &Sale) -> String {
    let items: Vec<Value> = sale
        .items
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "price": i.price_kopecks,
                "quantity": i.quantity_millionths,
                "vat": vat_name(i.vat),
                "payment_method": i.payment_method,
                "payment_object": i.payment_object,
            })
        })
        .collect();
    json!({
        "v": VERSION,
        "operation": sale.operation as u8,
        "taxation": sale.taxation as u8,
        "operator": sale.operator,
        "customer_contact": sale.customer_contact,
        "items": items,
        "cash": sale.cash_kopecks,
        "card": sale.card_kopecks,
    })
    .to_string()
}

/// Decodes a journaled body. An error names what is wrong; such a body is never fiscalized.
pub fn decode(body: &str) -> Result<Journaled, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    match object.get("v") {
        None => Ok(Journaled::Legacy),
        Some(v) if v.as_u64() == Some(VERSION) => v1(object).map(Journaled::Sale),
        Some(v) => Err(format!(
            "journaled sale version {v}; this build reads version {VERSION}"
        )),
    }
}

fn v1(o: &Map<String, Value>) -> Result<Sale, String> {
    let operation = match number(o, "operation")? {
        1 => Operation::Sale,
        2 => Operation::SaleRefund,
        3 => Operation::Buy,
        4 => Operation::BuyRefund,
        n => return Err(format!("operation {n}")),
    };
    let taxation = match number(o, "taxation")? {
        1 => Taxation::Osn,
        2 => Taxation::UsnIncome,
        4 => Taxation::UsnIncomeOutcome,
        8 => Taxation::Envd,
        16 => Taxation::Esn,
        32 => Taxation::Patent,
        n => return Err(format!("taxation {n}")),
    };
    let items = o
        .get("items")
        .and_then(Value::as_array)
        .ok_or("items: missing")?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item = item
                .as_object()
                .ok_or(format!("items[{i}]: not an object"))?;
            let byte = |key: &str| {
                number(item, key).and_then(|n| u8::try_from(n).map_err(|_| format!("{key} {n}")))
            };
            Ok(SaleItem {
                name: text(item, "name")?.ok_or(format!("items[{i}].name: missing"))?,
                price_kopecks: number(item, "price")?,
                quantity_millionths: number(item, "quantity")?,
                sum_kopecks: 0,
                vat: vat_of(&text(item, "vat")?.unwrap_or_default())?,
                payment_method: byte("payment_method")?,
                payment_object: byte("payment_object")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Sale::new(
        operation,
        taxation,
        text(o, "operator")?,
        text(o, "customer_contact")?,
        items,
        number(o, "cash")?,
        number(o, "card")?,
    )
    .map_err(|e| e.to_string())
}

fn number(o: &Map<String, Value>, key: &str) -> Result<u64, String> {
    o.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{key}: missing or not a whole number"))
}

fn text(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key}: not a string")),
    }
}

fn vat_name(vat: Vat) -> &'static str {
    match vat {
        Vat::Vat20 => "vat20",
        Vat::Vat10 => "vat10",
        Vat::Vat120 => "vat120",
        Vat::Vat110 => "vat110",
        Vat::Vat0 => "vat0",
        Vat::None => "none",
    }
}

fn vat_of(name: &str) -> Result<Vat, String> {
    [
        Vat::Vat20,
        Vat::Vat10,
        Vat::Vat120,
        Vat::Vat110,
        Vat::Vat0,
        Vat::None,
    ]
    .into_iter()
    .find(|v| vat_name(*v) == name)
    .ok_or_else(|| format!("vat {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale() -> Sale {
        let item = |name: &str, price, quantity, vat| SaleItem {
            name: name.into(),
            price_kopecks: price,
            quantity_millionths: quantity,
            sum_kopecks: 0,
            vat,
            payment_method: 4,
            payment_object: 1,
        };
        Sale::new(
            Operation::BuyRefund,
            Taxation::Patent,
            Some("Иванова А.".into()),
            None,
            vec![
                item("Молоко 3,2%", 8_990, 1_500_000, Vat::Vat10),
                item("Bag", 500, 1_000_000, Vat::None),
            ],
            20_000,
            0,
        )
        .unwrap()
    }

    #[test]
    fn a_sale_comes_back_exactly_as_journaled() {
        let body = encode(&sale());
        assert!(body.starts_with("{") && body.contains("\"v\":1"), "{body}");
        match decode(&body).unwrap() {
            Journaled::Sale(back) => assert_eq!(back, sale()),
            Journaled::Legacy => panic!("read as legacy"),
        }
    }

    #[test]
    fn every_vat_rate_has_one_name() {
        for vat in [
            Vat::Vat20,
            Vat::Vat10,
            Vat::Vat120,
            Vat::Vat110,
            Vat::Vat0,
            Vat::None,
        ] {
            assert_eq!(vat_of(vat_name(vat)), Ok(vat));
        }
    }

    #[test]
    fn an_unversioned_body_is_legacy_and_a_future_version_is_refused_by_name() {
        let legacy = r#"{"items":[],"payments":[]}"#;
        assert!(matches!(decode(legacy), Ok(Journaled::Legacy)));
        let future = encode(&sale()).replace("\"v\":1", "\"v\":2");
        let err = decode(&future).unwrap_err();
        assert!(err.contains("version 2"), "{err}");
        assert!(decode("[1]").is_err());
    }

    #[test]
    fn a_tampered_body_is_refused_not_fiscalized_differently() {
        // A journaled total no longer adding up fails Sale::new's own checks.
        let underpaid = encode(&sale()).replace("\"cash\":20000", "\"cash\":1");
        assert!(
            decode(&underpaid)
                .unwrap_err()
                .contains("less than the total")
        );
        let bad_vat = encode(&sale()).replace("\"vat10\"", "\"vat18\"");
        assert!(decode(&bad_vat).unwrap_err().contains("vat18"));
    }
}
