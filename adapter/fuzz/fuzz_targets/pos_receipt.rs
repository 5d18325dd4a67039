//! Fuzz target: the POS receipt request, parsed as the HTTP layer parses it and validated into a `Sale`.
//!
//! Bytes go to `serde_json::from_slice::<ReceiptRequest>` and, when that parses, to
//! `adapter::http::sale_from_request`, through public API only. Neither may panic. A request that
//! parses serializes to JSON that parses back to the same request (the wire contract round-trips). A
//! sale that validates adds up, whatever the input: items are non-empty and one per requested item,
//! every line's sum is price x quantity rounded half-up to the kopeck, the total is the sum of the
//! lines, the payments cover it, and the change comes from cash only.

#![no_main]

use adapter::http::sale_from_request;
use adapter_api::ReceiptRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ReceiptRequest>(data) else {
        return;
    };
    let json = serde_json::to_vec(&request).expect("a parsed request serializes");
    let again: ReceiptRequest = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a parsed request does not parse back from {}: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(
        again, request,
        "the request changed on its way through JSON"
    );

    let Ok(sale) = sale_from_request(&request) else {
        return;
    };
    assert!(!sale.items.is_empty(), "a sale without items");
    assert_eq!(sale.items.len(), request.items.len());
    for (item, asked) in sale.items.iter().zip(&request.items) {
        assert_eq!(item.price_kopecks, asked.price.kopecks());
        assert_eq!(item.quantity_millionths, asked.quantity.millionths());
        // Half-up: (price x millionths + 500_000) / 1_000_000, exactly, in u128.
        let exact = u128::from(item.price_kopecks) * u128::from(item.quantity_millionths);
        let rounded = (exact + 500_000) / 1_000_000;
        assert_eq!(
            u128::from(item.sum_kopecks),
            rounded,
            "line sum of {item:?}"
        );
    }
    let total: u128 = sale.items.iter().map(|i| u128::from(i.sum_kopecks)).sum();
    assert_eq!(
        u128::from(sale.total_kopecks),
        total,
        "total is not the sum of the lines"
    );
    let (cash, card) = (u128::from(sale.cash_kopecks), u128::from(sale.card_kopecks));
    assert!(cash + card >= total, "underpaid sale: {sale:?}");
    let change = cash + card - total;
    assert!(change <= cash, "change not from cash: {sale:?}");
    assert_eq!(u128::from(sale.change_kopecks()), change);
});
