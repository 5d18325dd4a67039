//! `GET /metrics`: the Prometheus text exposition, with the gauges read at scrape time from the
//! journal, the sync worker and the KKT driver (see `crate::metrics` for the names).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState, journal_error};
use crate::metrics::{Gauges, render};

/// The content type Prometheus expects for the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, AppError> {
    let service = &state.any().fiscalizer;
    let counts = service.counts().await.map_err(journal_error)?;
    let oldest = service
        .oldest_undelivered_by_fn()
        .await
        .map_err(journal_error)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let breaker = state.any().sync.breaker_snapshot();
    let t = breaker.transitions;
    let gauges = Gauges {
        backlog_documents: counts.undelivered,
        oldest_undelivered_age_seconds: oldest
            .into_iter()
            .map(|(fn_number, at_ms)| {
                let age_ms = u64::try_from(now_ms.saturating_sub(at_ms)).unwrap_or(0);
                (fn_number, age_ms / 1_000)
            })
            .collect(),
        dlq_documents: counts.dlq,
        unresolved_receipts: state.unresolved().len() as u64,
        stuck_head: state.network().dlq_head.is_some(),
        kkt_link_up: state.link().ok,
        breaker_state: breaker.state.as_str(),
        breaker_transitions: vec![
            ("CLOSED", t.to_closed),
            ("OPEN", t.to_open),
            ("HALF_OPEN", t.to_half_open),
        ],
    };
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&gauges)).into_response())
}
