//! Each mode of the menu, measured on the socket.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{ANSWER_WAIT, FN, Mock, Outcome, POLL_LIMIT, counts, message};

#[tokio::test]
async fn online_acknowledges_with_a_signed_reply() {
    let mock = Mock::start().await;
    let ack = mock.send(1).await.ack();
    assert_eq!(
        (ack.fn_number.as_str(), ack.fd_number, ack.response_code),
        (FN, 1, 0)
    );
    assert_eq!(ack.ofd_inn, ofd_mock::config::DEFAULT_OFD_INN);
    assert_eq!(ack.operator_sign.map(|s| s.len()), Some(18));
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["connections", "unique", "answers_sent"]),
        vec![1, 1, 1]
    );
    assert_eq!(stats["by_mode"]["online"], 1);
}

#[tokio::test]
async fn offline_refuses_connects_and_online_heals() {
    let mock = Mock::start().await;
    let (status, _) = mock.post("/set_mode", json!({"mode": "offline"})).await;
    assert_eq!(status, 200);
    mock.assert_listening(false).await;
    assert_eq!(mock.send(1).await, Outcome::Refused);
    assert_eq!(mock.send(1).await, Outcome::Refused);
    // Refused connects never reach the mock.
    assert_eq!(mock.stats().await["connections"], 0);
    let (status, _) = mock.post("/set_mode", json!({"mode": "online"})).await;
    assert_eq!(status, 200);
    mock.assert_listening(true).await;
    assert_eq!(mock.send(1).await.ack().response_code, 0);
    assert_eq!(mock.stats().await["unique"], 1);
}

#[tokio::test]
async fn offline_with_reset_counts_every_attempt() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "offline", "refuse": "reset"}))
        .await;
    for _ in 0..3 {
        assert!(mock.send(1).await.closed_empty());
    }
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["connections", "by_mode.offline", "unique"]),
        vec![3, 3, 0]
    );
}

#[tokio::test]
async fn blackhole_never_answers() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "blackhole"})).await;
    let outcome = mock
        .send_bytes(&message(1, 100), Duration::from_millis(300))
        .await;
    assert_eq!(outcome, Outcome::Silent(Vec::new()));
    assert_eq!(mock.documents().await["count"], 0);
}

#[tokio::test]
async fn slow_answers_late_and_stores_first() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "slow", "delay_ms": 300})).await;
    let start = Instant::now();
    assert_eq!(mock.send(1).await.ack().response_code, 0);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "answered before the delay"
    );

    // Past the client's timeout: the client sees nothing, yet the document is stored and a resend is a duplicate.
    mock.mode(json!({"mode": "slow", "delay_ms": 1_500})).await;
    let outcome = mock
        .send_bytes(&message(2, 100), Duration::from_millis(200))
        .await;
    assert_eq!(outcome, Outcome::Silent(Vec::new()));
    assert_eq!(mock.get("/_mock/documents?fd=2").await.1["count"], 1);
    mock.mode(json!({"mode": "online"})).await;
    assert_eq!(
        mock.send_bytes(&message(2, 100), ANSWER_WAIT)
            .await
            .ack()
            .fd_number,
        2
    );
    assert_eq!(mock.stats().await["duplicates"], 1);
}

#[tokio::test]
async fn ack_loss_stores_then_closes_and_counts_resends() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "ack_loss"})).await;
    assert_eq!(mock.send(7).await, Outcome::Closed(Vec::new()));
    assert_eq!(mock.send(7).await, Outcome::Closed(Vec::new()));
    mock.mode(json!({"mode": "online"})).await;
    assert_eq!(mock.send(7).await.ack().fd_number, 7);
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["unique", "duplicates", "documents_received"]),
        vec![1, 2, 3]
    );
    assert_eq!(mock.documents().await["documents"][0]["receive_count"], 3);
}

#[tokio::test]
async fn reject_answers_the_code_and_stores_nothing() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "reject"})).await;
    assert_eq!(mock.send(1).await.ack().response_code, 14);
    mock.mode(json!({"mode": "reject", "code": 3})).await;
    assert_eq!(mock.send(1).await.ack().response_code, 3);
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["rejected", "unique"]), vec![2, 0]);
    // After healing, the same document is accepted.
    mock.mode(json!({"mode": "online"})).await;
    assert_eq!(mock.send(1).await.ack().response_code, 0);
}

/// A receipt message of another FN, with its FPD under the test secret.
fn other_fn_message(fn_number: &str, fd: u32) -> Vec<u8> {
    let (time, total) = (1_700_000_000 + fd, 500);
    let fpd = ofd_proto::fpd(crate::SECRET, fn_number, fd, time, total, 1);
    let doc = ofd_proto::Tlv::stlv(
        3,
        vec![
            ofd_proto::Tlv::time(1012, time),
            ofd_proto::Tlv::string(1041, fn_number),
            ofd_proto::Tlv::u32(1040, fd),
            ofd_proto::Tlv::byte(1054, 1),
            ofd_proto::Tlv::vln(1020, total),
            ofd_proto::Tlv::vln(1077, u64::from(fpd)),
        ],
    );
    ofd_proto::build_message(fn_number, fd, &doc).expect("message builds")
}

#[tokio::test]
async fn a_mode_limited_to_one_fn_serves_the_other_fns_online() {
    let mock = Mock::start().await;
    let other = "9999078900000002";
    mock.mode(json!({"mode": "reject", "code": 14, "fn": FN}))
        .await;
    assert_eq!(mock.get("/_mock/mode").await.1["fn"], FN);
    // The named FN's document is refused; another FN's is stored and acknowledged.
    assert_eq!(mock.send(1).await.ack().response_code, 14);
    let answer = mock
        .send_bytes(&other_fn_message(other, 1), ANSWER_WAIT)
        .await;
    assert_eq!(answer.ack().response_code, 0);
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["rejected", "unique"]), vec![1, 1]);
    assert_eq!(
        counts(&stats, &["by_mode.reject", "by_mode.online"]),
        vec![1, 1],
        "{stats}"
    );
}

