//! Task requests: a POS's list of tasks under its own id (the ATOL-compatible API's `uuid`), the
//! outcome of each finished task, and their retention beside the receipts they made.

use rusqlite::{Connection, OptionalExtension, params};

use super::error::{JournalError, Result};
use super::types::{NewTaskRequest, TaskInsert, TaskRequestRow};
use super::writer::WriteCtx;

/// Journals a new task request under the next number, or returns the one journaled under its id.
pub(crate) fn insert(ctx: &mut WriteCtx<'_>, new: NewTaskRequest) -> Result<TaskInsert> {
    if let Some(row) = get(ctx.conn, &new.id)? {
        return Ok(TaskInsert::Existing(row));
    }
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO task_requests (id, number, kkt_id, body_hash, jobs, task_count, \
             created_at, updated_at) \
             VALUES (?1, (SELECT COALESCE(MAX(number), 0) + 1 FROM task_requests), ?2, ?3, ?4, \
             ?5, ?6, ?6)",
        )?
        .execute(params![
            new.id,
            new.kkt_id,
            new.body_hash,
            new.jobs,
            new.task_count,
            now
        ])?;
    get(ctx.conn, &new.id)?
        .map(TaskInsert::Inserted)
        .ok_or_else(|| JournalError::Invariant(format!("task request {} vanished", new.id)))
}

/// Records the outcome of task `index` of request `id`; a second record of one task is refused.
pub(crate) fn record(ctx: &mut WriteCtx<'_>, id: &str, index: u32, outcome: &str) -> Result<()> {
    let Some(row) = get(ctx.conn, id)? else {
        return Err(JournalError::NotFound(format!("task request {id}")));
    };
    if index >= row.task_count {
        return Err(JournalError::Invariant(format!(
            "task request {id} has {} tasks, not {}",
            row.task_count,
            index + 1
        )));
    }
    if row.outcome(index).is_some() {
        return Err(JournalError::Invariant(format!(
            "task {index} of request {id} already has an outcome"
        )));
    }
    let now = ctx.stamp().physical_ms() as i64;
    ctx.conn
        .prepare_cached(
            "INSERT INTO task_outcomes (request_id, idx, outcome, at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, index, outcome, now])?;
    ctx.conn
        .prepare_cached("UPDATE task_requests SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The request journaled under `id`, with its outcomes.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<TaskRequestRow>> {
    let row = conn
        .prepare_cached(
            "SELECT id, number, kkt_id, body_hash, jobs, task_count, created_at \
             FROM task_requests WHERE id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok(TaskRequestRow {
                id: r.get(0)?,
                number: r.get::<_, i64>(1)?.max(0) as u64,
                kkt_id: r.get(2)?,
                body_hash: r.get(3)?,
                jobs: r.get(4)?,
                task_count: r.get(5)?,
                outcomes: Vec::new(),
                created_at: r.get(6)?,
            })
        })
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    row.outcomes = conn
        .prepare_cached(
            "SELECT idx, outcome FROM task_outcomes WHERE request_id = ?1 ORDER BY idx",
        )?
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(row))
}

/// Requests of register `kkt_id` with a task that has no outcome yet, oldest first: what a
/// restarted adapter goes on with.
pub(crate) fn unfinished(conn: &Connection, kkt_id: &str) -> Result<Vec<TaskRequestRow>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT t.id FROM task_requests t WHERE t.kkt_id = ?1 AND t.task_count > \
             (SELECT COUNT(*) FROM task_outcomes o WHERE o.request_id = t.id) ORDER BY t.number",
        )?
        .query_map(params![kkt_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.extend(get(conn, &id)?);
    }
    Ok(rows)
}

/// The prefix of every receipt key a task request makes: receipt `i` of request `id` is keyed
/// `atol:<id>:<i>`. The native API refuses keys with this prefix, so the two never meet.
pub const TASK_KEY_PREFIX: &str = "atol:";

/// The idempotency key of the receipt task `index` of request `id` journals.
pub fn task_receipt_key(id: &str, index: u32) -> String {
    format!("{TASK_KEY_PREFIX}{id}:{index}")
}

/// Retention: drops finished requests last written before `cutoff` none of whose receipts is still
/// in the journal (they went with the synced receipts' retention), at most `limit` of them.
pub(crate) fn purge(ctx: &mut WriteCtx<'_>, cutoff: i64, limit: u32) -> Result<u64> {
    // Keys `atol:<id>:<i>` sort between `atol:<id>:` and `atol:<id>;` (';' follows ':').
    let doomed: Vec<String> = ctx
        .conn
        .prepare_cached(
            "SELECT t.id FROM task_requests t WHERE t.updated_at < ?1 \
             AND t.task_count <= (SELECT COUNT(*) FROM task_outcomes o WHERE o.request_id = t.id) \
             AND NOT EXISTS (SELECT 1 FROM receipts r \
                 WHERE r.idempotency_key >= ?2 || t.id || ':' \
                 AND r.idempotency_key < ?2 || t.id || ';') \
             ORDER BY t.updated_at LIMIT ?3",
        )?
        .query_map(params![cutoff, TASK_KEY_PREFIX, limit], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &doomed {
        ctx.conn
            .prepare_cached("DELETE FROM task_outcomes WHERE request_id = ?1")?
            .execute(params![id])?;
        ctx.conn
            .prepare_cached("DELETE FROM task_requests WHERE id = ?1")?
            .execute(params![id])?;
    }
    Ok(doomed.len() as u64)
}
