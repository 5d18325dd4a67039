//! The fiscal adapter as a library: configuration, journal, KKT driver, phase-1 fiscal service, phase-2
//! OFD sync and the POS HTTP API. `src/main.rs` is a thin wrapper around [`main_entry`].

/// The stable text names of a closed enum, in one table: `ALL`, `as_str` and `parse`. What the
/// journal stores (document kinds, states, refusal codes) and the adapter's own encodings (task
/// kinds) are spelled once, so a name cannot drift between writing and reading. Defined before
/// the modules, so every one of them can use it.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The text stored in the journal.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            /// Parses the stored text; `None` for anything else.
            pub fn parse(text: &str) -> Option<$ty> {
                match text { $($text => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

mod backup_cmd;
pub mod config;
pub mod fiscal;
pub mod hlc;
pub mod http;
pub mod journal;
pub mod kkt;
pub mod logging;
pub mod metrics;
pub mod retention;
pub mod sale;
pub mod service;
pub mod shop;
pub mod signals;
pub mod sync;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use crate::config::{Cli, Config};
use crate::journal::{Journal, JournalConfig};
use crate::kkt::{KktConfig, KktHandle};
use crate::service::Fiscalizer;

/// Exit code: stopped cleanly.
pub const EXIT_OK: u8 = 0;
/// Exit code: invalid configuration (the message names the setting).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the journal, the listener or another resource could not be set up.
pub const EXIT_INFRA: u8 = 3;

/// After `run` returns, how long the runtime waits for blocking tasks before the process exits.
const RUNTIME_SHUTDOWN_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the adapter could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("journal {path}: {source}")]
    Journal {
        path: String,
        source: journal::JournalError,
    },
    #[error("cannot create the journal directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("sync worker: {0}")]
    Sync(String),
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Entry point called by the binary.
pub fn main_entry() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "backup") {
        return backup_cmd::main(args);
    }
    let cli = Cli::parse();
    // The configuration names the log format, so it is read before logging starts; its errors go
    // to stderr directly.
    let config = match Config::resolve(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("adapter: invalid configuration: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    logging::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("adapter: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INFRA);
        }
    };
    let result = runtime.block_on(run(config));
    // Connections still open at the shutdown deadline end here, not when their clients go away.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_MAX);
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("adapter: {e}");
            ExitCode::from(EXIT_INFRA)
        }
    }
}

