//! A programmable mock OFD: speaks the FN-to-OFD exchange over TCP, keeps an exact record of what it received,
//! and produces every failure a real operator shows on demand through an HTTP control plane.
//!
//! Modules: [`config`] (command line), [`mode`] (the fault menu and its decisions), [`schedule`] (seeded
//! randomness and the flapping timeline), [`store`]
//! (records keyed by FN and FD, memory or SQLite), [`protocol`] (validation and acknowledgements on top of
//! `ofd-proto`), [`server`] (the TCP side), [`control`] (the HTTP side), [`state`] (what both share).

pub mod config;
pub mod control;
pub mod mode;
pub mod protocol;
pub mod schedule;
pub mod server;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Cli, Config};
pub use control::app;
pub use mode::{Behaviour, ModeSpec};
pub use state::MockState;
pub use store::{Store, StoreError};

/// Exit code: stopped by a signal after a clean run.
pub const EXIT_OK: u8 = 0;
/// Exit code: bad command line.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a port could not be bound or the database could not be opened.
pub const EXIT_INFRA: u8 = 3;

/// How long [`RunningMock::shutdown`] waits for the listeners to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot bind the {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The record store could not be opened.
    #[error("cannot open the record store: {0}")]
    Store(#[from] StoreError),
}

/// A started mock: its real addresses, its state, and the handle to stop it.
#[derive(Debug)]
pub struct RunningMock {
    /// Where the OFD protocol listener is bound.
    pub ofd_addr: SocketAddr,
    /// Where the HTTP control plane is bound.
    pub control_addr: SocketAddr,
    /// Shared state (mode, store, counters), for in-process tests.
    pub state: Arc<MockState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningMock {
    /// Stops both listeners and waits (bounded) for them; connections in flight finish on their own deadlines.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(SHUTDOWN_WAIT, task).await.is_err() {
                tracing::warn!("a listener did not stop within {SHUTDOWN_WAIT:?}");
            }
        }
    }
}

/// Opens the store and binds both listeners (port 0 picks a free port), then serves in background tasks.
pub async fn serve(config: Config) -> Result<RunningMock, ServeError> {
    let store = match &config.db {
        Some(path) => Store::open(path)?,
        None => Store::memory(),
    };
    let ofd = server::bind_ofd(config.listen).map_err(|source| ServeError::Bind {
        what: "OFD",
        addr: config.listen,
        source,
    })?;
    let ofd_addr = ofd.local_addr().map_err(|source| ServeError::Bind {
        what: "OFD",
        addr: config.listen,
        source,
    })?;
    let bind_control = |source| ServeError::Bind {
        what: "control",
        addr: config.control,
        source,
    };
    let control = tokio::net::TcpListener::bind(config.control)
        .await
        .map_err(bind_control)?;
    let control_addr = control.local_addr().map_err(bind_control)?;

    let state = Arc::new(MockState::new(config, ofd_addr, store));
    // The socket is already bound and listening, so the health answer says so from the first request.
    state.set_listening(true);
    let (stop, stopped) = watch::channel(false);
    let ofd_task = tokio::spawn(server::run(Arc::clone(&state), ofd, stopped.clone()));
    let router = app(Arc::clone(&state));
    let mut control_stop = stopped;
    let control_task = tokio::spawn(async move {
        let graceful = async move {
            let _ = control_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(control, router)
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!(error = %e, "control plane stopped");
        }
    });
    Ok(RunningMock {
        ofd_addr,
        control_addr,
        state,
        stop,
        tasks: vec![ofd_task, control_task],
    })
}

/// Entry point of the binary: parse, serve, print the addresses, run until SIGTERM or ctrl-c.
pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ofd_mock=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ofd-mock: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INFRA);
        }
    };
    runtime.block_on(async {
        let mock = match serve(Config::from(cli)).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("ofd-mock: {e}");
                return ExitCode::from(EXIT_INFRA);
            }
        };
        println!(
            "ofd-mock listening ofd={} control={}",
            mock.ofd_addr, mock.control_addr
        );
        wait_for_signal().await;
        mock.shutdown().await;
        ExitCode::from(EXIT_OK)
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on ctrl-c only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
