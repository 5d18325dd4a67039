//! Stopping on SIGTERM or SIGINT, with both signals registered before the tool prints its start line.

use std::future::Future;

/// Registers for SIGTERM and SIGINT at once, before the start line is printed: a SIGTERM sent right
/// after that line must stop the process cleanly, not kill it by the default action (seen under load,
/// when the signal came before the first poll of a lazily registering future). The returned future
/// resolves on the first of the two.
pub fn stop_signals() -> impl Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let register = |kind: SignalKind, name: &'static str| {
        signal(kind)
            .map_err(|e| tracing::warn!(error = %e, "cannot watch {name}"))
            .ok()
    };
    let term = register(SignalKind::terminate(), "SIGTERM");
    let int = register(SignalKind::interrupt(), "SIGINT");
    async move {
        let recv = |s: Option<Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = recv(term) => {}
            () = recv(int) => {}
        }
    }
}
