//! A control API's accept loop: hyper's HTTP/1 server with a header read timeout and a graceful
//! shutdown bounded by a deadline, as the adapter's `adapter/src/http/serve.rs` does (without its
//! connection limits: a test tool serves a few clients).
//!
//! **Boundary:** a client whose request head does not arrive within the header read timeout is
//! disconnected without an answer. hyper starts that timer whenever it waits for a head, so an idle
//! keep-alive connection is closed after the same time.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

/// Pause after an accept error other than a connection dropped in the backlog (for example, file
/// descriptors exhausted), as axum's own accept loop does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The server's timeouts.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A client must send its whole request head within this time, or it is disconnected; also the
    /// idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// After the shutdown signal, open connections get this long to finish their request in flight.
    pub shutdown_deadline: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish the request in flight (idle ones close at once) and returns when all are
/// closed or `shutdown_deadline` has passed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = accept(&listener) => stream,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, timeout = e.is_timeout(), "control connection ended with an error");
            }
        });
    }
    drop(listener);
    let deadline = config.shutdown_deadline;
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?deadline,
            "control connections still open at the shutdown deadline"
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
                tracing::error!(error = %e, "control accept error");
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
