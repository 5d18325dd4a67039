//! The OFD TCP side: a listener supervisor that opens and closes the socket as the mode asks, and the
//! per-connection handler that reads one message, applies the mode, stores and answers.
//!
//! **Boundary:** one message per connection, as the FN exchange does; bytes after the first message are ignored.
//! Every read, write and hold has a deadline, and at most `connections_max` connections are handled at once.
//! A message is answered in the A-protocol version it was sent in; a message in a version `ofd-proto` does not
//! accept gets no answer and a TCP reset, as soon as its session header is read (there is no reply format
//! for a version the mock does not speak).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ofd_proto::{EnvelopeError, Need, RESPONSE_FLK_ERROR, RESPONSE_OK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, timeout, timeout_at};

use crate::mode::Action;
use crate::protocol::Request;
use crate::state::MockState;
use crate::store::Delivery;

/// How soon the supervisor retries binding after the port could not be taken back.
const REBIND_RETRY: Duration = Duration::from_millis(50);
/// The supervisor's longest sleep without an event; it re-reads the mode at least this often.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Binds the OFD listener with `SO_REUSEADDR`, so it can be closed and reopened on the same port.
pub fn bind_ofd(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Runs the OFD listener until `shutdown` turns true. `listener` is the socket bound at start.
///
/// **Invariant:** a mode generation is marked applied only after the socket is open or closed as that mode
/// asks, so a control call that waits for it answers after the change, never before.
pub async fn run(
    state: Arc<MockState>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(state.config.connections_max));
    let mut listener = Some(listener);
    loop {
        let plan = state.listener_plan(std::time::Instant::now());
        let mut wake = Instant::now() + IDLE_TICK;
        if plan.open && listener.is_none() {
            match bind_ofd(state.ofd_addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(addr = %state.ofd_addr, error = %e, "cannot reopen the OFD listener; retrying");
                    wake = Instant::now() + REBIND_RETRY;
                }
            }
        } else if !plan.open && listener.is_some() {
            // Dropping the socket closes it at once: the kernel refuses new connects and resets queued ones.
            listener = None;
        }
        state.set_listening(listener.is_some());
        if listener.is_some() == plan.open {
            // Only now may a control call that selected this mode answer: the socket is as the mode asks.
            state.mark_applied(plan.generation);
        }
        if let Some(at) = plan.next_change {
            wake = wake.min(Instant::from_std(at));
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = state.mode_changed.notified() => {}
            () = tokio::time::sleep_until(wake) => {}
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, peer)) => admit(&state, &permits, stream, peer),
                Err(e) => {
                    // Accept errors (EMFILE and friends) are transient; a short pause avoids a busy loop.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(REBIND_RETRY).await;
                }
            },
        }
    }
    state.set_listening(false);
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Counts the connection and hands it to a task, or closes it at once when every permit is taken.
fn admit(state: &Arc<MockState>, permits: &Arc<Semaphore>, stream: TcpStream, peer: SocketAddr) {
    state.count(|c| c.connections += 1);
    state.traffic.connection();
    let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
        state.count(|c| c.over_capacity += 1);
        reset(stream);
        return;
    };
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let _active = Active::new(&state, permit);
        handle(&state, stream, peer).await;
    });
}

/// Keeps `active_connections` and the permit in step with the connection's life.
struct Active<'a> {
    state: &'a MockState,
    _permit: OwnedSemaphorePermit,
}

impl<'a> Active<'a> {
    fn new(state: &'a MockState, permit: OwnedSemaphorePermit) -> Self {
        state.count(|c| c.active_connections += 1);
        Active {
            state,
            _permit: permit,
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.state
            .count(|c| c.active_connections = c.active_connections.saturating_sub(1));
    }
}

/// Closes with a TCP reset instead of a FIN.
fn reset(stream: TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "cannot set SO_LINGER 0; closing normally");
    }
    drop(stream);
}

