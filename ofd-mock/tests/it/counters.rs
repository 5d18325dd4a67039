//! `GET /_mock/counters`, `POST /_mock/counters/reset` and `GET /_mock/last_message_raw`: one delivered
//! document moves the counters by its exact message and answer lengths, the raw message is given back byte
//! for byte, and a replay of it is answered like the first delivery (what a benchmark's bare client does).

use serde_json::{Value, json};

use crate::{ANSWER_WAIT, Mock, Outcome, counts, message};

const FIELDS: [&str; 5] = [
    "connections",
    "messages",
    "bytes_received",
    "bytes_sent",
    "handling_time_us",
];

/// Reads the counters, checks the four counts against `want` and that the times are there; returns them.
async fn check(mock: &Mock, want: [u64; 4]) -> Value {
    let (status, c) = mock.get("/_mock/counters").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(counts(&c, &FIELDS[..4]), want, "{c}");
    let times = counts(&c, &["handling_time_us", "since_unix_ms"]);
    assert!(times.iter().all(|t| *t != u64::MAX), "{c}");
    c
}

async fn reset_counters(mock: &Mock) -> Value {
    let (status, zeroed) = mock.post_raw("/_mock/counters/reset", "").await;
    assert_eq!(status, 200, "{zeroed}");
    assert_eq!(counts(&zeroed, &FIELDS), [0; 5], "{zeroed}");
    zeroed
}

fn answer_bytes(outcome: &Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Closed(b) => b.clone(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[tokio::test]
async fn one_document_moves_the_counters_by_its_exact_lengths() {
    let mock = Mock::start().await;
    let zeroed = reset_counters(&mock).await;
    check(&mock, [0; 4]).await;
    let sent = message(1, 12_345);
    let outcome = mock.send_bytes(&sent, ANSWER_WAIT).await;
    outcome.ack();
    let answer = answer_bytes(&outcome);
    let c = check(&mock, [1, 1, sent.len() as u64, answer.len() as u64]).await;
    assert!(c["handling_time_us"].as_u64() > Some(0), "{c}");
    assert_eq!(c["since_unix_ms"], zeroed["since_unix_ms"]);
    // Counting changed nothing the mock records or answers.
    assert_eq!(
        counts(&mock.stats().await, &["unique", "answers_sent"]),
        [1, 1]
    );
}

#[tokio::test]
async fn the_last_message_is_given_back_byte_for_byte_and_a_replay_is_acknowledged_alike() {
    let mock = Mock::start().await;
    let (status, none) = mock.get("/_mock/last_message_raw").await;
    assert_eq!((status, &none["code"]), (404, &json!("no_message")));
    let sent = message(7, 500);
    let first = mock.send_bytes(&sent, ANSWER_WAIT).await;
    let (status, raw) = mock.get("/_mock/last_message_raw").await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(raw, json!({"hex": hex::encode(&sent)}));
    // The bare-client loop: the same bytes again over fresh connections get the stored acknowledgement,
    // byte for byte, and count as duplicates.
    reset_counters(&mock).await;
    for _ in 0..3 {
        assert_eq!(mock.send_bytes(&sent, ANSWER_WAIT).await, first);
    }
    let answer_len = answer_bytes(&first).len() as u64;
    check(&mock, [3, 3, 3 * sent.len() as u64, 3 * answer_len]).await;
    assert_eq!(
        counts(
            &mock.stats().await,
            &["unique", "duplicates", "answers_sent"]
        ),
        [1, 3, 4]
    );
}

#[tokio::test]
async fn bytes_of_an_unanswered_message_count_without_handling_time() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "ack_loss"})).await;
    reset_counters(&mock).await;
    let sent = message(2, 100);
    assert!(mock.send_bytes(&sent, ANSWER_WAIT).await.closed_empty());
    let c = check(&mock, [1, 1, sent.len() as u64, 0]).await;
    assert_eq!(c["handling_time_us"], 0, "no answer, no handling time: {c}");
}

#[tokio::test]
async fn mock_reset_zeroes_the_counters_and_forgets_the_last_message() {
    let mock = Mock::start().await;
    mock.send(1).await.ack();
    let (status, _) = mock.post_raw("/_mock/reset", "").await;
    assert_eq!(status, 200);
    check(&mock, [0; 4]).await;
    assert_eq!(mock.get("/_mock/last_message_raw").await.0, 404);
}
