//! Read queries, shared by the read pool and by write operations inside their transaction.

use rusqlite::{Connection, OptionalExtension, Params, Row};

use super::error::{JournalError, Result};
use super::schema::META_HLC_HIGH_WATER;
use super::types::{
    AuditEntry, BufferCounts, DlqEntry, KktState, Lease, OfdExchange, OfdStatus, ReceiptRow,
    Rejection,
};
use crate::fiscal::{DocKind, FiscalDocument};
use crate::hlc::HlcStamp;

/// The `receipts` columns in the order [`RawReceipt::from_row`] reads them.
const RECEIPT_COLUMNS: &str = "id, idempotency_key, request_hash, request_body, hlc, kind, \
     kkt_state, status, last_error, error_code, fn_number, fd_number, fpd, shift_number, \
     receipt_number, fiscal_time, total_kopecks, document_tlv, retry_count, next_attempt_at, \
     created_at, updated_at, kkt_id";

/// SQL condition for "not yet delivered": what the capacity limit counts.
pub(crate) const UNDELIVERED_SQL: &str =
    "(kkt_state IN ('received', 'kkt_in_flight') OR status IN ('pending', 'dlq'))";

/// A `receipts` row exactly as stored, before its shape is checked.
struct RawReceipt {
    id: String,
    idempotency_key: String,
    request_hash: Option<String>,
    request_body: Option<String>,
    hlc: i64,
    kind: String,
    kkt_state: String,
    status: Option<String>,
    last_error: Option<String>,
    error_code: Option<String>,
    fn_number: Option<String>,
    fd_number: Option<i64>,
    fpd: Option<i64>,
    shift_number: Option<i64>,
    receipt_number: Option<i64>,
    fiscal_time: Option<String>,
    total_kopecks: Option<i64>,
    document_tlv: Option<Vec<u8>>,
    retry_count: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    kkt_id: String,
}

impl RawReceipt {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawReceipt> {
        Ok(RawReceipt {
            id: r.get(0)?,
            idempotency_key: r.get(1)?,
            request_hash: r.get(2)?,
            request_body: r.get(3)?,
            hlc: r.get(4)?,
            kind: r.get(5)?,
            kkt_state: r.get(6)?,
            status: r.get(7)?,
            last_error: r.get(8)?,
            error_code: r.get(9)?,
            fn_number: r.get(10)?,
            fd_number: r.get(11)?,
            fpd: r.get(12)?,
            shift_number: r.get(13)?,
            receipt_number: r.get(14)?,
            fiscal_time: r.get(15)?,
            total_kopecks: r.get(16)?,
            document_tlv: r.get(17)?,
            retry_count: r.get(18)?,
            next_attempt_at: r.get(19)?,
            created_at: r.get(20)?,
            updated_at: r.get(21)?,
            kkt_id: r.get(22)?,
        })
    }

    /// Checks the stored shape and builds the typed row; a bad shape is a broken invariant.
    fn into_row(self) -> Result<ReceiptRow> {
        let bad = |what: &str| JournalError::Invariant(format!("receipt {}: {what}", self.id));
        let kind = DocKind::parse(&self.kind).ok_or_else(|| bad("unknown kind"))?;
        let kkt_state = KktState::parse(&self.kkt_state).ok_or_else(|| bad("unknown kkt_state"))?;
        let status = match &self.status {
            None => None,
            Some(s) => Some(OfdStatus::parse(s).ok_or_else(|| bad("unknown status"))?),
        };
        let fiscal = match self.fn_number.clone() {
            None => None,
            Some(fn_number) => Some(
                self.fiscal(fn_number)
                    .ok_or_else(|| bad("partial fiscal data"))?,
            ),
        };
        Ok(ReceiptRow {
            receipt_id: self.id,
            kkt_id: self.kkt_id,
            idempotency_key: self.idempotency_key,
            request_hash: self.request_hash,
            request_body: self.request_body,
            hlc: HlcStamp::from_i64(self.hlc),
            kind,
            kkt_state,
            status,
            last_error: self.last_error,
            error_code: self.error_code,
            fiscal,
            retry_count: u32::try_from(self.retry_count).unwrap_or(u32::MAX),
            next_attempt_at_ms: self.next_attempt_at,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        })
    }

