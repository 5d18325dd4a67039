//! Example-based tests of each journal operation, group commit and failure handling.

use super::{FN, Fixture, fiscal, raw, sale};
use crate::hlc::HlcStamp;
use crate::journal::{
    DocKind, InsertOutcome, JournalError, KktState, OfdReply, OfdStatus, ReceiptRow, RejectCode,
};

async fn inserted(f: &Fixture, key: &str) -> ReceiptRow {
    match f.journal.insert_received(sale(key)).await.expect("insert") {
        InsertOutcome::Inserted(row) => row,
        other => panic!("expected a new row, got {other:?}"),
    }
}

/// Takes a sale all the way to `fiscalized` with document `fd`.
async fn fiscalized(f: &Fixture, key: &str, fd: u32) -> ReceiptRow {
    let row = inserted(f, key).await;
    f.journal
        .mark_in_flight(&row.receipt_id)
        .await
        .expect("in flight");
    f.journal
        .mark_fiscalized(&row.receipt_id, fiscal(fd))
        .await
        .expect("fiscalized")
}

#[tokio::test]
async fn open_applies_durability_pragmas_on_the_writer_connection() {
    let f = Fixture::with(|c| c.wal_autocheckpoint_pages = 7).await;
    let s = f.journal.effective_settings().await.expect("settings");
    assert_eq!(
        (
            s.journal_mode.as_str(),
            s.synchronous.as_str(),
            s.wal_autocheckpoint
        ),
        ("wal", "full", 7)
    );
    assert_eq!((s.busy_timeout_ms, s.schema_version), (5_000, 6));
    let unsafe_f = Fixture::with(|c| c.unsafe_synchronous_normal = true).await;
    let s = unsafe_f
        .journal
        .effective_settings()
        .await
        .expect("settings");
    assert_eq!(
        (s.synchronous.as_str(), s.wal_autocheckpoint),
        ("normal", 100)
    );
}

#[tokio::test]
async fn a_sale_goes_through_every_state_and_the_file_shows_it() {
    let f = Fixture::new().await;
    let row = inserted(&f, "pos1-1").await;
    assert_eq!((row.kkt_state, row.status), (KktState::Received, None));
    assert_eq!(row.receipt_id.len(), 16, "receipt id must fit tag 1192");
    let row = f
        .journal
        .mark_in_flight(&row.receipt_id)
        .await
        .expect("in flight");
    assert_eq!(
        f.journal
            .list_unresolved(crate::journal::DEFAULT_KKT_ID)
            .await
            .expect("list"),
        vec![row.clone()]
    );
    let row = f
        .journal
        .mark_fiscalized(&row.receipt_id, fiscal(11))
        .await
        .expect("fiscal");
    assert_eq!(
        (row.kkt_state, row.status),
        (KktState::Fiscalized, Some(OfdStatus::Pending))
    );
    assert_eq!(row.fiscal, Some(fiscal(11)));
    assert_eq!(
        f.sql_i64("SELECT count(*) FROM receipts WHERE status='pending'"),
        1
    );

    f.journal
        .record_ofd_outgoing(FN, 11, vec![1, 2, 3])
        .await
        .expect("outgoing");
    let reply = OfdReply {
        reply: vec![9, 9],
        response_code: 0,
        operator_sign: Some(vec![7; 6]),
    };
    let x = f
        .journal
        .record_ofd_reply(FN, 11, reply, None)
        .await
        .expect("reply");
    assert_eq!(
        (x.response_code, x.written_to_fn, x.send_count),
        (Some(0), false, 1)
    );
    let x = f.journal.mark_reply_written(FN, 11).await.expect("written");
    assert!(x.written_to_fn);
    let synced = f.journal.mark_synced(FN, 11, None).await.expect("synced");
    assert_eq!(synced.and_then(|r| r.status), Some(OfdStatus::Synced));
    assert_eq!(
        f.sql_i64("SELECT count(*) FROM receipts WHERE status='pending'"),
        0
    );
    let counts = f.journal.counts().await.expect("counts");
    assert_eq!((counts.total, counts.synced, counts.undelivered), (1, 1, 0));
    f.journal.check_invariants().await.expect("invariants");
}

