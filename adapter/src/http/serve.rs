//! The accept loop of the POS API: hyper's HTTP/1 server with a header read timeout, hyper's own
//! limits set above the contract's (so an over-limit head reaches `contract.rs` and is answered in
//! JSON), and a graceful shutdown bounded by a deadline.
//!
//! Boundary: hyper still answers some requests by itself, with an empty body, before any service
//! runs: a head it cannot parse (400), a head larger than [`HEAD_BUF_BYTES_MAX`] or with more than
//! [`HEADERS_PARSED_MAX`] fields (431), and a target longer than 65534 bytes (414, hyper's fixed
//! limit). A client whose request head does not arrive within the header read timeout is
//! disconnected without an answer: it has not asked anything yet.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};

use super::contract::answer_in_contract;
use super::limits::{self, Admission, Connections, Requests};
use super::request_log::log_request;

/// hyper's read buffer while it parses a head: far above the contract's 8 KiB target and 16 KiB
/// header section, so those limits are answered by the contract, not by hyper's bare 431.
pub const HEAD_BUF_BYTES_MAX: usize = 128 * 1024;
/// Header fields hyper parses; above the contract's 64 for the same reason.
pub const HEADERS_PARSED_MAX: usize = 256;
/// Pause after an accept error other than a connection dropped in the backlog (for example, file
/// descriptors exhausted), as axum's own accept loop does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// Longest wait for a connection closed to make room to release its descriptor, before the bound
/// is asked again.
const FREED_WAIT: Duration = Duration::from_millis(20);

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). tokio's `bind`
/// asks for 1024; a flood of reconnecting clients overflows that while the accept loop makes room,
/// and a dropped SYN costs the POS's connection a one-second retransmit.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the POS API's listening socket with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as `bind`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The server's timeouts.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A client must send its whole request head within this time, or it is disconnected. hyper
    /// starts this timer whenever it waits for a head, so it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// After the shutdown signal, open connections get this long to finish their request in flight.
    pub shutdown_deadline: Duration,
    /// Open connections served; see `limits.rs` for what happens at the bound.
    pub max_connections: usize,
    /// Requests in progress at once; one more is refused with 503.
    pub max_concurrent_requests: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(10),
            max_connections: 512,
            max_concurrent_requests: 64,
        }
    }
}

/// Serves `app` on `listener`, every answer in the error contract (`contract.rs`), until `shutdown`
/// completes. Then it stops accepting, lets every open connection finish the request in flight
/// (idle ones close at once, none takes a new request), and returns when all are closed or
/// `shutdown_deadline` has passed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(HEAD_BUF_BYTES_MAX)
        .max_headers(HEADERS_PARSED_MAX);
    // Around the whole router, not per route (`Router::layer`): the contract sees every answer as
    // it leaves, the `Allow` header axum adds to a 405 included, and checks a head before routing.
    let requests = Requests::new(config.max_concurrent_requests);
    let app = from_fn(log_request)
        .layer(
            from_fn(answer_in_contract)
                .layer(from_fn_with_state(requests, limits::track).layer(app)),
        )
        .map_request(|request: Request<Incoming>| request.map(Body::new));
    let connections = Connections::new(config.max_connections);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = accept(&listener) => stream,
            () = &mut shutdown => break,
        };
        let ticket = loop {
            match connections.admit() {
                Admission::Serve(ticket) => break Some(ticket),
                Admission::Refuse => break None,
                Admission::Wait => connections.wait_freed(FREED_WAIT).await,
            }
        };
        let Some(ticket) = ticket else {
            tracing::warn!(
                open = connections.open(),
                "at the connection bound with every connection busy: refused one"
            );
            connections.refuse(stream);
            continue;
        };
        let slot = ticket.slot();
        let service = TowerToHyperService::new(app.clone().map_request({
            let slot = slot.clone();
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(slot.clone());
                request
            }
        }));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ticket = ticket;
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!(error = %e, timeout = e.is_timeout(), "connection ended with an error");
                },
                () = slot.closing() => {}
            }
        });
    }
    drop(listener);
    let open_at_signal = graceful.count();
    tracing::debug!(
        open_at_signal,
        "not accepting; waiting for open connections"
    );
    let deadline = config.shutdown_deadline;
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        // What still runs ends with the runtime; the caller's quiesce waits for a sale at the KKT.
        tracing::warn!(
            open_at_signal,
            ?deadline,
            "connections still open at the shutdown deadline"
        );
    }
}

/// The next connection; errors of one connection are skipped, others pause the loop briefly.
async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => return stream,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::error!(error = %e, "accept error");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
