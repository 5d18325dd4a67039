//! The typed write operations, each run by the writer inside its own SAVEPOINT.
//!
//! Every operation re-reads the row it changes inside the transaction, checks that the step
//! is allowed from the row's current state, writes, reads the row back and checks the row's
//! invariants, so a bug cannot commit a row the rest of the adapter would misread.

use rusqlite::params;

use super::error::{JournalError, Result};
use super::invariants::check_row;
use super::read;
use super::types::{
    AuditEntry, InsertOutcome, KktState, Lease, NewReceipt, OfdExchange, OfdReply, OfdStatus,
    ReceiptRow,
};
use super::writer::WriteCtx;
use crate::fiscal::{DocKind, FiscalDocument};
use crate::hlc::HlcStamp;

/// The receipt id for a row created at `stamp`: 16 lowercase hex digits. Unique because
/// stamps never repeat; short enough for tag 1192 (at most 16 characters); sorts by time.
pub(crate) fn receipt_id_for(stamp: HlcStamp) -> String {
    format!("{:016x}", stamp.as_i64())
}

fn existing(ctx: &WriteCtx<'_>, receipt_id: &str) -> Result<ReceiptRow> {
    read::receipt_by_id(ctx.conn, receipt_id)?
        .ok_or_else(|| JournalError::NotFound(format!("receipt {receipt_id}")))
}

/// Reads the row back after a write and checks it.
fn reread(ctx: &WriteCtx<'_>, receipt_id: &str) -> Result<ReceiptRow> {
    let row = existing(ctx, receipt_id)?;
    check_row(&row)?;
    Ok(row)
}

fn refuse(row: &ReceiptRow, action: &'static str) -> JournalError {
    let from = match row.status {
        Some(s) => format!("{}/{}", row.kkt_state.as_str(), s.as_str()),
        None => row.kkt_state.as_str().to_string(),
    };
    JournalError::InvalidTransition {
        receipt_id: row.receipt_id.clone(),
        from,
        action,
    }
}

/// Journals a new sale as `received`, or returns the row already journaled under its key.
/// The capacity check comes after the key lookup (a replay is never refused) and before the
/// insert (a refused sale leaves nothing behind).
pub(crate) fn insert_received(ctx: &mut WriteCtx<'_>, new: NewReceipt) -> Result<InsertOutcome> {
    if let Some(row) = read::receipt_by_key(ctx.conn, &new.idempotency_key)? {
        return Ok(InsertOutcome::Existing(row));
    }
    let undelivered = read::undelivered(ctx.conn)?;
    if undelivered >= ctx.capacity_max {
        return Err(JournalError::CapacityExceeded {
            undelivered,
            capacity_max: ctx.capacity_max,
        });
    }
    let stamp = ctx.stamp();
    let id = receipt_id_for(stamp);
    let now = stamp.physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO receipts (id, idempotency_key, request_hash, request_body, hlc, kind, \
             kkt_state, status, retry_count, created_at, updated_at, kkt_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'receipt', 'received', NULL, 0, ?6, ?6, ?7)",
        )?
        .execute(params![
            id,
            new.idempotency_key,
            new.request_hash,
            new.request_body,
            stamp.as_i64(),
            now,
            new.kkt_id
        ])?;
    reread(ctx, &id).map(InsertOutcome::Inserted)
}

/// `received` -> `kkt_in_flight`, written before the first command that could fiscalize.
pub(crate) fn mark_in_flight(ctx: &mut WriteCtx<'_>, receipt_id: &str) -> Result<ReceiptRow> {
    let row = existing(ctx, receipt_id)?;
    match row.kkt_state {
        KktState::Received => {}
        KktState::InFlight => return Ok(row),
        _ => return Err(refuse(&row, "mark in flight")),
    }
    let stamp = ctx.stamp();
    ctx.conn
        .prepare_cached(
            "UPDATE receipts SET kkt_state = 'kkt_in_flight', hlc = ?2, updated_at = ?3 \
             WHERE id = ?1",
        )?
        .execute(params![
            receipt_id,
            stamp.as_i64(),
            stamp.physical_ms() as i64
        ])?;
    reread(ctx, receipt_id)
}

