//! The OFD side of one exchange on top of `ofd-proto`: validate a message, check its FPD, build the acknowledgement.

use hmac::{Hmac, Mac};
use ofd_proto::{Frame, OperatorAck, Tlv, Value as TlvValue};
use serde_json::Value;
use sha2::Sha256;

/// Length of the operator sign (tag 1078).
pub const OPERATOR_SIGN_LEN: usize = 18;

/// Why a message was refused before any answer.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The envelope or the document TLV is malformed.
    #[error("{0}")]
    Envelope(#[from] ofd_proto::EnvelopeError),
}

/// A validated request.
#[derive(Debug)]
pub struct Request {
    /// The frame as parsed (headers and body).
    pub frame: Frame,
    /// The decoded document.
    pub document: Tlv,
    /// FN number from the session header.
    pub fn_number: String,
    /// FD number from the container header.
    pub fd_number: u32,
}

impl Request {
    /// Parses and validates one whole message: signature, versions, lengths, CRC and the document TLV.
    pub fn parse(bytes: &[u8]) -> Result<Request, ProtocolError> {
        let message = ofd_proto::parse_message(bytes)?;
        let fn_number = message.frame.session.fn_number_str();
        let fd_number = message.frame.container.fd_number;
        Ok(Request {
            frame: message.frame,
            document: message.document,
            fn_number,
            fd_number,
        })
    }

    /// The identity of the document.
    pub fn key(&self) -> (String, u32) {
        (self.fn_number.clone(), self.fd_number)
    }

    /// The document as JSON for `/_mock/documents`.
    pub fn document_json(&self) -> Value {
        ofd_proto::to_json(&self.document)
    }

    /// A format-logic problem that earns response code 14 regardless of the mode: the document's own
    /// FN (1041) or FD (1040) number disagrees with the envelope.
    pub fn format_problem(&self) -> Option<String> {
        if let Some(f) = string_tag(&self.document, 1041)
            && f.trim_end() != self.fn_number
        {
            return Some(format!(
                "1041 {f:?} differs from the envelope's FN {:?}",
                self.fn_number
            ));
        }
        if let Some(fd) = int_tag(&self.document, 1040)
            && fd != u64::from(self.fd_number)
        {
            return Some(format!(
                "1040 {fd} differs from the envelope's FD {}",
                self.fd_number
            ));
        }
        None
    }

    /// Whether the document's FPD (1077) is the one the emulator computes with `secret`.
    ///
    /// The inputs are 1041 (else the envelope FN), 1040 (else the envelope FD), 1012, 1020 (0 when absent,
    /// as in shift reports) and 1054 (0 when absent); a document without 1077 or 1012 fails.
    pub fn fpd_matches(&self, secret: &[u8]) -> bool {
        let d = &self.document;
        let fn_number =
            string_tag(d, 1041).map_or_else(|| self.fn_number.clone(), |s| s.trim_end().to_owned());
        let fd = int_tag(d, 1040)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(self.fd_number);
        let (Some(time), Some(sign)) = (int_tag(d, 1012), int_tag(d, 1077)) else {
            return false;
        };
        let Ok(time) = u32::try_from(time) else {
            return false;
        };
        let total = int_tag(d, 1020).unwrap_or(0);
        let op = int_tag(d, 1054)
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(0);
        u64::from(ofd_proto::fpd(secret, &fn_number, fd, time, total, op)) == sign
    }

    /// Builds the whole answer message: document type 7 with 1017, 1041, 1040, 1012, 1068{1022}, 1078.
    ///
    /// The operator sign is the first 18 bytes of HMAC-SHA256 keyed by the OFD INN over the request's
    /// container body, so the same document always gets the same sign.
    pub fn answer(
        &self,
        ofd_inn: &str,
        response_code: u8,
        at_unix_ms: i64,
    ) -> Result<Vec<u8>, ProtocolError> {
        let ack = OperatorAck {
            ofd_inn: ofd_inn.to_owned(),
            fn_number: self.fn_number.clone(),
            fd_number: self.fd_number,
            date_time: u32::try_from(at_unix_ms.div_euclid(1000)).unwrap_or(0),
            response_code,
            operator_sign: Some(operator_sign(ofd_inn, &self.frame.body)),
        };
        Ok(ofd_proto::build_reply(&self.frame, &ack)?)
    }
}