#[tokio::test]
async fn an_idempotency_key_is_journaled_once_across_restarts() {
    let f = Fixture::new().await;
    let first = inserted(&f, "pos1-7").await;
    let f = f.reopen().await;
    let mut replay = sale("pos1-7");
    replay.request_hash = "a different body".into();
    match f.journal.insert_received(replay).await.expect("replay") {
        // The stored hash comes back, so the caller can tell a replay from a conflict.
        InsertOutcome::Existing(row) => assert_eq!(row, first),
        other => panic!("expected the existing row, got {other:?}"),
    }
    assert_eq!(f.sql_i64("SELECT count(*) FROM receipts"), 1);
    let by_key = f.journal.get_by_key("pos1-7").await.expect("get");
    assert_eq!(by_key.map(|r| r.receipt_id), Some(first.receipt_id));
}

#[tokio::test]
async fn capacity_refuses_a_new_sale_before_journaling_it() {
    let f = Fixture::with(|c| c.capacity_max = 2).await;
    fiscalized(&f, "a", 1).await;
    inserted(&f, "b").await;
    let err = f
        .journal
        .insert_received(sale("c"))
        .await
        .expect_err("full");
    assert_eq!(
        err,
        JournalError::CapacityExceeded {
            undelivered: 2,
            capacity_max: 2
        }
    );
    assert_eq!(f.sql_i64("SELECT count(*) FROM receipts"), 2);
    // A replay of a journaled key is still answered, and the KKT's own documents still land.
    assert!(matches!(
        f.journal.insert_received(sale("b")).await,
        Ok(InsertOutcome::Existing(_))
    ));
    f.journal
        .insert_fiscal_document(
            crate::journal::DEFAULT_KKT_ID,
            DocKind::ShiftClose,
            fiscal(2),
        )
        .await
        .expect("shift documents are never refused");
    // Delivering documents frees room.
    f.journal.mark_synced(FN, 1, None).await.expect("synced");
    f.journal.mark_synced(FN, 2, None).await.expect("synced");
    inserted(&f, "c").await;
}

#[tokio::test]
async fn steps_out_of_order_are_refused_and_leave_the_row_alone() {
    let f = Fixture::new().await;
    let row = inserted(&f, "r").await;
    let rejected = f
        .journal
        .mark_rejected(&row.receipt_id, RejectCode::KktPrinter, "no paper")
        .await;
    assert_eq!(rejected.expect("rejected").kkt_state, KktState::Rejected);
    let err = f.journal.mark_fiscalized(&row.receipt_id, fiscal(5)).await;
    assert!(
        matches!(err, Err(JournalError::InvalidTransition { .. })),
        "{err:?}"
    );
    let err = f.journal.mark_in_flight("0000000000000000").await;
    assert!(matches!(err, Err(JournalError::NotFound(_))), "{err:?}");
    let done = fiscalized(&f, "s", 5).await;
    // The same document again is a no-op; a different one is refused.
    let again = f.journal.mark_fiscalized(&done.receipt_id, fiscal(5)).await;
    assert_eq!(again.expect("idempotent"), done);
    let other = f.journal.mark_fiscalized(&done.receipt_id, fiscal(6)).await;
    assert!(matches!(other, Err(JournalError::InvalidTransition { .. })));
    assert!(f.journal.dlq_retry(&done.receipt_id).await.is_err());
    assert_eq!(
        f.journal
            .get_by_id(&row.receipt_id)
            .await
            .expect("get")
            .map(|r| r.kkt_state),
        Some(KktState::Rejected)
    );
}