fn write_fiscal(
    ctx: &mut WriteCtx<'_>,
    receipt_id: &str,
    fiscal: &FiscalDocument,
    stamp: HlcStamp,
) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE receipts SET kkt_state = 'fiscalized', status = 'pending', \
             fn_number = ?2, fd_number = ?3, fpd = ?4, shift_number = ?5, receipt_number = ?6, \
             fiscal_time = ?7, total_kopecks = ?8, document_tlv = ?9, retry_count = 0, \
             next_attempt_at = NULL, last_error = NULL, error_code = NULL, \
             hlc = ?10, updated_at = ?11 WHERE id = ?1",
        )?
        .execute(params![
            receipt_id,
            fiscal.fn_number,
            fiscal.fd_number,
            fiscal.fpd,
            fiscal.shift_number,
            fiscal.receipt_number,
            fiscal.fiscal_time,
            fiscal.total_kopecks,
            fiscal.document_tlv,
            stamp.as_i64(),
            stamp.physical_ms() as i64
        ])?;
    Ok(())
}

/// `received`/`kkt_in_flight` -> `fiscalized` with `status='pending'`. Recording the same
/// document twice is a no-op; a different document for a fiscalized row is refused.
pub(crate) fn mark_fiscalized(
    ctx: &mut WriteCtx<'_>,
    receipt_id: &str,
    fiscal: FiscalDocument,
) -> Result<ReceiptRow> {
    let row = existing(ctx, receipt_id)?;
    match row.kkt_state {
        KktState::Received | KktState::InFlight => {}
        KktState::Fiscalized if row.fiscal.as_ref() == Some(&fiscal) => return Ok(row),
        _ => return Err(refuse(&row, "mark fiscalized")),
    }
    let stamp = ctx.stamp();
    write_fiscal(ctx, receipt_id, &fiscal, stamp)?;
    reread(ctx, receipt_id)
}

/// `received`/`kkt_in_flight` -> `rejected` after a definite KKT refusal.
pub(crate) fn mark_rejected(
    ctx: &mut WriteCtx<'_>,
    receipt_id: &str,
    error_code: &str,
    message: &str,
) -> Result<ReceiptRow> {
    let row = existing(ctx, receipt_id)?;
    match row.kkt_state {
        KktState::Received | KktState::InFlight => {}
        KktState::Rejected if row.error_code.as_deref() == Some(error_code) => return Ok(row),
        _ => return Err(refuse(&row, "mark rejected")),
    }
    let stamp = ctx.stamp();
    ctx.conn
        .prepare_cached(
            "UPDATE receipts SET kkt_state = 'rejected', error_code = ?2, last_error = ?3, \
             hlc = ?4, updated_at = ?5 WHERE id = ?1",
        )?
        .execute(params![
            receipt_id,
            error_code,
            message,
            stamp.as_i64(),
            stamp.physical_ms() as i64
        ])?;
    reread(ctx, receipt_id)
}

/// Journals a document the KKT issued on its own account (shift open/close, or a document
/// found by reconciliation), directly as `fiscalized`/`pending`. Never refused for capacity:
/// the document exists in the FN and must reach the OFD. Idempotent on (FN, FD).
pub(crate) fn insert_fiscal_document(
    ctx: &mut WriteCtx<'_>,
    kkt_id: &str,
    kind: DocKind,
    fiscal: FiscalDocument,
) -> Result<InsertOutcome> {
    if let Some(row) = read::receipt_by_fiscal(ctx.conn, &fiscal.fn_number, fiscal.fd_number)? {
        return match row.kind == kind && row.fiscal.as_ref() == Some(&fiscal) {
            true => Ok(InsertOutcome::Existing(row)),
            false => Err(JournalError::Constraint(format!(
                "FN {} FD {} is already journaled as a different document",
                fiscal.fn_number, fiscal.fd_number
            ))),
        };
    }
    let stamp = ctx.stamp();
    let id = receipt_id_for(stamp);
    let key = format!(
        "{}:{}:{}",
        kind.as_str(),
        fiscal.fn_number,
        fiscal.fd_number
    );
    let now = stamp.physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO receipts (id, idempotency_key, hlc, kind, kkt_state, status, \
             retry_count, created_at, updated_at, kkt_id) \
             VALUES (?1, ?2, ?3, ?4, 'received', NULL, 0, ?5, ?5, ?6)",
        )?
        .execute(params![id, key, stamp.as_i64(), kind.as_str(), now, kkt_id])?;
    write_fiscal(ctx, &id, &fiscal, stamp)?;
    reread(ctx, &id).map(InsertOutcome::Inserted)
}

