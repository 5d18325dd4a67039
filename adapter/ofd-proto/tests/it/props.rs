//! Property tests: every value type round-trips, the envelope round-trips, and no decoder panics on any bytes.

use ofd_proto::envelope::{ContainerHeader, SessionHeader, bytes_needed};
use ofd_proto::tlv::{decode_cp866, decode_document_prefix};
use ofd_proto::{
    EnvelopeError, Frame, Fvln, OperatorAck, Receipt, ShiftClose, ShiftOpen, Tlv, Value,
    decode_all, decode_document, decode_one, parse_message, parse_reply,
};
use proptest::prelude::*;

fn round_trip(tlv: &Tlv) -> Result<(), TestCaseError> {
    let bytes = tlv
        .encode()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (back, used) = decode_one(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(used, bytes.len());
    prop_assert_eq!(&back, tlv);
    Ok(())
}

/// Text that cp866 can hold: decode arbitrary bytes, since every cp866 byte is a character.
fn cp866_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(|b| decode_cp866(&b))
}

fn item() -> impl Strategy<Value = Tlv> {
    (
        cp866_text(128),
        any::<u64>(),
        0u8..=19,
        0u64..(1 << 56),
        any::<u8>(),
    )
        .prop_map(|(name, sum, digits, mantissa, nds)| {
            Tlv::stlv(
                1059,
                vec![
                    Tlv::string(1030, name),
                    Tlv::fvln(1023, Fvln::new(mantissa, digits)),
                    Tlv::vln(1043, sum),
                    Tlv::byte(1199, nds),
                ],
            )
        })
}

proptest! {
    #[test]
    fn byte_u32_time_round_trip(b in any::<u8>(), n in any::<u32>(), t in any::<u32>()) {
        round_trip(&Tlv::byte(1054, b))?;
        round_trip(&Tlv::u32(1040, n))?;
        round_trip(&Tlv::time(1012, t))?;
    }

    #[test]
    fn vln_round_trips(v in any::<u64>(), sign in 0u64..(1 << 48)) {
        round_trip(&Tlv::vln(1020, v))?;
        round_trip(&Tlv::vln(1077, sign))?;
    }

    #[test]
    fn fvln_round_trips(digits in 0u8..=19, mantissa in 0u64..(1 << 56)) {
        round_trip(&Tlv::fvln(1023, Fvln::new(mantissa, digits)))?;
    }

    #[test]
    fn string_round_trips_at_value_and_byte_level(bytes in proptest::collection::vec(any::<u8>(), 0..=128)) {
        let s = decode_cp866(&bytes);
        round_trip(&Tlv::string(1030, s.clone()))?;
        let encoded = Tlv::string(1030, s).encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&encoded[4..], bytes.as_slice());
    }

    #[test]
    fn byte_array_and_raw_round_trip(
        sign in proptest::collection::vec(any::<u8>(), 0..=18),
        raw in proptest::collection::vec(any::<u8>(), 0..=300),
    ) {
        round_trip(&Tlv::bytes(1078, sign))?;
        round_trip(&Tlv::new(4242, Value::Raw(raw)))?;
    }

    #[test]
    fn stlv_round_trips(items in proptest::collection::vec(item(), 0..5), fd in any::<u32>()) {
        let mut children = vec![Tlv::u32(1040, fd)];
        children.extend(items);
        let doc = Tlv::stlv(3, children);
        round_trip(&doc)?;
        let bytes = doc.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_document(&bytes).ok(), Some(doc));
    }

    #[test]
    fn envelope_round_trips(
        fn_digits in "[0-9]{16}",
        fd in 0u32..=0x00FF_FFFF,
        doc_type in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let frame = Frame::new(&fn_digits, doc_type, fd, body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let bytes = frame.encode();
        prop_assert_eq!(Frame::parse(&bytes), Ok(frame));
    }

    #[test]
    fn a_flipped_body_byte_always_fails_the_crc(
        body in proptest::collection::vec(any::<u8>(), 1..500),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let frame = Frame::new("9999078900005488", 3, 1, body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut bytes = frame.encode();
        let at = 62 + index.index(bytes.len() - 62);
        bytes[at] ^= flip;
        let is_bad_crc = matches!(Frame::parse(&bytes), Err(EnvelopeError::BadCrc { .. }));
        prop_assert!(is_bad_crc);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_all(&bytes);
        let _ = decode_one(&bytes);
        let _ = decode_document_prefix(&bytes);
        let _ = Receipt::decode(&bytes);
        let _ = SessionHeader::decode(&bytes);
        let _ = ContainerHeader::decode(&bytes);
        let _ = bytes_needed(&bytes, 4096);
        let _ = parse_reply(&bytes);
        if let Ok(doc) = decode_document(&bytes) {
            let _ = ofd_proto::to_json(&doc);
            let _ = ShiftOpen::from_tlv(&doc);
            let _ = ShiftClose::from_tlv(&doc);
            let _ = OperatorAck::from_tlv(&doc);
        }
        // Without the signature no message parses.
        if !bytes.starts_with(&ofd_proto::envelope::SIGNATURE) {
            prop_assert!(Frame::parse(&bytes).is_err());
            prop_assert!(parse_message(&bytes).is_err());
        }
    }

    #[test]
    fn random_documents_behind_a_valid_header_never_panic(
        tag in prop::sample::select(vec![1u16, 2, 3, 5, 7, 1059, 1068, 1224]),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        // Random bytes behind a valid TLV header reach the typed decoders far more often than pure noise.
        let mut bytes = tag.to_le_bytes().to_vec();
        bytes.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok((doc, _)) = decode_one(&bytes) {
            let _ = ofd_proto::to_json(&doc);
            let _ = Receipt::from_tlv(&doc);
            let _ = OperatorAck::from_tlv(&doc);
        }
        let doc_type = u8::try_from(tag).unwrap_or(0);
        if let Ok(frame) = Frame::new("9999078900005488", doc_type, 1, bytes) {
            let encoded = frame.encode();
            let _ = parse_message(&encoded);
            let _ = parse_reply(&encoded);
        }
    }
}
