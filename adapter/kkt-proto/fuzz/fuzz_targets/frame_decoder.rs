//! Fuzz target: the streaming frame decoder, `decode_frame`, and the typed `Request`/`Reply` decoders.
//!
//! The input is a byte stream as it would come off the serial line. Every frame the decoder finds must
//! re-encode to the same bytes, and every payload that decodes as a request or a reply must encode again
//! without error to exactly the bytes it came from (the codec has no non-canonical forms) and decode to
//! the same value. The whole input is also tried as a bare payload, so the typed decoders see inputs that
//! did not first have to pass the LRC check.

#![no_main]

use kkt_proto::{
    FrameDecoder, FrameError, Reply, Request, STX, Token, decode_frame, encode_frame, lrc,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_stream(data);
    check_whole_frame(data);
    // A longer payload cannot come out of a frame (LEN is one byte), so it need not re-encode.
    if data.len() <= usize::from(u8::MAX) {
        check_payload(data);
    }
});

/// Feeds the bytes one by one, as the port owner does, and checks every token.
fn check_stream(data: &[u8]) {
    let mut decoder = FrameDecoder::new();
    for byte in data {
        match decoder.push(*byte) {
            None => {}
            Some(Ok(Token::Control(control))) => {
                assert_ne!(
                    control, STX,
                    "STX starts a frame, it is never a control byte"
                );
                assert!(!decoder.is_mid_frame());
            }
            Some(Ok(Token::Frame(payload))) => {
                assert!(!decoder.is_mid_frame());
                let frame = encode_frame(&payload).expect("a decoded payload fits a frame");
                assert_eq!(decode_frame(&frame).as_ref(), Ok(&payload));
                check_payload(&payload);
            }
            Some(Err(FrameError::BadLrc {
                computed,
                received,
                payload,
            })) => {
                assert_ne!(computed, received);
                let len = u8::try_from(payload.len()).expect("LEN is one byte");
                assert_eq!(computed, lrc(len, &payload));
            }
            Some(Err(FrameError::ZeroLength)) => assert!(!decoder.is_mid_frame()),
            Some(Err(other)) => panic!("push never reports {other:?}"),
        }
    }
    // The byte timeout ends any partial frame, and only once.
    let mid_frame = decoder.is_mid_frame();
    match decoder.timeout() {
        Some(FrameError::Truncated { have, want }) => {
            assert!(mid_frame);
            // Cut after STX, before LEN, nothing was announced yet: `0 of 0`.
            assert!(
                have < want || (have, want) == (0, 0),
                "a truncated frame has fewer bytes than announced"
            );
        }
        Some(other) => panic!("timeout never reports {other:?}"),
        None => assert!(!mid_frame),
    }
    assert!(!decoder.is_mid_frame());
    assert_eq!(decoder.timeout(), None);
}

/// `decode_frame` accepts exactly one whole frame, which then re-encodes to the input.
fn check_whole_frame(data: &[u8]) {
    if let Ok(payload) = decode_frame(data) {
        assert_eq!(encode_frame(&payload).as_deref(), Ok(data));
    }
    if let Ok((password, request)) = Request::from_frame(data) {
        let again = request
            .to_frame(password.unwrap_or(0))
            .expect("a decoded request re-encodes");
        assert_eq!(again, data, "request {request:?} re-encodes differently");
    }
    if let Ok(reply) = Reply::from_frame(data) {
        let again = reply.to_frame().expect("a decoded reply re-encodes");
        assert_eq!(again, data, "reply {reply:?} re-encodes differently");
    }
}

/// A payload that decodes re-encodes to the same bytes and decodes to the same value.
fn check_payload(payload: &[u8]) {
    if let Ok((password, request)) = Request::from_payload(payload) {
        let again = request
            .to_payload(password.unwrap_or(0))
            .unwrap_or_else(|e| panic!("decoded request {request:?} does not re-encode: {e}"));
        assert_eq!(again, payload, "request {request:?} re-encodes differently");
        assert_eq!(
            request.code(),
            kkt_proto::CommandCode::split(payload).unwrap().0
        );
        assert_eq!(Request::from_payload(&again), Ok((password, request)));
    }
    if let Ok(reply) = Reply::from_payload(payload) {
        let again = reply
            .to_payload()
            .unwrap_or_else(|e| panic!("decoded reply {reply:?} does not re-encode: {e}"));
        assert_eq!(again, payload, "reply {reply:?} re-encodes differently");
        assert_eq!(
            reply.code(),
            kkt_proto::CommandCode::split(payload).unwrap().0
        );
        assert_eq!(Reply::from_payload(&again), Ok(reply));
    }
}
