//! The OpenAPI 3 document of the POS API, generated from the `adapter-api` types and served at
//! `GET /openapi.json`; `docs/openapi.json` is a committed copy that a test keeps current.
//!
//! Each route of `app()` has one operation here: a stub function whose `#[utoipa::path]` gives
//! the path, parameters, request body and success answers, and a row of [`OPERATIONS`] that gives
//! the role it needs and the error codes its handler answers. [`document`] adds the rest from
//! those rows: the security requirement, the role in the description, and one error response per
//! HTTP status with the codes that status carries (the codes' statuses come from
//! [`ErrorCode::http_status`], so a status and its codes cannot disagree). Errors answered by the
//! layers around the handlers (auth, body and head limits, load) are added by the same rules for
//! every operation they apply to.
//!
//! Boundary: the document describes; it does not route. `routes()` in `mod.rs` is the list of what
//! is routed, and a test checks that the two agree and that each documented role is what the
//! auth layer enforces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use adapter_api::{
    BackupRequest, BackupResponse, BufferStatus, Devices, DlqList, DlqRetryOneResponse,
    DlqRetryRequest, DlqRetryResponse, ErrorBody, ErrorCode, Health, KktStatus, Readiness,
    ReceiptRequest, ReceiptResponse, ResolveRequest, ResolveResponse, ShiftResponse, SyncResult,
};
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, Response};

/// The name of the bearer security scheme in the document.
const BEARER: &str = "bearer";
/// The media type of every JSON answer and body.
const JSON: &str = "application/json";

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token needed.
    Open,
    /// A `pos` or an `admin` token.
    Pos,
    /// An `admin` token.
    Admin,
}

/// One operation: its method and path as `app()` routes them, who may call it, and the error
/// codes its handler answers (the layers' codes are added by [`layer_errors`]).
struct OperationRow {
    method: &'static str,
    path: &'static str,
    access: Access,
    errors: &'static [ErrorCode],
}

const fn row(
    method: &'static str,
    path: &'static str,
    access: Access,
    errors: &'static [ErrorCode],
) -> OperationRow {
    OperationRow {
        method,
        path,
        access,
        errors,
    }
}

use ErrorCode as E;

/// The errors of a shift command on the one register (`/v1/kkt/shift/...`).
const SHIFT_ONE_ERRORS: &[ErrorCode] = &[
    E::KktRefused,
    E::KktUnavailable,
    E::ReconciliationPending,
    E::KktIdRequired,
    E::Internal,
];

/// The errors of a shift command on a named register (`/v1/kkt/devices/{kkt_id}/shift/...`).
const SHIFT_OF_ERRORS: &[ErrorCode] = &[
    E::KktRefused,
    E::KktUnavailable,
    E::ReconciliationPending,
    E::KktNotFound,
    E::Internal,
];

