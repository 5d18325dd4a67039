//! The OFD client against the real mock: each mode ends in the classified outcome.

use std::time::Duration;

use ofd_proto::Tlv;
use ofd_proto::envelope::AppVersion;
use rstest::rstest;
use serde_json::json;

use super::{Mock, count};
use crate::sync::ofd_client::{OfdClient, Stage, TransportError};

const FN: &str = "9999078900005488";

fn message(fd: u32) -> Vec<u8> {
    message_in(AppVersion::DEFAULT, fd)
}

fn message_in(version: AppVersion, fd: u32) -> Vec<u8> {
    let doc = Tlv::stlv(
        3,
        vec![
            Tlv::time(1012, 1_700_000_000 + fd),
            Tlv::string(1041, FN),
            Tlv::u32(1040, fd),
            Tlv::byte(1054, 1),
            Tlv::vln(1020, 12_345),
            Tlv::vln(1077, 42),
        ],
    );
    ofd_proto::envelope::build_message_in(version, FN, fd, &doc).expect("message builds")
}

fn client(mock: &Mock, io_timeout: Duration) -> OfdClient {
    OfdClient::new(mock.addr(), Duration::from_secs(2), io_timeout)
}

/// Sends FD `fd` and checks the outcome with one helper, so each case is one line.
async fn check(mock: &Mock, fd: u32, expected: Result<u8, TransportError>) {
    let got = client(mock, Duration::from_secs(2))
        .send(&message(fd))
        .await;
    match (got, expected) {
        (Ok(answer), Ok(code)) => {
            assert_eq!(answer.ack.response_code, code);
            assert_eq!(answer.ack.fd_number, fd);
            assert_eq!(answer.ack.fn_number, FN);
            assert!(ofd_proto::parse_reply(&answer.reply).is_ok());
        }
        (Err(e), Err(expected)) => assert_eq!(e, expected),
        (got, expected) => panic!("FD {fd}: got {got:?}, expected {expected:?}"),
    }
}

#[tokio::test]
async fn online_acknowledges_and_a_resend_is_a_duplicate() {
    let mock = Mock::start().await;
    check(&mock, 1, Ok(0)).await;
    check(&mock, 1, Ok(0)).await;
    let docs = mock.documents().await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["receive_count"], 2);
    let stats = mock.stats().await;
    assert_eq!(
        (count(&stats, "unique"), count(&stats, "duplicates")),
        (1, 1)
    );
}

#[tokio::test]
async fn offline_is_refused_and_not_reached() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "offline"})).await;
    check(&mock, 1, Err(TransportError::Refused)).await;
    let probe = client(&mock, Duration::from_secs(2)).probe().await;
    assert_eq!(probe, Err(TransportError::Refused));
    assert!(!TransportError::Refused.reached());
    mock.mode(json!({"mode": "online"})).await;
    check(&mock, 1, Ok(0)).await;
}

#[tokio::test]
async fn reject_answers_code_14_and_stores_nothing() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "reject"})).await;
    check(&mock, 7, Ok(14)).await;
    assert_eq!(mock.documents().await.len(), 0);
}

#[tokio::test]
async fn ack_loss_is_a_reset_after_the_document_was_stored() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "ack_loss"})).await;
    let err = client(&mock, Duration::from_secs(2))
        .send(&message(3))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Reset(Stage::Read));
    assert!(err.reached());
    assert_eq!(
        mock.documents().await.len(),
        1,
        "the mock stored it before closing"
    );
    mock.mode(json!({"mode": "online"})).await;
    check(&mock, 3, Ok(0)).await;
    assert_eq!(count(&mock.stats().await, "duplicates"), 1);
}

#[tokio::test]
async fn garbage_blackhole_and_unavailable_are_classified() {
    let mock = Mock::start().await;
    mock.mode(json!({"mode": "garbage", "len": 64, "seed": 3}))
        .await;
    let err = client(&mock, Duration::from_secs(2))
        .send(&message(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Garbage(_)), "{err:?}");

    mock.mode(json!({"mode": "blackhole"})).await;
    let err = client(&mock, Duration::from_millis(300))
        .send(&message(1))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::Timeout(Stage::Read));

    mock.mode(json!({"mode": "unavailable"})).await;
    let err = client(&mock, Duration::from_secs(2))
        .send(&message(1))
        .await
        .unwrap_err();
    assert!(
        err.reached() && matches!(err, TransportError::Reset(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_probe_sends_nothing_and_is_counted_as_a_probe() {
    let mock = Mock::start().await;
    client(&mock, Duration::from_secs(2))
        .probe()
        .await
        .expect("probe connects");
    // The mock counts the probe when it sees the connection close; poll, bounded.
    let deadline = tokio::time::Instant::now() + super::WAIT_MAX;
    while count(&mock.stats().await, "probes") != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "probe never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = mock.stats().await;
    assert_eq!(count(&stats, "documents_received"), 0);
    assert_eq!(count(&stats, "invalid_messages"), 0);
}

/// One row per A-protocol version the reference accepts: the mock answers in the version it was
/// asked in, and the client parses that reply and checks it like any other.
#[rstest]
#[case::v0001(AppVersion::V0001)]
#[case::v0002(AppVersion::V0002)]
#[case::v0100(AppVersion::V0100)]
#[case::v0105(AppVersion::V0105)]
#[case::v0110(AppVersion::V0110)]
#[tokio::test]
async fn a_reply_of_each_protocol_version_is_parsed(#[case] version: AppVersion) {
    let mock = Mock::start().await;
    let answer = client(&mock, Duration::from_secs(2))
        .send(&message_in(version, 7))
        .await
        .expect("the mock answers");
    assert_eq!(answer.version, version);
    assert_eq!(answer.ack.response_code, 0);
    answer
        .check_for(FN, 7)
        .expect("the ack matches the document");
    assert_eq!(count(&mock.stats().await, "unique"), 1);
}
