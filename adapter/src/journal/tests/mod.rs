//! Tests of the journal: operations, group commit, failures, and a model-based test.
//!
//! They live inside the crate (not in `tests/it`) because the journal module is owned
//! separately from the rest of the adapter; they use only the public API plus a raw
//! rusqlite connection to look at the file the way the acceptance tests do.

mod model;
mod ops;
mod registers;
mod tasks;

use std::path::Path;

use tempfile::TempDir;

use super::{FiscalDocument, Journal, JournalConfig, NewReceipt};
use crate::hlc::{ClockSource, ManualClock};

/// FN number used throughout the tests.
const FN: &str = "9999078900012345";

/// A journal in a fresh directory with a hand-driven clock.
struct Fixture {
    dir: TempDir,
    clock: ManualClock,
    journal: Journal,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(|_| {}).await
    }

    async fn with(tune: impl FnOnce(&mut JournalConfig)) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = JournalConfig::new(dir.path().join("data").join("buffer.db"));
        tune(&mut config);
        let clock = ManualClock::at(1_700_000_000_000);
        let journal = open(config, &clock);
        Fixture {
            dir,
            clock,
            journal,
        }
    }

    /// Closes the journal and opens it again on the same file (a restart).
    async fn reopen(self) -> Fixture {
        let config = self.journal.config().clone();
        self.journal.close().await.expect("close");
        let journal = open(config, &self.clock);
        Fixture { journal, ..self }
    }

    fn clock_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("buffer.db")
    }

    /// Runs one scalar SQL query on a separate connection, as the external tests do.
    fn sql_i64(&self, sql: &str) -> i64 {
        raw(&self.db_path())
            .query_row(sql, [], |r| r.get(0))
            .expect(sql)
    }
}

fn open(config: JournalConfig, clock: &ManualClock) -> Journal {
    Journal::open_with_clock(config, Box::new(clock.clone())).expect("open journal")
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw connection")
}

fn sale(key: &str) -> NewReceipt {
    NewReceipt {
        kkt_id: crate::journal::DEFAULT_KKT_ID.into(),
        idempotency_key: key.to_string(),
        request_hash: format!("hash-{key}"),
        request_body: format!("{{\"idempotency_key\":\"{key}\"}}"),
    }
}

fn fiscal(fd_number: u32) -> FiscalDocument {
    FiscalDocument {
        fn_number: FN.to_string(),
        fd_number,
        fpd: 1_000_000 + fd_number,
        shift_number: 3,
        receipt_number: fd_number,
        fiscal_time: "2026-03-01T12:00:00".to_string(),
        total_kopecks: 2_500_000,
        document_tlv: vec![0x03, 0x04, 0x02, 0x00, 0x01, 0x00],
    }
}
