//! The buffer's state as the POS and support staff read it: buffer status, health, readiness, and
//! the DLQ of documents the OFD refused. The delivery view (age of the oldest undelivered document
//! and the stuck head of the FN's queue) is built once here for both status routes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adapter_api as api;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::receipt::receipt_response;
use super::{AppError, AppState, DLQ_LIST_MAX, journal_error};
use crate::service::{BufferCounts, JournalError};
use crate::sync::{BreakerState, SyncError};
use api::ErrorCode;

pub(super) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The backlog's age and the stuck head, with the stuck document's journal details.
pub(super) async fn delivery(
    state: &AppState,
    counts: &BufferCounts,
) -> Result<api::DeliveryHealth, AppError> {
    let now = unix_ms_now();
    let oldest = counts.oldest_undelivered_ms;
    let age_ms = oldest.map(|t| u64::try_from(now.saturating_sub(t)).unwrap_or(0));
    let alarm = state.config.backlog_age_alarm;
    let stuck = match state.network().dlq_head {
        None => None,
        Some(head) => {
            let service = &state.any().fiscalizer;
            let row = service
                .document(&head.fn_number, head.fd)
                .await
                .map_err(journal_error)?;
            let exchange = service
                .ofd_exchange(&head.fn_number, head.fd)
                .await
                .map_err(journal_error)?;
            Some(api::DeliveryStuck {
                fn_number: head.fn_number,
                fd_number: head.fd,
                receipt_id: row.as_ref().map(|r| r.receipt_id.clone()),
                since_unix_ms: row.as_ref().map(|r| r.updated_at_ms),
                response_code: exchange.and_then(|x| x.response_code),
                last_error: row.as_ref().and_then(|r| r.last_error.clone()),
                retry_count: row.as_ref().map_or(0, |r| r.retry_count),
                waiting_behind: u64::from(head.waiting_behind),
            })
        }
    };
    Ok(api::DeliveryHealth {
        oldest_undelivered_unix_ms: oldest,
        oldest_undelivered_age_s: age_ms.map(|ms| ms / 1_000),
        age_alarm_after_s: alarm.as_secs(),
        age_alarm: age_ms.is_some_and(|ms| u128::from(ms) > alarm.as_millis()),
        stuck,
    })
}

pub(super) async fn buffer_status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::BufferStatus>, AppError> {
    let c = state
        .any()
        .fiscalizer
        .counts()
        .await
        .map_err(journal_error)?;
    let capacity = state.config.capacity;
    let percent_full = (c.undelivered as f64 * 100.0 / capacity as f64).clamp(0.0, 100.0);
    let delivery = delivery(&state, &c).await?;
    Ok(Json(api::BufferStatus {
        total_capacity: capacity,
        current_queued: c.undelivered,
        percent_full: (percent_full * 100.0).round() / 100.0,
        network_status: network_status(&state),
        total_receipts: c.total,
        pending: c.pending,
        synced: c.synced,
        failed: c.failed,
        dlq_size: c.dlq,
        in_flight: c.in_kkt,
        unresolved_stuck: state.unresolved().iter().filter(|u| u.stuck).count() as u64,
        oldest_undelivered_unix_ms: delivery.oldest_undelivered_unix_ms,
        oldest_undelivered_age_s: delivery.oldest_undelivered_age_s,
        delivery_stuck: delivery.stuck,
        devices: device_buffers(&state).await?,
    }))
}

/// Each configured register's counts (zeros for one with no rows yet), in the configured order.
async fn device_buffers(state: &AppState) -> Result<Vec<api::DeviceBuffer>, AppError> {
    let by_kkt = state
        .any()
        .fiscalizer
        .counts_by_register()
        .await
        .map_err(journal_error)?;
    Ok(state
        .shop
        .all()
        .iter()
        .map(|r| {
            let c = by_kkt
                .iter()
                .find(|(id, _)| id == r.id())
                .map(|(_, c)| *c)
                .unwrap_or_default();
            api::DeviceBuffer {
                kkt_id: r.id().to_owned(),
                total_receipts: c.total,
                current_queued: c.undelivered,
                pending: c.pending,
                synced: c.synced,
                dlq_size: c.dlq,
                in_flight: c.in_kkt,
                oldest_undelivered_unix_ms: c.oldest_undelivered_ms,
            }
        })
        .collect())
}

fn network_status(state: &AppState) -> api::NetworkStatus {
    api_network_status(state.network().status)
}

