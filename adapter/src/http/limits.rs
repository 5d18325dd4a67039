//! What one client, or many, can hold of the adapter: open connections, requests in progress, the
//! time a request body may take, and each token's request rate. Every refusal is definite (nothing
//! was done) and in the error contract.
//!
//! Connections: at most `max_connections` are served. At the bound a new connection closes the
//! oldest one that has no request in progress: a client trickling its head, or an idle keep-alive
//! connection. A POS sends its request as soon as it connects, so a flood of slow connections
//! ages out ahead of it and a sale still gets through; clients holding requests in progress are
//! bounded by `max_concurrent_requests` and the body read timeout. Only when every open
//! connection has a request in progress is the new one refused (503 `overloaded`, written before
//! its request is read). The listener never stops accepting: a connection left in the kernel's
//! backlog would wait behind the flood.
//!
//! Invariant: a connection is closed to make room only while it has no request in progress
//! ([`Slot`]'s state moves from idle to closing in one compare-and-swap, and a request starts only
//! on a connection not closing), so an answer is never cut off, and a sale never is.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use adapter_api::ErrorCode;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::AppError;

/// Seconds a client refused for load is told to wait (`Retry-After`).
const RETRY_AFTER_S: u64 = 1;
/// Connections being refused at the same time; beyond this a refused connection is closed
/// without an answer, so refusing cannot use up file descriptors either.
const REFUSING_MAX: usize = 32;
/// How long a refused connection's request is read and dropped after the answer, so the client
/// reads the answer instead of a reset.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// A slot's state: the requests in progress on the connection, or [`CLOSING`].
const CLOSING: usize = usize::MAX;

/// One open connection as the bound sees it.
pub struct Slot {
    state: AtomicUsize,
    closing: Notify,
}

impl Slot {
    /// Marks the connection to be closed if it has no request in progress.
    fn close_if_idle(&self) -> bool {
        let idle = self
            .state
            .compare_exchange(0, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if idle {
            self.closing.notify_one();
        }
        idle
    }

    /// A request starts on this connection; `None` when the connection is being closed.
    fn begin(self: &Arc<Self>) -> Option<Busy> {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != CLOSING).then(|| n + 1)
            })
            .ok()
            .map(|_| Busy(self.clone()))
    }

    /// Completes when the connection was chosen to make room.
    pub async fn closing(&self) {
        self.closing.notified().await;
    }
}

/// A request in progress on a connection; it ends when the answer's body has been sent.
struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Registry {
    next_id: u64,
    /// By id, so in the order the connections were accepted: oldest first.
    open: BTreeMap<u64, Arc<Slot>>,
    /// Connections chosen to make room whose task has not ended yet.
    closing: usize,
}

/// The open connections and the bound on them.
pub struct Connections {
    max: usize,
    registry: Mutex<Registry>,
    refusing: Arc<Semaphore>,
    /// Signalled whenever a connection's place is freed.
    freed: Notify,
}

/// What to do with a connection just accepted.
pub enum Admission {
    Serve(Ticket),
    Refuse,
    /// Connections closed to make room still hold their descriptors: wait for them
    /// ([`Connections::wait_freed`]) and ask again.
    Wait,
}

/// A served connection's place under the bound; dropping it frees the place.
pub struct Ticket {
    id: u64,
    slot: Arc<Slot>,
    connections: Arc<Connections>,
}

impl Ticket {
    pub fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut r = self.connections.lock();
        r.open.remove(&self.id);
        crate::metrics::http_connections_open(r.open.len());
        if self.slot.state.load(Ordering::Acquire) == CLOSING {
            r.closing -= 1;
        }
        drop(r);
        self.connections.freed.notify_one();
    }
}

