//! The sync lock: the journal lease and the Redis lock against a real `redis-server`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Shop;
use crate::journal::{JournalError, OfdReply};
use crate::sync::lock::{SyncLock, lease_name};

/// The FN whose lock the tests take.
const FN: &str = "9999078900000001";

/// A `redis-server` on a free loopback port, killed (by its own pid) when dropped.
pub(super) struct Redis {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub(super) async fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed: `bash ci/test.sh` installs it (apt-get install redis-server)");
        let url = format!("redis://127.0.0.1:{port}/");
        let client = redis::Client::open(url.as_str()).unwrap();
        let deadline = tokio::time::Instant::now() + super::WAIT_MAX;
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Redis {
            child,
            url,
            _dir: dir,
        }
    }

    pub(super) fn lock(&self, owner: &str, ttl: Duration) -> SyncLock {
        SyncLock::redis(&self.url, "adapter:", owner.to_string(), ttl).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_lock_acquire_renew_fence_and_release() {
    let redis = Redis::start().await;
    let ttl = Duration::from_millis(400);
    let a = redis.lock("a", ttl);
    let b = redis.lock("b", ttl);

    let mut held_a = a.acquire(FN).await.unwrap().expect("a takes the free lock");
    assert_eq!(
        b.acquire(FN).await.unwrap(),
        None,
        "b waits while a holds it"
    );
    assert!(a.check_fence(&held_a).await.unwrap());

    // Renewing keeps it past the original TTL.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(a.renew(&mut held_a).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(b.acquire(FN).await.unwrap(), None, "renewed: still a's");

    // a stalls past its TTL; b takes over with a larger fencing token.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_b = b.acquire(FN).await.unwrap().expect("a's lock expired");
    assert!(held_b.token > held_a.token);
    assert!(!a.check_fence(&held_a).await.unwrap(), "a is fenced off");
    assert!(
        !a.renew(&mut held_a).await.unwrap(),
        "a cannot renew b's lock"
    );
    assert!(
        !a.release(held_a).await.unwrap(),
        "compare-and-delete spares b's lock"
    );
    assert!(b.check_fence(&held_b).await.unwrap());

    assert!(b.release(held_b).await.unwrap());
    let held = a.acquire(FN).await.unwrap().expect("free after release");
    assert!(a.release(held).await.unwrap());
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_lock() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lock = SyncLock::redis(
        &format!("redis://127.0.0.1:{port}/"),
        "k",
        "a".into(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(lock.acquire(FN).await.is_err());
}

#[tokio::test]
async fn journal_lease_excludes_a_second_process_and_fences_the_first() {
    let shop = Shop::open().await;
    let other = shop.second_journal().await;
    let ttl = Duration::from_millis(300);
    let a = SyncLock::sqlite(shop.journal.clone(), "a".into(), ttl);
    let b = SyncLock::sqlite(other.clone(), "b".into(), ttl);

    let mut held_a = a.acquire(FN).await.unwrap().expect("a takes it");
    assert_eq!(b.acquire(FN).await.unwrap(), None);
    assert!(a.renew(&mut held_a).await.unwrap());
    assert!(a.check_fence(&held_a).await.unwrap());

    tokio::time::sleep(Duration::from_millis(400)).await;
    let held_b = b.acquire(FN).await.unwrap().expect("a's lease lapsed");
    assert!(held_b.token > held_a.token);
    assert!(!a.check_fence(&held_a).await.unwrap());

    // The journal itself refuses a's acknowledgement: the fence is checked in the transaction.
    shop.journal
        .record_ofd_outgoing("9999078900000001", 1, vec![1, 2, 3])
        .await
        .unwrap();
    let reply = OfdReply {
        reply: vec![9],
        response_code: 0,
        operator_sign: None,
    };
    let fenced = shop
        .journal
        .record_ofd_reply("9999078900000001", 1, reply, held_a.journal_lease())
        .await;
    assert!(
        matches!(fenced, Err(JournalError::Fenced { .. })),
        "{fenced:?}"
    );
    assert!(!a.release(held_a).await.unwrap());
    assert_eq!(
        other.lease(&lease_name(FN)).await.unwrap().map(|l| l.owner),
        Some("b".into())
    );
    assert!(b.release(held_b).await.unwrap());
}

/// Each FN has its own lock in both backends: holding one FN's never holds back another's, and the
/// Redis key and the journal lease are named by the FN number.
#[tokio::test]
async fn each_fn_has_its_own_lock() {
    const OTHER_FN: &str = "9999078900000002";
    let redis = Redis::start().await;
    let shop = Shop::open().await;
    let ttl = Duration::from_secs(30);
    let locks = [
        (
            redis.lock("a", ttl),
            redis.lock("b", ttl),
            format!("adapter:ofd_sync:fn:{FN}"),
        ),
        (
            SyncLock::sqlite(shop.journal.clone(), "a".into(), ttl),
            SyncLock::sqlite(shop.journal.clone(), "b".into(), ttl),
            format!("ofd_sync:fn:{FN}"),
        ),
    ];
    for (a, b, name) in locks {
        assert_eq!(a.name_for(FN), name);
        let held_a = a.acquire(FN).await.unwrap().expect("a takes FN 1");
        assert_eq!(b.acquire(FN).await.unwrap(), None, "{name}: FN 1 is a's");
        let held_b = b.acquire(OTHER_FN).await.unwrap().expect("FN 2 is free");
        assert!(a.check_fence(&held_a).await.unwrap());
        assert!(b.check_fence(&held_b).await.unwrap());
        assert!(a.release(held_a).await.unwrap());
        assert!(b.release(held_b).await.unwrap());
    }
    assert_eq!(
        shop.journal.lease(&lease_name(OTHER_FN)).await.unwrap(),
        None,
        "released"
    );
}