pub(super) fn api_network_status(status: crate::sync::NetworkStatus) -> api::NetworkStatus {
    match status {
        crate::sync::NetworkStatus::Online => api::NetworkStatus::Online,
        crate::sync::NetworkStatus::Offline => api::NetworkStatus::Offline,
        crate::sync::NetworkStatus::Degraded => api::NetworkStatus::Degraded,
    }
}

pub(super) async fn dlq_list(
    State(state): State<Arc<AppState>>,
) -> Result<Json<api::DlqList>, AppError> {
    let entries = state
        .any()
        .sync
        .dlq_list(DLQ_LIST_MAX)
        .await
        .map_err(journal_error)?;
    let documents: Vec<api::DlqDocument> = entries
        .into_iter()
        .map(|e| {
            let r = e.receipt;
            api::DlqDocument {
                fiscal_doc_id: r
                    .fiscal
                    .as_ref()
                    .map(|f| format!("{}-{}", f.fn_number, f.fd_number)),
                fd_number: r.fiscal.as_ref().map(|f| f.fd_number),
                receipt_id: r.receipt_id,
                response_code: e.response_code,
                error_code: r.error_code,
                last_error: r.last_error,
                retry_count: r.retry_count,
                first_attempt_unix_ms: e.first_attempt_ms,
                last_attempt_unix_ms: e.last_attempt_ms,
                rejections: e
                    .rejections
                    .into_iter()
                    .map(|x| api::DlqRejection {
                        at_unix_ms: x.at_ms,
                        response_code: x.response_code,
                        error_code: x.error_code,
                        message: x.message,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(api::DlqList {
        dlq_size: documents.len() as u64,
        documents,
    }))
}

/// `POST /v1/kkt/buffer/dlq/{receipt_id}/retry`. A status page's retry button (an HTML form) gets
/// a redirect back to the page naming the document and, when refused, the refusal's code, so the
/// browser lands on the page again; an API client gets the JSON answer.
pub(super) async fn dlq_retry(
    State(state): State<Arc<AppState>>,
    Path(receipt_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answer = dlq_retry_one(&state, &receipt_id).await;
    if !is_html_form(&headers) {
        return answer.map(Json).into_response();
    }
    let id = url_component(&receipt_id);
    let location = match answer {
        Ok(_) => format!("/?retried={id}"),
        Err(e) => format!("/?retried={id}&retry_error={}", e.code.as_str()),
    };
    match HeaderValue::from_str(&location) {
        Ok(l) => (StatusCode::SEE_OTHER, [(header::LOCATION, l)]).into_response(),
        Err(e) => AppError::internal(e).into_response(),
    }
}

/// A request an HTML form sent: `application/x-www-form-urlencoded` (the status page's forms have
/// no fields, so their body is empty and passes the JSON-only body rule).
fn is_html_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Percent-encodes everything but unreserved characters, for a value in a query string.
fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn dlq_retry_one(
    state: &AppState,
    receipt_id: &str,
) -> Result<api::DlqRetryOneResponse, AppError> {
    // The register whose FN holds the document relays it again.
    let owner = match state.any().fiscalizer.receipt(receipt_id).await {
        Ok(Some(row)) => row.kkt_id,
        Ok(None) => {
            return Err(AppError::definite(
                ErrorCode::NotFound,
                format!("no receipt {receipt_id}"),
            ));
        }
        Err(e) => return Err(journal_error(e)),
    };
    match state
        .register(Some(&owner))?
        .sync
        .dlq_retry(receipt_id)
        .await
    {
        Ok((row, pass)) => Ok(api::DlqRetryOneResponse {
            receipt: receipt_response(&row),
            sync: api::SyncCounts {
                synced: pass.synced.into(),
                failed: pass.failed.into(),
                skipped: pass.skipped.into(),
            },
        }),
        Err(SyncError::Journal(JournalError::NotFound(m))) => {
            Err(AppError::definite(ErrorCode::NotFound, m))
        }
        Err(SyncError::Journal(e @ JournalError::InvalidTransition { .. })) => {
            Err(AppError::definite(ErrorCode::NotInDlq, e.to_string()))
        }
        Err(e) => Err(AppError::internal(e)),
    }
}

/// Documents one bulk retry takes; `all` with a longer DLQ retries the first ones (FN/FD order),
/// and the answer's `dlq_size` says how many are left for the next call.
pub(super) const DLQ_RETRY_MAX: usize = 100;

/// `POST /v1/kkt/buffer/dlq/retry`: retry several DLQ documents (`receipt_ids`) or all of them
/// (`all`), each back to pending in one journal transaction, then one delivery pass.
pub(super) async fn dlq_retry_many(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<api::DlqRetryResponse>, AppError> {
    let request: api::DlqRetryRequest = serde_json::from_slice(&body).map_err(|e| {
        AppError::definite(ErrorCode::MalformedBody, format!("dlq retry body: {e}"))
    })?;
    let ids = match (request.all, request.receipt_ids.len()) {
        (true, 0) => {
            let limit = u32::try_from(DLQ_RETRY_MAX).unwrap_or(u32::MAX);
            let entries = state
                .any()
                .sync
                .dlq_list(limit)
                .await
                .map_err(journal_error)?;
            entries.into_iter().map(|e| e.receipt.receipt_id).collect()
        }
        (false, 1..=DLQ_RETRY_MAX) => {
            let mut ids = request.receipt_ids;
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            ids
        }
        _ => {
            return Err(AppError::definite(
                ErrorCode::InvalidField,
                format!(
                    "give either \"all\": true or 1 to {DLQ_RETRY_MAX} \"receipt_ids\", not both"
                ),
            ));
        }
    };
    // One journal transaction and one pass on the first register; the other registers' relays
    // are woken to send what went back to pending on their FNs.
    let (answers, pass) = match state.any().sync.dlq_retry_many(ids.clone()).await {
        Ok(done) => done,
        Err(SyncError::Journal(e)) => return Err(journal_error(e)),
        Err(e) => return Err(AppError::internal(e)),
    };
    for r in state.shop.all().iter().skip(1) {
        r.sync.notify_fiscalized();
    }
    let results = ids
        .into_iter()
        .zip(answers)
        .map(|(receipt_id, answer)| match answer {
            Ok(row) => api::DlqRetryItem {
                receipt_id,
                retried: true,
                error: None,
                ofd_status: Some(receipt_response(&row).ofd_status),
            },
            Err(e) => api::DlqRetryItem {
                receipt_id,
                retried: false,
                error: Some(match e {
                    JournalError::NotFound(_) => ErrorCode::NotFound,
                    _ => ErrorCode::NotInDlq,
                }),
                ofd_status: None,
            },
        })
        .collect();
    let counts = state
        .any()
        .fiscalizer
        .counts()
        .await
        .map_err(journal_error)?;
    Ok(Json(api::DlqRetryResponse {
        results,
        synced: u64::from(pass.synced),
        failed: u64::from(pass.failed),
        skipped: u64::from(pass.skipped),
        dlq_size: counts.dlq,
    }))
}

/// Health is open to every caller: a driver error that names the serial port's path (it cannot be
/// opened) is shown without it. The log keeps the full text.
fn without_port_path(state: &AppState, mut text: String) -> String {
    for kkt in &state.config.kkts {
        let path = kkt.port.display().to_string();
        if !path.is_empty() && text.contains(&path) {
            text = text.replace(&path, "(configured)");
        }
    }
    text
}

/// How long readiness waits for the journal writer to answer before it calls the journal closed.
const READY_JOURNAL_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /v1/ready`: 200 when the journal answers and the KKT answered its last exchange, else 503.
/// It never waits for the device: while the link is down it starts a background status probe (at
/// most one a second), so readiness comes back once the KKT does, even with no sale to prove it.
pub(super) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    for r in state.shop.all() {
        r.fiscalizer.refresh_link_if_down();
    }
    let journal_open = tokio::time::timeout(
        READY_JOURNAL_TIMEOUT,
        state.any().fiscalizer.journal_settings(),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let kkt_reachable = state.link().ok;
    let ready = journal_open && kkt_reachable;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = api::Readiness {
        ready,
        journal_open,
        kkt_reachable,
    };
    (code, Json(body)).into_response()
}

/// `GET /v1/health`: the whole picture for support staff; 503 when `status` is `degraded`, so a
/// monitor that reads only the code still sees that a person is needed. Open to every caller, so
/// it names no file path and no process id.
pub(super) async fn health(State(state): State<Arc<AppState>>) -> Result<Response, AppError> {
    let settings = state
        .any()
        .fiscalizer
        .journal_settings()
        .await
        .map_err(journal_error)?;
    let synchronous = match settings.synchronous.as_str() {
        "off" => 0,
        "normal" => 1,
        "full" => 2,
        _ => 3,
    };
    let link = state.link();
    let b = state.any().sync.breaker_snapshot();
    let view = state.network();
    let counts = state
        .any()
        .fiscalizer
        .counts()
        .await
        .map_err(journal_error)?;
    let unresolved: Vec<api::UnresolvedReceipt> = state
        .unresolved()
        .into_iter()
        .map(|u| api::UnresolvedReceipt {
            receipt_id: u.receipt_id,
            since_unix_ms: u.since_ms,
            attempts: u.attempts,
            last_error: u.last_error.map(|e| without_port_path(&state, e)),
            stuck: u.stuck,
        })
        .collect();
    let stuck = unresolved.iter().any(|u| u.stuck);
    let delivery = delivery(&state, &counts).await?;
    // A DLQ document, a stuck receipt or a backlog past its age alarm needs a person, even when
    // nothing else is wrong.
    let degraded =
        view.dlq_head.is_some() || counts.dlq > 0 || !link.ok || stuck || delivery.age_alarm;
    let (code, status) = if degraded {
        (StatusCode::SERVICE_UNAVAILABLE, api::HealthStatus::Degraded)
    } else {
        (StatusCode::OK, api::HealthStatus::Ok)
    };
    let t = b.transitions;
    let body = api::Health {
        status,
        process: api::ProcessHealth {
            uptime_s: state.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        journal: api::JournalHealth {
            journal_mode: settings.journal_mode,
            synchronous,
            synchronous_name: settings.synchronous,
            wal_autocheckpoint: settings.wal_autocheckpoint,
            schema_version: settings.schema_version,
        },
        kkt: api::KktHealth {
            link_ok: link.ok,
            last_error: link.last_error.map(|e| without_port_path(&state, e)),
            unresolved_receipts: state.has_unresolved(),
            unresolved,
        },
        circuit_breaker: api::CircuitBreaker {
            state: match b.state {
                BreakerState::Closed => api::BreakerState::Closed,
                BreakerState::Open => api::BreakerState::Open,
                BreakerState::HalfOpen => api::BreakerState::HalfOpen,
            },
            consecutive_failures: b.consecutive_failures,
            opened_at_unix_ms: b.opened_at_unix_ms,
            next_probe_at_unix_ms: b.next_probe_at_unix_ms,
            transitions: api::BreakerTransitions {
                to_closed: t.to_closed,
                to_open: t.to_open,
                to_half_open: t.to_half_open,
            },
        },
        network_status: api_network_status(view.status),
        dlq_head: view.dlq_head.map(|h| api::DlqHead {
            fn_number: h.fn_number,
            fd_number: h.fd,
        }),
        dlq_size: counts.dlq,
        delivery,
    };
    Ok((code, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_told_from_json() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            is_html_form(&h)
        };
        assert!(with("application/x-www-form-urlencoded"));
        assert!(with("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!with("application/json"));
        assert!(!is_html_form(&HeaderMap::new()));
    }

    #[test]
    fn ids_are_percent_encoded_in_the_redirect() {
        assert_eq!(url_component("0123abcdef"), "0123abcdef");
        assert_eq!(url_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}

#[derive(Deserialize)]
pub(super) struct SyncQuery {
    #[serde(default)]
    force: bool,
}

pub(super) async fn buffer_sync(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SyncQuery>,
) -> Result<Json<api::SyncResult>, AppError> {
    // Every register's relay at once; the answer adds them up and names the first reason a
    // relay stopped short (for one register, exactly its pass).
    let passes: Vec<_> = state
        .shop
        .all()
        .iter()
        .map(|r| {
            let sync = r.sync.clone();
            tokio::spawn(async move { sync.sync_now(q.force).await })
        })
        .collect();
    let mut total = api::SyncResult {
        synced: 0,
        failed: 0,
        skipped: 0,
        stopped: api::SyncStop::Drained,
    };
    for pass in passes {
        let r = pass
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        total.synced += u64::from(r.synced);
        total.failed += u64::from(r.failed);
        total.skipped += u64::from(r.skipped);
        if total.stopped == api::SyncStop::Drained {
            total.stopped = sync_stop(&r.stop);
        }
    }
    Ok(Json(total))
}

/// The wire name of why a pass stopped: the name alone. The text some reasons carry (an OFD or
/// KKT error) is internal detail, not answered; `GET /v1/kkt/buffer/status` names a stuck head.
fn sync_stop(stop: &crate::sync::StopReason) -> api::SyncStop {
    use crate::sync::StopReason as S;
    match stop {
        S::Drained => api::SyncStop::Drained,
        S::BatchFull => api::SyncStop::BatchFull,
        S::BreakerOpen => api::SyncStop::BreakerOpen,
        S::BackingOff => api::SyncStop::BackingOff,
        S::LockBusy => api::SyncStop::LockBusy,
        S::LockLost => api::SyncStop::LockLost,
        S::DlqHead { .. } => api::SyncStop::DlqHead,
        S::Transport(_) => api::SyncStop::Transport,
        S::FnRefusedAck(_) => api::SyncStop::FnRefusedAck,
        S::Kkt(_) => api::SyncStop::Kkt,
    }
}