/// The journaled row for an FN document, if the adapter journaled it (phase-2 helpers).
fn fiscal_row(ctx: &WriteCtx<'_>, fn_number: &str, fd_number: u32) -> Result<Option<ReceiptRow>> {
    read::receipt_by_fiscal(ctx.conn, fn_number, fd_number)
}

/// Fails with `Fenced` unless `lease` is still the current holder of its name.
fn check_fence(ctx: &WriteCtx<'_>, lease: Option<&Lease>) -> Result<()> {
    let Some(lease) = lease else { return Ok(()) };
    match read::lease_row(ctx.conn, &lease.name)? {
        Some((Some(owner), token, _)) if owner == lease.owner && token == lease.token => Ok(()),
        _ => Err(JournalError::Fenced {
            name: lease.name.clone(),
            token: lease.token,
        }),
    }
}

fn exchange_row(ctx: &WriteCtx<'_>, fn_number: &str, fd_number: u32) -> Result<OfdExchange> {
    read::exchange(ctx.conn, fn_number, fd_number)?.ok_or_else(|| {
        JournalError::NotFound(format!("ofd exchange FN {fn_number} FD {fd_number}"))
    })
}

/// Journals the FN's outgoing message before it is sent (once per send attempt).
pub(crate) fn record_ofd_outgoing(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    message: &[u8],
) -> Result<OfdExchange> {
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO ofd_exchange (fn_number, fd_number, outgoing_message, send_count, \
             created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?4) \
             ON CONFLICT (fn_number, fd_number) DO UPDATE SET \
             outgoing_message = excluded.outgoing_message, send_count = send_count + 1, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![fn_number, fd_number, message, now])?;
    exchange_row(ctx, fn_number, fd_number)
}

/// Journals the OFD's reply before it is written back to the FN (fenced by the sync lease).
pub(crate) fn record_ofd_reply(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    reply: OfdReply,
    lease: Option<&Lease>,
) -> Result<OfdExchange> {
    check_fence(ctx, lease)?;
    exchange_row(ctx, fn_number, fd_number)?;
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "UPDATE ofd_exchange SET reply = ?3, response_code = ?4, operator_sign = ?5, \
             replied_at = ?6, written_to_fn = 0, updated_at = ?6 \
             WHERE fn_number = ?1 AND fd_number = ?2",
        )?
        .execute(params![
            fn_number,
            fd_number,
            reply.reply,
            reply.response_code,
            reply.operator_sign,
            now
        ])?;
    exchange_row(ctx, fn_number, fd_number)
}

/// Notes that the journaled reply reached the FN.
pub(crate) fn mark_reply_written(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
) -> Result<OfdExchange> {
    let x = exchange_row(ctx, fn_number, fd_number)?;
    if x.reply.is_none() {
        return Err(JournalError::InvalidTransition {
            receipt_id: format!("{fn_number}/{fd_number}"),
            from: "no reply journaled".to_string(),
            action: "mark reply written to FN",
        });
    }
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "UPDATE ofd_exchange SET written_to_fn = 1, updated_at = ?3 \
             WHERE fn_number = ?1 AND fd_number = ?2",
        )?
        .execute(params![fn_number, fd_number, now])?;
    exchange_row(ctx, fn_number, fd_number)
}

/// Changes the OFD status of the row holding (FN, FD). `None` if no journaled row has that
/// document (the FN may hold documents the adapter did not issue).
fn set_ofd_status(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    allowed_from: &[OfdStatus],
    action: &'static str,
    sql: &str,
    extra: (Option<&str>, Option<&str>, Option<i64>),
) -> Result<Option<ReceiptRow>> {
    let Some(row) = fiscal_row(ctx, fn_number, fd_number)? else {
        return Ok(None);
    };
    if !row.status.is_some_and(|s| allowed_from.contains(&s)) {
        return Err(refuse(&row, action));
    }
    let stamp = ctx.stamp();
    ctx.conn.prepare_cached(sql)?.execute(params![
        row.receipt_id,
        stamp.as_i64(),
        stamp.physical_ms() as i64,
        extra.0,
        extra.1,
        extra.2
    ])?;
    reread(ctx, &row.receipt_id).map(Some)
}

