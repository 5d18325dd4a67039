//! The generic TLV tree: decode any bytes into `Tlv` values (never panicking) and encode them back with validation.
//!
//! Header: tag u16 LE, length u16 LE, then the value. Known tags are typed through the tag table; unknown tags
//! keep their raw bytes so that a document we do not fully understand still round-trips byte for byte.
//! VLN values are written canonically (trailing zero bytes trimmed, at least one byte), so a decoded
//! non-canonical VLN (say, zero-padded to its maximum length) re-encodes shorter; everything else re-encodes exactly.

use crate::error::TlvError;
use crate::tags::{DocCode, TagInfo, TagType, tag_info};
use encoding_rs::IBM866;

/// Maximum STLV nesting the decoder follows; real documents use at most three levels.
pub const MAX_DEPTH: usize = 8;

/// Size of a TLV header (tag + length).
pub const HEADER_LEN: usize = 4;

/// A fixed-point number: `mantissa / 10^digits` (FFD quantity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fvln {
    /// Number of digits after the decimal point (0..=19).
    pub digits: u8,
    pub mantissa: u64,
}

impl Fvln {
    /// The largest digit count whose power of ten still fits in a u64.
    pub const MAX_DIGITS: u8 = 19;

    /// Builds `mantissa / 10^digits`.
    pub fn new(mantissa: u64, digits: u8) -> Self {
        Self { digits, mantissa }
    }

    /// The value as a float, for display and JSON only (it may round).
    pub fn to_f64(self) -> f64 {
        // Precision loss is acceptable here: the float is for humans, the exact value stays in the fields.
        #[allow(clippy::cast_precision_loss)]
        let m = self.mantissa as f64;
        m / 10f64.powi(i32::from(self.digits))
    }
}

/// A decoded TLV value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    U32(u32),
    UnixTime(u32),
    String(String),
    Vln(u64),
    Fvln(Fvln),
    ByteArray(Vec<u8>),
    Stlv(Vec<Tlv>),
    /// The bytes of a tag the table does not know.
    Raw(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Self::Byte(_) => "Byte",
            Self::U32(_) => "U32",
            Self::UnixTime(_) => "UnixTime",
            Self::String(_) => "String",
            Self::Vln(_) => "Vln",
            Self::Fvln(_) => "Fvln",
            Self::ByteArray(_) => "ByteArray",
            Self::Stlv(_) => "Stlv",
            Self::Raw(_) => "Raw",
        }
    }

    fn matches(&self, ty: TagType) -> bool {
        matches!(
            (self, ty),
            (Self::Byte(_), TagType::Byte)
                | (Self::U32(_), TagType::U32)
                | (Self::UnixTime(_), TagType::UnixTime)
                | (Self::String(_), TagType::String)
                | (Self::Vln(_), TagType::Vln)
                | (Self::Fvln(_), TagType::Fvln)
                | (Self::ByteArray(_), TagType::ByteArray)
                | (Self::Stlv(_), TagType::Stlv)
        )
    }
}

/// One tag with its value; an STLV value holds the children in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Value,
}

impl Tlv {
    pub fn new(tag: u16, value: Value) -> Self {
        Self { tag, value }
    }
    pub fn byte(tag: u16, v: u8) -> Self {
        Self::new(tag, Value::Byte(v))
    }
    pub fn u32(tag: u16, v: u32) -> Self {
        Self::new(tag, Value::U32(v))
    }
    pub fn time(tag: u16, v: u32) -> Self {
        Self::new(tag, Value::UnixTime(v))
    }
    pub fn string(tag: u16, v: impl Into<String>) -> Self {
        Self::new(tag, Value::String(v.into()))
    }
    pub fn vln(tag: u16, v: u64) -> Self {
        Self::new(tag, Value::Vln(v))
    }
    pub fn fvln(tag: u16, v: Fvln) -> Self {
        Self::new(tag, Value::Fvln(v))
    }
    pub fn bytes(tag: u16, v: Vec<u8>) -> Self {
        Self::new(tag, Value::ByteArray(v))
    }
    pub fn stlv(tag: u16, children: Vec<Tlv>) -> Self {
        Self::new(tag, Value::Stlv(children))
    }

