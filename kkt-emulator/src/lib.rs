//! A virtual Shtrih-M fiscal register with fiscal storage (FN) on a pseudo-terminal, with fault injection
//! and an HTTP control API. `src/main.rs` is a thin wrapper around [`main_entry`].
//!
//! **Boundary:** the wire format and the typed commands come from `kkt-proto`, the FFD documents, the
//! OFD envelope and the stand-in fiscal sign from `ofd-proto`; the control API's accept loop, its control
//! token (from a file or the environment) and the stop signals from `tool-http`, shared with `ofd-mock`.
//! This crate owns the pty, the timing, the FN state file and the device's behaviour.
//!
//! **Invariant:** every change a command makes to the FN is durable (a document or OFD ticket appended and
//! fsynced to the FN log, or the small head file replaced atomically) before the answer to that command
//! leaves the device, so a restart never reuses an FD number and never loses a committed document.

pub mod clock;
pub mod control;
pub mod counters;
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

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use control::app;
pub use emu::Shared;
pub use tool_http::Secret;
use tool_http::{SecretError, Sources};

/// Exit code: stopped normally.
pub const EXIT_OK: u8 = 0;
/// Exit code for bad input (command line, unreadable state file, an unreadable or doubly given control
/// token, an unprotected control API on a non-loopback address).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for infrastructure errors (pty, port in use).
pub const EXIT_INFRA: u8 = 3;

/// Environment variable that may hold the control token instead of `--control-token-file`.
pub const ENV_CONTROL_TOKEN: &str = "KKT_EMU_CONTROL_TOKEN";

/// How long a control request in flight at shutdown may still take.
const CONTROL_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// Command line and library configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kkt-emulator",
    about = "Virtual Shtrih-M fiscal register on a pseudo-terminal",
    after_help = "Environment: KKT_EMU_CONTROL_TOKEN holds the control token (instead of --control-token-file; \
                  giving both is refused with exit 2). The emulator takes no other secret: the FPD key is \
                  derived from --fn-seed and kept in the state file (mode 600)."
)]
pub struct Config {
    /// Symlink to publish the pty slave at (replaced atomically).
    #[arg(long, env = "KKT_EMU_PTY_LINK", default_value = "./kkt.tty")]
    pub pty_link: PathBuf,
    /// FN state file (created on first start).
    #[arg(long, env = "KKT_EMU_STATE", default_value = "./kkt-fn.json")]
    pub state: PathBuf,
    /// Control API address. Without a control token it must be a loopback address.
    #[arg(long, env = "KKT_EMU_CONTROL", default_value = "127.0.0.1:9100")]
    pub control: SocketAddr,
    /// Read a control token from this file (mode 600, trailing newline trimmed), or set
    /// KKT_EMU_CONTROL_TOKEN. Then every control request needs `Authorization: Bearer TOKEN`.
    #[arg(long, env = "KKT_EMU_CONTROL_TOKEN_FILE", value_name = "PATH")]
    pub control_token_file: Option<PathBuf>,
    /// The control token in effect: filled from the file or the environment by
    /// [`Config::resolve_secrets`], never taken from the command line itself.
    #[arg(skip)]
    pub control_token: Option<Secret>,
    /// A control client must send its whole request head within this time, milliseconds; an idle
    /// keep-alive connection is closed after the same time.
    #[arg(long, env = "KKT_EMU_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub header_read_timeout_ms: u64,
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
            control_token_file: None,
            control_token: None,
            header_read_timeout_ms: 10_000,
            baud: None,
            allow_reset: false,
            fn_seed: 1,
        }
    }

    /// Fills [`Config::control_token`] from `--control-token-file` or [`ENV_CONTROL_TOKEN`] (`env` looks
    /// a variable up; tests pass their own). Both at once is an error naming both.
    pub fn resolve_secrets(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        self.control_token = Sources {
            what: "control token",
            argv: None,
            file: ("--control-token-file", self.control_token_file.as_deref()),
            env: (ENV_CONTROL_TOKEN, env(ENV_CONTROL_TOKEN)),
        }
        .resolve_token()?;
        Ok(self)
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
    /// The control API would answer anyone on the network.
    #[error(
        "refusing to serve the control API on {addr} without a control token: anyone who can reach it \
         could cut the power or reset the FN; bind a loopback address, or set a token with \
         --control-token-file or {ENV_CONTROL_TOKEN}"
    )]
    Unprotected {
        /// The address asked for.
        addr: SocketAddr,
    },
}

impl ServeError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Store(_) | Self::Unprotected { .. } => EXIT_BAD_INPUT,
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
    wire: Option<Wire>,
    http: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// The wire loop's thread ([`link::run`]), and how to stop it and hear that it ended.
