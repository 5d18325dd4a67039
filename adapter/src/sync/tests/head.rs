//! The head of the FN's queue is never given up: transient failures of every kind are retried
//! until the OFD takes the document, an acknowledgement the FN refuses is dropped and asked for
//! again, and only a definite refusal by the OFD stops delivery, loudly, until an operator
//! retries it. Real emulator, real mock OFD.

use rstest::rstest;
use serde_json::json;

use super::relay::assert_all_delivered_once;
use super::{Mock, Shop, count, settings};
use crate::journal::{OfdReply, OfdStatus, ReceiptRow};
use crate::sync::relay::FnRelay;
use crate::sync::{NetworkStatus, StopReason, StuckHead, SyncHandle};
use ofd_proto::envelope::message_ids as envelope_ids;

/// The journal row of FD `fd` of the shop's FN.
async fn row_of(shop: &Shop, fd: u32) -> ReceiptRow {
    let fn_number = shop.emu.shared.state_view().fn_serial;
    shop.journal
        .get_by_fiscal(&fn_number, fd)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("FD {fd} is journaled"))
}

/// FF32/FF33 commands (an OFD reply written to the FN) the emulator executed.
fn replies_written(shop: &Shop) -> u64 {
    let view = shop.emu.shared.commands_view();
    ["FF32", "FF33"]
        .iter()
        .map(|c| view.by_code.get(*c).copied().unwrap_or(0))
        .sum()
}

/// One forced pass (past the breaker and the backoff) delivers all `documents`, each once.
async fn drains_once(worker: &SyncHandle, shop: &Shop, mock: &Mock, documents: u32) {
    let r = worker.sync_now(true).await.unwrap();
    assert_eq!(
        (r.synced, r.stop.clone()),
        (documents, StopReason::Drained),
        "{r:?}"
    );
    assert_all_delivered_once(shop, mock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_stops_delivery_loudly_until_an_operator_retries_it() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    for n in 0..3 {
        shop.sell(n).await;
    }
    let documents = shop.last_fd();
    let fn_number = shop.emu.shared.state_view().fn_serial;
    mock.mode(json!({"mode": "reject", "code": 14})).await;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());

    let r = worker.sync_now(false).await.unwrap();
    let head = StopReason::DlqHead {
        fn_number: fn_number.clone(),
        fd: 1,
    };
    assert_eq!((r.synced, r.failed, r.stop.clone()), (0, 1, head.clone()));
    assert_eq!(count(&mock.stats().await, "connections"), 1);
    assert_eq!(
        (shop.unsent(), replies_written(&shop)),
        (documents as usize, 0),
        "the refusal never reached the FN, which keeps FD 1 at the head"
    );
    let view = worker.network_status();
    assert_eq!(view.status, NetworkStatus::Degraded);
    let stuck = StuckHead {
        fn_number: fn_number.clone(),
        fd: 1,
        waiting_behind: documents - 1,
    };
    assert_eq!(view.dlq_head, Some(stuck.clone()));
    let dlq = worker.dlq_list(100).await.unwrap();
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0].response_code, Some(14));
    assert_eq!(
        dlq[0].receipt.error_code.as_deref(),
        Some("ofd_response_14")
    );
    assert_eq!(dlq[0].receipt.retry_count, 1);

    // Nothing behind the head can move, so later passes attempt nothing.
    for _ in 0..3 {
        assert_eq!(worker.sync_now(false).await.unwrap().stop, head);
    }
    assert_eq!(count(&mock.stats().await, "connections"), 1);

    // A manual retry while the OFD still refuses is an attempt too, and counted.
    let receipt = row_of(&shop, 1).await.receipt_id;
    let (row, r) = worker.dlq_retry(&receipt).await.unwrap();
    assert_eq!(
        (row.status, row.retry_count, r.stop.clone()),
        (Some(OfdStatus::Dlq), 2, head.clone())
    );
    assert_eq!(worker.network_status().dlq_head, Some(stuck));

    // The OFD fixed its side; the operator retries and everything behind the head follows.
    mock.mode(json!({"mode": "online"})).await;
    let (row, r) = worker.dlq_retry(&receipt).await.unwrap();
    assert_eq!((row.status, row.retry_count), (Some(OfdStatus::Synced), 2));
    assert_eq!((r.synced, r.stop.clone()), (documents, StopReason::Drained));
    assert_eq!(worker.network_status().dlq_head, None);
    assert_eq!(worker.network_status().status, NetworkStatus::Online);
    assert_all_delivered_once(&shop, &mock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_the_fn_refuses_is_dropped_and_asked_for_again_never_dead_lettered() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    shop.sell(0).await;
    let documents = shop.last_fd();
    let message = shop.kkt.read_message().await.unwrap();
    let (fn_number, fd) = envelope_ids(&message).unwrap();
    // A journaled reply the FN cannot take, as if an OFD had sent it before a crash.
    shop.journal
        .record_ofd_outgoing(&fn_number, fd, message)
        .await
        .unwrap();
    let bogus = OfdReply {
        reply: b"not an acknowledgement".to_vec(),
        response_code: 0,
        operator_sign: None,
    };
    shop.journal
        .record_ofd_reply(&fn_number, fd, bogus, None)
        .await
        .unwrap();

    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let r = worker.sync_now(false).await.unwrap();
    assert!(matches!(r.stop, StopReason::FnRefusedAck(_)), "{r:?}");
    assert_eq!((r.synced, r.failed), (0, 1));
    let row = row_of(&shop, fd).await;
    assert_eq!((row.status, row.retry_count), (Some(OfdStatus::Pending), 1));
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("FN refused")),
        "{row:?}"
    );
    let x = shop.journal.ofd_exchange(&fn_number, fd).await.unwrap();
    assert_eq!(
        x.and_then(|x| x.reply),
        None,
        "the refused reply is forgotten"
    );
    assert_eq!(shop.journal.counts().await.unwrap().dlq, 0);
    assert_eq!(worker.network_status().dlq_head, None);

    // The next pass (forced past the backoff) asks the OFD again and delivers everything.
    drains_once(&worker, &shop, &mock, documents).await;
    assert_eq!(row_of(&shop, fd).await.retry_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_transient_failures_of_one_document_then_a_healthy_ofd_deliver_everything() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    for n in 0..2 {
        shop.sell(n).await;
    }
    let documents = shop.last_fd();
    let mut s = settings(&mock.addr());
    // The old budget: three failures while reachable used to dead-letter the head for good.
    s.retry_max = 3;
    let worker = shop.worker_with(shop.journal.clone(), s);
    let kinds = [
        json!("ack_loss"),
        json!("reset_mid_frame"),
        json!("garbage"),
        json!("unavailable"),
        json!({"mode": "offline", "refuse": "reset"}),
    ];
    for kind in kinds {
        mock.mode(json!({"mode": "fail_next", "count": 10, "kind": kind}))
            .await;
        for attempt in 0..10 {
            // Forced passes skip the breaker and the backoff: one attempt each, at once.
            let r = worker.sync_now(true).await.unwrap();
            assert!(
                matches!(r.stop, StopReason::Transport(_)) && r.synced == 0,
                "{kind} attempt {attempt}: {r:?}"
            );
        }
    }
    let row = row_of(&shop, 1).await;
    assert_eq!(
        (row.status, row.retry_count),
        (Some(OfdStatus::Pending), 50)
    );
    assert_eq!(shop.journal.counts().await.unwrap().dlq, 0);
    assert_eq!(worker.network_status().dlq_head, None);

    // The mock is back online after the last armed failure.
    drains_once(&worker, &shop, &mock, documents).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_an_earlier_version_dead_lettered_for_a_transient_failure_is_delivered() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    shop.sell(0).await;
    let documents = shop.last_fd();
    let fn_number = shop.emu.shared.state_view().fn_serial;
    // What the previous version did after 20 failures while the OFD was reachable.
    shop.journal
        .mark_dlq(
            &fn_number,
            1,
            "ofd_retries_exhausted",
            "20 consecutive failures while the OFD was reachable",
            None,
        )
        .await
        .unwrap();
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!(
        (r.synced, r.stop.clone()),
        (documents, StopReason::Drained),
        "{r:?}"
    );
    assert_eq!(shop.journal.counts().await.unwrap().dlq, 0);
    assert_all_delivered_once(&shop, &mock).await;
}

