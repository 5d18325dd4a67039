//! A-protocol versions: each version yandex/ofd accepts is decoded, kept, mirrored in the reply and written on
//! request; every other value is refused with a typed error, one rstest row per version.

use crate::{YANDEX_EXAMPLE_MESSAGE, unhex};
use ofd_proto::envelope::{MESSAGE_LEN_MAX, SessionHeader};
use ofd_proto::{
    AppVersion, EnvelopeError, Frame, Need, OperatorAck, RESPONSE_OK, build_message,
    build_message_in, build_reply, bytes_needed, parse_message, parse_reply,
};
use rstest::rstest;

/// Where the two A-protocol bytes sit in the session header.
const VERSION_AT: usize = 6;

/// The yandex/ofd example message (captured in version `00 01`) with its A-protocol bytes replaced.
///
/// The session header carries no checked CRC and the container CRC does not cover it, so the patched
/// message is exactly what a sender speaking `version` would have written.
fn example_in(version: [u8; 2]) -> Vec<u8> {
    let mut bytes = unhex(YANDEX_EXAMPLE_MESSAGE);
    bytes[VERSION_AT..VERSION_AT + 2].copy_from_slice(&version);
    bytes
}

fn ack_for(frame: &Frame) -> OperatorAck {
    OperatorAck {
        ofd_inn: "7704358518".to_owned(),
        fn_number: frame.session.fn_number_str(),
        fd_number: frame.container.fd_number,
        date_time: 1_700_000_100,
        response_code: RESPONSE_OK,
        operator_sign: Some(vec![0xA5; 18]),
    }
}

/// Checks one accepted version end to end: decode, keep, reply in kind, parse the reply, encode on request.
fn check_accepted(version: AppVersion, wire: [u8; 2]) {
    assert_eq!(version.bytes(), wire);
    assert_eq!(AppVersion::from_bytes(wire), Ok(version));

    let message = example_in(wire);
    let header = SessionHeader::decode(&message).expect("header decodes");
    assert_eq!(header.a_protocol, version);
    assert_eq!(header.encode()[..], message[..30], "header re-encodes");
    let expected_len = message.len();
    assert_eq!(
        bytes_needed(&message, MESSAGE_LEN_MAX),
        Ok(Need::Complete(expected_len))
    );
    let parsed = parse_message(&message).expect("message parses");
    assert_eq!(parsed.frame.version(), version);
    assert_eq!(parsed.frame.encode(), message, "frame re-encodes");
    // Only the version differs from the capture: the document is the same as in version 00 01.
    let reference = parse_message(&example_in([0x00, 0x01])).expect("capture parses");
    assert_eq!(parsed.document, reference.document);

    let reply = build_reply(&parsed.frame, &ack_for(&parsed.frame)).expect("reply builds");
    assert_eq!(
        reply[VERSION_AT..VERSION_AT + 2],
        wire,
        "reply mirrors the version"
    );
    let (frame, ack) = parse_reply(&reply).expect("reply parses");
    assert_eq!(frame.version(), version);
    assert_eq!(ack, ack_for(&parsed.frame));

    let fn_number = parsed.frame.session.fn_number_str();
    let fd = parsed.frame.container.fd_number;
    let built = build_message_in(version, &fn_number, fd, &parsed.document).expect("builds");
    assert_eq!(
        built[VERSION_AT..VERSION_AT + 2],
        wire,
        "encoder writes the version"
    );
    assert_eq!(
        parse_message(&built).expect("parses").frame.version(),
        version
    );
}

#[rstest]
#[case::v00_01(AppVersion::V0001, [0x00, 0x01])]
#[case::v00_02(AppVersion::V0002, [0x00, 0x02])]
#[case::v01_00(AppVersion::V0100, [0x01, 0x00])]
#[case::v01_05(AppVersion::V0105, [0x01, 0x05])]
#[case::v01_10(AppVersion::V0110, [0x01, 0x10])]
fn accepted_version_is_kept_mirrored_and_written(
    #[case] version: AppVersion,
    #[case] wire: [u8; 2],
) {
    check_accepted(version, wire);
}

/// The rows above are the whole set: a version added to or dropped from `ALL` must get or lose a row.
#[test]
fn the_accepted_set_is_the_reference_set() {
    let wire: Vec<[u8; 2]> = AppVersion::ALL.iter().map(|v| v.bytes()).collect();
    assert_eq!(
        wire,
        [
            [0x00, 0x01],
            [0x00, 0x02],
            [0x01, 0x00],
            [0x01, 0x05],
            [0x01, 0x10]
        ]
    );
    assert_eq!(AppVersion::DEFAULT, AppVersion::V0001);
    assert_eq!(AppVersion::V0105.to_string(), "01 05");
    // The default encoder keeps writing what the reference encoder writes.
    let doc = parse_message(&example_in([0x01, 0x10]))
        .expect("parses")
        .document;
    let built = build_message("9999078900005488", 1, &doc).expect("builds");
    assert_eq!(built[VERSION_AT..VERSION_AT + 2], [0x00, 0x01]);
}

/// Checks that `wire` is refused as a version everywhere a header is read, with the bytes in the error.
fn check_refused(wire: [u8; 2]) {
    let message = example_in(wire);
    let refused = EnvelopeError::BadAppVersion(wire);
    assert_eq!(AppVersion::from_bytes(wire), Err(refused.clone()));
    assert_eq!(SessionHeader::decode(&message), Err(refused.clone()));
    assert_eq!(
        bytes_needed(&message, MESSAGE_LEN_MAX),
        Err(refused.clone())
    );
    assert_eq!(parse_message(&message).map(|_| ()), Err(refused.clone()));
    assert_eq!(parse_reply(&message).map(|_| ()), Err(refused.clone()));
    let text = refused.to_string();
    assert!(text.contains("unsupported A-protocol version"), "{text}");
}

#[rstest]
#[case::zero([0x00, 0x00])]
#[case::v00_03([0x00, 0x03])]
#[case::v01_01([0x01, 0x01])]
#[case::v02_00([0x02, 0x00])]
// The reference reads the field as a little-endian u16, an easy place to swap bytes: these are `01 05` and
// `01 10` swapped (`01 00` swapped is `00 01`, itself accepted).
#[case::swapped_01_05([0x05, 0x01])]
#[case::swapped_01_10([0x10, 0x01])]
#[case::all_ones([0xFF, 0xFF])]
fn unknown_version_is_refused(#[case] wire: [u8; 2]) {
    check_refused(wire);
}