/// Every operation's role and handler error codes.
const OPERATIONS: &[OperationRow] = &[
    row(
        "post",
        "/v1/kkt/receipt",
        Access::Pos,
        &[
            E::MalformedBody,
            E::InvalidField,
            E::IdempotencyKeyMissing,
            E::IdempotencyKeyReused,
            E::RequestInProgress,
            E::KktRefused,
            E::BufferFull,
            E::JournalUnavailable,
            E::KktUnavailable,
            E::ReconciliationPending,
            E::KktNotFound,
            E::KktIdRequired,
            E::Internal,
        ],
    ),
    row(
        "get",
        "/v1/kkt/receipt",
        Access::Pos,
        &[E::InvalidQuery, E::NotFound, E::JournalUnavailable],
    ),
    row(
        "get",
        "/v1/kkt/receipt/{receipt_id}",
        Access::Pos,
        &[E::NotFound, E::JournalUnavailable],
    ),
    row(
        "post",
        "/v1/kkt/receipt/{receipt_id}/resolve",
        Access::Admin,
        &[
            E::MalformedBody,
            E::InvalidField,
            E::NotFound,
            E::NotUnresolved,
            E::KktUnavailable,
            E::KktNotFound,
            E::JournalUnavailable,
        ],
    ),
    row(
        "get",
        "/v1/kkt/buffer/status",
        Access::Pos,
        &[E::JournalUnavailable],
    ),
    row(
        "post",
        "/v1/kkt/buffer/sync",
        Access::Admin,
        &[E::InvalidQuery, E::Internal],
    ),
    row(
        "get",
        "/v1/kkt/buffer/dlq",
        Access::Pos,
        &[E::JournalUnavailable],
    ),
    row(
        "post",
        "/v1/kkt/buffer/dlq/retry",
        Access::Admin,
        &[
            E::MalformedBody,
            E::InvalidField,
            E::JournalUnavailable,
            E::Internal,
        ],
    ),
    row(
        "post",
        "/v1/admin/backup",
        Access::Admin,
        &[E::MalformedBody, E::BackupNotConfigured, E::BackupFailed],
    ),
    row(
        "post",
        "/v1/kkt/buffer/dlq/{receipt_id}/retry",
        Access::Admin,
        &[
            E::NotFound,
            E::NotInDlq,
            E::KktNotFound,
            E::JournalUnavailable,
            E::Internal,
        ],
    ),
    row("post", "/v1/kkt/shift/open", Access::Pos, SHIFT_ONE_ERRORS),
    row("post", "/v1/kkt/shift/close", Access::Pos, SHIFT_ONE_ERRORS),
    row(
        "get",
        "/v1/kkt/status",
        Access::Pos,
        &[E::KktUnavailable, E::KktIdRequired],
    ),
    row("get", "/v1/kkt/devices", Access::Pos, &[]),
    row(
        "get",
        "/v1/kkt/devices/{kkt_id}/status",
        Access::Pos,
        &[E::KktUnavailable, E::KktNotFound],
    ),
    row(
        "post",
        "/v1/kkt/devices/{kkt_id}/shift/open",
        Access::Pos,
        SHIFT_OF_ERRORS,
    ),
    row(
        "post",
        "/v1/kkt/devices/{kkt_id}/shift/close",
        Access::Pos,
        SHIFT_OF_ERRORS,
    ),
    row("get", "/v1/health", Access::Open, &[E::JournalUnavailable]),
    row("get", "/v1/ready", Access::Open, &[]),
    row("get", "/metrics", Access::Admin, &[E::JournalUnavailable]),
    row("get", "/openapi.json", Access::Open, &[]),
];

/// The error codes the layers around the handlers answer for an operation: the origin and host
/// checks (every operation), the token check and the per-token rate (operations that need a
/// token), the body's size, media type and read timeout (operations with a body), and the
/// request-head and load limits (every operation).
fn layer_errors(method: &str, access: Access) -> Vec<ErrorCode> {
    let mut codes = vec![
        E::Forbidden,
        E::UriTooLong,
        E::HeadersTooLarge,
        E::Overloaded,
    ];
    if access != Access::Open {
        codes.extend([E::Unauthorized, E::RateLimited]);
    }
    if method == "post" {
        codes.extend([E::BodyTooLarge, E::UnsupportedMediaType, E::RequestTimeout]);
    }
    codes
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fiscal adapter POS API",
        description = "The native HTTP API of the fiscal adapter between a POS and a Shtrih-M KKT \
            (54-FZ). Every error answer is an `ErrorBody`: a stable `code`, a human `message`, and \
            `definite` (true: the operation certainly did not happen; false: retry with the SAME \
            idempotency key)."
    ),
    paths(
        post_receipt,
        get_receipt_by_key,
        get_receipt,
        resolve,
        buffer_status,
        buffer_sync,
        dlq_list,
        dlq_retry_many,
        backup,
        dlq_retry,
        shift_open,
        shift_close,
        kkt_status,
        devices,
        device_status,
        device_shift_open,
        device_shift_close,
        health,
        ready,
        metrics,
        openapi
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "receipts", description = "Selling, and the receipts the adapter journaled."),
        (name = "delivery", description = "The buffer of fiscal documents on their way to the OFD."),
        (name = "kkt", description = "The shift and the register."),
        (name = "service", description = "Health, readiness, metrics, backup and this document.")
    )
)]
struct ApiDoc;

/// The document, with roles, security and error answers filled in from [`OPERATIONS`].
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.license = None;
    doc.info.contact = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token configured with `--auth-token NAME:ROLE:SECRET`, sent as \
                     `Authorization: Bearer SECRET`. The role is `pos` or `admin`; an admin token \
                     may call every operation. The scopes of an operation's requirement name the \
                     role it needs. Without any configured token (allowed only on a loopback \
                     address) every request addressed to localhost is served as admin.",
                ))
                .build(),
        ),
    );
    require_answer_fields(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("put", item.put.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ];
        for (method, operation) in operations
            .into_iter()
            .filter_map(|(m, o)| o.map(|o| (m, o)))
        {
            complete(method, path, operation);
        }
    }
    doc
}