    /// The children of an STLV, or an empty slice for any other value.
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            Value::Stlv(children) => children,
            _ => &[],
        }
    }

    /// The first direct child with this tag.
    pub fn find(&self, tag: u16) -> Option<&Tlv> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Every direct child with this tag, in wire order.
    pub fn find_all(&self, tag: u16) -> impl Iterator<Item = &Tlv> {
        self.children().iter().filter(move |c| c.tag == tag)
    }

    /// Encodes this TLV, checking types and maximum lengths against the tag table.
    pub fn encode(&self) -> Result<Vec<u8>, TlvError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoding of this TLV to `out`; on error `out` may hold a partial TLV.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), TlvError> {
        let info = tag_info(self.tag);
        if let Some(info) = info
            && !self.value.matches(info.ty)
        {
            return Err(TlvError::TypeMismatch {
                tag: self.tag,
                expected: info.ty,
                found: self.value.kind(),
            });
        }
        let start = out.len();
        out.extend_from_slice(&self.tag.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        encode_value(self.tag, &self.value, out)?;
        let len = out.len() - start - HEADER_LEN;
        let max = info.map_or(usize::from(u16::MAX), |i| usize::from(i.max_len));
        if len > max {
            return Err(TlvError::TooLong {
                tag: self.tag,
                len,
                max,
            });
        }
        let len16 = u16::try_from(len).map_err(|_| TlvError::TooLong {
            tag: self.tag,
            len,
            max: usize::from(u16::MAX),
        })?;
        out[start + 2..start + 4].copy_from_slice(&len16.to_le_bytes());
        Ok(())
    }
}

fn encode_value(tag: u16, value: &Value, out: &mut Vec<u8>) -> Result<(), TlvError> {
    match value {
        Value::Byte(v) => out.push(*v),
        Value::U32(v) | Value::UnixTime(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::String(s) => out.extend_from_slice(&encode_cp866(tag, s)?),
        Value::Vln(v) => out.extend_from_slice(&vln_bytes(*v)),
        Value::Fvln(f) => {
            if f.digits > Fvln::MAX_DIGITS {
                return Err(TlvError::BadFvlnDigits {
                    tag,
                    digits: f.digits,
                });
            }
            out.push(f.digits);
            out.extend_from_slice(&vln_bytes(f.mantissa));
        }
        Value::ByteArray(b) | Value::Raw(b) => out.extend_from_slice(b),
        Value::Stlv(children) => {
            for child in children {
                child.encode_into(out)?;
            }
        }
    }
    Ok(())
}

/// Encodes a list of TLVs one after another.
pub fn encode_all(tlvs: &[Tlv]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::new();
    for tlv in tlvs {
        tlv.encode_into(&mut out)?;
    }
    Ok(out)
}

/// The canonical VLN bytes of `v`: little-endian, trailing zero bytes trimmed, at least one byte.
pub fn vln_bytes(v: u64) -> Vec<u8> {
    let bytes = v.to_le_bytes();
    let used = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
    bytes[..used].to_vec()
}

/// Reads a VLN of up to 8 bytes; an empty value reads as zero.
pub fn vln_from(tag: u16, data: &[u8]) -> Result<u64, TlvError> {
    if data.len() > 8 {
        return Err(TlvError::TooLong {
            tag,
            len: data.len(),
            max: 8,
        });
    }
    let mut buf = [0u8; 8];
    buf[..data.len()].copy_from_slice(data);
    Ok(u64::from_le_bytes(buf))
}

/// Encodes text as cp866, refusing characters cp866 cannot hold.
pub fn encode_cp866(tag: u16, s: &str) -> Result<Vec<u8>, TlvError> {
    let (bytes, _, had_errors) = IBM866.encode(s);
    if had_errors {
        let ch = s
            .chars()
            .find(|c| {
                let mut buf = [0u8; 4];
                IBM866.encode(c.encode_utf8(&mut buf)).2
            })
            .unwrap_or('\u{fffd}');
        return Err(TlvError::Unmappable { tag, ch });
    }
    Ok(bytes.into_owned())
}

/// Decodes cp866 text; every byte has a character, so this cannot fail.
pub fn decode_cp866(data: &[u8]) -> String {
    IBM866.decode_without_bom_handling(data).0.into_owned()
}

/// Decodes one TLV from the start of `bytes`, returning it and the number of bytes it took.
pub fn decode_one(bytes: &[u8]) -> Result<(Tlv, usize), TlvError> {
    decode_at(bytes, 0, 0)
}

/// Decodes a whole buffer as a sequence of TLVs.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    decode_seq(bytes, 0)
}

