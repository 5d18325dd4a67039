//! Connection setup (pragmas), schema migrations by `PRAGMA user_version`, and settings readback.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::JournalConfig;
use super::error::{JournalError, Result};
use super::types::EffectiveSettings;

/// Schema migrations; migration `i` takes the file from `user_version = i` to `i + 1`.
/// Append only: a released migration is never edited.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// Version 1: receipts (phase 1), ofd_exchange and sync_lease (phase 2), meta.
const V1: &str = "
CREATE TABLE receipts (
    id               TEXT PRIMARY KEY NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    request_hash     TEXT,
    request_body     TEXT,
    hlc              INTEGER NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('receipt', 'shift_open', 'shift_close')),
    kkt_state        TEXT NOT NULL
                     CHECK (kkt_state IN ('received', 'kkt_in_flight', 'fiscalized', 'rejected')),
    status           TEXT CHECK (status IN ('pending', 'synced', 'dlq')),
    last_error       TEXT,
    error_code       TEXT,
    fn_number        TEXT,
    fd_number        INTEGER,
    fpd              INTEGER,
    shift_number     INTEGER,
    receipt_number   INTEGER,
    fiscal_time      TEXT,
    total_kopecks    INTEGER,
    document_tlv     BLOB,
    retry_count      INTEGER NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((status IS NOT NULL) = (kkt_state = 'fiscalized'))
);
CREATE UNIQUE INDEX receipts_fn_fd ON receipts (fn_number, fd_number)
    WHERE fn_number IS NOT NULL AND fd_number IS NOT NULL;
CREATE INDEX receipts_in_kkt ON receipts (kkt_state)
    WHERE kkt_state IN ('received', 'kkt_in_flight');
CREATE INDEX receipts_status ON receipts (status, fn_number, fd_number)
    WHERE status IS NOT NULL;

CREATE TABLE ofd_exchange (
    fn_number        TEXT NOT NULL,
    fd_number        INTEGER NOT NULL,
    outgoing_message BLOB NOT NULL,
    reply            BLOB,
    response_code    INTEGER,
    operator_sign    BLOB,
    replied_at       INTEGER,
    written_to_fn    INTEGER NOT NULL DEFAULT 0 CHECK (written_to_fn IN (0, 1)),
    send_count       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (fn_number, fd_number)
);

CREATE TABLE sync_lease (
    name        TEXT PRIMARY KEY NOT NULL,
    owner       TEXT,
    token       INTEGER NOT NULL CHECK (token >= 0),
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value
);
";

/// Version 2: the audit trail of operator actions (who resolved which receipt, why, and how).
const V2: &str = "
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX audit_receipt ON audit (receipt_id);
";

/// Version 3: every definite OFD refusal of a document, kept across operator retries (a retry
/// clears the reply in `ofd_exchange`, which held the only copy of the response code before).
const V3: &str = "
CREATE TABLE delivery_rejection (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id     TEXT NOT NULL,
    at             INTEGER NOT NULL,
    response_code  INTEGER,
    error_code     TEXT NOT NULL,
    message        TEXT NOT NULL
);
CREATE INDEX delivery_rejection_receipt ON delivery_rejection (receipt_id, seq);
";

/// Version 4: several registers behind one adapter. Every row names the register (`kkt_id`) that
/// fiscalizes it; rows of a journal written before keep every column and belong to the one
/// register such an adapter drove, `default` (the id of `--kkt-port`).
const V4: &str = "
ALTER TABLE receipts ADD COLUMN kkt_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX receipts_kkt_unresolved ON receipts (kkt_id, hlc)
    WHERE kkt_state IN ('received', 'kkt_in_flight');
";