/// Marks every field of an answer's schema as required: answers always carry every field (`null`
/// when it has no value), so a client may rely on its presence. Schemas reachable from a request
/// body keep serde's rule (a field with a default, or an `Option`, may be left out).
fn require_answer_fields(doc: &mut utoipa::openapi::OpenApi) {
    let mut requests = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for item in doc.paths.paths.values() {
        for operation in [&item.get, &item.post, &item.put, &item.delete, &item.patch]
            .into_iter()
            .flatten()
        {
            if let Some(body) = &operation.request_body {
                collect_refs(&serde_json::to_value(body).unwrap_or_default(), &mut todo);
            }
        }
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    while let Some(name) = todo.pop() {
        if requests.insert(name.clone())
            && let Some(schema) = components.schemas.get(&name)
        {
            collect_refs(&serde_json::to_value(schema).unwrap_or_default(), &mut todo);
        }
    }
    for (name, schema) in components.schemas.iter_mut() {
        if let RefOr::T(Schema::Object(object)) = schema
            && !requests.contains(name)
        {
            object.required = object.properties.keys().cloned().collect();
        }
    }
}

/// The component schema names that `value` refers to.
fn collect_refs(value: &serde_json::Value, names: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            names.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(v, names),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// Fills in one operation from its row; panics if it has none (a test renders the document).
fn complete(method: &str, path: &str, operation: &mut Operation) {
    let row = OPERATIONS
        .iter()
        .find(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("no OPERATIONS row for {method} {path}"));
    let role_line = match row.access {
        Access::Open => "Open: no token needed.".to_owned(),
        Access::Pos => "Role: `pos` (an `admin` token may call it too).".to_owned(),
        Access::Admin => "Role: `admin`.".to_owned(),
    };
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{role_line}"),
        _ => role_line,
    });
    operation.security = Some(match row.access {
        Access::Open => Vec::new(),
        Access::Pos => vec![SecurityRequirement::new(BEARER, ["pos"])],
        Access::Admin => vec![SecurityRequirement::new(BEARER, ["admin"])],
    });
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in row
        .errors
        .iter()
        .copied()
        .chain(layer_errors(method, row.access))
    {
        let codes = by_status.entry(code.http_status()).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    for (status, codes) in by_status {
        let key = status.to_string();
        let answer = error_response(status, &codes, operation.responses.responses.get(&key));
        operation.responses.responses.insert(key, answer.into());
    }
}

/// The answer for an error status: an [`ErrorBody`] whose `code` is one of `codes`. When the
/// operation documents its own answer for the status (health and readiness answer 503 with their
/// usual body), the body is either one.
fn error_response(status: u16, codes: &[ErrorCode], own: Option<&RefOr<Response>>) -> Response {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let error_schema: Schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("ErrorBody"))
        .item(
            ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names.clone())),
            ),
        )
        .into();
    let listed = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut description = format!("{reason}: an `ErrorBody` with code {listed}.");
    let mut schema: RefOr<Schema> = error_schema.into();
    let own = match own {
        Some(RefOr::T(own)) => own
            .content
            .get(JSON)
            .and_then(|c| match c {
                RefOr::T(c) => c.schema.clone(),
                RefOr::Ref(_) => None,
            })
            .map(|schema| (own.description.as_str(), schema)),
        _ => None,
    };
    if let Some((own_description, own_schema)) = own {
        schema = OneOfBuilder::new().item(own_schema).item(schema).into();
        description = format!("{own_description} Or {description}");
    }
    ResponseBuilder::new()
        .description(description)
        .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
        .build()
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub(super) async fn serve() -> axum::response::Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(openapi_json).as_str();
    ([(header::CONTENT_TYPE, JSON)], text).into_response()
}

// The operations. Each stub carries the documentation of one route; the handlers are in `mod.rs`,
// `status.rs`, `resolve.rs`, `backup.rs` and `metrics.rs`.

