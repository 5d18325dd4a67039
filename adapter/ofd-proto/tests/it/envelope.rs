//! The exchange envelope: our messages and replies round-trip; corruption and framing errors are typed.

use crate::docs::receipt;
use ofd_proto::envelope::{
    MESSAGE_LEN_MAX, SESSION_HEADER_LEN, SIGNATURE, bytes_needed, message_ids,
};
use ofd_proto::{
    EnvelopeError, Frame, Need, OperatorAck, RESPONSE_OK, Receipt, build_message, build_reply,
    parse_message, parse_reply,
};

fn receipt_message() -> Vec<u8> {
    let r = receipt();
    build_message(&r.fiscal.fn_number, r.fiscal.fd_number, &r.to_tlv()).unwrap()
}

fn ack() -> OperatorAck {
    OperatorAck {
        ofd_inn: "7704358518".to_owned(),
        fn_number: "9999078900005488".to_owned(),
        fd_number: 17,
        date_time: 1_700_000_100,
        response_code: RESPONSE_OK,
        operator_sign: None,
    }
}

#[test]
fn receipt_message_round_trips() {
    let bytes = receipt_message();
    let message = parse_message(&bytes).unwrap();
    assert_eq!(Receipt::from_tlv(&message.document).unwrap(), receipt());
    assert!(message.trailer.is_empty());
    assert_eq!(message.frame.container.doc_type, 3);
    assert_eq!(message.frame.container.fd_number, 17);
    assert_eq!(message.frame.session.fn_number_str(), "9999078900005488");
    assert_eq!(
        message.frame.container.fn_bcd,
        [0x99, 0x99, 0x07, 0x89, 0x00, 0x00, 0x54, 0x88]
    );
    assert_eq!(message.frame.encode(), bytes);
}

#[test]
fn reply_round_trips_and_mirrors_the_request() {
    let request = Frame::parse(&receipt_message()).unwrap();
    let reply = build_reply(&request, &ack()).unwrap();
    let (frame, back) = parse_reply(&reply).unwrap();
    assert_eq!(back, ack());
    assert_eq!(frame.container.doc_type, 7);
    assert_eq!(frame.container.fd_number, request.container.fd_number);
    assert_eq!(frame.container.fn_bcd, request.container.fn_bcd);
    assert_eq!(frame.session.fn_number, request.session.fn_number);
}

#[test]
fn a_message_names_its_fn_and_fd_in_the_headers_alone() {
    let bytes = receipt_message();
    assert_eq!(
        message_ids(&bytes).unwrap(),
        ("9999078900005488".to_owned(), 17)
    );
    // The headers suffice: a relay reads them before (and without) parsing the body.
    assert_eq!(
        message_ids(&bytes[..SESSION_HEADER_LEN + 32]).unwrap().1,
        17
    );
    assert!(matches!(
        message_ids(&bytes[..SESSION_HEADER_LEN + 31]),
        Err(EnvelopeError::Short { .. })
    ));
    assert!(message_ids(&bytes[..10]).is_err());
}

#[test]
fn an_acknowledgement_decodes_from_its_own_bytes_as_an_fn_stores_it() {
    let mut refused = ack();
    refused.response_code = 14;
    let bytes = refused.to_tlv().encode().unwrap();
    assert_eq!(OperatorAck::decode(&bytes).unwrap(), refused);
    let receipt = receipt().encode().unwrap();
    assert!(OperatorAck::decode(&receipt).is_err());
}

#[test]
fn a_receipt_is_not_a_reply() {
    let err = parse_reply(&receipt_message()).unwrap_err();
    assert!(matches!(err, EnvelopeError::Ack(_)), "{err:?}");
}

#[test]
fn corrupted_body_fails_the_crc() {
    let mut bytes = receipt_message();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert!(matches!(
        parse_message(&bytes),
        Err(EnvelopeError::BadCrc { .. })
    ));
}

#[test]
fn header_faults_are_typed() {
    let good = receipt_message();
    let mut sig = good.clone();
    sig[0] = 0x2B;
    assert!(matches!(
        Frame::parse(&sig),
        Err(EnvelopeError::BadSignature(_))
    ));
    let mut version = good.clone();
    version[7] = 0x03;
    assert_eq!(
        Frame::parse(&version),
        Err(EnvelopeError::BadAppVersion([0, 3]))
    );
    let mut msg_type = good.clone();
    msg_type[SESSION_HEADER_LEN + 4] = 0xA6;
    assert_eq!(
        Frame::parse(&msg_type),
        Err(EnvelopeError::BadMessageType(0xA6))
    );
    assert!(matches!(
        Frame::parse(&good[..good.len() - 1]),
        Err(EnvelopeError::SizeMismatch { .. })
    ));
    let mut doc_type = Frame::parse(&good).unwrap();
    doc_type.container.doc_type = 5;
    doc_type.seal().unwrap();
    let reparsed = Frame::parse(&doc_type.encode()).unwrap();
    assert_eq!(
        reparsed.document().unwrap_err(),
        EnvelopeError::DocTypeMismatch {
            header: 5,
            document: 3
        }
    );
}

#[test]
fn stream_framing_reads_exactly_one_message() {
    let one = receipt_message();
    let mut stream = one.clone();
    stream.extend_from_slice(&one);
    // Feed one byte at a time; the helper must ask for more until exactly one message is buffered.
    let mut buf = Vec::new();
    let mut complete = None;
    for &b in stream.iter().take(one.len() + 5) {
        if complete.is_some() {
            break;
        }
        buf.push(b);
        match bytes_needed(&buf, MESSAGE_LEN_MAX).unwrap() {
            Need::More(n) => assert!(buf.len() + n <= one.len()),
            Need::Complete(n) => complete = Some(n),
        }
    }
    assert_eq!(complete, Some(one.len()));
    assert_eq!(buf.len(), one.len());
    assert_eq!(
        bytes_needed(&stream, MESSAGE_LEN_MAX),
        Ok(Need::Complete(one.len()))
    );
}

#[test]
fn stream_framing_bounds_the_size() {
    let one = receipt_message();
    assert_eq!(
        bytes_needed(&one[..SESSION_HEADER_LEN], 100),
        Err(EnvelopeError::TooLarge {
            len: one.len(),
            max: 100
        })
    );
    let mut short = one[..SESSION_HEADER_LEN].to_vec();
    short[24] = 10;
    short[25] = 0;
    assert_eq!(
        bytes_needed(&short, 1000),
        Err(EnvelopeError::ContainerTooShort(10))
    );
    assert_eq!(bytes_needed(&SIGNATURE, 1000), Ok(Need::More(26)));
}
