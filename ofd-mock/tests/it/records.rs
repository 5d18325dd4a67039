//! Exactly-once bookkeeping, persistence, FPD verification and the bounds on the TCP side.

use std::time::Duration;

use ofd_mock::Config;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{
    ANSWER_WAIT, FN, Mock, Outcome, POLL_LIMIT, counts, message, read_all, receipt_with_fpd,
    test_config,
};

#[tokio::test]
async fn duplicates_are_acknowledged_identically_and_conflicts_counted() {
    let mock = Mock::start().await;
    let first = mock.send(3).await;
    let second = mock.send(3).await;
    assert_eq!(
        first, second,
        "a duplicate gets the same acknowledgement bytes"
    );
    // Same key, other content: a sender bug, still answered with the stored acknowledgement.
    let third = mock.send_bytes(&message(3, 99_999), ANSWER_WAIT).await;
    assert_eq!(first, third);
    let stats = mock.stats().await;
    assert_eq!(
        counts(
            &stats,
            &["unique", "duplicates", "conflicts", "documents_received"]
        ),
        vec![1, 1, 1, 3]
    );
    let docs = mock.get(&format!("/_mock/documents?fn={FN}")).await.1;
    assert_eq!(docs["count"], 1);
    let d = &docs["documents"][0];
    assert_eq!(
        (
            d["fn"].as_str(),
            d["fd"].as_u64(),
            d["receive_count"].as_u64()
        ),
        (Some(FN), Some(3), Some(3))
    );
    assert_eq!(
        d["document"]["receipt"]["totalSum"], 12_345,
        "the first content is kept"
    );
    assert!(
        d["first_received"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{d}"
    );
    assert_eq!(
        mock.get("/_mock/documents?fn=0000000000000000").await.1["count"],
        0
    );
}

#[tokio::test]
async fn records_survive_a_restart_with_db() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        db: Some(dir.path().join("ofd.sqlite")),
        ..test_config()
    };
    let mock = Mock::start_with(config.clone()).await;
    let ack1 = mock.send(1).await;
    mock.send(2).await.ack();
    mock.running.shutdown().await;

    let mock = Mock::start_with(config).await;
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["unique", "duplicates"]), vec![2, 0]);
    assert_eq!(
        mock.send(1).await,
        ack1,
        "the stored acknowledgement survives the restart"
    );
    assert_eq!(mock.stats().await["duplicates"], 1);
    assert_eq!(mock.get("/_mock/health").await.1["persistent"], true);
}

#[tokio::test]
async fn verify_fpd_rejects_forged_documents() {
    let mock = Mock::start_with(Config {
        verify_fpd: Some("emulator-secret".into()),
        ..test_config()
    })
    .await;
    assert_eq!(mock.send(1).await.ack().response_code, 0);
    let forged = ofd_proto::build_message(FN, 2, &receipt_with_fpd(2, 100, 1234)).unwrap();
    assert_eq!(
        mock.send_bytes(&forged, ANSWER_WAIT)
            .await
            .ack()
            .response_code,
        14
    );
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["unique", "rejected", "fpd_mismatches"]),
        vec![1, 1, 1]
    );
}

#[tokio::test]
async fn invalid_messages_are_closed_without_an_answer() {
    let good = ofd_proto::build_message(FN, 1, &receipt_with_fpd(1, 1, 1)).unwrap();
    let mock = Mock::start_with(Config {
        frame_len_max: good.len() + 10,
        ..test_config()
    })
    .await;
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    let mut long = receipt_with_fpd(2, 1, 1);
    if let ofd_proto::Value::Stlv(children) = &mut long.value {
        children.push(ofd_proto::Tlv::string(1009, "x".repeat(40)));
    }
    let too_big = ofd_proto::build_message(FN, 2, &long).unwrap();
    for bytes in [b"GET / HTTP/1.1\r\n\r\n".to_vec(), bad_crc, too_big] {
        assert!(mock.send_bytes(&bytes, ANSWER_WAIT).await.closed_empty());
    }
    assert_eq!(
        mock.send_bytes(&good, ANSWER_WAIT)
            .await
            .ack()
            .response_code,
        0
    );
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["invalid_messages", "unique"]), vec![3, 1]);
}

#[tokio::test]
async fn a_connect_probe_is_counted_and_a_stalled_sender_times_out() {
    let mock = Mock::start_with(Config {
        read_timeout_ms: 200,
        ..test_config()
    })
    .await;
    drop(TcpStream::connect(mock.running.ofd_addr).await.unwrap());
    let mut half = TcpStream::connect(mock.running.ofd_addr).await.unwrap();
    let msg = message(1, 1);
    half.write_all(&msg[..msg.len() / 2]).await.unwrap();
    assert!(
        read_all(&mut half, ANSWER_WAIT).await.closed_empty(),
        "the mock gives up on a stalled sender"
    );
    wait_for(&mock, "probes", 1).await;
    assert_eq!(mock.stats().await["invalid_messages"], 1);
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_accept() {
    let mock = Mock::start_with(Config {
        connections_max: 1,
        ..test_config()
    })
    .await;
    let _held = TcpStream::connect(mock.running.ofd_addr).await.unwrap();
    wait_for(&mock, "active_connections", 1).await;
    assert!(mock.send(1).await.closed_empty());
    assert_eq!(mock.stats().await["over_capacity"], 1);
}

/// Waits (bounded) until a stats counter reaches `want`.
async fn wait_for(mock: &Mock, counter: &str, want: u64) {
    let start = std::time::Instant::now();
    loop {
        let v = mock.stats().await[counter].clone();
        if v == json!(want) {
            return;
        }
        assert!(
            start.elapsed() < POLL_LIMIT,
            "{counter} stayed {v}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_binary_prints_its_addresses_and_exits_0_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ofd-mock"))
        .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ofd: std::net::SocketAddr = field(&line, "ofd=").parse().unwrap();
    let control = field(&line, "control=");
    assert!(line.starts_with("ofd-mock listening "), "{line}");
    let outcome = crate::send_to(ofd, &message(1, 1), ANSWER_WAIT).await;
    assert!(
        matches!(outcome, Outcome::Closed(ref b) if !b.is_empty()),
        "{outcome:?}"
    );
    let health: serde_json::Value = reqwest::get(format!("http://{control}/_mock/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < POLL_LIMIT * 2, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in {line:?}"))
}
