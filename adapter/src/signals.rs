//! Process signals: SIGTERM and SIGINT stop the adapter gracefully (exit 0); SIGHUP is logged and
//! otherwise ignored, because its default action would kill the shop's adapter (exit 129) when a
//! terminal or a log rotation sends it.
//!
//! The handlers are installed first thing in `run`, so a signal that arrives while the journal opens
//! or the start-up reconciliation runs meets them rather than the default action.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The installed handlers; [`Signals::terminated`] resolves at the first SIGTERM or SIGINT.
pub struct Signals {
    term: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers and starts the task that logs SIGHUP. Needs a running Tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        let term = signal(SignalKind::terminate())?;
        let interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!(
                    "SIGHUP received and ignored: logs go to stderr, so there is no file to reopen"
                );
            }
        });
        Ok(Signals { term, interrupt })
    }

    /// Waits for SIGTERM or SIGINT.
    pub async fn terminated(mut self) {
        let which = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = which,
            "stopping: not accepting, finishing the requests in flight"
        );
    }
}
