//! Fuzz target: the FN-to-OFD envelope: session and container headers, stream framing, message and reply.
//!
//! The first input byte picks a mode. Odd: the rest is a message whose two length fields and container CRC
//! are fixed up first, so the fuzzer reaches the body decoders instead of stopping at the CRC. Even: the
//! rest is taken as it is. Checked: headers re-encode to their bytes; `bytes_needed` agrees with
//! `Frame::parse` and with itself on every prefix; a parsed frame re-encodes to the input; a parsed
//! message's document builds into a new message that reads back the same; a parsed reply's
//! acknowledgement builds into a reply that reads back the same and mirrors the request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ofd_proto::envelope::{
    CONTAINER_HEADER_LEN, ContainerHeader, MESSAGE_LEN_MAX, SESSION_HEADER_LEN, SessionHeader,
    container_crc,
};
use ofd_proto::{
    Frame, Need, Tlv, TlvError, Value, build_message, build_reply, bytes_needed, decode_document,
    parse_message, parse_reply,
};

const HEADERS_LEN: usize = SESSION_HEADER_LEN + CONTAINER_HEADER_LEN;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let mut message = rest.to_vec();
    if mode & 1 == 1 {
        seal(&mut message);
    }
    check_headers(&message);
    check_stream_framing(&message);
    check_frame(&message);
    check_message(&message);
    check_reply(&message);
});

/// Writes the container length into both headers and the container CRC, as a sender would.
fn seal(message: &mut [u8]) {
    if message.len() < HEADERS_LEN || message.len() > MESSAGE_LEN_MAX {
        return;
    }
    let container_len = u16::try_from(message.len() - SESSION_HEADER_LEN).expect("bounded above");
    message[24..26].copy_from_slice(&container_len.to_le_bytes());
    message[30..32].copy_from_slice(&container_len.to_le_bytes());
    let header: [u8; CONTAINER_HEADER_LEN] = message[SESSION_HEADER_LEN..HEADERS_LEN]
        .try_into()
        .expect("32 bytes");
    let crc = container_crc(&header, &message[HEADERS_LEN..]);
    message[32..34].copy_from_slice(&crc.to_le_bytes());
}

fn check_headers(message: &[u8]) {
    if let Ok(session) = SessionHeader::decode(message) {
        assert_eq!(session.encode()[..], message[..SESSION_HEADER_LEN]);
    }
    if let Some(container) = message.get(SESSION_HEADER_LEN..)
        && let Ok(header) = ContainerHeader::decode(container)
    {
        assert_eq!(header.encode()[..], container[..CONTAINER_HEADER_LEN]);
    }
}

/// A stream reader fed this message byte by byte would ask for exactly the bytes it needs.
fn check_stream_framing(message: &[u8]) {
    let need = bytes_needed(message, MESSAGE_LEN_MAX);
    if Frame::parse(message).is_ok() {
        assert_eq!(need, Ok(Need::Complete(message.len())));
    }
    let Ok(Need::Complete(total)) = need else {
        if let Ok(Need::More(more)) = need {
            assert!(more > 0);
        }
        return;
    };
    assert!((HEADERS_LEN..=message.len()).contains(&total));
    assert_eq!(bytes_needed(&message[..total], MESSAGE_LEN_MAX), need);
    // A smaller limit refuses the same message instead of reading it.
    if total > SESSION_HEADER_LEN {
        assert!(bytes_needed(message, total - 1).is_err());
    }
    for cut in [0, 1, SESSION_HEADER_LEN - 1, SESSION_HEADER_LEN, total - 1] {
        if cut >= total {
            continue;
        }
        let expected = if cut < SESSION_HEADER_LEN {
            SESSION_HEADER_LEN - cut
        } else {
            total - cut
        };
        assert_eq!(
            bytes_needed(&message[..cut], MESSAGE_LEN_MAX),
            Ok(Need::More(expected)),
            "prefix of {cut} bytes"
        );
    }
}

fn check_frame(message: &[u8]) {
    let Ok(frame) = Frame::parse(message) else {
        return;
    };
    assert_eq!(frame.encode(), message);
    let mut resealed = frame.clone();
    resealed.seal().expect("a parsed frame seals");
    assert_eq!(resealed, frame, "a parsed frame is already sealed");
    if let Ok((document, trailer)) = frame.document() {
        assert!(frame.body.ends_with(trailer));
        match document.encode() {
            Ok(bytes) => assert_eq!(decode_document(&bytes).as_ref(), Ok(&document)),
            // The one way a decoded tree may not re-encode: an empty VLN (a zero) written as one
            // byte overflows an STLV filled to its maximum (see the tlv_decoder target).
            Err(TlvError::TooLong { .. }) if has_zero_vln(&document) => {}
            Err(e) => panic!("a decoded document does not re-encode: {e}"),
        }
    }
}

fn has_zero_vln(tlv: &Tlv) -> bool {
    match &tlv.value {
        Value::Vln(v) => *v == 0,
        Value::Fvln(f) => f.mantissa == 0,
        Value::Stlv(children) => children.iter().any(has_zero_vln),
        _ => false,
    }
}

fn check_message(message: &[u8]) {
    let Ok(parsed) = parse_message(message) else {
        return;
    };
    assert_eq!(Frame::parse(message).as_ref(), Ok(&parsed.frame));
    let fn_number = parsed.frame.session.fn_number_str();
    let fd_number = parsed.frame.container.fd_number;
    // Only FN numbers of digits can be written again; a received header may hold anything.
    if let Ok(built) = build_message(&fn_number, fd_number, &parsed.document) {
        let again = parse_message(&built).expect("a built message parses");
        assert_eq!(again.document, parsed.document);
        assert_eq!(again.frame.container.fd_number, fd_number);
        assert_eq!(again.frame.session.fn_number_str(), fn_number);
        assert!(again.trailer.is_empty());
    }
}

fn check_reply(message: &[u8]) {
    let Ok((request, ack)) = parse_reply(message) else {
        return;
    };
    let built = build_reply(&request, &ack)
        .unwrap_or_else(|e| panic!("the reply to a parsed reply {ack:?} does not build: {e}"));
    let (frame, again) = parse_reply(&built).expect("a built reply parses");
    assert_eq!(again, ack);
    assert_eq!(frame.session.fn_number, request.session.fn_number);
    assert_eq!(frame.container.fd_number, request.container.fd_number);
    assert_eq!(frame.container.service1, request.container.service1);
}
