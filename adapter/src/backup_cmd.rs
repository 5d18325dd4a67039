//! `adapter backup --db JOURNAL --to NEW_FILE`: an online backup of a journal, safe while the
//! adapter runs on it (the SQLite backup API through a read-only connection).
//!
//! Exit codes: [`EXIT_OK`] done and checked; [`EXIT_BAD_INPUT`] bad arguments, the journal is
//! missing or the destination exists; [`EXIT_INFRA`] the copy failed (I/O, a corrupt copy).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::journal::{JournalError, backup_file};
use crate::{EXIT_BAD_INPUT, EXIT_INFRA, EXIT_OK};

/// How long the copy waits for a busy journal per attempt, in ms.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Online backup of the journal to a new file (created 0600, never overwritten).
#[derive(Debug, Parser)]
#[command(name = "adapter backup")]
struct BackupCli {
    /// The journal database file.
    #[arg(long)]
    db: PathBuf,
    /// The backup file to create; refused if it exists.
    #[arg(long)]
    to: PathBuf,
}

/// Runs the subcommand; `args` start with the program name, then `backup`.
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match BackupCli::try_parse_from(args.into_iter().skip(1)) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EXIT_OK);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match backup_file(&cli.db, &cli.to, BUSY_TIMEOUT_MS) {
        Ok(info) => {
            println!(
                "backup {} -> {}: {} pages, {} receipts, checked",
                cli.db.display(),
                cli.to.display(),
                info.pages,
                info.receipts
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("adapter backup: {e}");
            let exists = matches!(&e, JournalError::Io { code: Some(c), .. }
                if std::io::Error::from_raw_os_error(*c).kind() == std::io::ErrorKind::AlreadyExists);
            if exists || matches!(e, JournalError::NotFound(_)) {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::from(EXIT_INFRA)
            }
        }
    }
}