impl Connections {
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            registry: Mutex::new(Registry {
                next_id: 0,
                open: BTreeMap::new(),
                closing: 0,
            }),
            refusing: Arc::new(Semaphore::new(REFUSING_MAX)),
            freed: Notify::new(),
        })
    }

    /// Waits until a connection's place is freed, at most `limit`.
    pub async fn wait_freed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.freed.notified()).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now, those being closed included.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Admits a connection just accepted, closing the oldest idle one when at the bound.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut r = self.lock();
        // Connections being closed still hold a descriptor until their task ends (promptly): past
        // this headroom the accept loop waits for them rather than hold more descriptors.
        if r.open.len() > self.max + self.max / 4 {
            return Admission::Wait;
        }
        if r.open.len() - r.closing >= self.max {
            if !r.open.values().any(|slot| slot.close_if_idle()) {
                return Admission::Refuse;
            }
            r.closing += 1;
            crate::metrics::http_limit("idle_connection_closed");
            tracing::debug!("at the connection bound: closed the oldest idle connection");
        }
        let id = r.next_id;
        r.next_id += 1;
        let slot = Arc::new(Slot {
            state: AtomicUsize::new(0),
            closing: Notify::new(),
        });
        r.open.insert(id, slot.clone());
        crate::metrics::http_connections_open(r.open.len());
        Admission::Serve(Ticket {
            id,
            slot,
            connections: self.clone(),
        })
    }

    /// Answers a connection that cannot be served with 503 `overloaded`, in a task of its own;
    /// when too many are being refused already, closes it at once.
    pub fn refuse(&self, mut stream: TcpStream) {
        crate::metrics::http_limit("connection_refused");
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let answer = refusal_bytes();
            let _ = tokio::time::timeout(REFUSAL_LINGER, async {
                stream.write_all(&answer).await?;
                stream.shutdown().await?;
                // Read what the client sent, so closing does not reset the answer away.
                let mut sink = [0u8; 4096];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
    }
}

/// The 503 written to a connection refused before its request was read.
fn refusal_bytes() -> Vec<u8> {
    let body = serde_json::to_vec(&adapter_api::ErrorBody {
        code: ErrorCode::Overloaded,
        message: "the adapter is at its bound of open connections; retry shortly".to_owned(),
        definite: true,
    })
    .unwrap_or_default();
    let mut bytes = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {RETRY_AFTER_S}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// The per-request bounds shared by every connection.
pub struct Requests {
    in_progress: Arc<Semaphore>,
}

impl Requests {
    pub fn new(max: usize) -> Arc<Requests> {
        Arc::new(Requests {
            in_progress: Arc::new(Semaphore::new(max.max(1))),
        })
    }
}

/// A refusal for load, with the `Retry-After` header.
fn overloaded(message: &str, retry_after: bool) -> Response {
    let mut answer = AppError::definite(ErrorCode::Overloaded, message).into_response();
    if retry_after {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    }
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

/// Middleware around the whole service (`serve.rs`): the request counts on its connection (so the
/// connection is not closed to make room) and against `max_concurrent_requests` until its answer
/// has been sent.
pub async fn track(
    State(requests): State<Arc<Requests>>,
    request: Request,
    next: Next,
) -> Response {
    let busy = match request.extensions().get::<Arc<Slot>>() {
        Some(slot) => match slot.begin() {
            Some(busy) => Some(busy),
            None => {
                crate::metrics::http_limit("request_refused");
                // Its connection was closed for room while the head was on its way: nothing to
                // wait for, so no `Retry-After`; a new connection is served at once.
                return overloaded("the connection is being closed; retry on a new one", false);
            }
        },
        None => None,
    };
    let Ok(permit) = requests.in_progress.clone().try_acquire_owned() else {
        crate::metrics::http_limit("request_refused");
        tracing::warn!("at the bound of concurrent requests: refused one");
        return overloaded(
            "the adapter is at its bound of concurrent requests; retry shortly",
            true,
        );
    };
    let answer = next.run(request).await;
    hold_until_sent(answer, (busy, permit))
}

/// Keeps `guard` alive until hyper has sent the answer's body.
fn hold_until_sent(answer: Response, guard: (Option<Busy>, OwnedSemaphorePermit)) -> Response {
    answer.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &guard;
            frame
        }))
    })
}

