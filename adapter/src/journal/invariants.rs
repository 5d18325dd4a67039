//! Journal invariants: checked per row after every write and over the whole file at open.
//!
//! A violation is a bug or a damaged file, never bad input; callers treat
//! [`JournalError::Invariant`] as fatal (crash, and let the tested recovery path take over).

use rusqlite::Connection;

use super::error::{JournalError, Result};
use super::read;
use super::types::{KktState, ReceiptRow};
use crate::fiscal::DocKind;

/// Row-level rules, checked on the typed row after each write.
pub(crate) fn check_row(row: &ReceiptRow) -> Result<()> {
    let fiscalized = row.kkt_state == KktState::Fiscalized;
    let broken = |rule: &str| {
        Err(JournalError::Invariant(format!(
            "receipt {}: {rule} (state {:?}, status {:?})",
            row.receipt_id, row.kkt_state, row.status
        )))
    };
    if row.status.is_some() != fiscalized {
        return broken("status must be set exactly when fiscalized");
    }
    if row.fiscal.is_some() != fiscalized {
        return broken("fiscal data must be present exactly when fiscalized");
    }
    if row.kkt_state == KktState::Rejected && row.error_code.is_none() {
        return broken("a rejected receipt carries its error code");
    }
    if row.kind != DocKind::Receipt && !fiscalized {
        return broken("a shift document is journaled only once fiscalized");
    }
    if row.kind == DocKind::Receipt && row.request_hash.is_none() {
        return broken("a sale keeps its request hash for idempotent replay");
    }
    Ok(())
}

/// Whole-journal rules over `receipts`: each a condition a violating row meets. They are counted
/// in one scan of the table (an un-checkpointed WAL makes every page read dearer at start).
const RECEIPT_RULES: &[(&str, &str)] = &[
    (
        "status is set exactly when fiscalized",
        "(status IS NOT NULL) <> (kkt_state = 'fiscalized')",
    ),
    (
        "a fiscalized row has complete fiscal data",
        "kkt_state = 'fiscalized' AND (fn_number IS NULL OR fd_number IS NULL OR fpd IS NULL \
         OR shift_number IS NULL OR receipt_number IS NULL OR fiscal_time IS NULL \
         OR total_kopecks IS NULL OR document_tlv IS NULL)",
    ),
    (
        "only a fiscalized row has fiscal data",
        "kkt_state <> 'fiscalized' \
         AND (fn_number IS NOT NULL OR fd_number IS NOT NULL OR fpd IS NOT NULL)",
    ),
    (
        "a rejected row has an error code",
        "kkt_state = 'rejected' AND error_code IS NULL",
    ),
    (
        "shift documents are fiscalized",
        "kind <> 'receipt' AND kkt_state <> 'fiscalized'",
    ),
];

/// Whole-journal rules over other tables, as SQL counting the violating rows.
const OTHER_RULES: &[(&str, &str)] = &[(
    "an acknowledged reply in ofd_exchange follows a journaled message",
    "SELECT count(*) FROM ofd_exchange WHERE written_to_fn = 1 AND reply IS NULL",
)];

/// Checks every whole-journal rule plus the HLC high-water mark and the row shapes.
pub(crate) fn check_all(conn: &Connection) -> Result<()> {
    let sums: Vec<String> = RECEIPT_RULES
        .iter()
        .map(|(_, cond)| format!("coalesce(sum({cond}), 0)"))
        .collect();
    let sql = format!("SELECT {} FROM receipts", sums.join(", "));
    let counts: Vec<i64> = conn.query_row(&sql, [], |r| {
        (0..RECEIPT_RULES.len()).map(|i| r.get(i)).collect()
    })?;
    let others = OTHER_RULES
        .iter()
        .map(|(rule, sql)| Ok((*rule, conn.query_row(sql, [], |r| r.get::<_, i64>(0))?)))
        .collect::<Result<Vec<_>>>()?;
    let all = RECEIPT_RULES.iter().map(|(rule, _)| *rule).zip(counts);
    for (rule, violations) in all.chain(others) {
        if violations != 0 {
            return Err(JournalError::Invariant(format!(
                "{rule}: {violations} rows violate it"
            )));
        }
    }
    let max_row: Option<i64> = conn.query_row("SELECT max(hlc) FROM receipts", [], |r| r.get(0))?;
    let meta = read::hlc_meta(conn)?;
    if max_row.unwrap_or(0) > meta.as_i64() {
        return Err(JournalError::Invariant(format!(
            "a row's HLC stamp {} exceeds the persisted high-water mark {meta:?}",
            max_row.unwrap_or(0)
        )));
    }
    // Every row must also parse into its typed form (known enums, complete fiscal data): one
    // scan, a row at a time, so the check's memory does not grow with the journal.
    read::for_each_receipt(conn, |row| check_row(&row))
}