/// Why reading the request failed.
#[derive(Debug)]
enum ReadFailure {
    /// The peer closed before sending a byte (a connect probe).
    Probe,
    /// The session header names an A-protocol version outside `ofd_proto::AppVersion::ALL`.
    UnsupportedVersion([u8; 2]),
    /// Anything else: malformed, too large, truncated, timed out, IO error.
    Invalid(String),
}

async fn handle(state: &MockState, mut stream: TcpStream, peer: SocketAddr) {
    let (action, only_fn) = state.decide();
    tracing::debug!(%peer, action = action.name(), "connection");
    match action {
        Action::Refuse | Action::Unavailable | Action::Blackhole => state.count_action(&action),
        _ => {}
    }
    match action {
        Action::Refuse => return reset(stream),
        Action::Unavailable => return drop(stream),
        Action::Blackhole => return blackhole(state, stream).await,
        _ => {}
    }
    let read_deadline = Instant::now() + Duration::from_millis(state.config.read_timeout_ms);
    let read = read_message(state, &mut stream, read_deadline).await;
    let bytes = match read {
        Ok(b) => b,
        Err(ReadFailure::Probe) => {
            state.count_action(&action);
            return state.count(|c| c.probes += 1);
        }
        Err(ReadFailure::UnsupportedVersion(v)) => {
            state.count_action(&action);
            tracing::info!(%peer, version = format!("{:02x} {:02x}", v[0], v[1]), "unsupported A-protocol version; reset without an answer");
            state.count(|c| {
                c.invalid_messages += 1;
                c.unsupported_versions += 1;
            });
            return reset(stream);
        }
        Err(ReadFailure::Invalid(why)) => {
            state.count_action(&action);
            tracing::info!(%peer, why, "invalid message");
            return state.count(|c| c.invalid_messages += 1);
        }
    };
    state.traffic.message(&bytes);
    let received_at = Instant::now();
    if let Action::Garbage { bytes } = &action {
        state.count_action(&action);
        let _sent = write_all(state, &mut stream, bytes).await;
        return;
    }
    let request = match Request::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            state.count_action(&action);
            tracing::info!(%peer, error = %e, "invalid message");
            return state.count(|c| c.invalid_messages += 1);
        }
    };
    // A mode limited to one FN serves every other FN's documents online.
    let action = match only_fn {
        Some(f) if request.fn_number.trim() != f => Action::Answer,
        _ => action,
    };
    state.count_action(&action);
    if let Action::WrongAck { field } = action {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        match request.wrong_answer(&state.config.ofd_inn, field, now_ms) {
            Ok(answer) => {
                state.count(|c| c.wrong_acks += 1);
                finish(state, stream, &answer, received_at).await;
            }
            Err(e) => tracing::error!(error = %e, "cannot build a wrong acknowledgement"),
        }
        return;
    }
    let Some(answer) = process(state, &request, &action) else {
        return;
    };
    match action {
        Action::AckLoss => {}
        Action::ResetMidFrame => {
            let _sent = write_all(state, &mut stream, &answer[..answer.len() / 2]).await;
            reset(stream);
        }
        Action::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            finish(state, stream, &answer, received_at).await;
        }
        _ => finish(state, stream, &answer, received_at).await,
    }
}

