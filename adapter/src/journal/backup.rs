//! Online backup of the journal through SQLite's backup API, taken while sales go on.
//!
//! The copy is read from one read-only connection in a single step, so it is one consistent
//! snapshot (a WAL reader sees the committed state at its start and never blocks the writer).
//! The destination is created new with [`PRIVATE_MODE`]: a backup never overwrites a file, and it
//! holds customer contacts like the journal. The copy is checked before it is reported done:
//! `PRAGMA integrity_check` and the journal invariants on the copy itself.

use std::path::Path;

use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::StepResult;

use super::error::{JournalError, Result};
use super::invariants;
use super::schema::{PRIVATE_MODE, open_reader};

/// Tries of the copy step while the source is busy or locked, and the pause between them.
const STEP_ATTEMPTS_MAX: u32 = 50;
const STEP_PAUSE: Duration = Duration::from_millis(100);

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Database pages copied.
    pub pages: u64,
    /// `receipts` rows in the copy.
    pub receipts: u64,
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> JournalError {
    JournalError::Io {
        code: e.raw_os_error(),
        message: format!("{what} {}: {e}", path.display()),
    }
}

/// Copies the journal at `source` to the new file `dest` (refused if it exists) and checks the
/// copy. Blocking: call it inside `spawn_blocking`. A failed backup removes its partial file.
pub fn backup_file(source: &Path, dest: &Path, busy_timeout_ms: u64) -> Result<BackupInfo> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(dest)
        .map_err(|e| io_error("creating the backup", dest, &e))?;
    let copied = copy_and_check(source, dest, busy_timeout_ms);
    if copied.is_err() {
        // Nothing else refers to a half-written copy; leaving it would look like a good backup.
        let _ = std::fs::remove_file(dest);
    }
    copied
}

fn copy_and_check(source: &Path, dest: &Path, busy_timeout_ms: u64) -> Result<BackupInfo> {
    if !source.is_file() {
        return Err(JournalError::NotFound(format!(
            "journal {}",
            source.display()
        )));
    }
    let src = open_reader(source, busy_timeout_ms)?;
    let mut dst = Connection::open(dest)?;
    let pages = {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // -1: every page in one step, one read transaction, one consistent snapshot. A busy or
        // locked source is waited for a bounded number of times.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match backup.step(-1)? {
                StepResult::Done => break,
                other if attempts >= STEP_ATTEMPTS_MAX => {
                    return Err(JournalError::Sqlite(format!(
                        "backup: the journal stayed {other:?} after {attempts} attempts"
                    )));
                }
                _ => std::thread::sleep(STEP_PAUSE),
            }
        }
        backup.progress().pagecount
    };
    let integrity: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(JournalError::Corrupt(format!(
            "backup {}: integrity_check: {integrity}",
            dest.display()
        )));
    }
    invariants::check_all(&dst)?;
    let receipts: i64 = dst.query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))?;
    dst.close().map_err(|(_, e)| JournalError::from(e))?;
    Ok(BackupInfo {
        pages: u64::try_from(pages).unwrap_or(0),
        receipts: u64::try_from(receipts).unwrap_or(0),
    })
}
