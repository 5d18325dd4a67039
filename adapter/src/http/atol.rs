//! The ATOL web-server compatible API: `POST /api/v2/requests` takes a POS's tasks under its own
//! uuid, `GET /api/v2/requests/{uuid}` answers their state. Every task is validated here, before
//! anything is journaled; the service runs them through the same journal, fiscal step,
//! reconciliation and phase 2 as the native API (`service::tasks`).
//!
//! Boundary: the compatibility choices (what is mapped, what is refused) are the README's table;
//! a task or field the adapter cannot honour is refused by name, never silently dropped, except
//! the ones the table lists as accepted without effect.

use std::sync::Arc;

use adapter_api as api;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{AppState, sale_from_request};
use crate::fiscal::FiscalDocument;
use crate::service::{
    Job, JobKind, KktState, ReceiptRow, RequestView, Snapshot, TaskOutcome, TaskState, TasksError,
};
use api::ErrorCode;

/// Most tasks in one request.
pub const TASKS_MAX: usize = 100;
/// Longest uuid accepted.
pub const UUID_CHARS_MAX: usize = 64;
/// The tax service's site printed on receipts (tag 1060).
const FNS_URL: &str = "www.nalog.gov.ru";

/// An error answer of the ATOL routes: ATOL's numbered `error` beside the adapter's contract.
#[derive(Debug)]
pub struct AtolFailure {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    definite: bool,
}