/// Decodes exactly one document: a TLV whose tag is a document code, with nothing after it.
pub fn decode_document(bytes: &[u8]) -> Result<Tlv, TlvError> {
    let (doc, used) = decode_document_prefix(bytes)?;
    if used != bytes.len() {
        return Err(TlvError::Trailing {
            count: bytes.len() - used,
        });
    }
    Ok(doc)
}

/// Decodes the document at the start of `bytes` and says how many bytes it took (the rest is a trailer).
pub fn decode_document_prefix(bytes: &[u8]) -> Result<(Tlv, usize), TlvError> {
    if bytes.len() >= 2 {
        let tag = u16::from_le_bytes([bytes[0], bytes[1]]);
        if DocCode::from_tag(tag).is_none() {
            return Err(TlvError::NotADocument { tag });
        }
    }
    decode_one(bytes)
}

fn decode_seq(bytes: &[u8], depth: usize) -> Result<Vec<Tlv>, TlvError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let (tlv, used) = decode_at(&bytes[offset..], offset, depth)?;
        out.push(tlv);
        offset += used;
    }
    Ok(out)
}

fn decode_at(bytes: &[u8], offset: usize, depth: usize) -> Result<(Tlv, usize), TlvError> {
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or(TlvError::TruncatedHeader { offset })?;
    let tag = u16::from_le_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
    let data = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or(TlvError::TruncatedValue {
            tag,
            len,
            available: bytes.len() - HEADER_LEN,
        })?;
    let value = match tag_info(tag) {
        Some(info) => decode_value(info, data, depth)?,
        None => Value::Raw(data.to_vec()),
    };
    Ok((Tlv { tag, value }, HEADER_LEN + len))
}