#[derive(Debug)]
struct Wire {
    thread: std::thread::JoinHandle<()>,
    /// Written to (or dropped) to stop the loop: its read end wakes the loop's poll.
    stop: std::io::PipeWriter,
    /// Sent, or dropped, when the loop ends.
    ended: oneshot::Receiver<()>,
}

impl Wire {
    fn start(pty: Arc<pty::Pty>, shared: Arc<Shared>) -> Result<Self, ServeError> {
        let (stopped, stop) = std::io::pipe().map_err(|source| pty::PtyError::Io {
            what: "pipe",
            source,
        })?;
        let (tell_ended, ended) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kkt-wire".into())
            .spawn(move || {
                if let Err(e) = link::run(pty, shared, &stopped) {
                    tracing::error!(error = %e, "wire loop stopped");
                }
                let _ = tell_ended.send(());
            })
            .map_err(|source| pty::PtyError::Io {
                what: "spawn the wire thread",
                source,
            })?;
        Ok(Self {
            thread,
            stop,
            ended,
        })
    }

    /// Stops the loop and waits for its thread: at most the command or paced write in progress.
    fn stop(self) {
        use std::io::Write;
        let Self {
            thread, mut stop, ..
        } = self;
        let _ = stop.write_all(&[1]);
        if thread.join().is_err() {
            tracing::error!("the wire thread panicked");
        }
    }
}

impl Running {
    /// Waits until the wire loop or the control server ends (normally never).
    pub async fn wait(&mut self) {
        match self.wire.as_mut() {
            Some(wire) => tokio::select! {
                _ = &mut wire.ended => {}
                _ = &mut self.http => {}
            },
            None => {
                let _ = (&mut self.http).await;
            }
        }
    }

    /// Stops accepting control connections and lets the requests in flight finish (bounded). The wire
    /// loop needs no flush: every answer was preceded by its commit.
    pub async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        let wait = CONTROL_SHUTDOWN_DEADLINE + Duration::from_secs(1);
        if tokio::time::timeout(wait, &mut self.http).await.is_err() {
            tracing::warn!("the control API did not stop within {wait:?}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(wire) = self.wire.take() {
            wire.stop();
        }
        self.http.abort();
    }
}

/// Loads (or creates) the FN, opens the pty, binds the control API and starts both loops. Without a
/// control token ([`Config::control_token`]), the control API binds only a loopback address.
pub async fn serve(config: Config) -> Result<Running, ServeError> {
    if config.control_token.is_none() && !config.control.ip().is_loopback() {
        return Err(ServeError::Unprotected {
            addr: config.control,
        });
    }
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
    let pty = Arc::new(pty::Pty::open(
        &config.pty_link,
        config.baud,
        Arc::clone(shared.counters()),
    )?);
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
    let wire = Wire::start(Arc::clone(&pty), Arc::clone(&shared))?;
    let router = app(Arc::clone(&shared), config.control_token.clone());
    let serve_config = tool_http::ServeConfig {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        shutdown_deadline: CONTROL_SHUTDOWN_DEADLINE,
    };
    let (stop, mut stopped) = watch::channel(false);
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        tool_http::serve(listener, router, serve_config, shutdown).await;
    });
    Ok(Running {
        control_addr,
        pty_link: config.pty_link,
        pty_path,
        shared,
        wire: Some(wire),
        http,
        stop,
    })
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
    let config = match config.resolve_secrets(|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kkt-emulator: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: in a log file they are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Paced, a write's bytes are released by timed sleeps; the kernel lets each run late by the
    // thread's timer slack (50 us by default, over half a byte time at 115200 baud). The line the
    // emulator plays has no such lateness, so its threads ask for none.
    set_exact_timers();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(set_exact_timers)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kkt-emulator: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INFRA);
        }
    };
    runtime.block_on(async {
        match serve(config).await {
            Ok(mut running) => {
                // Registered before the start line; stopping needs no flush: every answer was
                // preceded by its commit.
                let stop = tool_http::stop_signals();
                println!(
                    "kkt-emulator pty={} control={}",
                    running.pty_link.display(),
                    running.control_addr
                );
                tracing::info!(pty = %running.pty_path.display(), "pty slave");
                tokio::select! {
                    () = running.wait() => ExitCode::from(EXIT_INFRA),
                    () = stop => {
                        running.shutdown().await;
                        ExitCode::from(EXIT_OK)
                    }
                }
            }
            Err(e) => {
                eprintln!("kkt-emulator: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}

/// Asks the kernel to wake this thread's timed sleeps on time (1 ns of timer slack, the least it
/// takes). Best effort: a kernel that refuses leaves the pacing as exact as the default allows.
fn set_exact_timers() {
    if let Err(e) = nix::sys::prctl::set_timerslack(1) {
        tracing::debug!(error = %e, "timer slack unchanged");
    }
}