/// `pending` -> `synced` once the OFD acknowledged the document (fenced by the sync lease).
pub(crate) fn mark_synced(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    lease: Option<&Lease>,
) -> Result<Option<ReceiptRow>> {
    check_fence(ctx, lease)?;
    let sql = "UPDATE receipts SET status = 'synced', next_attempt_at = NULL, hlc = ?2, \
               updated_at = ?3, error_code = coalesce(?4, error_code), \
               last_error = coalesce(?5, last_error), retry_count = coalesce(?6, retry_count) \
               WHERE id = ?1";
    let from = [OfdStatus::Pending, OfdStatus::Synced];
    set_ofd_status(
        ctx,
        fn_number,
        fd_number,
        &from,
        "mark synced",
        sql,
        (None, None, None),
    )
}

/// `pending` -> `dlq` with a code (e.g. the OFD's response code) and message.
pub(crate) fn mark_dlq(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    error_code: &str,
    message: &str,
    lease: Option<&Lease>,
) -> Result<Option<ReceiptRow>> {
    check_fence(ctx, lease)?;
    // A rejection is a failed attempt too: `retry_count` counts every attempt that did not deliver.
    let sql = "UPDATE receipts SET status = 'dlq', next_attempt_at = NULL, hlc = ?2, \
               updated_at = ?3, error_code = ?4, last_error = ?5, \
               retry_count = retry_count + ?6 WHERE id = ?1";
    let from = [OfdStatus::Pending, OfdStatus::Dlq];
    let extra = (Some(error_code), Some(message), Some(1));
    let before = fiscal_row(ctx, fn_number, fd_number)?.and_then(|r| r.status);
    let row = set_ofd_status(ctx, fn_number, fd_number, &from, "move to dlq", sql, extra)?;
    // Marking a DLQ row again (a repeated call after a crash) is no new refusal.
    if let Some(row) = row.as_ref().filter(|_| before == Some(OfdStatus::Pending)) {
        let response_code =
            read::exchange(ctx.conn, fn_number, fd_number)?.and_then(|x| x.response_code);
        insert_rejection(ctx, &row.receipt_id, response_code, error_code, message)?;
    }
    Ok(row)
}

/// Rejections kept per document; the oldest go first. An operator retries a document by hand, so
/// reaching the bound means a retry loop, and its first and latest refusals tell the story.
pub(crate) const REJECTIONS_PER_DOCUMENT_MAX: i64 = 100;

/// Appends one rejection to the document's history and drops any beyond the bound.
fn insert_rejection(
    ctx: &mut WriteCtx<'_>,
    receipt_id: &str,
    response_code: Option<i64>,
    error_code: &str,
    message: &str,
) -> Result<()> {
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO delivery_rejection (receipt_id, at, response_code, error_code, message) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![receipt_id, now, response_code, error_code, message])?;
    ctx.conn
        .prepare_cached(
            "DELETE FROM delivery_rejection WHERE receipt_id = ?1 AND seq <= \
             (SELECT seq FROM delivery_rejection WHERE receipt_id = ?1 \
              ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![receipt_id, REJECTIONS_PER_DOCUMENT_MAX])?;
    Ok(())
}

/// A failed OFD attempt for a pending document: bump `retry_count`, set the next attempt.
pub(crate) fn record_delivery_failure(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    message: &str,
    next_attempt_at_ms: i64,
) -> Result<Option<ReceiptRow>> {
    let sql = "UPDATE receipts SET retry_count = retry_count + 1, hlc = ?2, updated_at = ?3, \
               last_error = coalesce(?5, last_error), error_code = coalesce(?4, error_code), \
               next_attempt_at = ?6 WHERE id = ?1";
    let extra = (None, Some(message), Some(next_attempt_at_ms));
    let from = [OfdStatus::Pending];
    set_ofd_status(
        ctx,
        fn_number,
        fd_number,
        &from,
        "record delivery failure",
        sql,
        extra,
    )
}