#[tokio::test]
async fn one_fiscal_document_cannot_belong_to_two_rows() {
    let f = Fixture::new().await;
    fiscalized(&f, "a", 9).await;
    let b = inserted(&f, "b").await;
    let err = f
        .journal
        .mark_fiscalized(&b.receipt_id, fiscal(9))
        .await
        .expect_err("dup");
    assert!(matches!(err, JournalError::Constraint(_)), "{err:?}");
    assert!(!err.is_storage_failure());
    let b = f
        .journal
        .get_by_id(&b.receipt_id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!((b.kkt_state, b.fiscal), (KktState::Received, None));
}

#[tokio::test]
async fn delivery_failures_dlq_and_retry() {
    let f = Fixture::new().await;
    let row = fiscalized(&f, "a", 21).await;
    f.journal
        .record_ofd_outgoing(FN, 21, vec![5; 10])
        .await
        .expect("outgoing");
    let failed = f
        .journal
        .record_delivery_failure(FN, 21, "connection refused", 1_700_000_002_000)
        .await;
    let failed = failed.expect("failure").expect("row");
    assert_eq!(
        (failed.retry_count, failed.next_attempt_at_ms),
        (1, Some(1_700_000_002_000))
    );
    let counts = f.journal.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.failed), (1, 1));
    assert!(
        f.journal
            .list_pending(Some(1_700_000_001_000), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        f.journal
            .list_pending(Some(1_700_000_002_000), 10)
            .await
            .expect("due")
            .len(),
        1
    );

    let reply = OfdReply {
        reply: vec![1],
        response_code: 14,
        operator_sign: None,
    };
    f.journal
        .record_ofd_reply(FN, 21, reply, None)
        .await
        .expect("reply");
    f.journal
        .mark_dlq(FN, 21, "ofd_14", "format check failed", None)
        .await
        .expect("dlq");
    let dlq = f.journal.list_dlq(10).await.expect("dlq list");
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        (dlq[0].response_code, dlq[0].receipt.error_code.as_deref()),
        (Some(14), Some("ofd_14"))
    );
    let first = dlq[0].first_attempt_ms.expect("first attempt");
    assert_eq!(dlq[0].rejections.len(), 1);
    assert_eq!(
        (
            dlq[0].rejections[0].response_code,
            dlq[0].rejections[0].error_code.as_str(),
            dlq[0].rejections[0].message.as_str()
        ),
        (Some(14), "ofd_14", "format check failed")
    );
    assert_eq!(dlq[0].last_attempt_ms, Some(dlq[0].rejections[0].at_ms));
    assert!(first <= dlq[0].rejections[0].at_ms);
    assert_eq!(
        f.sql_i64("SELECT count(*) FROM receipts WHERE status='pending'"),
        0
    );

    // The refusal counts as an attempt; a retry keeps the count (it counts every attempt).
    let retried = f.journal.dlq_retry(&row.receipt_id).await.expect("retry");
    assert_eq!(
        (retried.status, retried.retry_count),
        (Some(OfdStatus::Pending), 2)
    );
    let x = f
        .journal
        .ofd_exchange(FN, 21)
        .await
        .expect("x")
        .expect("row");
    assert_eq!(
        (x.reply, x.response_code, x.outgoing_message),
        (None, None, vec![5; 10])
    );
    // Documents the adapter never journaled are reported as absent, not as errors.
    assert_eq!(
        f.journal.mark_synced(FN, 999, None).await.expect("foreign"),
        None
    );
}

/// Refuses document `fd` with OFD response `code` (the reply journaled, then the move to the DLQ).
async fn refuse(f: &Fixture, fd: u32, code: i64, message: &str) {
    let reply = OfdReply {
        reply: vec![1],
        response_code: code,
        operator_sign: None,
    };
    f.journal
        .record_ofd_reply(FN, fd, reply, None)
        .await
        .expect("reply");
    let moved = f
        .journal
        .mark_dlq(FN, fd, &format!("ofd_{code}"), message, None)
        .await;
    assert!(moved.expect("dlq").is_some());
}

