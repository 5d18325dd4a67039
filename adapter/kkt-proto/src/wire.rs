//! Little-endian field readers and writers, and the cp1251 text type shared by commands and answers.

use std::fmt;

use encoding_rs::WINDOWS_1251;

use crate::error::{DecodeError, EncodeError};

/// A cursor over a payload that returns typed errors instead of panicking.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// An unsigned LE integer of `n` bytes (n <= 8): u40 money, u48 quantity.
    pub(crate) fn uint(&mut self, n: usize, field: &'static str) -> Result<u64, DecodeError> {
        let bytes = self.bytes(n, field)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Fails if bytes are left after a fixed layout.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

/// Appends an unsigned LE integer of `n` bytes, failing if it does not fit.
pub(crate) fn put_uint(
    out: &mut Vec<u8>,
    value: u64,
    n: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    if n < 8 && value >> (8 * n) != 0 {
        return Err(EncodeError::FieldTooLarge {
            field,
            value,
            bytes: n,
        });
    }
    out.extend_from_slice(&value.to_le_bytes()[..n.min(8)]);
    Ok(())
}

/// Appends bytes, failing if they are longer than `max`.
pub(crate) fn put_bounded(
    out: &mut Vec<u8>,
    bytes: &[u8],
    max: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    if bytes.len() > max {
        return Err(EncodeError::TooLong {
            field,
            len: bytes.len(),
            max,
        });
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Width of a money field: 5 bytes LE, kopecks (pyshtrih `int_to_bytes(x, 5)`; kkt-shtrih `Currency.php`).
pub const MONEY_BYTES: usize = 5;
/// Largest amount a money field holds, in kopecks (2^40 - 1).
pub const MONEY_MAX: u64 = (1 << 40) - 1;

/// Text as its raw windows-1251 bytes, as the device stores and prints it.
///
/// Keeping the raw bytes (trailing zero padding included) makes every decoded frame re-encode byte for byte;
/// [`Text::to_string_lossy`] gives the readable string, cut at the first NUL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Text(Vec<u8>);

impl Text {
    /// Encodes a string to windows-1251 (pyshtrih `misc.encode`), without padding.
    pub fn new(s: &str) -> Result<Self, EncodeError> {
        let (bytes, _, had_errors) = WINDOWS_1251.encode(s);
        if had_errors {
            return Err(EncodeError::Unencodable);
        }
        Ok(Self(bytes.into_owned()))
    }

    /// Encodes a string and pads it with zero bytes to exactly `width` bytes (fixed-width fields such as the
    /// 40-byte text of commands 80/82/85).
    pub fn padded(s: &str, width: usize) -> Result<Self, EncodeError> {
        let mut text = Self::new(s)?;
        if text.0.len() > width {
            return Err(EncodeError::TooLong {
                field: "text",
                len: text.0.len(),
                max: width,
            });
        }
        text.0.resize(width, 0);
        Ok(text)
    }

    /// Wraps raw bytes as received.
    pub fn from_raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes windows-1251 up to the first NUL byte.
    pub fn to_string_lossy(&self) -> String {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(self.0.len());
        let (text, _) = WINDOWS_1251.decode_without_bom_handling(&self.0[..end]);
        text.into_owned()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({:?})", self.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp1251_text() {
        let text = Text::new("Тест").unwrap();
        assert_eq!(text.as_bytes(), [0xD2, 0xE5, 0xF1, 0xF2]);
        assert_eq!(Text::padded("Тест", 6).unwrap().to_string_lossy(), "Тест");
        assert_eq!(Text::new("日本"), Err(EncodeError::Unencodable));
        assert!(Text::padded("abc", 2).is_err());
    }

    #[test]
    fn uint_widths() {
        let mut out = Vec::new();
        put_uint(&mut out, MONEY_MAX, MONEY_BYTES, "sum").unwrap();
        assert_eq!(out, [0xFF; 5]);
        assert!(put_uint(&mut out, MONEY_MAX + 1, MONEY_BYTES, "sum").is_err());
        let mut reader = Reader::new(&[0xDC, 0x45, 0, 0, 0]);
        assert_eq!(reader.uint(5, "sum").unwrap(), 17884);
        assert!(reader.u8("x").is_err());
    }
}