impl AtolFailure {
    fn definite(code: ErrorCode, message: impl Into<String>) -> Self {
        AtolFailure {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            definite: true,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        AtolFailure::definite(ErrorCode::InvalidField, message)
    }
}

impl From<super::AppError> for AtolFailure {
    fn from(e: super::AppError) -> Self {
        AtolFailure {
            status: StatusCode::from_u16(e.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code,
            message: e.message,
            definite: e.definite,
        }
    }
}

impl IntoResponse for AtolFailure {
    fn into_response(self) -> Response {
        let body = api::AtolErrorBody {
            error: api::AtolError {
                code: error_number(self.code.as_str()),
                description: self.message.clone(),
            },
            contract: api::ErrorBody {
                code: self.code,
                message: self.message,
                definite: self.definite,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The number ATOL's `error.code` and `errorCode` carry for an adapter error code (README table).
pub fn error_number(code: &str) -> u32 {
    match code {
        "malformed_body" | "invalid_field" => 1,
        "kkt_unavailable" => 2,
        "kkt_refused" => 3,
        "reconciliation_pending" => 4,
        "journal_unavailable" => 5,
        "buffer_full" => 6,
        "outcome_unknown" => 7,
        "idempotency_key_reused" => 8,
        "not_found" | "kkt_not_found" => 9,
        "kkt_id_required" => 10,
        _ => 99,
    }
}

/// `POST /api/v2/requests`.
pub(super) async fn post_requests(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Response, AtolFailure> {
    let request: api::AtolRequest = serde_json::from_slice(&body).map_err(|e| {
        AtolFailure::definite(ErrorCode::MalformedBody, format!("request body: {e}"))
    })?;
    check_uuid(&request.uuid)?;
    let tasks = request.request.tasks();
    if tasks.is_empty() || tasks.len() > TASKS_MAX {
        return Err(AtolFailure::invalid(format!(
            "request: 1 to {TASKS_MAX} tasks, not {}",
            tasks.len()
        )));
    }
    let mut jobs = Vec::with_capacity(tasks.len());
    let mut canonical = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let (job, typed) =
            job_of(task).map_err(|m| AtolFailure::invalid(format!("request[{i}]: {m}")))?;
        jobs.push(job);
        canonical.push(typed);
    }
    let register = state.register(request.device_id.as_deref())?;
    // The typed tasks and the device decide "same request": key order and blanks do not.
    let text = serde_json::to_string(&(&canonical, register.id()))
        .map_err(|e| AtolFailure::invalid(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    match register
        .fiscalizer
        .submit_tasks(request.uuid.clone(), hash, jobs)
        .await
    {
        Ok(accepted) => {
            let answer = api::AtolAccepted {
                uuid: request.uuid,
                number: accepted.number,
                is_blocked: accepted.blocked_by.is_some(),
                blocked_uuid: accepted.blocked_by.unwrap_or_default(),
            };
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        Err(e @ TasksError::IdReused) => Err(AtolFailure {
            // ATOL answers a reused uuid with 409.
            status: StatusCode::CONFLICT,
            code: ErrorCode::IdempotencyKeyReused,
            message: format!("uuid {}: {e}", request.uuid),
            definite: true,
        }),
        Err(e @ TasksError::JournalUnavailable(_)) => Err(AtolFailure::definite(
            ErrorCode::JournalUnavailable,
            e.to_string(),
        )),
    }
}

/// `GET /api/v2/requests/{uuid}`.
pub(super) async fn get_request(
    State(state): State<Arc<AppState>>,
    Path(uuid): Path<String>,
) -> Result<Json<api::AtolResults>, AtolFailure> {
    let read_failed = |e: crate::service::JournalError| {
        tracing::error!(error = %e, "task request read failed");
        AtolFailure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: ErrorCode::JournalUnavailable,
            message: "the journal cannot be read right now".into(),
            definite: false,
        }
    };
    let not_found =
        || AtolFailure::definite(ErrorCode::NotFound, format!("no request with uuid {uuid}"));
    let row = state
        .any()
        .fiscalizer
        .task_request_row(&uuid)
        .await
        .map_err(read_failed)?
        .ok_or_else(not_found)?;
    // The register that runs it knows which task is at the device right now (a register no
    // longer configured runs nothing: any register reads its journal).
    let owner = state.shop.get(&row.kkt_id).unwrap_or_else(|_| state.any());
    let view = owner.fiscalizer.task_view(row).await.map_err(read_failed)?;
    Ok(Json(results(&view)))
}

fn check_uuid(uuid: &str) -> Result<(), AtolFailure> {
    let ok = !uuid.is_empty()
        && uuid.len() <= UUID_CHARS_MAX
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AtolFailure::invalid(format!(
            "uuid: 1 to {UUID_CHARS_MAX} characters from A-Z, a-z, 0-9, `-`, `_` and `.`"
        )))
    }
}

/// One task as a job, and its typed form for the request's hash.
fn job_of(task: &Value) -> Result<(Job, Value), String> {
    let kind = task
        .get("type")
        .and_then(Value::as_str)
        .ok_or("a task needs a `type`")?;
    let parse_err = |e: serde_json::Error| e.to_string();
    match kind {
        "sell" | "sellReturn" | "buy" | "buyReturn" => {
            let t: api::AtolReceiptTask =
                serde_json::from_value(task.clone()).map_err(parse_err)?;
            let sale = sale_of(&t)?;
            Ok((Job::Receipt(sale), typed(&t)?))
        }
        "openShift" | "closeShift" | "reportX" => {
            let t: api::AtolShiftTask = serde_json::from_value(task.clone()).map_err(parse_err)?;
            if t.electronically == Some(true) {
                return Err(ELECTRONIC.into());
            }
            if let Some(op) = &t.operator {
                check_operator(op)?;
            }
            let job = match kind {
                "openShift" => Job::OpenShift,
                "closeShift" => Job::CloseShift,
                _ => Job::ReportX,
            };
            Ok((job, typed(&t)?))
        }
        "getShiftStatus" | "getDeviceStatus" | "getFnInfo" | "ofdExchangeStatus" => {
            let t: api::AtolQueryTask = serde_json::from_value(task.clone()).map_err(parse_err)?;
            let job = match kind {
                "getShiftStatus" => Job::ShiftStatus,
                "getDeviceStatus" => Job::DeviceStatus,
                "getFnInfo" => Job::FnInfo,
                _ => Job::OfdExchangeStatus,
            };
            Ok((job, typed(&t)?))
        }
        other => Err(format!(
            "task type `{other}` is not supported by this adapter (supported: sell, sellReturn, \
             buy, buyReturn, openShift, closeShift, reportX, getShiftStatus, getDeviceStatus, \
             getFnInfo, ofdExchangeStatus)"
        )),
    }
}

fn typed<T: serde::Serialize>(t: &T) -> Result<Value, String> {
    serde_json::to_value(t).map_err(|e| e.to_string())
}

const ELECTRONIC: &str = "electronically: true asks for a receipt that is not printed; this adapter \
     prints every receipt (send false or leave it out)";

fn check_operator(op: &api::AtolOperator) -> Result<(), String> {
    if let Some(vatin) = &op.vatin
        && !((vatin.len() == 10 || vatin.len() == 12) && vatin.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "operator.vatin: an INN of 10 or 12 digits, not `{vatin}`"
        ));
    }
    Ok(())
}

/// A receipt task as a validated sale, with the same limits as the native API.
fn sale_of(t: &api::AtolReceiptTask) -> Result<crate::sale::Sale, String> {
    let kind = match t.kind.as_str() {
        "sell" => api::ReceiptType::Sale,
        "sellReturn" => api::ReceiptType::SaleRefund,
        "buy" => api::ReceiptType::Buy,
        _ => api::ReceiptType::BuyRefund,
    };
    if t.electronically == Some(true) {
        return Err(ELECTRONIC.into());
    }
    if let Some(op) = &t.operator {
        check_operator(op)?;
    }
    let taxation = match t.taxation_type {
        api::AtolTaxation::Osn => api::Taxation::Osn,
        api::AtolTaxation::UsnIncome => api::Taxation::UsnIncome,
        api::AtolTaxation::UsnIncomeOutcome => api::Taxation::UsnIncomeOutcome,
        api::AtolTaxation::Envd => api::Taxation::Envd,
        api::AtolTaxation::Esn => api::Taxation::Esn,
        api::AtolTaxation::Patent => api::Taxation::Patent,
    };
    let mut items = Vec::new();
    // (index in the task's items, the amount the POS stated)
    let mut amounts = Vec::new();
    for (j, item) in t.items.iter().enumerate() {
        let p = match item {
            api::AtolItem::Position(p) => p,
            api::AtolItem::Text(_) => continue,
        };
        if p.marking_code.is_some() {
            return Err(format!(
                "items[{j}].markingCode: marked goods are not supported by this adapter"
            ));
        }
        if p.department.is_some_and(|d| d != 1) {
            return Err(format!(
                "items[{j}].department: only department 1 is supported"
            ));
        }
        let vat = match p.tax.kind {
            api::AtolVat::None => api::Vat::None,
            api::AtolVat::Vat0 => api::Vat::Vat0,
            api::AtolVat::Vat10 => api::Vat::Vat10,
            api::AtolVat::Vat110 => api::Vat::Vat110,
            api::AtolVat::Vat20 => api::Vat::Vat20,
            api::AtolVat::Vat120 => api::Vat::Vat120,
            api::AtolVat::Vat18 | api::AtolVat::Vat118 => {
                return Err(format!(
                    "items[{j}].tax.type: 18% VAT ended in 2019; use vat20 or vat120"
                ));
            }
        };
        let payment_method = match p
            .payment_method
            .unwrap_or(api::AtolPaymentMethod::FullPayment)
        {
            api::AtolPaymentMethod::FullPrepayment => api::PaymentMethod::FullPrepayment,
            api::AtolPaymentMethod::Prepayment => api::PaymentMethod::Prepayment,
            api::AtolPaymentMethod::Advance => api::PaymentMethod::Advance,
            api::AtolPaymentMethod::FullPayment => api::PaymentMethod::FullPayment,
            api::AtolPaymentMethod::PartialPayment => api::PaymentMethod::PartialPayment,
            api::AtolPaymentMethod::Credit => api::PaymentMethod::Credit,
            api::AtolPaymentMethod::CreditPayment => api::PaymentMethod::CreditPayment,
        };
        let payment_object = match p
            .payment_object
            .unwrap_or(api::AtolPaymentObject::Commodity)
        {
            api::AtolPaymentObject::Commodity => api::PaymentObject::Commodity,
            api::AtolPaymentObject::Excise => api::PaymentObject::Excise,
            api::AtolPaymentObject::Job => api::PaymentObject::Job,
            api::AtolPaymentObject::Service => api::PaymentObject::Service,
            api::AtolPaymentObject::Payment => api::PaymentObject::Payment,
            api::AtolPaymentObject::Composite => api::PaymentObject::Composite,
            api::AtolPaymentObject::Another => api::PaymentObject::Another,
        };
        items.push(api::Item {
            name: p.name.clone(),
            price: p.price,
            quantity: p.quantity,
            vat,
            payment_method,
            payment_object,
        });
        amounts.push((j, p.amount));
    }
    let mut payments = Vec::with_capacity(t.payments.len());
    for (k, pay) in t.payments.iter().enumerate() {
        let kind = match pay.kind.as_str() {
            "cash" | "0" => api::PaymentType::Cash,
            "electronically" | "1" => api::PaymentType::Card,
            other => {
                return Err(format!(
                    "payments[{k}].type: `{other}` is not supported (cash or 0, electronically or 1)"
                ));
            }
        };
        payments.push(api::Payment {
            kind,
            amount: pay.sum,
        });
    }
    let request = api::ReceiptRequest {
        idempotency_key: None,
        kkt_id: None,
        kind,
        taxation,
        operator: t.operator.as_ref().map(|o| o.name.clone()),
        customer_contact: t
            .client_info
            .as_ref()
            .and_then(|c| c.email_or_phone.clone()),
        items,
        payments,
    };
    let sale = sale_from_request(&request).map_err(|e| e.to_string())?;
    for ((j, amount), line) in amounts.iter().zip(&sale.items) {
        if amount.kopecks() != line.sum_kopecks {
            return Err(format!(
                "items[{j}].amount: {} is not price x quantity ({}); discounts are not supported",
                money(amount.kopecks()),
                money(line.sum_kopecks)
            ));
        }
    }
    if let Some(total) = t.total
        && total.kopecks() != sale.total_kopecks
    {
        return Err(format!(
            "total: {} is not the sum of the positions ({})",
            money(total.kopecks()),
            money(sale.total_kopecks)
        ));
    }
    Ok(sale)
}

fn money(kopecks: u64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

fn roubles(kopecks: u64) -> Option<serde_json::Number> {
    serde_json::Number::from_f64(kopecks as f64 / 100.0)
}

/// The answer to a poll.
pub fn results(view: &RequestView) -> api::AtolResults {
    api::AtolResults {
        results: view.tasks.iter().map(|(k, s)| task_result(*k, s)).collect(),
    }
}

fn status_only(status: api::AtolTaskStatus) -> api::AtolTaskResult {
    api::AtolTaskResult {
        status,
        error_code: 0,
        error_description: String::new(),
        error: api::AtolError {
            code: 0,
            description: String::new(),
        },
        result: None,
    }
}

fn ready(output: api::AtolTaskOutput) -> api::AtolTaskResult {
    api::AtolTaskResult {
        result: Some(output),
        ..status_only(api::AtolTaskStatus::Ready)
    }
}

fn error(code: &str, description: &str) -> api::AtolTaskResult {
    let number = error_number(code);
    api::AtolTaskResult {
        status: api::AtolTaskStatus::Error,
        error_code: number,
        error_description: description.to_owned(),
        error: api::AtolError {
            code: number,
            description: description.to_owned(),
        },
        result: None,
    }
}

fn task_result(kind: JobKind, state: &TaskState) -> api::AtolTaskResult {
    match state {
        TaskState::Wait => status_only(api::AtolTaskStatus::Wait),
        TaskState::InProgress => status_only(api::AtolTaskStatus::InProgress),
        TaskState::Blocked => status_only(api::AtolTaskStatus::Blocked),
        TaskState::Interrupted => status_only(api::AtolTaskStatus::Interrupted),
        TaskState::Receipt(row) => receipt_result(row),
        TaskState::Done(outcome) => match outcome {
            TaskOutcome::Receipt => error("not_found", "the receipt is no longer in the journal"),
            TaskOutcome::Failed { code, message } => error(code, message),
            TaskOutcome::Printed => ready(api::AtolTaskOutput::default()),
            TaskOutcome::Document(d) => ready(api::AtolTaskOutput {
                fiscal_params: Some(api::AtolFiscalParams {
                    fiscal_document_number: d.fd_number,
                    fiscal_document_sign: d.fpd.to_string(),
                    fiscal_document_date_time: d.datetime.clone(),
                    fiscal_receipt_number: None,
                    fn_number: d.fn_number.clone(),
                    registration_number: d.registration_number.clone(),
                    shift_number: d.shift_number,
                    total: None,
                    fns_url: None,
                }),
                ..api::AtolTaskOutput::default()
            }),
            TaskOutcome::Snapshot(s) => ready(snapshot_output(kind, s)),
        },
    }
}

fn receipt_result(row: &ReceiptRow) -> api::AtolTaskResult {
    match (row.kkt_state, row.fiscal.as_ref()) {
        (KktState::Fiscalized, Some(f)) => ready(api::AtolTaskOutput {
            fiscal_params: Some(fiscal_params(f)),
            ..api::AtolTaskOutput::default()
        }),
        (KktState::Rejected, _) => {
            let reason = row.last_error.clone().unwrap_or_default();
            error(
                "kkt_refused",
                &format!("the receipt was not printed: {reason}"),
            )
        }
        _ => status_only(api::AtolTaskStatus::InProgress),
    }
}

fn fiscal_params(f: &FiscalDocument) -> api::AtolFiscalParams {
    api::AtolFiscalParams {
        fiscal_document_number: f.fd_number,
        fiscal_document_sign: f.fpd.to_string(),
        fiscal_document_date_time: f.fiscal_time.clone(),
        fiscal_receipt_number: Some(f.receipt_number),
        fn_number: f.fn_number.clone(),
        registration_number: f.registration_number(),
        shift_number: f.shift_number,
        total: roubles(f.total_kopecks.max(0) as u64),
        fns_url: Some(FNS_URL.to_owned()),
    }
}

fn shift_state(s: &Snapshot) -> &'static str {
    match (s.shift_open, s.shift_expired) {
        (_, true) => "expired",
        (true, false) => "opened",
        (false, false) => "closed",
    }
}

fn snapshot_output(kind: JobKind, s: &Snapshot) -> api::AtolTaskOutput {
    let mut out = api::AtolTaskOutput::default();
    let fiscal = s.fn_life_phase & 0x02 != 0;
    match kind {
        JobKind::ShiftStatus => {
            out.shift_status = Some(api::AtolShiftStatus {
                state: shift_state(s).to_owned(),
                number: s.shift_number,
            });
        }
        JobKind::DeviceStatus => {
            out.device_status = Some(api::AtolDeviceStatus {
                current_date_time: s.fn_datetime.clone(),
                shift: shift_state(s).to_owned(),
                paper_present: s.paper_present,
                cover_opened: s.cover_open,
                fiscal,
                fn_fiscal: fiscal,
                fn_present: true,
                blocked: s.blocked,
                mode_code: s.mode_code,
            });
        }
        JobKind::FnInfo => {
            let p = s.fn_life_phase;
            let live_phase = if p & 0x0C == 0x0C {
                "accessArchive"
            } else if p & 0x04 != 0 {
                "postFiscalMode"
            } else if p & 0x02 != 0 {
                "fiscalMode"
            } else {
                "configuration"
            };
            let w = s.fn_warnings;
            out.fn_info = Some(api::AtolFnInfo {
                serial: s.fn_number.clone(),
                live_phase: live_phase.to_owned(),
                last_document_number: s.last_fd,
                warnings: api::AtolFnWarnings {
                    need_replacement: w & 0x01 != 0,
                    resource_exhausted: w & 0x02 != 0,
                    memory_overflow: w & 0x04 != 0,
                    ofd_timeout: w & 0x08 != 0,
                    critical_error: w & 0x80 != 0,
                },
            });
        }
        JobKind::OfdExchangeStatus => {
            out.status = Some(api::AtolOfdExchange {
                not_sent_count: u32::from(s.ofd_queue_len),
                not_sent_first_doc_number: s.ofd_first_fd,
                not_sent_first_doc_date_time: s.ofd_first_datetime.clone(),
            });
        }
        // A snapshot is only ever the outcome of a query task.
        JobKind::Receipt | JobKind::OpenShift | JobKind::CloseShift | JobKind::ReportX => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(task: &str) -> Result<Job, String> {
        job_of(&serde_json::from_str(task).unwrap()).map(|(j, _)| j)
    }

    /// The `sell` task the public clients send (PROTOCOLS.md, from the TypeScript client's types).
    #[test]
    fn a_public_sell_task_is_a_sale_of_the_same_amounts() {
        let Job::Receipt(sale) = job(r#"{"type":"sell","taxationType":"osn",
            "operator":{"name":"Иванов","vatin":"123654789507"},
            "items":[{"type":"position","name":"Хлеб","price":30,"quantity":2,"amount":60,
                      "tax":{"type":"vat10"},"paymentMethod":"fullPayment","paymentObject":"commodity"}],
            "payments":[{"type":"cash","sum":60}],"total":60}"#)
        .unwrap() else {
            panic!("a receipt");
        };
        assert_eq!((sale.total_kopecks, sale.cash_kopecks), (6_000, 6_000));
        assert_eq!(sale.operator.as_deref(), Some("Иванов"));
    }

    /// A one-position sell of 10.00 with the given amount, VAT, payment type and total.
    fn sell(amount: u32, vat: &str, pay: &str, total: Option<u32>) -> String {
        let mut t = serde_json::json!({"type":"sell","taxationType":"osn",
            "items":[{"type":"position","name":"x","price":10,"quantity":1,"amount":amount,
                      "tax":{"type":vat}}],
            "payments":[{"type":pay,"sum":10}]});
        if let Some(total) = total {
            t["total"] = serde_json::json!(total);
        }
        t.to_string()
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        assert!(
            job(&sell(10, "none", "cash", Some(10))).is_ok(),
            "the base case sells"
        );
        let cases = [
            (
                r#"{"type":"cashIn","cashSum":100}"#.to_owned(),
                "task type `cashIn`",
            ),
            (sell(9, "none", "cash", None), "items[0].amount"),
            (sell(10, "vat18", "cash", None), "items[0].tax.type"),
            (sell(10, "none", "prepaid", None), "payments[0].type"),
            (sell(10, "none", "cash", Some(11)), "total: 11.00"),
            (
                r#"{"type":"openShift","electronically":true}"#.to_owned(),
                "electronically",
            ),
            (
                r#"{"type":"getShiftStatus","extra":1}"#.to_owned(),
                "unknown field `extra`",
            ),
        ];
        for (task, named) in cases {
            let e = job(&task).unwrap_err();
            assert!(e.contains(named), "{task}: {e}");
        }
    }

    #[test]
    fn text_lines_between_positions_are_not_sold() {
        let Job::Receipt(sale) = job(r#"{"type":"sell","taxationType":"usnIncome",
            "items":[{"type":"position","name":"Бананы","price":10.0,"quantity":0.5,"amount":5.0,
                      "tax":{"type":"none"},"paymentObject":"commodity","paymentMethod":"fullPayment"},
                     {"type":"text","text":"--------","alignment":"left","font":0,
                      "doubleWidth":false,"doubleHeight":false}],
            "payments":[{"type":"1","sum":5}]}"#)
        .unwrap() else {
            panic!("a receipt");
        };
        assert_eq!((sale.items.len(), sale.card_kopecks), (1, 500));
    }
}
