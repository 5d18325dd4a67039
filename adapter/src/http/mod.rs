//! The POS HTTP API (axum). This module is the only place that converts between the wire types of
//! `adapter-api` and the adapter's inner types; errors go through [`AppError`].

mod atol;
mod auth;
mod backup;
mod contract;
mod convert;
mod device;
mod error;
mod limits;
mod metrics;
pub mod openapi;
mod page;
mod receipt;
mod request_log;
mod resolve;
mod serve;
mod status;

use std::sync::Arc;
use std::time::Instant;

use adapter_api as api;
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

pub use auth::{OPEN_REQUESTER, Requester};
pub use convert::sale_from_request;
pub use error::AppError;
pub use receipt::decode_legacy_journaled_sale;
pub use serve::{ServeConfig, listen, serve};

use crate::config::Config;
use crate::service::{KktLinkState, UnresolvedInfo};
use crate::shop::{Pick, Register, Shop};
use crate::sync::NetworkView;
use api::ErrorCode;

/// Largest request body accepted; a receipt of 100 items fits many times over.
const BODY_BYTES_MAX: usize = 256 * 1024;
/// Idempotency keys are opaque strings of bounded length.
const KEY_CHARS_MAX: usize = 128;
/// Documents listed by `GET /v1/kkt/buffer/dlq`.
const DLQ_LIST_MAX: u32 = 1_000;

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    /// The registers and their relays.
    pub shop: Shop,
    pub started: Instant,
}

impl AppState {
    /// A register for what is the same from every one: journal-wide reads, the OFD breaker.
    fn any(&self) -> &Register {
        self.shop.any()
    }

    /// The register a request names (`kkt_id`), or the only one: 404 `kkt_not_found` for an
    /// unknown id, 400 `kkt_id_required` when several registers leave the choice open.
    fn register(&self, kkt_id: Option<&str>) -> Result<&Register, AppError> {
        self.shop.pick(kkt_id).map_err(|e| match e {
            Pick::Unknown(_) => AppError::definite(ErrorCode::KktNotFound, e.to_string()),
            Pick::Ambiguous(_) => AppError::definite(ErrorCode::KktIdRequired, e.to_string()),
        })
    }

    /// The network status over every register's relay: the breaker is the OFD endpoint's own,
    /// and any register's stuck head makes it `degraded`.
    fn network(&self) -> NetworkView {
        let mut views = self.shop.all().iter().map(|r| r.sync.network_status());
        let first = views.next().expect("a shop has a register");
        views.fold(first, |acc, v| match (&acc.dlq_head, &v.dlq_head) {
            (None, Some(_)) => v,
            _ => acc,
        })
    }

    /// The KKT links together: up when every register's is; the first failure, named by its
    /// register when there are several.
    fn link(&self) -> KktLinkState {
        let several = self.shop.all().len() > 1;
        let mut out = KktLinkState {
            ok: true,
            last_error: None,
        };
        for r in self.shop.all() {
            let link = r.fiscalizer.link_state();
            if !link.ok && out.ok {
                out.ok = false;
                out.last_error = link.last_error.map(|e| match several {
                    true => format!("register {}: {e}", r.id()),
                    false => e,
                });
            } else if out.ok && out.last_error.is_none() {
                out.last_error = link.last_error;
            }
        }
        out
    }

    /// Every register's receipts whose outcome reconciliation has not settled.
    fn unresolved(&self) -> Vec<UnresolvedInfo> {
        self.shop
            .all()
            .iter()
            .flat_map(|r| r.fiscalizer.unresolved())
            .collect()
    }

    /// Some register has a receipt whose outcome is not known yet.
    fn has_unresolved(&self) -> bool {
        self.shop
            .all()
            .iter()
            .any(|r| r.fiscalizer.has_unresolved())
    }
}

/// One route of the POS API: its method, its path pattern as `app()` declares it, its handler.
type Route = (Method, &'static str, MethodRouter<Arc<AppState>>);

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, Arc<AppState>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes by");
    (method, path, on(filter, handler))
}

/// Every route of the POS API. `app()` registers exactly these; the OpenAPI document
/// (`openapi.rs`) must describe exactly these, which a test checks through [`routes`].
fn route_table() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/kkt/receipt", receipt::post_receipt),
        route(Method::GET, "/v1/kkt/receipt", receipt::get_receipt_by_key),
        route(
            Method::GET,
            "/v1/kkt/receipt/{receipt_id}",
            receipt::get_receipt,
        ),
        route(
            Method::POST,
            "/v1/kkt/receipt/{receipt_id}/resolve",
            resolve::resolve,
        ),
        route(Method::GET, "/v1/kkt/buffer/status", status::buffer_status),
        route(Method::POST, "/v1/kkt/buffer/sync", status::buffer_sync),
        route(Method::GET, "/v1/kkt/buffer/dlq", status::dlq_list),
        route(
            Method::POST,
            "/v1/kkt/buffer/dlq/retry",
            status::dlq_retry_many,
        ),
        route(Method::POST, "/v1/admin/backup", backup::backup),
        route(
            Method::POST,
            "/v1/kkt/buffer/dlq/{receipt_id}/retry",
            status::dlq_retry,
        ),
        route(Method::POST, "/v1/kkt/shift/open", device::shift_open),
        route(Method::POST, "/v1/kkt/shift/close", device::shift_close),
        route(Method::GET, "/v1/kkt/status", device::kkt_status),
        route(Method::GET, "/v1/kkt/devices", device::devices),
        route(
            Method::GET,
            "/v1/kkt/devices/{kkt_id}/status",
            device::device_status,
        ),
        route(
            Method::POST,
            "/v1/kkt/devices/{kkt_id}/shift/open",
            device::device_shift_open,
        ),
        route(
            Method::POST,
            "/v1/kkt/devices/{kkt_id}/shift/close",
            device::device_shift_close,
        ),
        route(Method::GET, "/v1/health", status::health),
        route(Method::GET, "/v1/ready", status::ready),
        route(Method::GET, "/metrics", metrics::metrics),
        route(Method::GET, "/openapi.json", openapi::serve),
    ]
}

/// The ATOL web-server compatible routes (`atol.rs`): described by the README's compatibility
/// table, not by the OpenAPI document of the native API.
fn atol_route_table() -> Vec<Route> {
    vec![
        route(Method::POST, "/api/v2/requests", atol::post_requests),
        route(Method::GET, "/api/v2/requests/{uuid}", atol::get_request),
    ]
}

/// The status page for people (`page.rs`): HTML, not part of the JSON API's contract.
fn page_route_table() -> Vec<Route> {
    vec![route(Method::GET, "/", page::status_page)]
}

/// The method and path pattern of every route of [`app`], in the order it registers them.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The router of the POS API.
pub fn app(state: Arc<AppState>) -> Router {
    route_table()
        .into_iter()
        .chain(atol_route_table())
        .chain(page_route_table())
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        // Inside the auth layer: only an authenticated request's body is waited for.
        .route_layer(axum::middleware::from_fn_with_state(
            (state.config.body_read_timeout, BODY_BYTES_MAX),
            limits::read_body,
        ))
        // After every route: the layer covers only routes added before it (auth.rs).
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(auth::Auth::new(&state.config)),
            auth::check,
        ))
        .route_layer(axum::middleware::from_fn(request_log::note_route))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .fallback(|| async { AppError::definite(ErrorCode::NotFound, "no such endpoint") })
        .with_state(state)
}

fn journal_error(e: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "journal read failed");
    AppError::indefinite(
        ErrorCode::JournalUnavailable,
        "the journal cannot be read right now",
    )
}