fn decode_value(info: &TagInfo, data: &[u8], depth: usize) -> Result<Value, TlvError> {
    let tag = info.tag;
    let max = usize::from(info.max_len);
    let fixed_width = matches!(info.ty, TagType::Byte | TagType::U32 | TagType::UnixTime);
    // Fixed-width types report the exact width they need instead (a clearer error than "too long").
    if !fixed_width && data.len() > max {
        return Err(TlvError::TooLong {
            tag,
            len: data.len(),
            max,
        });
    }
    let exact = |expected: usize| -> Result<(), TlvError> {
        if data.len() == expected {
            Ok(())
        } else {
            Err(TlvError::BadLength {
                tag,
                ty: info.ty,
                expected,
                len: data.len(),
            })
        }
    };
    Ok(match info.ty {
        TagType::Byte => {
            exact(1)?;
            Value::Byte(data[0])
        }
        TagType::U32 | TagType::UnixTime => {
            exact(4)?;
            let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            if info.ty == TagType::U32 {
                Value::U32(v)
            } else {
                Value::UnixTime(v)
            }
        }
        TagType::String => Value::String(decode_cp866(data)),
        TagType::Vln => Value::Vln(vln_from(tag, data)?),
        TagType::Fvln => {
            let (&digits, rest) = data.split_first().ok_or(TlvError::BadLength {
                tag,
                ty: info.ty,
                expected: 2,
                len: 0,
            })?;
            if digits > Fvln::MAX_DIGITS {
                return Err(TlvError::BadFvlnDigits { tag, digits });
            }
            Value::Fvln(Fvln {
                digits,
                mantissa: vln_from(tag, rest)?,
            })
        }
        TagType::ByteArray => Value::ByteArray(data.to_vec()),
        TagType::Stlv => {
            if depth >= MAX_DEPTH {
                return Err(TlvError::TooDeep { max: MAX_DEPTH });
            }
            Value::Stlv(decode_seq(data, depth + 1)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vln_trims_trailing_zeros_and_keeps_one_byte() {
        assert_eq!(vln_bytes(0), [0]);
        assert_eq!(vln_bytes(0x0100), [0x00, 0x01]);
        assert_eq!(vln_bytes(u64::MAX), [0xFF; 8]);
        assert_eq!(vln_from(1, &[]).unwrap(), 0);
        assert_eq!(vln_from(1, &[0x34, 0x12, 0, 0]).unwrap(), 0x1234);
    }

    #[test]
    fn byte_with_two_bytes_is_an_error() {
        let err = decode_one(&[0x1e, 0x04, 0x02, 0x00, 1, 2]).unwrap_err();
        assert!(matches!(err, TlvError::BadLength { tag: 1054, .. }));
    }

    #[test]
    fn string_over_max_len_is_refused_both_ways() {
        let long = "x".repeat(17);
        let err = Tlv::string(1192, long.clone()).encode().unwrap_err();
        assert_eq!(
            err,
            TlvError::TooLong {
                tag: 1192,
                len: 17,
                max: 16
            }
        );
        let mut raw = vec![0xa8, 0x04, 17, 0];
        raw.extend_from_slice(long.as_bytes());
        assert!(matches!(
            decode_one(&raw),
            Err(TlvError::TooLong { tag: 1192, .. })
        ));
    }

    #[test]
    fn unmappable_character_is_refused() {
        let err = Tlv::string(1030, "чай ☕").encode().unwrap_err();
        assert_eq!(
            err,
            TlvError::Unmappable {
                tag: 1030,
                ch: '☕'
            }
        );
    }

    #[test]
    fn type_mismatch_is_refused() {
        let err = Tlv::u32(1054, 1).encode().unwrap_err();
        assert!(matches!(err, TlvError::TypeMismatch { tag: 1054, .. }));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // 1059 inside 1059 inside ... far beyond MAX_DEPTH.
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..200 {
            let mut outer = vec![0x23, 0x04];
            outer.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_le_bytes());
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        assert!(matches!(
            decode_one(&bytes),
            Err(TlvError::TooLong { .. }) | Err(TlvError::TooDeep { .. })
        ));
        let mut shallow: Vec<u8> = Vec::new();
        for _ in 0..(MAX_DEPTH + 2) {
            let mut outer = vec![0x23, 0x04];
            outer.extend_from_slice(&u16::try_from(shallow.len()).unwrap().to_le_bytes());
            outer.extend_from_slice(&shallow);
            shallow = outer;
        }
        assert_eq!(
            decode_one(&shallow),
            Err(TlvError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn truncation_is_reported() {
        assert_eq!(
            decode_one(&[1, 0, 5]),
            Err(TlvError::TruncatedHeader { offset: 0 })
        );
        assert_eq!(
            decode_one(&[0x1e, 0x04, 1, 0]),
            Err(TlvError::TruncatedValue {
                tag: 1054,
                len: 1,
                available: 0
            })
        );
    }

    #[test]
    fn document_must_be_a_document_code() {
        assert_eq!(
            decode_document(&[0x1e, 0x04, 1, 0, 1]),
            Err(TlvError::NotADocument { tag: 1054 })
        );
        assert_eq!(
            decode_document(&[3, 0, 0, 0, 9]),
            Err(TlvError::Trailing { count: 1 })
        );
    }
}