#[tokio::test]
async fn every_rejection_is_kept_across_retries_and_a_bulk_retry_answers_per_id() {
    let f = Fixture::new().await;
    let a = fiscalized(&f, "a", 31).await;
    let b = fiscalized(&f, "b", 32).await;
    let synced = fiscalized(&f, "c", 33).await;
    for fd in [31, 32] {
        f.journal
            .record_ofd_outgoing(FN, fd, vec![fd as u8; 4])
            .await
            .expect("outgoing");
    }
    f.journal.mark_synced(FN, 33, None).await.expect("synced");
    refuse(&f, 31, 14, "format check failed").await;
    f.clock.advance(5_000);
    f.journal.dlq_retry(&a.receipt_id).await.expect("retry");
    f.clock.advance(5_000);
    refuse(&f, 31, 15, "signature check failed").await;
    // Marking a DLQ row again is not a new refusal.
    f.journal
        .mark_dlq(FN, 31, "ofd_15", "signature check failed", None)
        .await
        .expect("again");
    refuse(&f, 32, 14, "format check failed").await;

    let dlq = f.journal.list_dlq(10).await.expect("dlq");
    let history: Vec<_> = dlq[0]
        .rejections
        .iter()
        .map(|r| (r.response_code, r.error_code.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            (Some(14), "ofd_14", "format check failed"),
            (Some(15), "ofd_15", "signature check failed")
        ]
    );
    let (first, last) = (dlq[0].rejections[0].at_ms, dlq[0].rejections[1].at_ms);
    assert!(last >= first + 10_000, "{first} {last}");
    assert_eq!(dlq[0].last_attempt_ms, Some(last));
    assert!(dlq[0].first_attempt_ms.is_some_and(|t| t <= first));
    assert_eq!(dlq[1].rejections.len(), 1);

    let ids = [&a.receipt_id, "nope", &synced.receipt_id, &b.receipt_id]
        .map(str::to_string)
        .to_vec();
    let answers = f.journal.dlq_retry_many(ids).await.expect("bulk");
    let shape: Vec<_> = answers
        .iter()
        .map(|a| match a {
            Ok(row) => Ok(row.status),
            Err(JournalError::NotFound(_)) => Err("not found"),
            Err(JournalError::InvalidTransition { .. }) => Err("not in dlq"),
            Err(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            Ok(Some(OfdStatus::Pending)),
            Err("not found"),
            Err("not in dlq"),
            Ok(Some(OfdStatus::Pending))
        ]
    );
    assert_eq!(f.journal.counts().await.expect("counts").dlq, 0);
    // The history stays after the retry cleared the reply.
    let kept = f.sql_i64("SELECT count(*) FROM delivery_rejection");
    assert_eq!(kept, 3);
}

#[tokio::test]
async fn the_rejections_of_one_document_are_bounded() {
    let f = Fixture::new().await;
    let a = fiscalized(&f, "a", 41).await;
    f.journal
        .record_ofd_outgoing(FN, 41, vec![1; 4])
        .await
        .expect("outgoing");
    let bound = crate::journal::ops::REJECTIONS_PER_DOCUMENT_MAX;
    for i in 0..bound + 3 {
        refuse(&f, 41, 14, &format!("refusal {i}")).await;
        f.journal.dlq_retry(&a.receipt_id).await.expect("retry");
    }
    let kept = f.sql_i64("SELECT count(*) FROM delivery_rejection");
    assert_eq!(kept, bound);
    refuse(&f, 41, 14, "last").await;
    let dlq = f.journal.list_dlq(10).await.expect("dlq");
    let messages: Vec<_> = dlq[0]
        .rejections
        .iter()
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(messages.first(), Some(&"refusal 4"));
    assert_eq!(messages.last(), Some(&"last"));
}

#[tokio::test]
async fn retention_purges_only_old_synced_rows_in_bounded_batches() {
    const DAY_MS: u64 = 86_400_000;
    let age_ms = 30 * DAY_MS as i64;
    let f = Fixture::new().await;
    let mut old_synced = Vec::new();
    for fd in [50, 51] {
        old_synced.push(fiscalized(&f, &format!("synced-{fd}"), fd).await.receipt_id);
        f.journal
            .record_ofd_outgoing(FN, fd, vec![1; 4])
            .await
            .expect("outgoing");
        f.journal.mark_synced(FN, fd, None).await.expect("synced");
    }
    let pending = fiscalized(&f, "pending", 52).await;
    let dlq = fiscalized(&f, "dlq", 53).await;
    f.journal
        .record_ofd_outgoing(FN, 53, vec![1; 4])
        .await
        .expect("outgoing");
    refuse(&f, 53, 14, "format").await;
    let unresolved = inserted(&f, "unresolved").await;
    let rejected = inserted(&f, "rejected").await;
    f.journal
        .mark_rejected(&rejected.receipt_id, RejectCode::KktPrinter, "paper out")
        .await
        .expect("rejected");
    // Exactly 30 days on: nothing is past the age yet.
    f.clock.advance(30 * DAY_MS - 1_000);
    assert_eq!(f.journal.purge_synced(age_ms, 10).await.expect("purge"), 0);
    f.clock.advance(DAY_MS);
    let fresh = fiscalized(&f, "fresh", 54).await;
    f.journal.mark_synced(FN, 54, None).await.expect("synced");

    let batches: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(f.journal.purge_synced(age_ms, 1).await.expect("purge"));
        }
        v
    };
    assert_eq!(
        batches,
        [1, 1, 0],
        "one row per batch of one, then none left"
    );
    for id in &old_synced {
        assert_eq!(f.journal.get_by_id(id).await.expect("read"), None, "{id}");
    }
    for id in [
        &pending.receipt_id,
        &dlq.receipt_id,
        &unresolved.receipt_id,
        &rejected.receipt_id,
        &fresh.receipt_id,
    ] {
        assert!(
            f.journal.get_by_id(id).await.expect("read").is_some(),
            "{id}"
        );
    }
    assert_eq!(
        f.sql_i64("SELECT count(*) FROM ofd_exchange WHERE fd_number IN (50, 51)"),
        0
    );
    assert_eq!(f.sql_i64("SELECT count(*) FROM delivery_rejection"), 1);
    f.journal.check_invariants().await.expect("invariants");
    let counts = f.journal.counts().await.expect("counts");
    assert_eq!((counts.synced, counts.pending, counts.dlq), (1, 1, 1));
}