    fn fiscal(&self, fn_number: String) -> Option<FiscalDocument> {
        Some(FiscalDocument {
            fn_number,
            fd_number: u32::try_from(self.fd_number?).ok()?,
            fpd: u32::try_from(self.fpd?).ok()?,
            shift_number: u32::try_from(self.shift_number?).ok()?,
            receipt_number: u32::try_from(self.receipt_number?).ok()?,
            fiscal_time: self.fiscal_time.clone()?,
            total_kopecks: self.total_kopecks?,
            document_tlv: self.document_tlv.clone()?,
        })
    }
}

/// Runs a `receipts` query with the given condition and tail (ORDER BY, LIMIT).
fn receipts_where(conn: &Connection, cond: &str, params: impl Params) -> Result<Vec<ReceiptRow>> {
    let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE {cond}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map(params, RawReceipt::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(RawReceipt::into_row).collect()
}

/// Every `receipts` row, typed, handed to `f` one at a time in storage order; nothing is collected.
/// A row whose stored shape is bad stops the scan with [`JournalError::Invariant`].
pub(crate) fn for_each_receipt(
    conn: &Connection,
    mut f: impl FnMut(ReceiptRow) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(&format!("SELECT {RECEIPT_COLUMNS} FROM receipts"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(RawReceipt::from_row(r)?.into_row()?)?;
    }
    Ok(())
}

fn one(rows: Vec<ReceiptRow>) -> Option<ReceiptRow> {
    rows.into_iter().next()
}

pub(crate) fn receipt_by_id(conn: &Connection, receipt_id: &str) -> Result<Option<ReceiptRow>> {
    receipts_where(conn, "id = ?1", [receipt_id]).map(one)
}

pub(crate) fn receipt_by_key(conn: &Connection, key: &str) -> Result<Option<ReceiptRow>> {
    receipts_where(conn, "idempotency_key = ?1", [key]).map(one)
}

pub(crate) fn receipt_by_fiscal(
    conn: &Connection,
    fn_number: &str,
    fd_number: u32,
) -> Result<Option<ReceiptRow>> {
    let cond = "fn_number = ?1 AND fd_number = ?2";
    receipts_where(conn, cond, rusqlite::params![fn_number, fd_number]).map(one)
}

/// One register's rows in `received` or `kkt_in_flight`, oldest first: its reconciliation work list.
pub(crate) fn list_unresolved(conn: &Connection, kkt_id: &str) -> Result<Vec<ReceiptRow>> {
    let cond = "kkt_id = ?1 AND kkt_state IN ('received', 'kkt_in_flight') ORDER BY hlc";
    receipts_where(conn, cond, [kkt_id])
}

/// Pending rows in FN/FD order; with `due_at_ms`, only those whose next attempt is due.
pub(crate) fn list_pending(
    conn: &Connection,
    due_at_ms: Option<i64>,
    limit: u32,
) -> Result<Vec<ReceiptRow>> {
    let cond = "status = 'pending' AND (?1 IS NULL OR next_attempt_at IS NULL \
                OR next_attempt_at <= ?1) ORDER BY fn_number, fd_number LIMIT ?2";
    receipts_where(conn, cond, rusqlite::params![due_at_ms, limit])
}

/// One FN's pending rows in FD order.
pub(crate) fn list_pending_of_fn(
    conn: &Connection,
    fn_number: &str,
    limit: u32,
) -> Result<Vec<ReceiptRow>> {
    let cond = "status = 'pending' AND fn_number = ?1 ORDER BY fd_number LIMIT ?2";
    receipts_where(conn, cond, rusqlite::params![fn_number, limit])
}

/// The newest rows, newest first (the receipt id is the creation stamp, so its order is
/// creation order and the primary key's index serves it).
pub(crate) fn list_recent(conn: &Connection, limit: u32) -> Result<Vec<ReceiptRow>> {
    receipts_where(conn, "1 ORDER BY id DESC LIMIT ?1", [limit])
}

/// DLQ rows in FN/FD order, with the OFD's response code where it answered.
pub(crate) fn list_dlq(conn: &Connection, limit: u32) -> Result<Vec<DlqEntry>> {
    let rows = receipts_where(
        conn,
        "status = 'dlq' ORDER BY fn_number, fd_number LIMIT ?1",
        [limit],
    )?;
    rows.into_iter()
        .map(|receipt| {
            let (response_code, first_attempt_ms) = match &receipt.fiscal {
                Some(f) => (
                    exchange(conn, &f.fn_number, f.fd_number)?.and_then(|x| x.response_code),
                    exchange_created_at(conn, &f.fn_number, f.fd_number)?,
                ),
                None => (None, None),
            };
            let rejections = rejections_of(conn, &receipt.receipt_id)?;
            Ok(DlqEntry {
                last_attempt_ms: rejections.last().map(|r| r.at_ms),
                first_attempt_ms,
                receipt,
                response_code,
                rejections,
            })
        })
        .collect()
}

/// When the outgoing message of (FN, FD) was first journaled: just before its first send.
fn exchange_created_at(conn: &Connection, fn_number: &str, fd_number: u32) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT created_at FROM ofd_exchange WHERE fn_number = ?1 AND fd_number = ?2",
        )?
        .query_row(rusqlite::params![fn_number, fd_number], |r| r.get(0))
        .optional()?)
}