/// Sell: fiscalize a receipt.
///
/// The receipt is journaled durably before anything is sent to the KKT. The idempotency key (the
/// `Idempotency-Key` header or the `idempotency_key` field; when both are given they must agree)
/// makes the request safe to repeat: the same key with the same body answers the first outcome,
/// with another body 422 `idempotency_key_reused`. After an answer with `definite: false`, or none
/// at all, retry with the SAME key. `buffered` means the receipt is journaled and its KKT outcome
/// is being reconciled: poll `GET /v1/kkt/receipt/{receipt_id}`.
#[utoipa::path(
    post,
    path = "/v1/kkt/receipt",
    tag = "receipts",
    operation_id = "post_receipt",
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false,
            description = "1 to 128 printable characters; or the body's `idempotency_key`")
    ),
    request_body = ReceiptRequest,
    responses(
        (status = 200, description = "Printed (`printed`) or journaled and being reconciled (`buffered`).",
            body = ReceiptResponse)
    )
)]
#[allow(dead_code)]
fn post_receipt() {}

/// A receipt by its idempotency key.
#[utoipa::path(
    get,
    path = "/v1/kkt/receipt",
    tag = "receipts",
    operation_id = "get_receipt_by_key",
    params(("idempotency_key" = String, Query, description = "The key the receipt was sold with")),
    responses((status = 200, description = "The receipt.", body = ReceiptResponse))
)]
#[allow(dead_code)]
fn get_receipt_by_key() {}

/// A receipt by its id.
#[utoipa::path(
    get,
    path = "/v1/kkt/receipt/{receipt_id}",
    tag = "receipts",
    operation_id = "get_receipt",
    params(("receipt_id" = String, Path, description = "The id the sale was answered with")),
    responses((status = 200, description = "The receipt.", body = ReceiptResponse))
)]
#[allow(dead_code)]
fn get_receipt() {}

/// Settle a receipt stuck in reconciliation by reading the FN.
///
/// The FN either holds the receipt (`fiscalized`) or proves it absent (`absent`; the receipt is
/// then `rejected`). The token's name and the reason go to the journal's audit trail.
#[utoipa::path(
    post,
    path = "/v1/kkt/receipt/{receipt_id}/resolve",
    tag = "receipts",
    operation_id = "resolve_receipt",
    params(("receipt_id" = String, Path, description = "The receipt to settle")),
    request_body = ResolveRequest,
    responses((status = 200, description = "Settled.", body = ResolveResponse))
)]
#[allow(dead_code)]
fn resolve() {}

/// The buffer of fiscal documents not yet delivered to the OFD.
#[utoipa::path(
    get,
    path = "/v1/kkt/buffer/status",
    tag = "delivery",
    operation_id = "buffer_status",
    responses((status = 200, description = "The buffer's counts and delivery state.", body = BufferStatus))
)]
#[allow(dead_code)]
fn buffer_status() {}

/// Run one delivery pass to the OFD now.
#[utoipa::path(
    post,
    path = "/v1/kkt/buffer/sync",
    tag = "delivery",
    operation_id = "buffer_sync",
    params(("force" = Option<bool>, Query,
        description = "Attempt even while the circuit breaker is open or the pass backs off")),
    responses((status = 200, description = "What the pass did and why it stopped.", body = SyncResult))
)]
#[allow(dead_code)]
fn buffer_sync() {}

/// The documents the OFD refused (the DLQ), at most 1000.
#[utoipa::path(
    get,
    path = "/v1/kkt/buffer/dlq",
    tag = "delivery",
    operation_id = "dlq_list",
    responses((status = 200, description = "The DLQ.", body = DlqList))
)]
#[allow(dead_code)]
fn dlq_list() {}

/// Retry several DLQ documents, or all of them, then run one delivery pass.
///
/// Give either `all: true` or 1 to 100 `receipt_ids`. With `all` and a longer DLQ the first 100
/// (FN/FD order) are retried; `dlq_size` says how many are left.
#[utoipa::path(
    post,
    path = "/v1/kkt/buffer/dlq/retry",
    tag = "delivery",
    operation_id = "dlq_retry_many",
    request_body = DlqRetryRequest,
    responses((status = 200, description = "One result per id, in request order.", body = DlqRetryResponse))
)]
#[allow(dead_code)]
fn dlq_retry_many() {}

