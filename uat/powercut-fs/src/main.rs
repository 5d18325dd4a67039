//! Thin binary for powercut-fs (a test tool only): mounts the filesystem and serves the
//! loopback HTTP control API until SIGINT, SIGTERM or `POST /shutdown`, then unmounts.
//!
//! Exit codes: 0 clean exit, 2 bad arguments, 3 infrastructure error (mount, bind, unmount).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError};

use anyhow::Context;
use clap::{Parser, Subcommand};
use powercut_fs::control::{self, ControlState};

const EXIT_BAD_INPUT: u8 = 2;
const EXIT_INFRASTRUCTURE: u8 = 3;

/// A FUSE filesystem that forgets unsynced writes when told to: a power-cut simulator.
/// TEST TOOL ONLY: never keep data you care about on it.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mount BACKING at MOUNTPOINT and print `control=ADDR` once ready.
    Mount {
        /// Directory holding the "disk" contents.
        #[arg(long)]
        backing: PathBuf,
        /// Empty directory to mount on.
        #[arg(long)]
        mountpoint: PathBuf,
        /// Loopback address for the control API; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        control: SocketAddr,
        /// Let other users access the mount (FUSE allow_other).
        #[arg(long)]
        allow_other: bool,
        /// Most unsynced data held in memory, in MiB; writes beyond it fail with ENOSPC.
        #[arg(long, default_value_t = 512)]
        dirty_mib_max: u64,
    },
}

fn main() -> ExitCode {
    let Command::Mount {
        backing,
        mountpoint,
        control,
        allow_other,
        dirty_mib_max,
    } = Cli::parse().command;
    if !control.ip().is_loopback() {
        eprintln!("powercut-fs: --control must be a loopback address, got {control}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let options = powercut_fs::Options {
        allow_other,
        dirty_bytes_max: dirty_mib_max.saturating_mul(1024 * 1024),
    };
    match run(backing, mountpoint, control, options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("powercut-fs: {e:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

fn run(
    backing: PathBuf,
    mountpoint: PathBuf,
    control: SocketAddr,
    options: powercut_fs::Options,
) -> anyhow::Result<()> {
    let mounted = powercut_fs::mount(&backing, &mountpoint, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let state = ControlState::new(mounted);
    runtime.block_on(serve_until_stopped(control, state.clone()))?;
    drop(runtime);
    match Arc::try_unwrap(state.mounted) {
        Ok(mutex) => mutex
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .unmount()?,
        // Someone still holds the mount; dropping the last handle unmounts it.
        Err(_) => eprintln!("powercut-fs: control handle still shared at exit"),
    }
    Ok(())
}

async fn serve_until_stopped(control: SocketAddr, state: ControlState) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(control)
        .await
        .with_context(|| format!("binding {control}"))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "control={addr}")?;
    stdout.flush()?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = tokio::spawn(control::serve(listener, state.clone()));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
        () = state.shutdown_requested() => {}
    }
    state.shutdown.send_replace(true);
    server.await.context("control server task")??;
    Ok(())
}
