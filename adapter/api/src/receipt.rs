//! Receipts: the sale a POS posts, the answer it gets (also from `GET /v1/kkt/receipt/{id}`), and
//! the admin's resolve of a receipt stuck in reconciliation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Money;
use crate::Quantity;

/// `POST /v1/kkt/receipt` body. Unknown fields are refused, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Alternatively given as the `Idempotency-Key` header; one of the two is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The register that prints it (`GET /v1/kkt/devices`); may be left out when the adapter
    /// drives exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kkt_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    pub taxation: Taxation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_contact: Option<String>,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
}

/// Operation type, FFD tag 1054.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptType {
    Sale,
    SaleRefund,
    Buy,
    BuyRefund,
}

/// Taxation system, FFD tag 1055.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Taxation {
    Osn,
    UsnIncome,
    UsnIncomeOutcome,
    Envd,
    Esn,
    Patent,
}

/// One receipt line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    pub price: Money,
    pub quantity: Quantity,
    pub vat: Vat,
    #[serde(default = "PaymentMethod::default_full")]
    pub payment_method: PaymentMethod,
    #[serde(default = "PaymentObject::default_commodity")]
    pub payment_object: PaymentObject,
}

/// VAT rate of an item, FFD tag 1199.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vat {
    Vat20,
    Vat10,
    Vat120,
    Vat110,
    Vat0,
    None,
}

/// Payment method sign, FFD tag 1214.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    FullPrepayment,
    Prepayment,
    Advance,
    FullPayment,
    PartialPayment,
    Credit,
    CreditPayment,
}

impl PaymentMethod {
    fn default_full() -> Self {
        PaymentMethod::FullPayment
    }
}

/// Payment object sign, FFD tag 1212.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentObject {
    Commodity,
    Excise,
    Job,
    Service,
    Payment,
    Composite,
    Another,
}

impl PaymentObject {
    fn default_commodity() -> Self {
        PaymentObject::Commodity
    }
}

/// One payment of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Money,
}

/// How the buyer paid. Change is given only from cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentType {
    Cash,
    Card,
}

/// The answer to a receipt request (and to `GET /v1/kkt/receipt/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResponse {
    pub receipt_id: String,
    /// The register that prints (or printed) it.
    pub kkt_id: String,
    pub status: ReceiptStatus,
    /// `<fn>-<fd>` once fiscalized.
    pub fiscal_doc_id: Option<String>,
    pub fiscal: Option<Fiscal>,
    pub ofd_status: OfdStatus,
}

/// `printed` = fiscalized on the KKT; `buffered` = durably accepted, KKT outcome being reconciled;
/// `rejected` = the KKT definitely refused it (only visible when polling a stored receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Printed,
    Buffered,
    Rejected,
}

/// OFD delivery state of the fiscal document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfdStatus {
    Pending,
    Synced,
    Dlq,
}

/// Fiscal data of a printed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fiscal {
    pub fn_number: String,
    pub fd_number: u32,
    /// FPD as a decimal string, as printed on the receipt.
    pub fpd: String,
    pub shift_number: u32,
    pub receipt_number: u32,
    /// RFC 3339 time of the document, from the KKT clock.
    pub datetime: String,
    pub total: Money,
    /// The receipt QR string `t=..&s=..&fn=..&i=..&fp=..&n=..`.
    pub qr: String,
}

/// `POST /v1/kkt/receipt/{receipt_id}/resolve` body (admin token): the operator asks the adapter to
/// settle a receipt stuck in reconciliation by reading the FN, and says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub reason: String,
}

/// How a resolve ended: the FN holds the receipt, or proved it absent (then it is `rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    Fiscalized,
    Absent,
}

/// The answer to a resolve request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResolveResponse {
    pub receipt: ReceiptResponse,
    pub outcome: ResolveOutcome,
    /// The token name that resolved it (also in the journal's audit trail).
    pub resolved_by: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_receipt_body_parses() {
        let body = r#"{"idempotency_key":"pos1-000123","type":"sale","taxation":"osn","operator":"Ivanova",
            "customer_contact":"+79990000000","items":[{"name":"Progressive lenses","price":"25000.00",
            "quantity":"1","vat":"vat20","payment_method":"full_payment","payment_object":"commodity"}],
            "payments":[{"type":"card","amount":"25000.00"}]}"#;
        let r: ReceiptRequest = serde_json::from_str(body).unwrap();
        assert_eq!(r.kind, ReceiptType::Sale);
        assert_eq!(r.items[0].price.kopecks(), 2_500_000);
        assert_eq!(r.items[0].quantity.millionths(), 1_000_000);
        assert_eq!(r.payments[0].kind, PaymentType::Card);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let body = r#"{"type":"sale","taxation":"osn","items":[],"payments":[],"discount":"1"}"#;
        let err = serde_json::from_str::<ReceiptRequest>(body)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `discount`"), "{err}");
    }
}
