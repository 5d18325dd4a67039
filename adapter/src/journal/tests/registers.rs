//! Several registers in one journal: rows carry their register, a journal of one register
//! migrates with every row kept, and each register's reconciliation sees only its own rows.

use super::{FN, Fixture, fiscal, raw, sale};
use crate::fiscal::DocKind;
use crate::journal::schema::MIGRATIONS;
use crate::journal::{DEFAULT_KKT_ID, InsertOutcome, JournalConfig, KktState};

fn on(kkt_id: &str, key: &str) -> crate::journal::NewReceipt {
    let mut new = sale(key);
    new.kkt_id = kkt_id.to_owned();
    new
}

async fn insert(f: &Fixture, kkt_id: &str, key: &str) -> InsertOutcome {
    f.journal
        .insert_received(on(kkt_id, key))
        .await
        .expect("insert")
}

#[tokio::test]
async fn a_journal_written_for_one_register_migrates_keeping_every_row_as_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("buffer.db");
    {
        // The file a version-3 adapter left: one receipt in flight, one delivered shift report.
        let c = raw(&path);
        for sql in &MIGRATIONS[..3] {
            c.execute_batch(sql).expect("older schema");
        }
        c.pragma_update(None, "user_version", 3).expect("version");
        c.execute_batch(&format!(
            "INSERT INTO receipts (id, idempotency_key, request_hash, request_body, hlc, kind, \
             kkt_state, status, created_at, updated_at) VALUES \
             ('00000000000000a1', 'old-1', 'h', '{{}}', 1, 'receipt', 'kkt_in_flight', NULL, 1, 1); \
             INSERT INTO receipts (id, idempotency_key, hlc, kind, kkt_state, status, fn_number, \
             fd_number, fpd, shift_number, receipt_number, fiscal_time, total_kopecks, \
             document_tlv, created_at, updated_at) VALUES \
             ('00000000000000a2', 'shift_open:{FN}:1', 2, 'shift_open', 'fiscalized', 'synced', \
             '{FN}', 1, 7, 1, 0, '2026-12-03T08:00:00', 0, x'02', 2, 2); \
             INSERT INTO meta (key, value) VALUES ('hlc_high_water', 2);"
        ))
        .expect("older rows");
    }
    let journal = crate::journal::Journal::open(JournalConfig::new(path.clone())).expect("opens");
    for id in ["00000000000000a1", "00000000000000a2"] {
        let row = journal
            .get_by_id(id)
            .await
            .expect("read")
            .expect("row kept");
        assert_eq!(row.kkt_id, DEFAULT_KKT_ID, "{id}");
    }
    let unresolved = journal.list_unresolved(DEFAULT_KKT_ID).await.expect("list");
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].kkt_state, KktState::InFlight);
    assert!(
        journal
            .list_unresolved("till-2")
            .await
            .expect("list")
            .is_empty()
    );
    journal.close().await.expect("close");
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn each_register_lists_only_its_own_unresolved_rows() {
    let f = Fixture::new().await;
    for (kkt, key) in [("till-1", "a"), ("till-2", "b"), ("till-1", "c")] {
        assert!(matches!(
            insert(&f, kkt, key).await,
            InsertOutcome::Inserted(_)
        ));
    }
    let keys = |rows: Vec<crate::journal::ReceiptRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.idempotency_key).collect()
    };
    assert_eq!(
        keys(f.journal.list_unresolved("till-1").await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        keys(f.journal.list_unresolved("till-2").await.unwrap()),
        ["b"]
    );
    // A shift report is journaled under the register that printed it.
    let shift = f
        .journal
        .insert_fiscal_document("till-2", DocKind::ShiftOpen, fiscal(1))
        .await
        .expect("shift");
    match shift {
        InsertOutcome::Inserted(row) => assert_eq!(row.kkt_id, "till-2"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_idempotency_key_is_unique_across_registers() {
    let f = Fixture::new().await;
    let first = match insert(&f, "till-1", "same").await {
        InsertOutcome::Inserted(row) => row,
        other => panic!("{other:?}"),
    };
    // The POS retries the same key against another register: the first register's row answers.
    match insert(&f, "till-2", "same").await {
        InsertOutcome::Existing(row) => {
            assert_eq!(row.receipt_id, first.receipt_id);
            assert_eq!(row.kkt_id, "till-1");
        }
        other => panic!("{other:?}"),
    }
}