/// Route layer (inside the auth layer, so an unauthenticated client cannot hold a body slot): reads
/// the whole body within `timeout` and hands the handler the bytes. A body not complete in time is
/// 408 `request_timeout`; one over `limit` the framework's 413, which the contract words.
pub async fn read_body(
    State((timeout, limit)): State<(Duration, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => {
            crate::metrics::http_limit("body_timeout");
            tracing::info!(path = %parts.uri.path(), ?timeout, "request body not complete in time");
            let mut answer = AppError::definite(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms; nothing was done",
                    timeout.as_millis()
                ),
            )
            .into_response();
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return answer;
        }
        Ok(Err(e)) if is_length_limit(&e) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Ok(Err(e)) => {
            return AppError::definite(
                ErrorCode::MalformedBody,
                format!("the request body could not be read: {e}"),
            )
            .into_response();
        }
        Ok(Ok(bytes)) => bytes,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Each requester's token bucket: `rate` requests a second, bursts up to `rate`.
pub struct RateLimit {
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            rate: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `name`'s bucket, or says in how many whole seconds one is free.
    pub fn take(&self, name: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(name.to_owned()).or_insert(Bucket {
            tokens: self.rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

/// The 429 for a requester over its rate.
pub fn rate_limited(name: &str, per_second: f64, retry_after_s: u64) -> Response {
    crate::metrics::http_limit("rate_limited");
    let mut answer = AppError::definite(
        ErrorCode::RateLimited,
        format!(
            "token `{name}` is over its limit of {per_second} requests a second; nothing was done"
        ),
    )
    .into_response();
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    answer
}

impl RateLimit {
    pub fn per_second(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(a: Admission) -> Ticket {
        match a {
            Admission::Serve(t) => t,
            Admission::Refuse | Admission::Wait => panic!("not served"),
        }
    }

    #[test]
    fn at_the_bound_the_oldest_idle_connection_makes_room() {
        let c = Connections::new(3);
        let first = served(c.admit());
        let second = served(c.admit());
        let third = served(c.admit());
        // The oldest has a request in progress: the next oldest goes.
        let busy = first.slot.begin().expect("idle connection takes a request");
        let fourth = served(c.admit());
        assert_eq!(first.slot.state.load(Ordering::Acquire), 1);
        assert_eq!(second.slot.state.load(Ordering::Acquire), CLOSING);
        assert!(
            second.slot.begin().is_none(),
            "a closing connection takes no request"
        );
        assert_eq!(c.open(), 4);
        drop(second);
        assert_eq!(c.open(), 3);
        // Every live connection busy: refused.
        let _b3 = third.slot.begin().unwrap();
        let _b4 = fourth.slot.begin().unwrap();
        assert!(matches!(c.admit(), Admission::Refuse));
        // The first request ends: its connection is idle again and makes room.
        drop(busy);
        let _fifth = served(c.admit());
        assert_eq!(first.slot.state.load(Ordering::Acquire), CLOSING);
    }

    #[test]
    fn closing_connections_count_against_a_hard_ceiling() {
        let c = Connections::new(4);
        let mut held: Vec<Ticket> = (0..4).map(|_| served(c.admit())).collect();
        // Each new one closes an old idle one, but the closed ones have not gone yet.
        for _ in 0..2 {
            held.push(served(c.admit()));
        }
        assert_eq!(c.open(), 6);
        assert!(matches!(c.admit(), Admission::Wait), "4 + 4/4 + 1 open");
        held.drain(..2);
        assert!(matches!(c.admit(), Admission::Serve(_)));
    }

    #[test]
    fn a_token_bucket_refills_at_its_rate() {
        let r = RateLimit::new(2);
        let t0 = Instant::now();
        assert!(r.take("till1", t0).is_ok());
        assert!(r.take("till1", t0).is_ok());
        assert_eq!(r.take("till1", t0), Err(1));
        // Another token has its own bucket.
        assert!(r.take("ops", t0).is_ok());
        assert!(r.take("till1", t0 + Duration::from_millis(500)).is_ok());
        assert!(r.take("till1", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer_in_the_contract() {
        let text = String::from_utf8(refusal_bytes()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("retry-after: 1"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: adapter_api::ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!((body.code, body.definite), (ErrorCode::Overloaded, true));
    }
}