/// Back up the journal into the configured backup directory.
///
/// The body is empty or `{}`: the adapter names the file. The copy is checked before the answer.
#[utoipa::path(
    post,
    path = "/v1/admin/backup",
    tag = "service",
    operation_id = "backup",
    request_body(content = Option<BackupRequest>, content_type = "application/json",
        description = "Empty, or `{}`"),
    responses((status = 200, description = "The checked backup file.", body = BackupResponse))
)]
#[allow(dead_code)]
fn backup() {}

/// Retry one DLQ document, then run one delivery pass.
#[utoipa::path(
    post,
    path = "/v1/kkt/buffer/dlq/{receipt_id}/retry",
    tag = "delivery",
    operation_id = "dlq_retry",
    params(("receipt_id" = String, Path, description = "The receipt whose document is in the DLQ")),
    responses((status = 200, description = "The receipt after the pass, and the pass's counts.",
        body = DlqRetryOneResponse))
)]
#[allow(dead_code)]
fn dlq_retry() {}

/// Open the shift.
#[utoipa::path(
    post,
    path = "/v1/kkt/shift/open",
    tag = "kkt",
    operation_id = "shift_open",
    responses((status = 200, description = "The shift-open report.", body = ShiftResponse))
)]
#[allow(dead_code)]
fn shift_open() {}

/// Close the shift.
#[utoipa::path(
    post,
    path = "/v1/kkt/shift/close",
    tag = "kkt",
    operation_id = "shift_close",
    responses((status = 200, description = "The shift-close report.", body = ShiftResponse))
)]
#[allow(dead_code)]
fn shift_close() {}

/// The register's mode and FN.
#[utoipa::path(
    get,
    path = "/v1/kkt/status",
    tag = "kkt",
    operation_id = "kkt_status",
    responses((status = 200, description = "Read from the KKT now.", body = KktStatus))
)]
#[allow(dead_code)]
fn kkt_status() {}

/// Every register behind the adapter, as it last saw each.
#[utoipa::path(
    get,
    path = "/v1/kkt/devices",
    tag = "kkt",
    operation_id = "devices",
    responses((status = 200, description = "In the configured order; no device is asked.", body = Devices))
)]
#[allow(dead_code)]
fn devices() {}

/// One register's mode and FN.
#[utoipa::path(
    get,
    path = "/v1/kkt/devices/{kkt_id}/status",
    tag = "kkt",
    operation_id = "device_status",
    params(("kkt_id" = String, Path, description = "The register's id.")),
    responses((status = 200, description = "Read from that KKT now.", body = KktStatus))
)]
#[allow(dead_code)]
fn device_status() {}

/// Open one register's shift.
#[utoipa::path(
    post,
    path = "/v1/kkt/devices/{kkt_id}/shift/open",
    tag = "kkt",
    operation_id = "device_shift_open",
    params(("kkt_id" = String, Path, description = "The register's id.")),
    responses((status = 200, description = "The shift-open report.", body = ShiftResponse))
)]
#[allow(dead_code)]
fn device_shift_open() {}

/// Close one register's shift.
#[utoipa::path(
    post,
    path = "/v1/kkt/devices/{kkt_id}/shift/close",
    tag = "kkt",
    operation_id = "device_shift_close",
    params(("kkt_id" = String, Path, description = "The register's id.")),
    responses((status = 200, description = "The shift-close report.", body = ShiftResponse))
)]
#[allow(dead_code)]
fn device_shift_close() {}

/// The whole picture for support staff.
///
/// Names no file path and no process id. 503 when `status` is `degraded`, so a monitor that reads
/// only the status code sees that a person is needed.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "service",
    operation_id = "health",
    responses(
        (status = 200, description = "`status` is `ok`.", body = Health),
        (status = 503, description = "`status` is `degraded`.", body = Health)
    )
)]
#[allow(dead_code)]
fn health() {}

/// Whether the adapter can take a sale now.
#[utoipa::path(
    get,
    path = "/v1/ready",
    tag = "service",
    operation_id = "ready",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready.", body = Readiness)
    )
)]
#[allow(dead_code)]
fn ready() {}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    operation_id = "metrics",
    responses((status = 200, description = "The metrics.", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object))
)]
#[allow(dead_code)]
fn openapi() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_describes_a_documented_operation() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for row in OPERATIONS {
            assert!(
                doc["paths"][row.path][row.method].is_object(),
                "OPERATIONS has {} {}, which no stub documents",
                row.method,
                row.path
            );
        }
    }
}