/// Version 5: task requests, a POS's list of tasks under the POS's own id (the ATOL-compatible API's
/// `uuid`), kept so the same id never runs twice and its results can be polled after a restart.
/// `jobs` is the adapter's own encoding of the validated tasks; each finished task has an outcome
/// row. A receipt task's sale is a `receipts` row of its own, keyed `<key_prefix><index>`.
const V5: &str = "
CREATE TABLE task_requests (
    id          TEXT PRIMARY KEY NOT NULL,
    number      INTEGER NOT NULL UNIQUE,
    kkt_id      TEXT NOT NULL,
    body_hash   TEXT NOT NULL,
    jobs        TEXT NOT NULL,
    task_count  INTEGER NOT NULL CHECK (task_count >= 1),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE task_outcomes (
    request_id  TEXT NOT NULL,
    idx         INTEGER NOT NULL CHECK (idx >= 0),
    outcome     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (request_id, idx)
);
";

/// Version 6: `receipts_in_kkt` (kkt_state, for the rows in `received` or `kkt_in_flight`) goes: its
/// rows are exactly those of `receipts_kkt_unresolved` (kkt_id, hlc), which serves every query it
/// served, so every change of a sale's state wrote one index page to the WAL for nothing.
const V6: &str = "
DROP INDEX IF EXISTS receipts_in_kkt;
";

/// The id of the register an adapter with one `--kkt-port` drives.
pub const DEFAULT_KKT_ID: &str = "default";

/// The `meta` key holding the HLC high-water mark.
pub(crate) const META_HLC_HIGH_WATER: &str = "hlc_high_water";

/// Opens the writer connection, applies the durability pragmas and migrates the schema.
pub(crate) fn open_writer(config: &JournalConfig) -> Result<Connection> {
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::Io {
            code: e.raw_os_error(),
            message: format!("creating {}: {e}", dir.display()),
        })?;
    }
    make_private(&config.path).map_err(|e| JournalError::Io {
        code: e.raw_os_error(),
        message: format!("making {} private: {e}", config.path.display()),
    })?;
    let conn = Connection::open(&config.path)?;
    conn.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Schema(format!(
            "journal_mode=WAL refused (got {mode}); the file system may not support shared memory"
        )));
    }
    if config.unsafe_synchronous_normal {
        tracing::warn!(
            path = %config.path.display(),
            "UNSAFE: journal opened with synchronous=NORMAL; acknowledged receipts CAN BE LOST \
             on power failure. Use only as the power-loss negative control."
        );
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    } else {
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.pragma_update(None, "wal_autocheckpoint", config.wal_autocheckpoint_pages)?;
    migrate(&conn)?;
    if let Some(pages) = config.db_pages_max {
        // After the migration, so the cap applies to data, not to creating the schema.
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
    }
    Ok(conn)
}

/// Owner read and write only: the journal holds customer contacts and every receipt.
pub const PRIVATE_MODE: u32 = 0o600;

/// Creates the journal file with [`PRIVATE_MODE`] before SQLite opens it, and tightens an existing
/// file and its `-wal` and `-shm` files (left by an earlier version or a crash). SQLite creates the
/// WAL and SHM files with the database file's mode, so a private database keeps them private, and
/// the process umask is left alone. A backup of the journal is to be created through this too, before
/// the copy is written into it.
pub(crate) fn make_private(path: &Path) -> std::io::Result<()> {
    use std::fs::{OpenOptions, Permissions};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(PRIVATE_MODE))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::set_permissions(&side, Permissions::from_mode(PRIVATE_MODE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Opens one read-only connection for the read pool.
pub(crate) fn open_reader(path: &Path, busy_timeout_ms: u64) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))?;
    Ok(conn)
}

/// Brings the schema to the latest version, one migration per transaction.
fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(JournalError::Schema(format!(
            "journal schema version {version} is newer than this program's {latest}"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let next = index as i64 + 1;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", next));
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                // The migration failed half-way: undo it so the file stays at `version`.
                let _ = conn.execute_batch("ROLLBACK");
                return Err(JournalError::Schema(format!("migration to v{next}: {e}")));
            }
        }
        tracing::info!(version = next, "journal schema migrated");
    }
    Ok(())
}

/// Reads the settings in force on `conn` (call it on the writer connection).
pub(crate) fn effective_settings(conn: &Connection) -> Result<EffectiveSettings> {
    let get_i64 = |pragma: &str| -> Result<i64> {
        Ok(conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))?)
    };
    let synchronous = match get_i64("synchronous")? {
        0 => "off".to_string(),
        1 => "normal".to_string(),
        2 => "full".to_string(),
        3 => "extra".to_string(),
        other => other.to_string(),
    };
    Ok(EffectiveSettings {
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        synchronous,
        wal_autocheckpoint: get_i64("wal_autocheckpoint")?,
        busy_timeout_ms: get_i64("busy_timeout")?,
        schema_version: get_i64("user_version")?,
    })
}