/// Forgets the OFD's journaled reply for (FN, FD), so the relay sends the journaled outgoing
/// message again. Only for a reply the FN never took (refused, or a definite OFD rejection that
/// was never written), so `written_to_fn` ends 0 either way.
fn forget_reply(ctx: &WriteCtx<'_>, fn_number: &str, fd_number: u32, now_ms: i64) -> Result<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE ofd_exchange SET reply = NULL, response_code = NULL, operator_sign = NULL, \
             replied_at = NULL, written_to_fn = 0, updated_at = ?3 \
             WHERE fn_number = ?1 AND fd_number = ?2",
        )?
        .execute(params![fn_number, fd_number, now_ms])?;
    Ok(())
}

/// The FN refused the journaled reply (its acknowledgement check failed): the reply is dropped so
/// the next attempt asks the OFD again, and the failure counts as an attempt of the pending row.
/// Nothing reached the FN, so forgetting the reply loses nothing; the OFD answers a resend of
/// the same message idempotently.
pub(crate) fn discard_ofd_reply(
    ctx: &mut WriteCtx<'_>,
    fn_number: &str,
    fd_number: u32,
    message: &str,
    next_attempt_at_ms: i64,
) -> Result<Option<ReceiptRow>> {
    let x = exchange_row(ctx, fn_number, fd_number)?;
    if x.written_to_fn {
        return Err(JournalError::InvalidTransition {
            receipt_id: format!("{fn_number}/{fd_number}"),
            from: "reply already written to the FN".to_string(),
            action: "discard the OFD reply",
        });
    }
    let now = ctx.stamp().physical_ms() as i64;
    forget_reply(ctx, fn_number, fd_number, now)?;
    record_delivery_failure(ctx, fn_number, fd_number, message, next_attempt_at_ms)
}

/// Explicit DLQ retry: `dlq` -> `pending`; the journaled reply is cleared so the relay sends the
/// journaled outgoing message again. `retry_count` is kept: it counts every attempt, manual
/// ones included, and the last error stays until the next attempt replaces it.
pub(crate) fn dlq_retry(ctx: &mut WriteCtx<'_>, receipt_id: &str) -> Result<ReceiptRow> {
    let row = existing(ctx, receipt_id)?;
    let (Some(OfdStatus::Dlq), Some(fiscal)) = (row.status, row.fiscal.as_ref()) else {
        return Err(refuse(&row, "retry from dlq"));
    };
    let stamp = ctx.stamp();
    let now = stamp.physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "UPDATE receipts SET status = 'pending', next_attempt_at = NULL, \
             error_code = NULL, hlc = ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![receipt_id, stamp.as_i64(), now])?;
    forget_reply(ctx, &fiscal.fn_number, fiscal.fd_number, now)?;
    reread(ctx, receipt_id)
}

/// Several DLQ retries in one transaction: each id gets its own answer (the row now pending, or the
/// refusal: unknown id, not in the DLQ). A refused id changes nothing, so the others still go; a
/// storage failure fails them all.
pub(crate) fn dlq_retry_many(
    ctx: &mut WriteCtx<'_>,
    receipt_ids: &[String],
) -> Result<Vec<Result<ReceiptRow>>> {
    let mut answers = Vec::with_capacity(receipt_ids.len());
    for id in receipt_ids {
        match dlq_retry(ctx, id) {
            Err(e)
                if !matches!(
                    e,
                    JournalError::NotFound(_) | JournalError::InvalidTransition { .. }
                ) =>
            {
                return Err(e);
            }
            answer => answers.push(answer),
        }
    }
    Ok(answers)
}

/// Retention: deletes up to `batch_len_max` `synced` rows last changed more than `age_ms` ago
/// (by the journal's clock), with their OFD exchange and rejection history. Pending, DLQ,
/// unresolved and rejected rows are never touched. Returns how many rows went.
pub(crate) fn purge_synced(ctx: &mut WriteCtx<'_>, age_ms: i64, batch_len_max: u32) -> Result<u64> {
    let cutoff = (ctx.stamp().physical_ms() as i64).saturating_sub(age_ms);
    let doomed: Vec<(String, Option<String>, Option<i64>)> = ctx
        .conn
        .prepare_cached(
            "SELECT id, fn_number, fd_number FROM receipts \
             WHERE status = 'synced' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2",
        )?
        .query_map(params![cutoff, batch_len_max], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, fn_number, fd_number) in &doomed {
        ctx.conn
            .prepare_cached("DELETE FROM ofd_exchange WHERE fn_number = ?1 AND fd_number = ?2")?
            .execute(params![fn_number, fd_number])?;
        ctx.conn
            .prepare_cached("DELETE FROM delivery_rejection WHERE receipt_id = ?1")?
            .execute(params![id])?;
        let gone = ctx
            .conn
            .prepare_cached("DELETE FROM receipts WHERE id = ?1 AND status = 'synced'")?
            .execute(params![id])?;
        if gone != 1 {
            return Err(JournalError::Invariant(format!(
                "retention: synced row {id} vanished inside its transaction"
            )));
        }
    }
    Ok(doomed.len() as u64)
}

