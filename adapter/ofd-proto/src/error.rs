//! Typed errors of the TLV codec, the typed documents and the exchange envelope.

use crate::tags::TagType;

/// An error of the TLV codec: malformed bytes on decode, or a value that breaks the tag table on encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV header truncated at offset {offset}")]
    TruncatedHeader { offset: usize },
    #[error("tag {tag}: value length {len} exceeds the {available} bytes left")]
    TruncatedValue {
        tag: u16,
        len: usize,
        available: usize,
    },
    #[error("tag {tag}: value of {len} bytes exceeds the maximum of {max}")]
    TooLong { tag: u16, len: usize, max: usize },
    #[error("tag {tag}: a {ty:?} value needs {expected} bytes, got {len}")]
    BadLength {
        tag: u16,
        ty: TagType,
        expected: usize,
        len: usize,
    },
    #[error("tag {tag}: FVLN with {digits} decimal digits is out of range (0..=19)")]
    BadFvlnDigits { tag: u16, digits: u8 },
    #[error("tag {tag}: character {ch:?} has no cp866 code")]
    Unmappable { tag: u16, ch: char },
    #[error("tag {tag}: a {found} value given where the table says {expected:?}")]
    TypeMismatch {
        tag: u16,
        expected: TagType,
        found: &'static str,
    },
    #[error("STLV nesting deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("tag {tag} is not a known document code")]
    NotADocument { tag: u16 },
    #[error("{count} bytes left over after the TLV")]
    Trailing { count: usize },
}

/// An error building or reading a typed document (receipt, shift reports, operator acknowledgement).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("expected document code {expected}, found tag {found}")]
    WrongDocument { expected: u16, found: u16 },
    #[error("required tag {tag} is missing")]
    Missing { tag: u16 },
    #[error("tag {tag} holds a value of the wrong type")]
    WrongType { tag: u16 },
    #[error("fiscalDocumentFormatVer {0} is not FFD 1.05 (2)")]
    FormatVersion(u8),
    #[error("operationType {0} is not one of 1..=4")]
    OperationType(u8),
    #[error(transparent)]
    Tlv(#[from] TlvError),
}

/// An error of the FN-to-OFD exchange envelope (session header, container header, CRC, lengths).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message too short: need {needed} bytes, got {got}")]
    Short { needed: usize, got: usize },
    #[error("bad session signature {0:02x?}")]
    BadSignature([u8; 4]),
    #[error("bad S-protocol version {0:02x?}")]
    BadSessionVersion([u8; 2]),
    #[error(
        "unsupported A-protocol version {0:02x?}; accepted: 00 01, 00 02, 01 00, 01 05, 01 10 (yandex/ofd's set)"
    )]
    BadAppVersion([u8; 2]),
    #[error("bad container message type {0:#04x} (expected 0xa5)")]
    BadMessageType(u8),
    #[error("bad container version {0} (expected 1)")]
    BadContainerVersion(u8),
    #[error("container length {0} is shorter than its 32-byte header")]
    ContainerTooShort(u16),
    #[error("session header says {session} container bytes, container header says {container}")]
    LengthMismatch { session: u16, container: u16 },
    #[error("message is {got} bytes, its headers say {expected}")]
    SizeMismatch { expected: usize, got: usize },
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("container CRC {stated:#06x} does not match the computed {computed:#06x}")]
    BadCrc { stated: u16, computed: u16 },
    #[error("container document type {header} does not match the body's document tag {document}")]
    DocTypeMismatch { header: u8, document: u16 },
    #[error("FN number {0:?} is not up to 16 digits")]
    BadFnNumber(String),
    #[error("FD number {0} does not fit in 3 bytes")]
    FdNumberTooLarge(u32),
    #[error("container body of {0} bytes does not fit the 16-bit length field")]
    BodyTooLarge(usize),
    #[error("document in the container: {0}")]
    Document(#[from] TlvError),
    #[error("operator acknowledgement: {0}")]
    Ack(#[from] DocError),
}