#[tokio::test]
async fn leases_fence_stale_holders() {
    let f = Fixture::new().await;
    let a = f
        .journal
        .lease_acquire("ofd_sync", "a", 1_000)
        .await
        .expect("a")
        .expect("held");
    assert_eq!(a.token, 1);
    assert_eq!(
        f.journal
            .lease_acquire("ofd_sync", "b", 1_000)
            .await
            .expect("b"),
        None
    );
    f.clock.advance(1_001);
    let b = f
        .journal
        .lease_acquire("ofd_sync", "b", 1_000)
        .await
        .expect("b")
        .expect("held");
    assert_eq!(b.token, 2);
    assert_eq!(f.journal.lease_renew(&a, 1_000).await.expect("renew"), None);
    fiscalized(&f, "x", 3).await;
    let fenced = f.journal.mark_synced(FN, 3, Some(&a)).await;
    assert!(
        matches!(fenced, Err(JournalError::Fenced { token: 1, .. })),
        "{fenced:?}"
    );
    assert!(
        f.journal
            .mark_synced(FN, 3, Some(&b))
            .await
            .expect("b syncs")
            .is_some()
    );
    assert!(f.journal.lease_release(&b).await.expect("release"));
    assert_eq!(f.journal.lease("ofd_sync").await.expect("lease"), None);
    let a2 = f
        .journal
        .lease_acquire("ofd_sync", "a", 1_000)
        .await
        .expect("a")
        .expect("held");
    assert_eq!(a2.token, 3, "tokens only ever grow");
}

