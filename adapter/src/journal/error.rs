//! The journal's error type: storage failures are told apart from refusals and broken rules.

/// Everything a journal operation can fail with. Cloneable, because one failed commit fails
/// every request of its batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The buffer already holds `capacity_max` documents not yet delivered; nothing was written.
    #[error("journal full: {undelivered} documents not yet delivered, capacity {capacity_max}")]
    CapacityExceeded {
        /// Documents not yet delivered at the time of the refusal.
        undelivered: u64,
        /// The configured limit.
        capacity_max: u64,
    },
    /// Disk full, I/O error, read-only or unopenable file: the write did not happen (or its
    /// commit could not be confirmed); retrying with the same idempotency key is safe.
    #[error("journal storage error: {message}")]
    Io {
        /// SQLite's extended result code, when there is one.
        code: Option<i32>,
        /// SQLite's message.
        message: String,
    },
    /// The database file is damaged or not a database.
    #[error("journal file is corrupt: {0}")]
    Corrupt(String),
    /// Another connection held the write lock longer than `busy_timeout`.
    #[error("journal busy: {0}")]
    Busy(String),
    /// A UNIQUE or CHECK constraint refused the write (for example the same FN/FD twice).
    #[error("journal constraint violated: {0}")]
    Constraint(String),
    /// No row matches the given receipt id, idempotency key or fiscal document.
    #[error("not found in journal: {0}")]
    NotFound(String),
    /// The state machine does not allow this step from the row's current state.
    #[error("receipt {receipt_id}: cannot {action} from state {from:?}")]
    InvalidTransition {
        /// The row concerned.
        receipt_id: String,
        /// Its state when the step was refused, e.g. `rejected` or `fiscalized/synced`.
        from: String,
        /// The refused step.
        action: &'static str,
    },
    /// The caller's sync lease is no longer the current one (another owner took over).
    #[error("sync lease {name} fenced: token {token} is no longer current")]
    Fenced {
        /// Lease name.
        name: String,
        /// The stale token the caller presented.
        token: i64,
    },
    /// A journal invariant does not hold: a bug or a damaged file. Callers treat it as fatal.
    #[error("journal invariant broken: {0}")]
    Invariant(String),
    /// The schema is newer than this program, or a migration failed.
    #[error("journal schema: {0}")]
    Schema(String),
    /// The writer thread has stopped (journal closed or writer crashed).
    #[error("journal writer is not running")]
    Closed,
    /// Any other SQLite failure.
    #[error("journal sqlite error: {0}")]
    Sqlite(String),
}

impl JournalError {
    /// True for failures of the storage itself (disk full, I/O, corrupt): the caller must not
    /// go on to the KKT, and health should report the journal as failing.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, JournalError::Io { .. } | JournalError::Corrupt(_))
    }
}

impl From<rusqlite::Error> for JournalError {
    fn from(err: rusqlite::Error) -> JournalError {
        use rusqlite::ErrorCode as C;
        match &err {
            rusqlite::Error::SqliteFailure(ffi, msg) => {
                let message = msg.clone().unwrap_or_else(|| ffi.to_string());
                match ffi.code {
                    C::DiskFull
                    | C::SystemIoFailure
                    | C::CannotOpen
                    | C::ReadOnly
                    | C::PermissionDenied
                    | C::FileLockingProtocolFailed => JournalError::Io {
                        code: Some(ffi.extended_code),
                        message,
                    },
                    C::DatabaseCorrupt | C::NotADatabase => JournalError::Corrupt(message),
                    C::DatabaseBusy | C::DatabaseLocked => JournalError::Busy(message),
                    C::ConstraintViolation => JournalError::Constraint(message),
                    _ => JournalError::Sqlite(message),
                }
            }
            rusqlite::Error::QueryReturnedNoRows => JournalError::NotFound(err.to_string()),
            _ => JournalError::Sqlite(err.to_string()),
        }
    }
}

/// Shorthand used throughout the journal.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("boom".into()))
    }

    #[test]
    fn disk_full_and_io_errors_are_storage_failures() {
        for code in [rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_IOERR] {
            let err = JournalError::from(sqlite_failure(code));
            assert!(err.is_storage_failure(), "{err:?}");
            assert!(matches!(err, JournalError::Io { .. }));
        }
    }

    #[test]
    fn constraint_errors_are_not_storage_failures() {
        let err = JournalError::from(sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert!(matches!(err, JournalError::Constraint(_)));
        assert!(!err.is_storage_failure());
        let busy = JournalError::from(sqlite_failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(matches!(busy, JournalError::Busy(_)));
    }
}