impl Request {
    /// A well-formed acknowledgement (code 0) for another document: `field` names a different FN
    /// (all nines) or the next FD number, in the header or in the body.
    pub fn wrong_answer(
        &self,
        ofd_inn: &str,
        field: crate::mode::AckField,
        at_unix_ms: i64,
    ) -> Result<Vec<u8>, ProtocolError> {
        use crate::mode::AckField;
        const OTHER_FN: &str = "9999999999999999";
        let mut frame = self.frame.clone();
        let mut ack = OperatorAck {
            ofd_inn: ofd_inn.to_owned(),
            fn_number: self.fn_number.clone(),
            fd_number: self.fd_number,
            date_time: u32::try_from(at_unix_ms.div_euclid(1000)).unwrap_or(0),
            response_code: ofd_proto::RESPONSE_OK,
            operator_sign: Some(operator_sign(ofd_inn, &self.frame.body)),
        };
        match field {
            AckField::HeaderFn => frame.session.fn_number.copy_from_slice(OTHER_FN.as_bytes()),
            AckField::HeaderFd => {
                frame.container.fd_number = self.fd_number.wrapping_add(1) & 0x00FF_FFFF;
            }
            AckField::BodyFn => ack.fn_number = OTHER_FN.to_owned(),
            AckField::BodyFd => ack.fd_number = self.fd_number.wrapping_add(1),
        }
        Ok(ofd_proto::build_reply(&frame, &ack)?)
    }
}

/// The deterministic stand-in for the operator's fiscal sign (FPO); not a GOST sign.
pub fn operator_sign(ofd_inn: &str, body: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(format!("ofd-mock:{ofd_inn}").as_bytes())
    else {
        // HMAC takes keys of any length; this branch only keeps the function panic-free.
        return vec![0; OPERATOR_SIGN_LEN];
    };
    mac.update(body);
    mac.finalize().into_bytes()[..OPERATOR_SIGN_LEN].to_vec()
}

fn string_tag(doc: &Tlv, tag: u16) -> Option<String> {
    match &doc.find(tag)?.value {
        TlvValue::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_tag(doc: &Tlv, tag: u16) -> Option<u64> {
    match &doc.find(tag)?.value {
        TlvValue::Byte(v) => Some(u64::from(*v)),
        TlvValue::U32(v) | TlvValue::UnixTime(v) => Some(u64::from(*v)),
        TlvValue::Vln(v) => Some(*v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FN: &str = "9999078900005488";

    fn receipt(fd: u32, fpd: u64) -> Tlv {
        Tlv::stlv(
            3,
            vec![
                Tlv::time(1012, 1_700_000_000),
                Tlv::string(1041, FN),
                Tlv::u32(1040, fd),
                Tlv::byte(1054, 1),
                Tlv::vln(1020, 12_345),
                Tlv::vln(1077, fpd),
            ],
        )
    }

    #[test]
    fn answer_is_a_valid_signed_reply() {
        let bytes = ofd_proto::build_message(FN, 17, &receipt(17, 1)).unwrap();
        let req = Request::parse(&bytes).unwrap();
        assert_eq!(req.key(), (FN.to_owned(), 17));
        assert_eq!(req.format_problem(), None);
        let answer = req.answer("7704358518", 0, 1_700_000_001_999).unwrap();
        let (frame, ack) = ofd_proto::parse_reply(&answer).unwrap();
        assert_eq!(frame.container.doc_type, 7);
        assert_eq!(
            (ack.fn_number.as_str(), ack.fd_number, ack.date_time),
            (FN, 17, 1_700_000_001)
        );
        assert_eq!((ack.ofd_inn.as_str(), ack.response_code), ("7704358518", 0));
        assert_eq!(
            ack.operator_sign.as_deref().map(<[u8]>::len),
            Some(OPERATOR_SIGN_LEN)
        );
        // The same request gets the same bytes.
        assert_eq!(
            answer,
            req.answer("7704358518", 0, 1_700_000_001_999).unwrap()
        );
    }

    #[test]
    fn fpd_check_and_format_check() {
        let good = ofd_proto::fpd(b"s", FN, 5, 1_700_000_000, 12_345, 1);
        let bytes = ofd_proto::build_message(FN, 5, &receipt(5, u64::from(good))).unwrap();
        let req = Request::parse(&bytes).unwrap();
        assert!(req.fpd_matches(b"s"));
        assert!(!req.fpd_matches(b"other"));
        let forged = ofd_proto::build_message(FN, 5, &receipt(5, u64::from(good) ^ 1)).unwrap();
        assert!(!Request::parse(&forged).unwrap().fpd_matches(b"s"));
        let mismatch = ofd_proto::build_message(FN, 6, &receipt(5, 0)).unwrap();
        assert!(
            Request::parse(&mismatch)
                .unwrap()
                .format_problem()
                .is_some()
        );
    }

    #[test]
    fn bad_bytes_never_panic() {
        let bytes = ofd_proto::build_message(FN, 5, &receipt(5, 0)).unwrap();
        for cut in 0..bytes.len() {
            assert!(Request::parse(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xFF;
        assert!(Request::parse(&flipped).is_err());
    }
}
