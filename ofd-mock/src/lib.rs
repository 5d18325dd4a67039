//! A programmable mock OFD: speaks the FN-to-OFD exchange over TCP, keeps an exact record of what it received,
//! and produces every failure a real operator shows on demand through an HTTP control plane.
//!
//! Modules: [`config`] (command line), [`mode`] (the fault menu and its decisions), [`schedule`] (seeded
//! randomness and the flapping timeline), [`store`]
//! (records keyed by FN and FD, memory or SQLite), [`protocol`] (validation and acknowledgements on top of
//! `ofd-proto`), [`server`] (the TCP side), [`control`] (the HTTP side), [`state`] (what both share),
//! [`traffic`] (byte and message counters and the last message, for benchmarks).
//! The control plane's accept loop, the secrets from files and the environment, the control token check
//! and the stop signals come from `tool-http`, shared with `kkt-emulator`.

pub mod config;
pub mod control;
pub mod mode;
pub mod protocol;
pub mod schedule;
pub mod server;
pub mod state;
pub mod store;
pub mod traffic;

use std::io::IsTerminal;
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
pub use tool_http::Secret;

/// Exit code: stopped by a signal after a clean run.
pub const EXIT_OK: u8 = 0;
/// Exit code: bad command line (a secret file unreadable, two sources of one secret, an unprotected
/// control plane on a non-loopback address).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a port could not be bound or the database could not be opened.
pub const EXIT_INFRA: u8 = 3;

/// How long [`RunningMock::shutdown`] waits for the listeners to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long a control request in flight at shutdown may still take; below [`SHUTDOWN_WAIT`], and above
/// the longest control call ([`control::APPLY_WAIT_MAX`]).
const CONTROL_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(4);

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
    /// The control plane would answer anyone on the network.
    #[error(
        "refusing to serve the control plane on {addr} without a control token: anyone who can reach it \
         could change the mode or wipe the records; bind a loopback address, or set a token with \
         --control-token-file or {}",
        config::ENV_CONTROL_TOKEN
    )]
    Unprotected { addr: SocketAddr },
}

impl ServeError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Unprotected { .. } => EXIT_BAD_INPUT,
            ServeError::Bind { .. } | ServeError::Store(_) => EXIT_INFRA,
        }
    }
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
/// Without a control token, the control plane binds only a loopback address.
pub async fn serve(config: Config) -> Result<RunningMock, ServeError> {
    if config.control_token.is_none() && !config.control.ip().is_loopback() {
        return Err(ServeError::Unprotected {
            addr: config.control,
        });
    }
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
    let serve_config = tool_http::ServeConfig {
        header_read_timeout: Duration::from_millis(state.config.header_read_timeout_ms),
        shutdown_deadline: CONTROL_SHUTDOWN_DEADLINE,
    };
    let mut control_stop = stopped;
    let control_task = tokio::spawn(async move {
        let graceful = async move {
            let _ = control_stop.wait_for(|s| *s).await;
        };
        tool_http::serve(control, router, serve_config, graceful).await;
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
    init_logging();
    let secret_on_argv = cli.verify_fpd.is_some();
    let config = match Config::resolve(cli, |name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ofd-mock: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if secret_on_argv {
        tracing::warn!(
            "--verify-fpd puts the secret where `ps` shows it; prefer --verify-fpd-file or {}",
            config::ENV_VERIFY_FPD
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ofd-mock: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INFRA);
        }
    };
    runtime.block_on(async {
        let mock = match serve(config).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("ofd-mock: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        let stop = tool_http::stop_signals();
        println!(
            "ofd-mock listening ofd={} control={}",
            mock.ofd_addr, mock.control_addr
        );
        stop.await;
        mock.shutdown().await;
        ExitCode::from(EXIT_OK)
    })
}

/// Logs on stderr, `RUST_LOG` filtering (`ofd_mock=info,tool_http=info` without it: the control
/// plane's accept loop logs under `tool_http`), colour only on a terminal: colour codes in a log file
/// make every line harder to read and search.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ofd_mock=info,tool_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
