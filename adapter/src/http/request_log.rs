//! One info line per HTTP request: method, matched route, status, duration in ms and requester,
//! and the same request observed in the request latency histogram of `crate::metrics`.
//!
//! [`log_request`] wraps the whole service in `serve.rs`, outside the error contract, so it sees
//! the answer exactly as it leaves. It cannot see routing, so [`note_route`] (a route layer in
//! `app()`) puts the matched route pattern on the answer; the auth layer puts the [`Requester`]
//! there. The route pattern, not the path, is logged: it names the endpoint without receipt ids.
//! `route` is `-` when no route served the request (an unknown path, or a head or body refused by
//! the contract before routing), and `requester` is `-` when no token named one (open routes and
//! refusals).
//!
//! Boundary: requests hyper answers by itself before any service runs (an unparsable or oversized
//! head, see `serve.rs`) are not logged here.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::Requester;

/// The route pattern that served a request, carried on the answer to [`log_request`].
#[derive(Debug, Clone)]
pub(super) struct ServedRoute(String);

/// Route layer: notes the matched route pattern on the answer.
pub(super) async fn note_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| ServedRoute(m.as_str().to_owned()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outermost layer: times the request and logs one line when the answer is ready.
pub(super) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<ServedRoute>()
        .map_or("-", |r| r.0.as_str());
    let requester = response
        .extensions()
        .get::<Requester>()
        .map_or("-", |r| r.name.as_str());
    tracing::info!(
        method = %method,
        route,
        status = response.status().as_u16(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        requester,
        "request"
    );
    crate::metrics::http_request(route, response.status().as_u16(), started.elapsed());
    response
}