#[tokio::test]
async fn stamps_stay_monotonic_across_a_restart_with_the_clock_set_back() {
    let f = Fixture::new().await;
    let mut last = HlcStamp::ZERO;
    for i in 0..3 {
        let row = inserted(&f, &format!("k{i}")).await;
        assert!(row.hlc > last);
        last = row.hlc;
    }
    f.clock.set(1_000);
    let f = f.reopen().await;
    assert!(f.journal.hlc_high_water().await.expect("hw") >= last);
    let row = inserted(&f, "after").await;
    assert!(row.hlc > last, "{:?} <= {last:?}", row.hlc);
    let max_id: String = raw(&f.db_path())
        .query_row("SELECT max(id) FROM receipts", [], |r| r.get(0))
        .expect("max id");
    assert_eq!(max_id, row.receipt_id, "receipt ids sort by creation");
}

#[tokio::test]
async fn the_high_water_mark_runs_ahead_so_commits_seldom_write_it_and_never_pass_it() {
    let f = Fixture::new().await;
    let meta = |f: &Fixture| -> i64 {
        raw(&f.db_path())
            .query_row(
                "SELECT value FROM meta WHERE key = 'hlc_high_water'",
                [],
                |r| r.get(0),
            )
            .expect("mark")
    };
    let first = inserted(&f, "a").await;
    let mark = meta(&f);
    assert_eq!(
        HlcStamp::from_i64(mark).physical_ms(),
        first.hlc.physical_ms() + crate::journal::writer::MARK_AHEAD_MS,
        "the committed mark is set ahead of the stamp"
    );
    // Within the window, commits leave the mark alone and stay below it.
    f.clock.advance(crate::journal::writer::MARK_AHEAD_MS / 2);
    for k in ["b", "c", "d"] {
        let row = inserted(&f, k).await;
        assert!(row.hlc.as_i64() < mark);
        assert_eq!(meta(&f), mark, "{k} wrote the mark again");
    }
    // Past it, the next commit moves the mark with it.
    f.clock.advance(crate::journal::writer::MARK_AHEAD_MS);
    let row = inserted(&f, "e").await;
    assert!(meta(&f) > mark && row.hlc.as_i64() < meta(&f));
    // A restart starts at the mark: its first stamp is above every stamp committed before.
    let high = meta(&f);
    let f = f.reopen().await;
    assert!(inserted(&f, "after").await.hlc.as_i64() > high);
}

#[tokio::test]
async fn two_processes_taking_turns_keep_their_stamps_within_the_window_of_the_wall_clock() {
    // Each folds in the other's mark, which runs ahead of the clock; the next mark it writes
    // must be set from the wall clock, or every turn would push the stamps further ahead.
    let f = Fixture::new().await;
    let other = super::open(f.journal.config().clone(), &f.clock);
    let ceiling = (f.clock_ms() + crate::journal::writer::MARK_AHEAD_MS) as i64;
    let mut last = 0;
    for turn in 0..20 {
        let key = format!("turn-{turn}");
        let outcome = if turn % 2 == 0 {
            f.journal.insert_received(sale(&key)).await
        } else {
            other.insert_received(sale(&key)).await
        };
        let InsertOutcome::Inserted(row) = outcome.expect("insert") else {
            panic!("{key} was not inserted");
        };
        assert!(
            row.hlc.as_i64() > last,
            "{key}: stamps follow the commit order"
        );
        last = row.hlc.as_i64();
        let mark =
            HlcStamp::from_i64(f.sql_i64("SELECT value FROM meta WHERE key = 'hlc_high_water'"));
        assert!(
            row.hlc.physical_ms() as i64 <= ceiling && mark.physical_ms() as i64 <= ceiling,
            "{key}: stamp {} and mark {} ran past the wall clock + {} ms ({ceiling})",
            row.hlc.physical_ms(),
            mark.physical_ms(),
            crate::journal::writer::MARK_AHEAD_MS
        );
        assert!(
            mark.as_i64() >= row.hlc.as_i64(),
            "{key}: a committed stamp above the mark"
        );
    }
    other.close().await.expect("close");
}