/// An acknowledgement naming another document, in any field the FN checks, is the OFD's fault:
/// logged with both values, never written to the FN, retried until a right one comes.
#[rstest]
#[case::header_fd("header_fd", "header FD 2 (sent 1)")]
#[case::header_fn("header_fn", "header FN 9999999999999999")]
#[case::body_fd("body_fd", "body 1040 FD 2 (sent 1)")]
#[case::body_fn("body_fn", "body 1041 FN 9999999999999999")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_for_another_document_is_never_written_to_the_fn(
    #[case] field: &str,
    #[case] named: &str,
) {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    shop.sell(0).await;
    let documents = shop.last_fd();
    mock.mode(
        json!({"mode": "fail_next", "count": 2, "kind": {"mode": "wrong_ack", "field": field}}),
    )
    .await;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    for _ in 0..2 {
        let r = worker.sync_now(true).await.unwrap();
        assert!(
            matches!(&r.stop, StopReason::Transport(e) if e.contains(named)),
            "{r:?}"
        );
    }
    assert_eq!(count(&mock.stats().await, "wrong_acks"), 2);
    assert_eq!(
        (replies_written(&shop), shop.unsent()),
        (0, documents as usize),
        "nothing was written to the FN"
    );
    let row = row_of(&shop, 1).await;
    assert_eq!((row.status, row.retry_count), (Some(OfdStatus::Pending), 2));
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains(named)),
        "{row:?}"
    );
    let x = shop
        .journal
        .ofd_exchange(&row.fiscal.unwrap().fn_number, 1)
        .await
        .unwrap();
    assert_eq!(
        x.and_then(|x| x.reply),
        None,
        "a wrong ack is not even journaled"
    );

    // The mock is back online: the right acknowledgement comes and everything is delivered.
    drains_once(&worker, &shop, &mock, documents).await;
}
