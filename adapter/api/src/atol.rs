//! The ATOL driver web server's task API (`/api/v2/requests`), as public clients of it speak it:
//! a POS already integrated with ATOL talks to the adapter unchanged.
//!
//! Field names and shapes follow the public clients (the Bedunkevich/atol TypeScript client, its
//! types and its mock server; public Python clients of the same API). What the adapter accepts,
//! maps or refuses is the README's compatibility table.
//!
//! Boundary: unknown fields are refused by name, never ignored, as on the native API. Amounts are
//! JSON numbers (or strings) read exactly ([`Money`], [`Quantity`]), never through f64 arithmetic.

use serde::{Deserialize, Serialize};

use crate::{ErrorBody, Money, Quantity};

/// `POST /api/v2/requests` body: the POS's own id and its tasks. `request` may be one task object
/// instead of a list (public clients send both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtolRequest {
    pub uuid: String,
    pub request: OneOrMany,
    /// The register that runs the tasks (the adapter's `kkt_id`); may be left out when the adapter
    /// drives exactly one. The public clients name no device; this field is the adapter's.
    #[serde(rename = "deviceID", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// One task object, or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

impl OneOrMany {
    /// The tasks in order.
    pub fn tasks(&self) -> Vec<&serde_json::Value> {
        match self {
            OneOrMany::Many(v) => v.iter().collect(),
            OneOrMany::One(t) => vec![t],
        }
    }
}

/// A receipt task: `sell`, `sellReturn`, `buy` or `buyReturn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AtolReceiptTask {
    #[serde(rename = "type")]
    pub kind: String,
    pub taxation_type: AtolTaxation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<AtolOperator>,
    pub items: Vec<AtolItem>,
    pub payments: Vec<AtolPayment>,
    /// The receipt total; when given it must equal the sum of the positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<AtolClientInfo>,
    /// `true` asks for an electronic receipt without printing; refused (the adapter prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electronically: Option<bool>,
    /// Accepted; the adapter prints no non-fiscal text whose errors it could ignore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_non_fiscal_print_errors: Option<bool>,
}

/// A shift or report task: `openShift`, `closeShift`, `reportX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AtolShiftTask {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<AtolOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electronically: Option<bool>,
}

/// A query task: `getShiftStatus`, `getDeviceStatus`, `getFnInfo`, `ofdExchangeStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtolQueryTask {
    #[serde(rename = "type")]
    pub kind: String,
}

/// Taxation system, FFD tag 1055.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AtolTaxation {
    Osn,
    UsnIncome,
    UsnIncomeOutcome,
    Envd,
    Esn,
    Patent,
}

/// The cashier: name (tag 1021) and INN (tag 1203).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtolOperator {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vatin: Option<String>,
}

/// The buyer's contact (tag 1008).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AtolClientInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_or_phone: Option<String>,
}

/// One line of a receipt task: a position, or a line of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AtolItem {
    Position(AtolPosition),
    Text(AtolText),
}

/// A position of the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AtolPosition {
    pub name: String,
    pub price: Money,
    pub quantity: Quantity,
    /// The position's sum; it must equal price x quantity rounded to the kopeck.
    pub amount: Money,
    pub tax: AtolTax,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<AtolPaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_object: Option<AtolPaymentObject>,
    /// Department (section); only 1 is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<u32>,
    /// A marking code: refused (marked goods are not supported), named in the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking_code: Option<serde_json::Value>,
}

/// A non-fiscal text line between positions: accepted and not printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AtolText {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_width: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_height: Option<bool>,
}

/// The position's VAT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtolTax {
    #[serde(rename = "type")]
    pub kind: AtolVat,
    /// The VAT sum as the POS computed it; the KKT computes its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<Money>,
}

/// VAT rate, FFD tag 1199. `vat18` and `vat118` ended in 2019 and are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AtolVat {
    None,
    Vat0,
    Vat10,
    Vat110,
    Vat18,
    Vat118,
    Vat20,
    Vat120,
}

/// Payment method sign, FFD tag 1214.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AtolPaymentMethod {
    FullPrepayment,
    Prepayment,
    Advance,
    FullPayment,
    PartialPayment,
    Credit,
    CreditPayment,
}

/// Payment object sign, FFD tag 1212 (the values the native API carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AtolPaymentObject {
    Commodity,
    Excise,
    Job,
    Service,
    Payment,
    Composite,
    Another,
}

/// One payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtolPayment {
    /// `cash` or `0`, `electronically` or `1`; the other ATOL kinds are refused by name.
    #[serde(rename = "type")]
    pub kind: String,
    pub sum: Money,
}

/// `201` answer to `POST /api/v2/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolAccepted {
    pub uuid: String,
    /// The request's sequence number in the adapter's journal.
    pub number: u64,
    /// A task whose outcome is being reconciled holds the register's queue.
    pub is_blocked: bool,
    /// The uuid of that task's request, or `""`.
    #[serde(rename = "blockedUUID")]
    pub blocked_uuid: String,
}

/// `GET /api/v2/requests/{uuid}` answer: one result per task, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtolResults {
    pub results: Vec<AtolTaskResult>,
}