/// Opens the journal, starts the KKT driver, the reconciler and the sync worker, and serves the POS
/// API until SIGTERM or Ctrl-C; then finishes the device operation in progress, checkpoints and returns.
pub async fn run(config: Config) -> Result<(), RunError> {
    let signals = signals::Signals::install().map_err(RunError::Signals)?;
    if let Some(dir) = config.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| RunError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if config.unsafe_synchronous_normal {
        tracing::warn!(
            "UNSAFE: journal runs with synchronous=NORMAL; acknowledged sales can be lost on power loss"
        );
    }
    if config.auth_tokens.is_empty() {
        // Config refuses a non-loopback address without tokens; on loopback this is allowed for
        // development and tests, and must not go unnoticed in a shop.
        tracing::warn!(
            listen = %config.listen,
            "NO AUTHENTICATION: no API token is configured, so every program on this machine may sell, close the shift and run admin actions; configure --auth-token or --auth-tokens-file"
        );
    }
    let mut jc = JournalConfig::new(config.db.clone());
    jc.capacity_max = config.capacity;
    jc.wal_autocheckpoint_pages = config.wal_autocheckpoint;
    jc.unsafe_synchronous_normal = config.unsafe_synchronous_normal;
    let path = config.db.display().to_string();
    let journal = tokio::task::spawn_blocking(move || Journal::open(jc))
        .await
        .map_err(|e| RunError::Sync(e.to_string()))?
        .map_err(|source| RunError::Journal {
            path: path.clone(),
            source,
        })?;
    // One owner thread, service and relay per register; the journal and the OFD endpoint's
    // breaker are shared.
    let breaker = sync::SyncHandle::breaker_for(&config);
    let mut registers = Vec::with_capacity(config.kkts.len());
    for spec in &config.kkts {
        let kkt = KktHandle::spawn(KktConfig {
            port: spec.port.clone(),
            baud: spec.baud,
            password: spec.password,
            // The vendor drivers' timing: 100 ms byte, 1 s control byte, 2 s answer (5 s FF45, 15 s FF0B).
            link: kkt_proto::LinkConfig::default(),
        });
        let fiscalizer = Fiscalizer::new(
            spec.id.clone(),
            journal.clone(),
            kkt.clone(),
            spec.auto_open_shift,
            http::decode_legacy_journaled_sale,
            service::ReconcilePolicy {
                retry: config.reconcile_retry,
                stuck_after: config.reconcile_stuck_after,
                stuck_attempts: config.reconcile_stuck_attempts,
            },
        );
        let sync = sync::SyncHandle::from_config(&config, journal.clone(), kkt, breaker.clone())
            .map_err(|e| RunError::Sync(e.to_string()))?;
        registers.push(shop::Register { fiscalizer, sync });
    }
    let shop = shop::Shop::new(registers);
    // Start-up reconciliation of every register at once: one slow register delays no other.
    let startup: Vec<_> = shop
        .all()
        .iter()
        .map(|r| {
            let (f, id) = (r.fiscalizer.clone(), r.id().to_owned());
            tokio::spawn(async move {
                if let Err(e) = f.reconcile().await {
                    tracing::warn!(kkt_id = %id, error = %e, "start-up reconciliation not finished; retrying in the background");
                }
            })
        })
        .collect();
    for task in startup {
        let _ = task.await;
    }
    let mut background = Vec::new();
    for r in shop.all() {
        // Task requests (ATOL API) a stopped adapter left unfinished go on, after reconciliation.
        if let Err(e) = r.fiscalizer.resume_tasks().await {
            tracing::error!(kkt_id = %r.id(), error = %e, "unfinished task requests could not be read; they go on when their uuid is sent again");
        }
        background.push(r.fiscalizer.spawn_reconciler());
        let (f, s) = (r.fiscalizer.clone(), r.sync.clone());
        background.push(tokio::spawn(async move {
            loop {
                f.fiscalized_signal().notified().await;
                s.notify_fiscalized();
            }
        }));
    }
    let sync_tasks: Vec<_> = shop.all().iter().map(|r| r.sync.start()).collect();
    let retention = retention::spawn(journal.clone(), config.retention);
    let state = Arc::new(http::AppState {
        config: config.clone(),
        shop: shop.clone(),
        started: Instant::now(),
    });
    let listener = http::listen(config.listen).map_err(|source| RunError::Listen {
        addr: config.listen.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    println!("adapter listening on http://{addr}");
    let kkts: Vec<String> = config
        .kkts
        .iter()
        .map(|k| format!("{}={}", k.id, k.port.display()))
        .collect();
    tracing::info!(%addr, db = %config.db.display(), kkt = %kkts.join(","), ofd = %config.ofd_addr, "adapter started");
    http::serve(
        listener,
        http::app(state),
        http::ServeConfig {
            shutdown_deadline: config.shutdown_deadline,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections as usize,
            max_concurrent_requests: config.max_concurrent_requests as usize,
        },
        signals.terminated(),
    )
    .await;
    tracing::info!("stopping: finishing the device operation in progress");
    background.iter().for_each(|t| t.abort());
    retention.iter().for_each(|t| t.abort());
    shop.all().iter().for_each(|r| r.sync.stop());
    for task in sync_tasks {
        let _ = task.await;
    }
    // Waiting for each fiscal lock lets a sale already at a KKT finish and be journaled.
    for r in shop.all() {
        r.fiscalizer.quiesce().await;
    }
    match journal.checkpoint().await {
        Ok(info) => tracing::info!(?info, "journal checkpointed"),
        Err(e) => {
            tracing::warn!(error = %e, "final checkpoint failed; the WAL is replayed at the next start")
        }
    }
    let _ = journal.close().await;
    Ok(())
}