/// Takes the named lease if it is free, expired, or already ours. A new holder gets a token
/// one above the last one ever issued for the name; `None` if someone else holds it.
pub(crate) fn lease_acquire(
    ctx: &mut WriteCtx<'_>,
    name: &str,
    owner: &str,
    ttl_ms: i64,
) -> Result<Option<Lease>> {
    let now = ctx.wall_ms();
    let expires_at_ms = now.saturating_add(ttl_ms);
    let token = match read::lease_row(ctx.conn, name)? {
        None => 1,
        Some((Some(holder), token, expires)) if holder == owner && expires > now => token,
        Some((Some(_), _, expires)) if expires > now => return Ok(None),
        Some((_, token, _)) => token + 1,
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO sync_lease (name, owner, token, expires_at, acquired_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
             owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at, \
             acquired_at = excluded.acquired_at",
        )?
        .execute(params![name, owner, token, expires_at_ms, now])?;
    Ok(Some(Lease {
        name: name.to_string(),
        owner: owner.to_string(),
        token,
        expires_at_ms,
    }))
}

/// Takes a lease over from `dead_owner`, a holder the caller proved dead (same host, its process
/// gone), whether or not its time ran out; the token still increases, so fencing holds. `None` when
/// the lease changed hands meanwhile.
pub(crate) fn lease_take_over(
    ctx: &mut WriteCtx<'_>,
    name: &str,
    dead_owner: &str,
    owner: &str,
    ttl_ms: i64,
) -> Result<Option<Lease>> {
    match read::lease_row(ctx.conn, name)? {
        Some((Some(holder), _, _)) if holder == dead_owner => {}
        _ => return Ok(None),
    }
    ctx.conn
        .prepare_cached("UPDATE sync_lease SET expires_at = 0 WHERE name = ?1 AND owner = ?2")?
        .execute(params![name, dead_owner])?;
    lease_acquire(ctx, name, owner, ttl_ms)
}

/// Extends a lease still held under the same token (even if it lapsed, as long as nobody
/// took it over); `None` once it was lost.
pub(crate) fn lease_renew(
    ctx: &mut WriteCtx<'_>,
    lease: &Lease,
    ttl_ms: i64,
) -> Result<Option<Lease>> {
    if check_fence(ctx, Some(lease)).is_err() {
        return Ok(None);
    }
    let expires_at_ms = ctx.wall_ms().saturating_add(ttl_ms);
    ctx.conn
        .prepare_cached("UPDATE sync_lease SET expires_at = ?2 WHERE name = ?1")?
        .execute(params![lease.name, expires_at_ms])?;
    Ok(Some(Lease {
        expires_at_ms,
        ..lease.clone()
    }))
}

/// Gives a lease up; the token is kept so the next holder's token is larger. `false` if it
/// was no longer ours.
pub(crate) fn lease_release(ctx: &mut WriteCtx<'_>, lease: &Lease) -> Result<bool> {
    if check_fence(ctx, Some(lease)).is_err() {
        return Ok(false);
    }
    ctx.conn
        .prepare_cached("UPDATE sync_lease SET owner = NULL, expires_at = 0 WHERE name = ?1")?
        .execute([&lease.name])?;
    Ok(true)
}

/// Appends one entry to the audit trail, in the caller's transaction.
pub(crate) fn insert_audit(ctx: &mut WriteCtx<'_>, entry: &AuditEntry) -> Result<()> {
    let at = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO audit (at, actor, action, receipt_id, outcome, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            at,
            entry.actor,
            entry.action,
            entry.receipt_id,
            entry.outcome,
            entry.reason
        ])?;
    Ok(())
}