/// Stores or rejects the document and returns the answer to send, or `None` when nothing can be sent.
fn process(state: &MockState, request: &Request, action: &Action) -> Option<Vec<u8>> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let inn = state.config.ofd_inn.as_str();
    let refusal = if let Some(problem) = request.format_problem() {
        tracing::info!(problem, "format check failed");
        Some(RESPONSE_FLK_ERROR)
    } else if let Some(secret) = &state.config.verify_fpd
        && !request.fpd_matches(secret.expose().as_bytes())
    {
        state.count(|c| c.fpd_mismatches += 1);
        Some(RESPONSE_FLK_ERROR)
    } else if let Action::Reject { code } = action
        && state.store.ack_of(&request.key()).is_none()
    {
        // A stored document is acknowledged again even in reject mode: the OFD already accepted it.
        Some(*code)
    } else {
        None
    };
    if let Some(code) = refusal {
        state.count(|c| c.rejected += 1);
        return request
            .answer(inn, code, now_ms)
            .map_err(|e| tracing::error!(error = %e, "cannot build a rejection"))
            .ok();
    }
    // The acknowledgement is built before the lock is taken, so a build failure stores nothing.
    let fresh = match request.answer(inn, RESPONSE_OK, now_ms) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an acknowledgement");
            return None;
        }
    };
    let body = &request.frame.body;
    match state
        .store
        .deliver(request.key(), body, request.document_json(), now_ms, |_| {
            fresh
        }) {
        Ok((delivery, ack)) => {
            if delivery == Delivery::Conflict {
                tracing::warn!(fn_number = %request.fn_number, fd = request.fd_number, "conflicting content under a stored key");
            }
            Some(ack)
        }
        Err(e) => {
            // Without a durable record the mock must not acknowledge: the sender will retry.
            tracing::error!(error = %e, "cannot store the document; closing without an answer");
            None
        }
    }
}

/// Writes the answer to the message read at `received_at` and closes gracefully, counting a complete
/// answer and its handling time before the close, so a client that read to the end sees both.
async fn finish(state: &MockState, mut stream: TcpStream, answer: &[u8], received_at: Instant) {
    if write_all(state, &mut stream, answer).await {
        state.count(|c| c.answers_sent += 1);
        state.traffic.handled(received_at.elapsed());
        let limit = Duration::from_millis(state.config.write_timeout_ms);
        let _closed = timeout(limit, stream.shutdown()).await;
    }
}

/// Writes all `bytes` within the write timeout, counting each byte the socket takes.
async fn write_all(state: &MockState, stream: &mut TcpStream, bytes: &[u8]) -> bool {
    let limit = Duration::from_millis(state.config.write_timeout_ms);
    match timeout(limit, async {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = stream.write(rest).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            state.traffic.sent(n);
            rest = &rest[n..];
        }
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "write failed");
            false
        }
        Err(_) => {
            tracing::info!("write timed out");
            false
        }
    }
}

/// Reads exactly one message, refusing it as soon as the bytes cannot be one or it would exceed
/// `frame_len_max`. Never reads past the message's end, so `bytes_received` counts only what was needed.
async fn read_message(
    state: &MockState,
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<Vec<u8>, ReadFailure> {
    let len_max = state.config.frame_len_max;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let want = match ofd_proto::bytes_needed(&buf, len_max) {
            Ok(Need::Complete(len)) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(Need::More(n)) => n.min(chunk.len()),
            Err(EnvelopeError::BadAppVersion(v)) => return Err(ReadFailure::UnsupportedVersion(v)),
            Err(e) => return Err(ReadFailure::Invalid(e.to_string())),
        };
        let n = match timeout_at(deadline, stream.read(&mut chunk[..want])).await {
            Err(_) => {
                return Err(ReadFailure::Invalid(format!(
                    "read timed out after {} bytes",
                    buf.len()
                )));
            }
            Ok(Err(e)) => return Err(ReadFailure::Invalid(format!("read failed: {e}"))),
            Ok(Ok(n)) => n,
        };
        state.traffic.received(n);
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadFailure::Probe
            } else {
                ReadFailure::Invalid(format!("closed after {} bytes", buf.len()))
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads and discards until the peer closes or the hold time ends; never writes.
async fn blackhole(state: &MockState, mut stream: TcpStream) {
    let deadline = Instant::now() + Duration::from_millis(state.config.blackhole_hold_ms);
    let mut sink = [0u8; 4096];
    while let Ok(Ok(n)) = timeout_at(deadline, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
        state.traffic.received(n);
    }
}
