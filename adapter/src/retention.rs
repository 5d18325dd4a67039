//! Retention: a background task that deletes `synced` receipts older than the configured age
//! (`--retention-days`, default 30; 0 keeps everything), in bounded batches, so synced rows and
//! customer contacts are not kept for ever. Pending, DLQ, unresolved and rejected rows are never
//! touched (`Journal::purge_synced`).
//!
//! A purged sale's idempotency key goes with it: a POS that retried a sale with the same key
//! after the retention age would be answered as a new sale. POS retries happen within minutes, so
//! the age (days) is far beyond them; do not configure an age shorter than a POS may retry.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::journal::Journal;

/// How often the task runs; the first run is one interval after start.
const ROUND_INTERVAL: Duration = Duration::from_secs(3_600);
/// Rows deleted per write transaction: short enough not to hold up sales.
const BATCH_LEN_MAX: u32 = 500;
/// Batches per round: a long backlog is worked off over several rounds.
const BATCHES_PER_ROUND_MAX: u32 = 200;
/// Pause between batches, so sales' writes interleave.
const BATCH_PAUSE: Duration = Duration::from_millis(50);

/// Starts the retention task for rows older than `age`; `None` when retention is off.
pub fn spawn(journal: Journal, age: Duration) -> Option<JoinHandle<()>> {
    if age.is_zero() {
        tracing::info!("retention off: synced receipts are kept");
        return None;
    }
    let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(ROUND_INTERVAL);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            round(&journal, age_ms).await;
        }
    }))
}

/// One round: batches until one comes back short or the round's bound is reached, first of the
/// synced receipts, then of the task requests (ATOL API) whose receipts went, so a POS can poll a
/// task's result as long as its receipt is kept.
async fn round(journal: &Journal, age_ms: i64) {
    let Some(receipts) = purge_in_batches(|| journal.purge_synced(age_ms, BATCH_LEN_MAX)).await
    else {
        return;
    };
    let Some(tasks) = purge_in_batches(|| journal.purge_task_requests(age_ms, BATCH_LEN_MAX)).await
    else {
        return;
    };
    if receipts > 0 || tasks > 0 {
        tracing::info!(
            receipts,
            task_requests = tasks,
            age_ms,
            "retention: synced receipts and finished task requests purged"
        );
    }
}

/// Runs `batch` until one comes back short or the round's bound is reached; `None` after a
/// failure (logged; the next round tries again).
async fn purge_in_batches<F, Fut>(mut batch: F) -> Option<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, crate::journal::JournalError>>,
{
    let mut purged = 0u64;
    for _ in 0..BATCHES_PER_ROUND_MAX {
        match batch().await {
            Ok(n) => {
                purged += n;
                if n < u64::from(BATCH_LEN_MAX) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, purged, "retention: purge failed; retrying next round");
                return None;
            }
        }
        tokio::time::sleep(BATCH_PAUSE).await;
    }
    Some(purged)
}
