//! Task requests (the ATOL API's uuid): journaled once, outcomes recorded once per task, listed
//! while unfinished, and kept as long as the receipts they made.

use super::{FN, Fixture, fiscal, sale};
use crate::journal::{JournalError, NewTaskRequest, TaskInsert, task_receipt_key};

fn request(id: &str, tasks: u32) -> NewTaskRequest {
    NewTaskRequest {
        id: id.into(),
        kkt_id: crate::journal::DEFAULT_KKT_ID.into(),
        body_hash: format!("hash-{id}"),
        jobs: format!("{{\"jobs\":{tasks}}}"),
        task_count: tasks,
    }
}

#[tokio::test]
async fn a_request_is_journaled_once_numbered_and_its_tasks_end_once() {
    let f = Fixture::new().await;
    let TaskInsert::Inserted(a) = f
        .journal
        .insert_task_request(request("a", 2))
        .await
        .unwrap()
    else {
        panic!("a new request");
    };
    let TaskInsert::Inserted(b) = f
        .journal
        .insert_task_request(request("b", 1))
        .await
        .unwrap()
    else {
        panic!("a new request");
    };
    assert_eq!((a.number, b.number), (1, 2));
    let again = f
        .journal
        .insert_task_request(request("a", 2))
        .await
        .unwrap();
    assert_eq!(
        again,
        TaskInsert::Existing(a.clone()),
        "the first one answers"
    );

    let unfinished = |f: &Fixture| {
        let j = f.journal.clone();
        async move {
            j.unfinished_task_requests(crate::journal::DEFAULT_KKT_ID)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(unfinished(&f).await, ["a", "b"]);
    f.journal
        .record_task_outcome("a", 0, "{\"o\":0}")
        .await
        .unwrap();
    let twice = f.journal.record_task_outcome("a", 0, "{\"o\":1}").await;
    assert!(
        matches!(twice, Err(JournalError::Invariant(_))),
        "{twice:?}"
    );
    let beyond = f.journal.record_task_outcome("a", 2, "{}").await;
    assert!(
        matches!(beyond, Err(JournalError::Invariant(_))),
        "{beyond:?}"
    );
    f.journal
        .record_task_outcome("a", 1, "{\"o\":2}")
        .await
        .unwrap();
    assert_eq!(unfinished(&f).await, ["b"]);

    // Across a restart.
    let f = f.reopen().await;
    let a = f.journal.task_request("a").await.unwrap().unwrap();
    assert!(a.finished());
    assert_eq!(a.outcome(0), Some("{\"o\":0}"));
    assert_eq!(a.outcome(1), Some("{\"o\":2}"));
    assert_eq!(unfinished(&f).await, ["b"]);
    assert_eq!(f.journal.task_request("nope").await.unwrap(), None);
}

#[tokio::test]
async fn a_finished_request_goes_with_the_retention_of_its_receipts_not_before() {
    const DAY_MS: u64 = 86_400_000;
    let age_ms = 30 * DAY_MS as i64;
    let f = Fixture::new().await;
    f.journal
        .insert_task_request(request("r", 1))
        .await
        .unwrap();
    f.journal
        .insert_task_request(request("open", 1))
        .await
        .unwrap();
    f.journal
        .insert_task_request(request("r:0", 1))
        .await
        .unwrap();
    // Request `r` made a receipt under its task key.
    let row = match f
        .journal
        .insert_received(sale(&task_receipt_key("r", 0)))
        .await
        .unwrap()
    {
        crate::journal::InsertOutcome::Inserted(row) => row,
        other => panic!("{other:?}"),
    };
    f.journal.mark_in_flight(&row.receipt_id).await.unwrap();
    f.journal
        .mark_fiscalized(&row.receipt_id, fiscal(7))
        .await
        .unwrap();
    f.journal.record_task_outcome("r", 0, "{}").await.unwrap();
    f.journal.record_task_outcome("r:0", 0, "{}").await.unwrap();
    f.clock.advance(31 * DAY_MS);
    // `r`'s receipt is still pending; `open` is unfinished; `r:0` made no receipt of its own
    // (the key `atol:r:0:0` would be its) and goes.
    assert_eq!(f.journal.purge_task_requests(age_ms, 10).await.unwrap(), 1);
    assert_eq!(f.journal.task_request("r:0").await.unwrap(), None);
    assert!(f.journal.task_request("r").await.unwrap().is_some());
    f.journal.record_ofd_outgoing(FN, 7, vec![1]).await.unwrap();
    f.journal.mark_synced(FN, 7, None).await.unwrap();
    f.clock.advance(31 * DAY_MS);
    assert_eq!(f.journal.purge_synced(age_ms, 10).await.unwrap(), 1);
    assert_eq!(f.journal.purge_task_requests(age_ms, 10).await.unwrap(), 1);
    assert_eq!(f.journal.task_request("r").await.unwrap(), None);
    assert!(
        f.journal.task_request("open").await.unwrap().is_some(),
        "unfinished: kept"
    );
    assert_eq!(
        f.sql_i64("SELECT count(*) FROM task_outcomes WHERE request_id = 'r'"),
        0
    );
}
