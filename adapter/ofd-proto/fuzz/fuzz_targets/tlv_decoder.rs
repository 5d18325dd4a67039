//! Fuzz target: the TLV decoders (`decode_all`, `decode_one`, `decode_document`) and the typed documents.
//!
//! Whatever decodes must encode again, to bytes that decode to the same tree and encode to themselves
//! (the canonical form). Those bytes equal the input unless the tree holds a VLN or FVLN, which the
//! encoder writes without trailing zero bytes but with at least one byte (see `tlv.rs`): they are never
//! longer than the input, except by one byte for each zero that arrived as an empty VLN. That growth is
//! also the only way a decoded tree may fail to encode: an STLV filled to its maximum length around an
//! empty VLN re-encodes one byte too long (`TooLong`). A document that reads as a typed receipt, shift
//! report or operator acknowledgement must build, encode and read back as the same value; the JSON
//! rendering never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ofd_proto::tlv::{decode_document_prefix, encode_all};
use ofd_proto::{
    OperatorAck, Receipt, ShiftClose, ShiftOpen, Tlv, TlvError, Value, decode_all, decode_document,
    decode_one, to_json,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(tlvs) = decode_all(data) {
        let vlns = tlvs
            .iter()
            .map(vln_count)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        if let Some(again) = re_encoded(encode_all(&tlvs), vlns) {
            check_canonical(data, &again, vlns);
            assert_eq!(decode_all(&again).as_ref(), Ok(&tlvs));
        }
        for tlv in &tlvs {
            check_documents(tlv);
        }
    }
    if let Ok((tlv, used)) = decode_one(data) {
        assert!(used <= data.len());
        let vlns = vln_count(&tlv);
        if let Some(again) = re_encoded(tlv.encode(), vlns) {
            check_canonical(&data[..used], &again, vlns);
            assert_eq!(decode_one(&again), Ok((tlv.clone(), again.len())));
        }
    }
    if let Ok((doc, used)) = decode_document_prefix(data) {
        assert_eq!(decode_one(&data[..used]), Ok((doc.clone(), used)));
        match decode_document(data) {
            Ok(whole) => assert_eq!((whole, used), (doc, data.len())),
            Err(_) => assert!(used < data.len(), "a whole document was refused"),
        }
    }
});

/// The re-encoding of a decoded tree, or `None` when it failed the one way it may (see the header).
fn re_encoded(result: Result<Vec<u8>, TlvError>, (vlns, zeros): (usize, usize)) -> Option<Vec<u8>> {
    match result {
        Ok(bytes) => {
            assert!(vlns > 0 || zeros == 0);
            Some(bytes)
        }
        Err(TlvError::TooLong { .. }) if zeros > 0 => None,
        Err(e) => panic!("a decoded tree does not re-encode: {e}"),
    }
}

/// `again` is the re-encoding of `original`: the same bytes, or shorter VLNs and longer empty ones.
fn check_canonical(original: &[u8], again: &[u8], (vlns, zeros): (usize, usize)) {
    if vlns == 0 {
        assert_eq!(again, original, "no VLN, yet the bytes changed");
    } else {
        assert!(again.len() <= original.len() + zeros, "re-encoding grew");
    }
}

/// How many VLN and FVLN values the tree holds, and how many of them are zero (they may have been empty).
fn vln_count(tlv: &Tlv) -> (usize, usize) {
    match &tlv.value {
        Value::Vln(v) => (1, usize::from(*v == 0)),
        Value::Fvln(f) => (1, usize::from(f.mantissa == 0)),
        Value::Stlv(children) => children
            .iter()
            .map(vln_count)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        _ => (0, 0),
    }
}

/// Typed views of a decoded document re-encode and read back unchanged.
fn check_documents(tlv: &Tlv) {
    let _ = to_json(tlv);
    if let Ok(receipt) = Receipt::from_tlv(tlv) {
        let bytes = receipt
            .encode()
            .unwrap_or_else(|e| panic!("decoded receipt {receipt:?} does not encode: {e}"));
        assert_eq!(Receipt::decode(&bytes), Ok(receipt));
    }
    if let Ok(report) = ShiftOpen::from_tlv(tlv) {
        let doc = round_trip(&report.to_tlv(), "shift-open report");
        assert_eq!(ShiftOpen::from_tlv(&doc), Ok(report));
    }
    if let Ok(report) = ShiftClose::from_tlv(tlv) {
        let doc = round_trip(&report.to_tlv(), "shift-close report");
        assert_eq!(ShiftClose::from_tlv(&doc), Ok(report));
    }
    if let Ok(ack) = OperatorAck::from_tlv(tlv) {
        let doc = round_trip(&ack.to_tlv(), "operator acknowledgement");
        assert_eq!(OperatorAck::from_tlv(&doc), Ok(ack));
    }
}

/// Encodes a typed document's TLV and decodes it again as a document.
fn round_trip(tlv: &Tlv, what: &str) -> Tlv {
    let bytes = tlv
        .encode()
        .unwrap_or_else(|e| panic!("decoded {what} {tlv:?} does not encode: {e}"));
    decode_document(&bytes).unwrap_or_else(|e| panic!("encoded {what} does not decode: {e}"))
}