#[tokio::test]
async fn wrong_ack_names_another_document_in_the_asked_field_and_stores_nothing() {
    let mock = Mock::start().await;
    let other_fn = "9999999999999999";
    // (field, header FN, header FD, body FN, body FD) of the answer to FD 1.
    let rows = [
        ("header_fn", other_fn, 1, FN, 1),
        ("header_fd", FN, 2, FN, 1),
        ("body_fn", FN, 1, other_fn, 1),
        ("body_fd", FN, 1, FN, 2),
    ];
    for (field, header_fn, header_fd, body_fn, body_fd) in rows {
        mock.mode(json!({"mode": "wrong_ack", "field": field}))
            .await;
        let crate::Outcome::Closed(reply) = mock.send(1).await else {
            panic!("{field}: expected a complete answer");
        };
        let (frame, ack) = ofd_proto::parse_reply(&reply).expect("a well-formed reply");
        let got = (
            frame.session.fn_number_str(),
            frame.container.fd_number,
            ack.fn_number,
            ack.fd_number,
            ack.response_code,
        );
        let want = (
            header_fn.to_owned(),
            header_fd,
            body_fn.to_owned(),
            body_fd,
            0,
        );
        assert_eq!(got, want, "{field}");
    }
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["wrong_acks", "unique"]), vec![4, 0]);
}

#[tokio::test]
async fn reset_mid_frame_sends_part_of_the_ack_then_resets() {
    let mock = Mock::start().await;
    let full = {
        let m = Mock::start().await;
        match m.send(4).await {
            Outcome::Closed(b) => b.len(),
            other => panic!("{other:?}"),
        }
    };
    mock.mode(json!({"mode": "reset_mid_frame"})).await;
    match mock.send(4).await {
        // Linux may discard received bytes when the reset arrives first, so the partial prefix can be empty.
        Outcome::Reset(b) => assert!(b.len() <= full / 2, "{} of {full} bytes", b.len()),
        other => panic!("expected a reset, got {other:?}"),
    }
    assert_eq!(mock.documents().await["count"], 1);
}

#[tokio::test]
async fn garbage_is_seeded_random_bytes() {
    let mock = Mock::start().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        mock.mode(json!({"mode": "garbage", "len": 40, "seed": 5}))
            .await;
        match mock.send(1).await {
            Outcome::Closed(b) => {
                assert_eq!(b.len(), 40);
                assert!(ofd_proto::parse_reply(&b).is_err());
                runs.push(b);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(runs[0], runs[1], "same seed, same bytes");
    assert_eq!(mock.documents().await["count"], 0);
}

#[tokio::test]
async fn unavailable_closes_at_once() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "unavailable"})).await;
    assert!(mock.send(1).await.closed_empty());
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["by_mode.unavailable", "unique"]),
        vec![1, 0]
    );
}

#[tokio::test]
async fn fail_next_fails_count_times_then_goes_online() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "fail_next", "count": 2, "kind": {"mode": "reject", "code": 9}}))
        .await;
    assert_eq!(mock.get("/_mock/mode").await.1["fail_left"], 2);
    assert_eq!(mock.send(1).await.ack().response_code, 9);
    assert_eq!(mock.send(1).await.ack().response_code, 9);
    assert_eq!(mock.send(1).await.ack().response_code, 0);
    assert_eq!(mock.get("/_mock/mode").await.1["mode"], "online");
}

#[tokio::test]
async fn probability_with_a_seed_replays_the_same_choices() {
    let mock = Mock::start().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        mock.mode(json!({"mode": "unavailable", "probability": 0.5, "seed": 11}))
            .await;
        let mut seen = Vec::new();
        for fd in 1..=12 {
            seen.push(mock.send(fd).await.closed_empty());
        }
        runs.push(seen);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&true) && runs[0].contains(&false),
        "{:?}",
        runs[0]
    );
}

#[tokio::test]
async fn flapping_opens_and_closes_the_listener() {
    let mock = Mock::start().await;
    let body = json!({"mode": "flapping", "online_ms": 150, "offline_ms": 150, "seed": 1});
    assert_eq!(mock.post("/_mock/mode", body).await.0, 200);
    let (mut refused, mut answered) = (false, false);
    let start = Instant::now();
    let mut fd = 1;
    while !(refused && answered) && start.elapsed() < POLL_LIMIT {
        match mock.send(fd).await {
            Outcome::Refused => refused = true,
            Outcome::Closed(b) if !b.is_empty() => answered = true,
            // A connect that lands on a phase switch may be reset; that is part of flapping too.
            _ => {}
        }
        fd += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused && answered, "refused={refused} answered={answered}");
}

#[tokio::test]
async fn flapping_timeline_is_the_same_for_the_same_seed() {
    let mock = Mock::start().await;
    let timeline = |seed: u64| {
        let mock = &mock;
        async move {
            let body = json!({"mode": "flapping", "online_ms": 500, "offline_ms": 300, "jitter_ms": 100, "seed": seed});
            assert_eq!(mock.post("/_mock/mode", body).await.0, 200);
            let (status, t) = mock.get("/_mock/timeline?until_ms=60000").await;
            assert_eq!(status, 200, "{t}");
            t["timeline"].clone()
        }
    };
    let a = timeline(42).await;
    assert_eq!(a, timeline(42).await);
    assert_ne!(a, timeline(43).await);
    assert_eq!(a[0], json!({"at_ms": 0, "state": "online"}));
    assert_eq!(a[1]["state"], "offline");
}
