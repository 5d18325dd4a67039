//! The relay end to end: sales through the KKT driver on the real emulator, documents relayed to
//! the real mock OFD, and the ground truth read from both.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Mock, Shop, count, settings};
use crate::journal::OfdReply;
use crate::kkt::Durable;
use crate::sync::lock::lease_name;
use crate::sync::ofd_client::OfdClient;
use crate::sync::relay::{FnRelay, RelayError};
use crate::sync::{BreakerState, NetworkStatus, StopReason, SyncHandle};
use ofd_proto::envelope::message_ids as envelope_ids;

/// Polls `done` every 20 ms until it holds, at most [`super::WAIT_MAX`].
async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + super::WAIT_MAX;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every FD the FN issued is at the mock exactly once and acknowledged in the FN.
pub(super) async fn assert_all_delivered_once(shop: &Shop, mock: &Mock) {
    assert_eq!(shop.unsent(), 0, "the FN's unsent queue is back to 0");
    let docs = mock.documents().await;
    let mut fds: Vec<u64> = docs.iter().map(|d| d["fd"].as_u64().unwrap()).collect();
    fds.sort_unstable();
    let expected: Vec<u64> = (1..=u64::from(shop.last_fd())).collect();
    assert_eq!(fds, expected, "the mock holds each FD once");
    assert_eq!(count(&mock.stats().await, "conflicts"), 0);
    let counts = shop.journal.counts().await.unwrap();
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.synced, u64::from(shop.last_fd()));
}