/// Runs `count` concurrent writes while an outside connection holds the write lock, so all
/// of them are queued before the writer can start: group commit is then deterministic.
async fn queued_behind_a_lock<T, Fut>(
    f: &Fixture,
    count: usize,
    write: impl Fn(usize) -> Fut,
) -> Vec<Result<T, JournalError>>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Result<T, JournalError>> + Send + 'static,
{
    let blocker = raw(&f.db_path());
    blocker.execute_batch("BEGIN IMMEDIATE").expect("block");
    let tasks: Vec<_> = (0..count).map(|i| tokio::spawn(write(i))).collect();
    // Bounded wait (at most about 5 s) until every request is queued or being run.
    for _ in 0..5_000 {
        if f.journal.requests_waiting() >= count as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    blocker.execute_batch("COMMIT").expect("unblock");
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions_and_fail_alone() {
    const WRITERS: usize = 64;
    let f = Fixture::new().await;
    let taken = fiscalized(&f, "taken", 1).await;
    let before = f.journal.stats();
    let rows = queued_behind_a_lock(&f, WRITERS, |i| {
        let j = f.journal.clone();
        async move { j.insert_received(sale(&format!("c{i}"))).await }
    })
    .await;
    let ids: Vec<String> = rows
        .into_iter()
        .map(|r| r.expect("insert").row().receipt_id.clone())
        .collect();
    let results = queued_behind_a_lock(&f, WRITERS, |i| {
        let (j, id) = (f.journal.clone(), ids[i].clone());
        // Every other writer claims the already-used FD 1: a constraint failure that must
        // roll back that request alone.
        let fd = if i % 2 == 0 { 1 } else { 100 + i as u32 };
        async move { j.mark_fiscalized(&id, fiscal(fd)).await }
    })
    .await;
    let mut failed = 0;
    for result in results {
        match result {
            Ok(row) => assert_eq!(row.kkt_state, KktState::Fiscalized),
            Err(JournalError::Constraint(_)) => failed += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(failed, WRITERS / 2);
    let stats = f.journal.stats();
    let requests = stats.requests_committed - before.requests_committed;
    let transactions = stats.transactions_committed - before.transactions_committed;
    assert_eq!(requests, 2 * WRITERS as u64);
    // Each phase: the first request alone (taken before the lock was seen), then the rest.
    assert!(
        transactions <= 4,
        "{transactions} transactions for {requests} requests"
    );
    let counts = f.journal.counts().await.expect("counts");
    assert_eq!((counts.total, counts.pending, counts.in_kkt), (65, 33, 32));
    assert_eq!(
        f.journal.get_by_fiscal(FN, 1).await.expect("get"),
        Some(taken)
    );
    f.journal.check_invariants().await.expect("invariants");
}

#[tokio::test]
async fn a_full_disk_is_a_storage_error_and_leaves_nothing_half_written() {
    let f = Fixture::with(|c| c.db_pages_max = Some(40)).await;
    let mut inserted_count = 0_i64;
    let mut storage_error = None;
    for i in 0..500 {
        let mut new = sale(&format!("big{i}"));
        new.request_body = "x".repeat(2_000);
        match f.journal.insert_received(new).await {
            Ok(_) => inserted_count += 1,
            Err(e) => {
                storage_error = Some(e);
                break;
            }
        }
    }
    let err = storage_error.expect("the page cap must be reached");
    assert!(err.is_storage_failure(), "{err:?}");
    assert_eq!(f.sql_i64("SELECT count(*) FROM receipts"), inserted_count);
    f.journal
        .check_invariants()
        .await
        .expect("invariants after disk full");
    // The journal keeps working for what still fits: state changes of journaled rows.
    let first = f
        .journal
        .get_by_key("big0")
        .await
        .expect("get")
        .expect("row");
    f.journal
        .mark_in_flight(&first.receipt_id)
        .await
        .expect("still writable");
}

#[tokio::test]
async fn an_unopenable_path_is_a_storage_error() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let config = crate::journal::JournalConfig::new(file.join("buffer.db"));
    let err = crate::journal::Journal::open(config).expect_err("cannot open");
    assert!(err.is_storage_failure(), "{err:?}");
}

#[tokio::test]
async fn a_broken_invariant_is_caught_at_open() {
    let f = Fixture::new().await;
    fiscalized(&f, "a", 4).await;
    let path = f.db_path();
    let config = f.journal.config().clone();
    f.journal.close().await.expect("close");
    raw(&path)
        .execute_batch("UPDATE receipts SET fpd = NULL")
        .expect("damage");
    let err = crate::journal::Journal::open(config).expect_err("must refuse");
    assert!(matches!(err, JournalError::Invariant(_)), "{err:?}");
}

#[tokio::test]
async fn checkpoint_truncates_the_wal_and_close_stops_writes() {
    let f = Fixture::new().await;
    inserted(&f, "a").await;
    let info = f.journal.checkpoint().await.expect("checkpoint");
    assert!(!info.busy);
    let wal = std::fs::metadata(f.db_path().with_extension("db-wal")).expect("wal");
    assert_eq!(wal.len(), 0);
    let clone = f.journal.clone();
    f.journal.close().await.expect("close");
    assert_eq!(
        clone.insert_received(sale("b")).await,
        Err(JournalError::Closed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_fails_after_writing_is_rolled_back_alone() {
    let f = Fixture::new().await;
    let before = f.journal.stats();
    let results = queued_behind_a_lock(&f, 2, |i| {
        let j = f.journal.clone();
        async move {
            j.write(move |ctx| {
                let row = crate::journal::ops::insert_received(ctx, sale(&format!("w{i}")))?;
                match i {
                    // Fails after its insert, as a broken invariant found on re-read would.
                    0 => Err(JournalError::Invariant("forced after writing".into())),
                    _ => Ok(row),
                }
            })
            .await
        }
    })
    .await;
    assert!(matches!(results[0], Err(JournalError::Invariant(_))));
    assert!(results[1].is_ok());
    assert_eq!(f.journal.get_by_key("w0").await.expect("get"), None);
    assert!(f.journal.get_by_key("w1").await.expect("get").is_some());
    let stats = f.journal.stats();
    assert_eq!(stats.requests_committed - before.requests_committed, 2);
}

#[tokio::test]
async fn a_journal_that_breaks_a_whole_journal_rule_is_refused_at_open_naming_the_rule() {
    let cases = [
        (
            "UPDATE receipts SET status = NULL WHERE kkt_state = 'fiscalized'",
            "status is set exactly when fiscalized: 1 rows",
        ),
        (
            "UPDATE receipts SET fiscal_time = NULL WHERE kkt_state = 'fiscalized'",
            "a fiscalized row has complete fiscal data: 1 rows",
        ),
        (
            "UPDATE receipts SET fd_number = 9 WHERE kkt_state = 'received'",
            "only a fiscalized row has fiscal data: 1 rows",
        ),
        (
            "UPDATE receipts SET kkt_state = 'rejected', error_code = NULL \
             WHERE kkt_state = 'received'",
            "a rejected row has an error code: 1 rows",
        ),
    ];
    for (damage, rule) in cases {
        let f = Fixture::new().await;
        fiscalized(&f, "done", 1).await;
        inserted(&f, "waiting").await;
        let config = f.journal.config().clone();
        f.journal.close().await.expect("close");
        let conn = raw(&config.path);
        // As a damaged file or a hand edit would: past the table's CHECK constraints.
        conn.execute_batch("PRAGMA ignore_check_constraints = 1")
            .expect("pragma");
        assert_eq!(conn.execute(damage, []).expect(damage), 1, "{damage}");
        drop(conn);
        let err = crate::journal::Journal::open_with_clock(config, Box::new(f.clock.clone()))
            .expect_err(damage);
        assert!(
            matches!(&err, JournalError::Invariant(m) if m.starts_with(rule)),
            "{damage}: {err:?}"
        );
    }
}