/// The state of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolTaskResult {
    pub status: AtolTaskStatus,
    /// 0 unless `status` is `error`.
    pub error_code: u32,
    pub error_description: String,
    /// The same pair as an object, as the public TypeScript client reads it.
    pub error: AtolError,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AtolTaskOutput>,
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AtolTaskStatus {
    /// Not started yet.
    Wait,
    /// Running on the register.
    InProgress,
    /// Done; `result` holds what it produced.
    Ready,
    /// Failed; nothing fiscal came of it unless the description says otherwise.
    Error,
    /// Not run because an earlier task of the request failed.
    Interrupted,
    /// Its outcome at the register is being reconciled; the register's queue waits for it.
    Blocked,
    /// Not run because the request was cancelled (the adapter never cancels).
    Canceled,
}

/// A numbered error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtolError {
    pub code: u32,
    pub description: String,
}

/// What a finished task produced: one of the members, by task type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolTaskOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_params: Option<AtolFiscalParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_status: Option<AtolShiftStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_status: Option<AtolDeviceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fn_info: Option<AtolFnInfo>,
    /// `ofdExchangeStatus`'s answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AtolOfdExchange>,
}

/// The fiscal document a task made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolFiscalParams {
    /// Tag 1040.
    pub fiscal_document_number: u32,
    /// Tag 1077, decimal, as printed.
    pub fiscal_document_sign: String,
    /// Tag 1012, the KKT's local time `YYYY-MM-DDTHH:MM:SS`.
    pub fiscal_document_date_time: String,
    /// Tag 1042 (receipts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_receipt_number: Option<u32>,
    /// Tag 1041.
    pub fn_number: String,
    /// Tag 1037.
    pub registration_number: String,
    /// Tag 1038.
    pub shift_number: u32,
    /// Tag 1020, roubles (receipts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<serde_json::Number>,
    /// Tag 1060 (receipts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fns_url: Option<String>,
}

/// `getShiftStatus`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolShiftStatus {
    /// `opened`, `closed` or `expired` (open over 24 hours).
    pub state: String,
    /// The current shift's number, or the last one's when closed.
    pub number: u32,
}

/// `getDeviceStatus`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolDeviceStatus {
    /// The FN's clock, `YYYY-MM-DDTHH:MM` (device local time).
    pub current_date_time: String,
    /// `opened`, `closed` or `expired`.
    pub shift: String,
    pub paper_present: bool,
    pub cover_opened: bool,
    /// The KKT is registered (the FN is in fiscal mode).
    pub fiscal: bool,
    pub fn_fiscal: bool,
    pub fn_present: bool,
    /// A receipt's outcome is being reconciled: new receipts wait.
    pub blocked: bool,
    /// The device's mode number (Shtrih-M), for support staff.
    pub mode_code: u8,
}

/// `getFnInfo`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolFnInfo {
    pub serial: String,
    /// `configuration`, `fiscalMode`, `postFiscalMode` or `accessArchive`.
    pub live_phase: String,
    /// The number of the last fiscal document.
    pub last_document_number: u32,
    pub warnings: AtolFnWarnings,
}

/// The FN's warning flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolFnWarnings {
    pub need_replacement: bool,
    pub resource_exhausted: bool,
    pub memory_overflow: bool,
    pub ofd_timeout: bool,
    pub critical_error: bool,
}

/// `ofdExchangeStatus`'s answer: the FN's queue of documents the OFD has not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtolOfdExchange {
    pub not_sent_count: u32,
    /// 0 when the queue is empty.
    pub not_sent_first_doc_number: u32,
    /// `YYYY-MM-DDTHH:MM` device local time, `""` when the queue is empty.
    pub not_sent_first_doc_date_time: String,
}

/// Every error answer of the ATOL routes: ATOL's `error` object, beside the adapter's own error
/// contract (`code`, `message`, `definite`), so both kinds of client read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtolErrorBody {
    pub error: AtolError,
    #[serde(flatten)]
    pub contract: ErrorBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `sell` task of the public TypeScript client's test, as it posts it.
    #[test]
    fn a_public_clients_request_parses_as_a_list_or_one_task() {
        let many =
            r#"{"uuid":"24efab70-4502-11eb-a6c8-1f6f568dbd0e","request":[{"type":"openShift"}]}"#;
        let r: AtolRequest = serde_json::from_str(many).unwrap();
        assert_eq!(r.request.tasks().len(), 1);
        let one = r#"{"uuid":"x","request":{"type":"getShiftStatus"}}"#;
        let r: AtolRequest = serde_json::from_str(one).unwrap();
        assert_eq!(r.request.tasks()[0]["type"], "getShiftStatus");
    }

    #[test]
    fn a_position_reads_amounts_exactly_and_refuses_unknown_fields() {
        let p = r#"{"type":"position","name":"Бананы","price":10.0,"quantity":0.5,"amount":5.0,
            "tax":{"type":"none"}}"#;
        let AtolItem::Position(p) = serde_json::from_str::<AtolItem>(p).unwrap() else {
            panic!("a position");
        };
        assert_eq!(
            (p.price.kopecks(), p.quantity.millionths()),
            (1_000, 500_000)
        );
        let bad = r#"{"type":"position","name":"x","price":1,"quantity":1,"amount":1,
            "tax":{"type":"none"},"infoDiscountSum":1}"#;
        let e = serde_json::from_str::<AtolItem>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("infoDiscountSum"), "{e}");
    }
}