async fn wait_breaker_probe(worker: &SyncHandle) {
    if let Some(at) = worker.breaker_snapshot().next_probe_at {
        tokio::time::sleep_until(at).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_keeps_selling_opens_the_breaker_without_attempts_then_drains_once() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    // Refusing by reset keeps the listener open, so every connection attempt is counted.
    mock.mode(json!({"mode": "offline", "refuse": "reset"}))
        .await;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    for n in 0..3 {
        shop.sell(n).await;
    }
    let documents = shop.last_fd();
    assert_eq!(shop.unsent(), documents as usize);
    assert_eq!(
        shop.journal.counts().await.unwrap().pending,
        u64::from(documents)
    );

    // After a restart the breaker is half-open: one failure opens it.
    let r = worker.sync_now(false).await.unwrap();
    assert!(matches!(r.stop, StopReason::Transport(_)), "{r:?}");
    assert_eq!((r.synced, r.failed, r.skipped), (0, 1, documents - 1));
    assert_eq!(worker.breaker_snapshot().state, BreakerState::Open);
    assert_eq!(worker.network_status().status, NetworkStatus::Offline);
    let attempts = count(&mock.stats().await, "connections");
    assert_eq!(attempts, 1);

    // While OPEN: sales go on, passes attempt nothing.
    shop.sell(3).await;
    for _ in 0..3 {
        let r = worker.sync_now(false).await.unwrap();
        assert_eq!(r.stop, StopReason::BreakerOpen);
        assert_eq!(r.skipped, documents + 1);
    }
    assert_eq!(
        count(&mock.stats().await, "connections"),
        attempts,
        "no attempt while OPEN"
    );
    let failed = shop.journal.counts().await.unwrap().failed;
    assert_eq!(failed, 1, "the head document's failed attempt is recorded");

    mock.mode(json!({"mode": "online"})).await;
    wait_breaker_probe(&worker).await;
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!(r.stop, StopReason::Drained, "{r:?}");
    assert_eq!((r.synced, r.failed, r.skipped), (documents + 1, 0, 0));
    assert_eq!(worker.breaker_snapshot().state, BreakerState::Closed);
    assert_eq!(worker.network_status().status, NetworkStatus::Online);
    assert_all_delivered_once(&shop, &mock).await;
    let transitions = worker.breaker_snapshot().transitions;
    assert_eq!(
        (
            transitions.to_open,
            transitions.to_half_open,
            transitions.to_closed
        ),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_loss_is_resent_and_each_document_is_synced_once() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    for n in 0..4 {
        shop.sell(n).await;
    }
    // Set after the sales and before the worker starts, so no idle probe takes a failure slot.
    mock.mode(json!({"mode": "fail_next", "count": 3, "kind": "ack_loss"}))
        .await;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let task = worker.start();
    shop.sell(4).await;
    worker.notify_fiscalized();
    wait_for("the backlog to drain", async || {
        shop.journal.counts().await.unwrap().pending == 0 && shop.unsent() == 0
    })
    .await;
    worker.stop();
    task.await.unwrap();
    assert_all_delivered_once(&shop, &mock).await;
    let stats = mock.stats().await;
    assert_eq!(
        count(&stats, "duplicates"),
        3,
        "three lost acknowledgements, three resends"
    );
    let fn_number = shop.emu.shared.state_view().fn_serial;
    let x = shop
        .journal
        .ofd_exchange(&fn_number, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x.send_count, 4, "FD 1 was sent once and resent three times");
    assert!(x.written_to_fn);
}

/// The first half of a relay step by hand: read, journal, send, journal the reply.
async fn relay_until_reply_journaled(shop: &Shop, client: &OfdClient) -> (String, u32) {
    let message = shop.kkt.read_message().await.unwrap();
    let (fn_number, fd) = envelope_ids(&message).unwrap();
    shop.journal
        .record_ofd_outgoing(&fn_number, fd, message.clone())
        .await
        .unwrap();
    let answer = client.send(&message).await.unwrap();
    let reply = OfdReply {
        reply: answer.reply,
        response_code: 0,
        operator_sign: answer.ack.operator_sign,
    };
    shop.journal
        .record_ofd_reply(&fn_number, fd, reply, None)
        .await
        .unwrap();
    (fn_number, fd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_reply_is_journaled_resumes_without_a_second_delivery() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    shop.sell(0).await;
    let documents = shop.last_fd();

    // FD 1: a "crash" after the reply reached the FN, before the journal was told.
    let client = OfdClient::new(mock.addr(), Duration::from_secs(2), Duration::from_secs(2));
    let (fn_number, fd) = relay_until_reply_journaled(&shop, &client).await;
    let reply = shop
        .journal
        .ofd_exchange(&fn_number, fd)
        .await
        .unwrap()
        .unwrap()
        .reply;
    shop.kkt
        .write_reply(reply.unwrap(), Durable::already())
        .await
        .unwrap();
    // FD 2: a "crash" after the reply was journaled, before it reached the FN.
    let (_, fd2) = relay_until_reply_journaled(&shop, &client).await;
    assert_eq!((fd, fd2), (1, 2));
    assert_eq!(shop.unsent(), documents as usize - 1);
    assert!(
        !shop
            .journal
            .ofd_exchange(&fn_number, fd)
            .await
            .unwrap()
            .unwrap()
            .written_to_fn
    );

    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!(r.stop, StopReason::Drained, "{r:?}");
    assert_eq!(r.synced, documents, "{r:?}");
    assert_all_delivered_once(&shop, &mock).await;
    assert_eq!(
        count(&mock.stats().await, "duplicates"),
        0,
        "no second delivery"
    );
    for d in [fd, fd2] {
        let x = shop
            .journal
            .ofd_exchange(&fn_number, d)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(x.send_count, 1);
        assert!(x.written_to_fn);
    }
}

/// FF33 waits for the reply's commit: a reply whose commit failed, or whose commit was abandoned,
/// never reaches the FN (only FF32 went), and the same reply goes in whole once it is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_journal_did_not_take_is_never_written_to_the_fn() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    shop.sell(0).await;
    let unsent = shop.unsent();
    assert!(unsent > 0, "the sale left documents for the OFD");
    let client = OfdClient::new(mock.addr(), Duration::from_secs(2), Duration::from_secs(2));
    let message = shop.kkt.read_message().await.unwrap();
    let reply = client.send(&message).await.unwrap().reply;

    let (tell, journaled) = Durable::pending();
    let (written, ()) = tokio::join!(shop.kkt.write_reply(reply.clone(), journaled), async move {
        // FF32 is on its way or done by now; the commit "fails".
        tokio::time::sleep(Duration::from_millis(20)).await;
        tell.tell(false);
    });
    assert_eq!(written, Err(RelayError::NotJournaled));
    assert_eq!(shop.unsent(), unsent, "the FN still holds the document");

    let (tell, journaled) = Durable::pending();
    drop(tell);
    assert_eq!(
        shop.kkt.write_reply(reply.clone(), journaled).await,
        Err(RelayError::NotJournaled),
        "an abandoned commit is not a durable one"
    );
    assert_eq!(shop.unsent(), unsent, "the FN still holds the document");

    let (tell, journaled) = Durable::pending();
    let (written, ()) = tokio::join!(shop.kkt.write_reply(reply, journaled), async move {
        tell.tell(true)
    });
    assert_eq!(written, Ok(()));
    assert_eq!(
        shop.unsent(),
        unsent - 1,
        "the FN took the reply once it was durable"
    );
}

/// Two workers relay at the same moment; exactly one may hold the lock.
async fn check_two_workers(shop: &Shop, mock: &Mock, a: SyncHandle, b: SyncHandle) {
    let (ra, rb) = tokio::join!(a.sync_now(false), b.sync_now(false));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let busy = [&ra, &rb]
        .iter()
        .filter(|r| r.stop == StopReason::LockBusy)
        .count();
    assert_eq!(busy, 1, "exactly one pass held the lease: {ra:?} {rb:?}");
    assert_eq!(ra.synced + rb.synced, shop.last_fd());
    assert_all_delivered_once(shop, mock).await;
    assert_eq!(count(&mock.stats().await, "duplicates"), 0);
}

async fn shop_with_backlog() -> (Shop, Mock) {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    // Slow answers make the two passes overlap in time.
    mock.mode(json!({"mode": "slow", "delay_ms": 150})).await;
    for n in 0..3 {
        shop.sell(n).await;
    }
    (shop, mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_database_never_relay_concurrently() {
    let (shop, mock) = shop_with_backlog().await;
    let a = shop.worker(shop.journal.clone(), &mock.addr());
    let b = shop.worker(shop.second_journal().await, &mock.addr());
    check_two_workers(&shop, &mock, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_sharing_a_redis_lock_never_relay_concurrently() {
    let redis = super::lock::Redis::start().await;
    let (shop, mock) = shop_with_backlog().await;
    let ttl = Duration::from_secs(30);
    let worker = |journal, owner| {
        let lock = redis.lock(owner, ttl);
        SyncHandle::new(
            journal,
            Arc::new(shop.kkt.clone()),
            lock,
            settings(&mock.addr()),
        )
    };
    let a = worker(shop.journal.clone(), "a");
    let b = worker(shop.second_journal().await, "b");
    check_two_workers(&shop, &mock, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stops_after_batch_size_max_documents() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    for n in 0..3 {
        shop.sell(n).await;
    }
    let documents = shop.last_fd();
    let mut s = settings(&mock.addr());
    s.batch_size_max = 2;
    let worker = shop.worker_with(shop.journal.clone(), s);
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!(
        (r.synced, r.failed, r.skipped, r.stop),
        (2, 0, documents - 2, StopReason::BatchFull)
    );
    assert_eq!(shop.unsent(), documents as usize - 2);
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!((r.synced, r.skipped), (2, documents - 4));
}

/// After delivering a document the relay knows the FN's next head (one FD further) and reads it
/// without asking the FN for its queue (FF39) again: a pass over a backlog asks for the queue at
/// its start and once more when its prediction runs out, not once a document. Each document is
/// still read (FF30) and acknowledged (FF32) once, and delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_reads_the_fn_queue_once_not_once_a_document() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    for n in 0..6 {
        shop.sell(n).await;
    }
    let documents = shop.last_fd();
    let code =
        |view: &kkt_emulator::emu::CommandsView, c: &str| view.by_code.get(c).copied().unwrap_or(0);
    let before = shop.emu.shared.commands_view();
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!((r.synced, r.stop), (documents, StopReason::Drained));
    let after = shop.emu.shared.commands_view();
    let asked = code(&after, "FF39") - code(&before, "FF39");
    assert!(
        asked <= 3,
        "{asked} queue reads for {documents} documents (settle, the pass's first, the last)"
    );
    assert_eq!(
        code(&after, "FF30") - code(&before, "FF30"),
        u64::from(documents)
    );
    assert_eq!(
        code(&after, "FF32") - code(&before, "FF32"),
        u64::from(documents)
    );
    assert_eq!(shop.unsent(), 0);
    let stats = mock.stats().await;
    assert_eq!(count(&stats, "unique"), u64::from(documents), "{stats}");
    assert_eq!(count(&stats, "duplicates"), 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_probes_so_an_outage_opens_the_breaker_before_the_first_sale() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    // A closed listener, not `reset`: a probe is a bare connect, and a connect to a listener that
    // accepts and then resets succeeds or fails by a race between the reset and the connecting task.
    mock.mode(json!({"mode": "offline"})).await;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let task = worker.start();
    wait_for("the breaker to open", async || {
        worker.breaker_snapshot().state == BreakerState::Open
    })
    .await;
    assert_eq!(worker.network_status().status, NetworkStatus::Offline);
    assert_eq!(count(&mock.stats().await, "documents_received"), 0);

    // The outage ends: probes close the breaker with nothing to send.
    mock.mode(json!({"mode": "online"})).await;
    wait_for("the breaker to close", async || {
        worker.breaker_snapshot().state == BreakerState::Closed
    })
    .await;
    assert!(count(&mock.stats().await, "probes") >= 2);
    worker.stop();
    task.await.unwrap();
}

/// The lock is the FN's, not the register's: a replica that holds another FN's lease (whatever it
/// calls its register) leaves this FN's relay alone, and one that holds this FN's lease stops it.
#[tokio::test]
async fn the_sync_lease_is_keyed_by_the_fn_number() {
    let shop = Shop::open().await;
    let mock = Mock::start().await;
    let fn_number = shop.emu.shared.state_view().fn_serial;
    let worker = shop.worker(shop.journal.clone(), &mock.addr());
    let other_fn = lease_name("9999000000000042");
    assert_ne!(other_fn, lease_name(&fn_number));
    let other = shop
        .journal
        .lease_acquire(&other_fn, "replica-2", 60_000)
        .await
        .unwrap()
        .expect("another FN's lease is free");
    shop.sell(1).await;
    let r = worker.sync_now(false).await.unwrap();
    // The shift's opening report and the receipt.
    assert_eq!((r.synced, &r.stop), (2, &StopReason::Drained), "{r:?}");

    let ours = shop
        .journal
        .lease_acquire(&lease_name(&fn_number), "replica-2", 60_000)
        .await
        .unwrap()
        .expect("this FN's lease is free between passes");
    shop.sell(2).await;
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!((r.synced, &r.stop), (0, &StopReason::LockBusy), "{r:?}");

    assert!(shop.journal.lease_release(&ours).await.unwrap());
    assert!(shop.journal.lease_release(&other).await.unwrap());
    let r = worker.sync_now(false).await.unwrap();
    assert_eq!((r.synced, &r.stop), (1, &StopReason::Drained), "{r:?}");
    assert_all_delivered_once(&shop, &mock).await;
}