/// The kept rejections of one document, oldest first.
pub(crate) fn rejections_of(conn: &Connection, receipt_id: &str) -> Result<Vec<Rejection>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, response_code, error_code, message FROM delivery_rejection \
         WHERE receipt_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([receipt_id], |r| {
        Ok(Rejection {
            at_ms: r.get(0)?,
            response_code: r.get(1)?,
            error_code: r.get(2)?,
            message: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// All buffer counts in one statement (one consistent snapshot).
pub(crate) fn counts(conn: &Connection) -> Result<BufferCounts> {
    let sql = format!("SELECT {} FROM receipts", counts_columns());
    Ok(conn.query_row(&sql, [], |r| buffer_counts(r, 0))?)
}

/// [`counts`] for each register that has rows, in id order.
pub(crate) fn counts_by_kkt(conn: &Connection) -> Result<Vec<(String, BufferCounts)>> {
    let sql = format!(
        "SELECT kkt_id, {} FROM receipts GROUP BY kkt_id ORDER BY kkt_id",
        counts_columns()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, buffer_counts(r, 1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The columns [`buffer_counts`] reads, in its order.
fn counts_columns() -> String {
    format!(
        "count(*),
            coalesce(sum(kkt_state IN ('received', 'kkt_in_flight')), 0),
            coalesce(sum(status = 'pending'), 0),
            coalesce(sum(status = 'synced'), 0),
            coalesce(sum(status = 'pending' AND retry_count > 0), 0),
            coalesce(sum(status = 'dlq'), 0),
            coalesce(sum(kkt_state = 'rejected'), 0),
            coalesce(sum({UNDELIVERED_SQL}), 0),
            min(CASE WHEN status IN ('pending', 'dlq') THEN created_at END)"
    )
}

fn buffer_counts(r: &Row<'_>, from: usize) -> rusqlite::Result<BufferCounts> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(r.get::<_, i64>(from + i)?).unwrap_or(0))
    };
    Ok(BufferCounts {
        total: n(0)?,
        in_kkt: n(1)?,
        pending: n(2)?,
        synced: n(3)?,
        failed: n(4)?,
        dlq: n(5)?,
        rejected: n(6)?,
        undelivered: n(7)?,
        oldest_undelivered_ms: r.get(from + 8)?,
    })
}

/// When the oldest document not yet delivered to the OFD (`pending` or `dlq`) was journaled, Unix
/// ms, for each FN that has one.
pub(crate) fn oldest_undelivered_by_fn(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT fn_number, min(created_at) FROM receipts
         WHERE status IN ('pending', 'dlq') AND fn_number IS NOT NULL
         GROUP BY fn_number ORDER BY fn_number",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Documents not yet delivered: what the capacity limit counts ([`UNDELIVERED_SQL`]), read as two
/// disjoint counts (a row has a delivery status only once fiscalized), each over its own partial
/// or status index, so taking a sale never scans the table.
pub(crate) fn undelivered(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM receipts \
                     WHERE kkt_state IN ('received', 'kkt_in_flight')) \
                  + (SELECT count(*) FROM receipts WHERE status IN ('pending', 'dlq'))",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn exchange(
    conn: &Connection,
    fn_number: &str,
    fd_number: u32,
) -> Result<Option<OfdExchange>> {
    let sql = "SELECT fn_number, fd_number, outgoing_message, reply, response_code, \
               operator_sign, replied_at, written_to_fn, send_count \
               FROM ofd_exchange WHERE fn_number = ?1 AND fd_number = ?2";
    let row = conn
        .prepare_cached(sql)?
        .query_row(rusqlite::params![fn_number, fd_number], |r| {
            Ok(OfdExchange {
                fn_number: r.get(0)?,
                fd_number: r.get(1)?,
                outgoing_message: r.get(2)?,
                reply: r.get(3)?,
                response_code: r.get(4)?,
                operator_sign: r.get(5)?,
                replied_at_ms: r.get(6)?,
                written_to_fn: r.get(7)?,
                send_count: r.get(8)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// The lease row as stored: `(owner, token, expires_at)`; owner `None` once released.
pub(crate) fn lease_row(
    conn: &Connection,
    name: &str,
) -> Result<Option<(Option<String>, i64, i64)>> {
    let sql = "SELECT owner, token, expires_at FROM sync_lease WHERE name = ?1";
    Ok(conn
        .prepare_cached(sql)?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// The current holder of a lease, if any (expired leases included; check `expires_at_ms`).
pub(crate) fn lease(conn: &Connection, name: &str) -> Result<Option<Lease>> {
    Ok(
        lease_row(conn, name)?.and_then(|(owner, token, expires_at_ms)| {
            owner.map(|owner| Lease {
                name: name.to_string(),
                owner,
                token,
                expires_at_ms,
            })
        }),
    )
}

/// The persisted HLC high-water mark: the larger of the `meta` entry and every row's stamp.
pub(crate) fn hlc_high_water(conn: &Connection) -> Result<HlcStamp> {
    let meta: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_HLC_HIGH_WATER],
            |r| r.get(0),
        )
        .optional()?;
    let rows: Option<i64> = conn.query_row("SELECT max(hlc) FROM receipts", [], |r| r.get(0))?;
    Ok(HlcStamp::from_i64(meta.unwrap_or(0).max(rows.unwrap_or(0))))
}

/// Only the `meta` entry (cheap; read at the start of every write batch).
pub(crate) fn hlc_meta(conn: &Connection) -> Result<HlcStamp> {
    let meta: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_HLC_HIGH_WATER], |r| r.get(0))
        .optional()?;
    Ok(HlcStamp::from_i64(meta.unwrap_or(0)))
}

/// The audit entries of one receipt, oldest first.
pub(crate) fn audit_of(conn: &Connection, receipt_id: &str) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, actor, action, receipt_id, outcome, reason FROM audit \
         WHERE receipt_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([receipt_id], |r| {
        Ok(AuditEntry {
            at_ms: r.get(0)?,
            actor: r.get(1)?,
            action: r.get(2)?,
            receipt_id: r.get(3)?,
            outcome: r.get(4)?,
            reason: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
