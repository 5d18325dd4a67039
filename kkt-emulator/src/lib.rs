//! A virtual Shtrih-M fiscal register with fiscal storage (FN) on a pseudo-terminal, with fault injection
//! and an HTTP control API. `src/main.rs` is a thin wrapper around [`main_entry`].
//!
//! **Boundary:** the wire format and the typed commands come from `kkt-proto`, the FFD documents, the
//! OFD envelope and the stand-in fiscal sign from `ofd-proto`; this crate owns the pty, the timing, the FN
//! state file and the device's behaviour.
//!
//! **Invariant:** every change a command makes to the FN is durable (a document or OFD ticket appended and
//! fsynced to the FN log, or the small head file replaced atomically) before the answer to that command
//! leaves the device, so a restart never reuses an FD number and never loses a committed document.

pub mod clock;
pub mod control;
pub mod device;
pub mod docs;
pub mod emu;
pub mod exec;
pub mod faults;
pub mod link;
pub mod ofd;
pub mod pty;
pub mod store;
pub mod text;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::task::JoinHandle;

pub use control::app;
pub use emu::Shared;

/// Exit code: stopped normally.
pub const EXIT_OK: u8 = 0;
/// Exit code for bad input (command line, unreadable state file).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for infrastructure errors (pty, port in use).
pub const EXIT_INFRA: u8 = 3;

/// Command line and library configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kkt-emulator",
    about = "Virtual Shtrih-M fiscal register on a pseudo-terminal"
)]
pub struct Config {
    /// Symlink to publish the pty slave at (replaced atomically).
    #[arg(long, env = "KKT_EMU_PTY_LINK", default_value = "./kkt.tty")]
    pub pty_link: PathBuf,
    /// FN state file (created on first start).
    #[arg(long, env = "KKT_EMU_STATE", default_value = "./kkt-fn.json")]
    pub state: PathBuf,
    /// Control API address.
    #[arg(long, env = "KKT_EMU_CONTROL", default_value = "127.0.0.1:9100")]
    pub control: SocketAddr,
    /// Deliver bytes no faster than an N-baud 8N1 line (default: unpaced).
    #[arg(long, env = "KKT_EMU_BAUD", value_parser = clap::value_parser!(u32).range(50..=4_000_000))]
    pub baud: Option<u32>,
    /// Allow `POST /_emu/reset` (a fresh FN).
    #[arg(long, env = "KKT_EMU_ALLOW_RESET")]
    pub allow_reset: bool,
    /// Seed of the FN identity (serial, registration number, FPD secret) when the state file is new.
    #[arg(long, env = "KKT_EMU_FN_SEED", default_value_t = 1)]
    pub fn_seed: u64,
}

impl Config {
    /// A configuration for tests: files under `dir`, control on an ephemeral loopback port.
    pub fn in_dir(dir: &std::path::Path) -> Self {
        Self {
            pty_link: dir.join("kkt.tty"),
            state: dir.join("kkt-fn.json"),
            control: SocketAddr::from(([127, 0, 0, 1], 0)),
            baud: None,
            allow_reset: false,
            fn_seed: 1,
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state file is unreadable or corrupt.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The pty could not be set up.
    #[error(transparent)]
    Pty(#[from] pty::PtyError),
    /// The control port could not be bound.
    #[error("control API on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
}

impl ServeError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Store(_) => EXIT_BAD_INPUT,
            Self::Pty(_) | Self::Bind { .. } => EXIT_INFRA,
        }
    }
}

/// A running emulator. Dropping it stops the wire loop and the control server.
#[derive(Debug)]
pub struct Running {
    /// The bound control address (the real port when 0 was asked for).
    pub control_addr: SocketAddr,
    /// The published symlink.
    pub pty_link: PathBuf,
    /// The pty slave (`/dev/pts/N`).
    pub pty_path: PathBuf,
    /// The shared state, for in-process tests.
    pub shared: Arc<Shared>,
    wire: JoinHandle<()>,
    http: JoinHandle<()>,
}

impl Running {
    /// Waits until the wire loop or the control server ends (normally never).
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = &mut self.wire => {}
            _ = &mut self.http => {}
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.wire.abort();
        self.http.abort();
    }
}

/// Loads (or creates) the FN, opens the pty, binds the control API and starts both loops.
pub async fn serve(config: Config) -> Result<Running, ServeError> {
    let mut store = store::Store::file(config.state.clone());
    let st = match store.load()? {
        Some(st) => st,
        None => {
            let st = store::FnState::fresh(config.fn_seed);
            store.create(&st)?;
            st
        }
    };
    let shared = Arc::new(Shared::new(
        device::Device::new(st, store),
        config.allow_reset,
    ));
    let pty = Arc::new(pty::Pty::open(&config.pty_link, config.baud)?);
    let listener = tokio::net::TcpListener::bind(config.control)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.control,
            source,
        })?;
    let control_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.control,
        source,
    })?;
    let pty_path = pty.slave_path().to_path_buf();
    let wire = tokio::spawn({
        let (pty, shared) = (Arc::clone(&pty), Arc::clone(&shared));
        async move {
            if let Err(e) = link::run(pty, shared).await {
                tracing::error!(error = %e, "wire loop stopped");
            }
        }
    });
    let router = app(Arc::clone(&shared));
    let http = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
    Ok(Running {
        control_addr,
        pty_link: config.pty_link,
        pty_path,
        shared,
        wire,
        http,
    })
}

/// Resolves on SIGINT or SIGTERM. Stopping needs no flush: every answer was preceded by its commit.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Entry point called by the binary.
pub fn main_entry() -> ExitCode {
    let config = match Config::try_parse() {
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: in a log file they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kkt-emulator: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INFRA);
        }
    };
    runtime.block_on(async {
        match serve(config).await {
            Ok(mut running) => {
                println!(
                    "kkt-emulator pty={} control={}",
                    running.pty_link.display(),
                    running.control_addr
                );
                tracing::info!(pty = %running.pty_path.display(), "pty slave");
                tokio::select! {
                    () = running.wait() => ExitCode::from(EXIT_INFRA),
                    () = stop_signal() => ExitCode::from(EXIT_OK),
                }
            }
            Err(e) => {
                eprintln!("kkt-emulator: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}
