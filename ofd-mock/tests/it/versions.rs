//! A-protocol versions over TCP: the mock answers each accepted version in kind, and resets a message in
//! any other version without an answer, one rstest row per version.

use ofd_proto::AppVersion;
use rstest::rstest;

use crate::{ANSWER_WAIT, FN, Mock, Outcome, counts, message, receipt};

/// Where the two A-protocol bytes sit in the session header.
const VERSION_AT: usize = 6;

/// Sends a receipt in `version` and checks that the acknowledgement comes back in the same version, parses,
/// and that the document was stored.
async fn check_answered_in_kind(version: AppVersion) {
    let mock = Mock::start().await;
    let fd = 7;
    let request =
        ofd_proto::build_message_in(version, FN, fd, &receipt(fd, 12_345)).expect("message builds");
    assert_eq!(request[VERSION_AT..VERSION_AT + 2], version.bytes());
    let Outcome::Closed(reply) = mock.send_bytes(&request, ANSWER_WAIT).await else {
        panic!("no complete answer to a message in version {version}");
    };
    assert_eq!(
        reply[VERSION_AT..VERSION_AT + 2],
        version.bytes(),
        "answered in another version"
    );
    let (frame, ack) = ofd_proto::parse_reply(&reply).expect("the answer parses");
    assert_eq!(frame.version(), version);
    assert_eq!(
        (ack.fn_number.as_str(), ack.fd_number, ack.response_code),
        (FN, fd, 0)
    );
    assert_eq!(frame.container.fd_number, fd);
    let stats = mock.stats().await;
    assert_eq!(
        counts(&stats, &["unique", "answers_sent", "invalid_messages"]),
        vec![1, 1, 0]
    );
}

#[rstest]
#[case::v00_01(AppVersion::V0001)]
#[case::v00_02(AppVersion::V0002)]
#[case::v01_00(AppVersion::V0100)]
#[case::v01_05(AppVersion::V0105)]
#[case::v01_10(AppVersion::V0110)]
#[tokio::test]
async fn each_version_is_answered_in_kind(#[case] version: AppVersion) {
    check_answered_in_kind(version).await;
}

/// Sends a valid receipt whose session header names `wire` and checks the refusal: a reset, no byte
/// written, nothing stored, and the stats say why.
async fn check_refused(wire: [u8; 2]) {
    let mock = Mock::start().await;
    let mut request = message(3, 100);
    request[VERSION_AT..VERSION_AT + 2].copy_from_slice(&wire);
    assert_eq!(
        mock.send_bytes(&request, ANSWER_WAIT).await,
        Outcome::Reset(Vec::new())
    );
    let stats = mock.stats().await;
    assert_eq!(
        counts(
            &stats,
            &[
                "unsupported_versions",
                "invalid_messages",
                "unique",
                "answers_sent"
            ]
        ),
        vec![1, 1, 0, 0]
    );
    // The refusal is per message: the next message in an accepted version is answered.
    assert_eq!(mock.send(4).await.ack().response_code, 0);
}

#[rstest]
#[case::v00_03([0x00, 0x03])]
#[case::swapped_01_05([0x05, 0x01])]
#[tokio::test]
async fn unknown_version_is_reset_without_an_answer(#[case] wire: [u8; 2]) {
    check_refused(wire).await;
}
