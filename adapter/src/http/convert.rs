//! Conversions between the wire types of `adapter-api` and the adapter's inner types.
//!
//! Boundary: this is the only place that knows both; everything below `http` speaks `Sale`.

use adapter_api as api;

use crate::sale::{Operation, PAYMENTS_MAX, Sale, SaleError, SaleItem, Taxation, Vat};

/// Turns a parsed request into a validated sale.
pub fn sale_from_request(r: &api::ReceiptRequest) -> Result<Sale, SaleError> {
    let operation = match r.kind {
        api::ReceiptType::Sale => Operation::Sale,
        api::ReceiptType::SaleRefund => Operation::SaleRefund,
        api::ReceiptType::Buy => Operation::Buy,
        api::ReceiptType::BuyRefund => Operation::BuyRefund,
    };
    let taxation = match r.taxation {
        api::Taxation::Osn => Taxation::Osn,
        api::Taxation::UsnIncome => Taxation::UsnIncome,
        api::Taxation::UsnIncomeOutcome => Taxation::UsnIncomeOutcome,
        api::Taxation::Envd => Taxation::Envd,
        api::Taxation::Esn => Taxation::Esn,
        api::Taxation::Patent => Taxation::Patent,
    };
    let items = r.items.iter().map(item_from_api).collect();
    if r.payments.is_empty() {
        return Err(SaleError::NoPayments);
    }
    if r.payments.len() > PAYMENTS_MAX {
        return Err(SaleError::TooManyPayments { max: PAYMENTS_MAX });
    }
    // Same-type payments travel summed in one 5-byte field of the close command.
    let (mut cash, mut card) = (0u64, 0u64);
    for p in &r.payments {
        let (slot, kind) = match p.kind {
            api::PaymentType::Cash => (&mut cash, "cash"),
            api::PaymentType::Card => (&mut card, "card"),
        };
        *slot = slot
            .checked_add(p.amount.kopecks())
            .filter(|v| *v <= kkt_proto::MONEY_MAX)
            .ok_or(SaleError::PaymentSumTooLarge { kind })?;
    }
    Sale::new(
        operation,
        taxation,
        r.operator.clone(),
        r.customer_contact.clone(),
        items,
        cash,
        card,
    )
}

fn item_from_api(i: &api::Item) -> SaleItem {
    let vat = match i.vat {
        api::Vat::Vat20 => Vat::Vat20,
        api::Vat::Vat10 => Vat::Vat10,
        api::Vat::Vat120 => Vat::Vat120,
        api::Vat::Vat110 => Vat::Vat110,
        api::Vat::Vat0 => Vat::Vat0,
        api::Vat::None => Vat::None,
    };
    // FFD 1214 and 1212 numbering.
    let payment_method = match i.payment_method {
        api::PaymentMethod::FullPrepayment => 1,
        api::PaymentMethod::Prepayment => 2,
        api::PaymentMethod::Advance => 3,
        api::PaymentMethod::FullPayment => 4,
        api::PaymentMethod::PartialPayment => 5,
        api::PaymentMethod::Credit => 6,
        api::PaymentMethod::CreditPayment => 7,
    };
    let payment_object = match i.payment_object {
        api::PaymentObject::Commodity => 1,
        api::PaymentObject::Excise => 2,
        api::PaymentObject::Job => 3,
        api::PaymentObject::Service => 4,
        api::PaymentObject::Payment => 10,
        api::PaymentObject::Composite => 12,
        api::PaymentObject::Another => 13,
    };
    SaleItem {
        name: i.name.clone(),
        price_kopecks: i.price.kopecks(),
        quantity_millionths: i.quantity.millionths(),
        sum_kopecks: 0,
        vat,
        payment_method,
        payment_object,
    }
}
