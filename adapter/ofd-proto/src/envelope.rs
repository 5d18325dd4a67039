//! The FN-to-OFD exchange envelope (yandex/ofd `SessionHeader`, `FrameHeader`): build, parse, frame a TCP stream.
//!
//! A message is a 30-byte session header, then a container: a 32-byte container header and a body.
//! The body is one document TLV (outer tag = document code), optionally followed by a trailer that a real FN
//! appends (its message sign); the trailer is kept as raw bytes.
//!
//! Session header: signature `2A 08 41 0A`, S-protocol `81 A2`, A-protocol version (2 bytes, one of
//! [`AppVersion::ALL`]), FN number (16 ASCII, space padded), container length u16 LE, flags u16 LE, CRC u16 LE.
//! We write CRC 0 and flags 0x14 ("response expected, container present, CRC not computed"), and do not check
//! the session CRC. A decoded frame keeps its version ([`Frame::version`]); a reply is written in the version of
//! its request, and [`build_message_in`] writes a message in a given version.
//!
//! Container header: length u16 LE (header + body), CRC u16 LE, message type `A5`, document type, version 1,
//! service data 1 (2 bytes), FN number (8 bytes BCD, a space becomes nibble F), FD number (3 bytes BE),
//! service data 2 (12 bytes). The CRC is CRC-16/CCITT-FALSE over the length field, the header after the
//! CRC field, then the body.

use crate::error::EnvelopeError;
use crate::reports::OperatorAck;
use crate::tags::DocCode;
use crate::tlv::{Tlv, decode_document_prefix};
use crc::{CRC_16_IBM_3740, Crc};

pub const SESSION_HEADER_LEN: usize = 30;
pub const CONTAINER_HEADER_LEN: usize = 32;
pub const SIGNATURE: [u8; 4] = [0x2A, 0x08, 0x41, 0x0A];
pub const S_PROTOCOL: [u8; 2] = [0x81, 0xA2];
pub const MESSAGE_TYPE: u8 = 0xA5;
pub const CONTAINER_VERSION: u8 = 1;
/// Response expected + container present + CRC not computed.
pub const FLAGS_DEFAULT: u16 = 0x0014;
/// Service data 1 as seen in both yandex/ofd captures; its meaning is not documented publicly.
pub const SERVICE1_DEFAULT: [u8; 2] = [0x10, 0x09];
/// The largest message the length fields can describe.
pub const MESSAGE_LEN_MAX: usize = SESSION_HEADER_LEN + u16::MAX as usize;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// CRC-16/CCITT-FALSE of a container: its length field, its header after the CRC field, then the body.
pub fn container_crc(header: &[u8; CONTAINER_HEADER_LEN], body: &[u8]) -> u16 {
    let mut digest = CRC16.digest();
    digest.update(&header[..2]);
    digest.update(&header[4..]);
    digest.update(body);
    digest.finalize()
}

/// CRC-16/CCITT-FALSE of arbitrary bytes (exposed for tests and tools).
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

/// The 16-byte ASCII FN number of the session header: up to 16 digits, padded with spaces.
pub fn fn_ascii(fn_number: &str) -> Result<[u8; 16], EnvelopeError> {
    let bad = || EnvelopeError::BadFnNumber(fn_number.to_owned());
    if fn_number.len() > 16 || !fn_number.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return Err(bad());
    }
    let mut out = [b' '; 16];
    out[..fn_number.len()].copy_from_slice(fn_number.as_bytes());
    Ok(out)
}

/// The 8-byte BCD FN number of the container header; a space (padding) becomes the nibble F.
pub fn fn_bcd(fn_number: &str) -> Result<[u8; 8], EnvelopeError> {
    let ascii = fn_ascii(fn_number)?;
    let nibble = |b: u8| if b == b' ' { 0xF } else { b - b'0' };
    let mut out = [0u8; 8];
    for (i, pair) in ascii.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    Ok(out)
}

/// An A-protocol (application protocol) version of the session header, as its two wire bytes.
///
/// Only the versions in [`AppVersion::ALL`] can be built, so every frame this crate decodes or writes
/// carries one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppVersion([u8; 2]);

impl AppVersion {
    /// `00 01`: the version of every capture in yandex/ofd and the one its encoder always writes.
    pub const V0001: AppVersion = AppVersion([0x00, 0x01]);
    /// `00 02`.
    pub const V0002: AppVersion = AppVersion([0x00, 0x02]);
    /// `01 00`.
    pub const V0100: AppVersion = AppVersion([0x01, 0x00]);
    /// `01 05`.
    pub const V0105: AppVersion = AppVersion([0x01, 0x05]);
    /// `01 10`.
    pub const V0110: AppVersion = AppVersion([0x01, 0x10]);

    /// Every version a session header may carry: exactly the set the reference implementation accepts.
    /// Public source: yandex/ofd, `ofd/protocol.py`, the set `SessionHeader.PVERA` that
    /// `SessionHeader.unpack_from` checks (its early revisions held only `00 01` and `00 02`); the
    /// repository's `docs/protocols.md`, "Protocol versions", records it. Anything else is refused with
    /// [`EnvelopeError::BadAppVersion`]. No public source gives a meaning for the individual values, so none
    /// is assumed here: the version is carried, compared and mirrored, never interpreted.
    pub const ALL: [AppVersion; 5] = [
        Self::V0001,
        Self::V0002,
        Self::V0100,
        Self::V0105,
        Self::V0110,
    ];

    /// The version written by [`Frame::new`] and [`build_message`], as the reference encoder does.
    pub const DEFAULT: AppVersion = Self::V0001;

    /// The version these two wire bytes name, or `BadAppVersion` when it is not one of [`Self::ALL`].
    pub fn from_bytes(bytes: [u8; 2]) -> Result<Self, EnvelopeError> {
        let version = AppVersion(bytes);
        if Self::ALL.contains(&version) {
            Ok(version)
        } else {
            Err(EnvelopeError::BadAppVersion(bytes))
        }
    }

    /// The two wire bytes.
    pub const fn bytes(self) -> [u8; 2] {
        self.0
    }
}

impl std::fmt::Display for AppVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x} {:02x}", self.0[0], self.0[1])
    }
}

/// The session-level header (30 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeader {
    /// The A-protocol version; a reply carries the version of its request.
    pub a_protocol: AppVersion,
    pub fn_number: [u8; 16],
    /// Bytes of container (header + body) that follow this header.
    pub container_len: u16,
    pub flags: u16,
    pub crc: u16,
}

impl SessionHeader {
    pub fn encode(&self) -> [u8; SESSION_HEADER_LEN] {
        let mut out = [0u8; SESSION_HEADER_LEN];
        out[..4].copy_from_slice(&SIGNATURE);
        out[4..6].copy_from_slice(&S_PROTOCOL);
        out[6..8].copy_from_slice(&self.a_protocol.bytes());
        out[8..24].copy_from_slice(&self.fn_number);
        out[24..26].copy_from_slice(&self.container_len.to_le_bytes());
        out[26..28].copy_from_slice(&self.flags.to_le_bytes());
        out[28..30].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// Decodes the first 30 bytes, checking the signature, the S-protocol version and that the A-protocol
    /// version is one of [`AppVersion::ALL`].
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let b: &[u8; SESSION_HEADER_LEN] = bytes
            .get(..SESSION_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(EnvelopeError::Short {
                needed: SESSION_HEADER_LEN,
                got: bytes.len(),
            })?;
        let sig = [b[0], b[1], b[2], b[3]];
        if sig != SIGNATURE {
            return Err(EnvelopeError::BadSignature(sig));
        }
        if [b[4], b[5]] != S_PROTOCOL {
            return Err(EnvelopeError::BadSessionVersion([b[4], b[5]]));
        }
        let a_protocol = AppVersion::from_bytes([b[6], b[7]])?;
        let mut fn_number = [0u8; 16];
        fn_number.copy_from_slice(&b[8..24]);
        Ok(Self {
            a_protocol,
            fn_number,
            container_len: u16::from_le_bytes([b[24], b[25]]),
            flags: u16::from_le_bytes([b[26], b[27]]),
            crc: u16::from_le_bytes([b[28], b[29]]),
        })
    }

    /// The FN number without its space padding (non-ASCII bytes are replaced, never trusted).
    pub fn fn_number_str(&self) -> String {
        String::from_utf8_lossy(&self.fn_number)
            .trim_end()
            .to_owned()
    }
}

/// The container header (32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHeader {
    /// Container length: this header plus the body.
    pub len: u16,
    pub crc: u16,
    pub doc_type: u8,
    pub service1: [u8; 2],
    pub fn_bcd: [u8; 8],
    /// FD number, 3 bytes big-endian on the wire.
    pub fd_number: u32,
    pub service2: [u8; 12],
}

impl ContainerHeader {
    /// Encodes the header; an FD number above 0xFFFFFF is refused by `Frame::seal`, here it is truncated.
    pub fn encode(&self) -> [u8; CONTAINER_HEADER_LEN] {
        let mut out = [0u8; CONTAINER_HEADER_LEN];
        out[..2].copy_from_slice(&self.len.to_le_bytes());
        out[2..4].copy_from_slice(&self.crc.to_le_bytes());
        out[4] = MESSAGE_TYPE;
        out[5] = self.doc_type;
        out[6] = CONTAINER_VERSION;
        out[7..9].copy_from_slice(&self.service1);
        out[9..17].copy_from_slice(&self.fn_bcd);
        out[17..20].copy_from_slice(&self.fd_number.to_be_bytes()[1..]);
        out[20..32].copy_from_slice(&self.service2);
        out
    }

    /// Decodes the first 32 bytes, checking the message type and version.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let b: &[u8; CONTAINER_HEADER_LEN] = bytes
            .get(..CONTAINER_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(EnvelopeError::Short {
                needed: CONTAINER_HEADER_LEN,
                got: bytes.len(),
            })?;
        if b[4] != MESSAGE_TYPE {
            return Err(EnvelopeError::BadMessageType(b[4]));
        }
        if b[6] != CONTAINER_VERSION {
            return Err(EnvelopeError::BadContainerVersion(b[6]));
        }
        let mut fn_bcd = [0u8; 8];
        fn_bcd.copy_from_slice(&b[9..17]);
        let mut service2 = [0u8; 12];
        service2.copy_from_slice(&b[20..32]);
        Ok(Self {
            len: u16::from_le_bytes([b[0], b[1]]),
            crc: u16::from_le_bytes([b[2], b[3]]),
            doc_type: b[5],
            service1: [b[7], b[8]],
            fn_bcd,
            fd_number: u32::from_be_bytes([0, b[17], b[18], b[19]]),
            service2,
        })
    }
}

/// A whole message with a validated envelope; the body is not decoded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub session: SessionHeader,
    pub container: ContainerHeader,
    pub body: Vec<u8>,
}

impl Frame {
    /// A sealed frame with default flags, service data and A-protocol version [`AppVersion::DEFAULT`].
    pub fn new(
        fn_number: &str,
        doc_type: u8,
        fd_number: u32,
        body: Vec<u8>,
    ) -> Result<Self, EnvelopeError> {
        Self::new_in(AppVersion::DEFAULT, fn_number, doc_type, fd_number, body)
    }

    /// A sealed frame in A-protocol `version`, with default flags and service data.
    pub fn new_in(
        version: AppVersion,
        fn_number: &str,
        doc_type: u8,
        fd_number: u32,
        body: Vec<u8>,
    ) -> Result<Self, EnvelopeError> {
        let mut frame = Self {
            session: SessionHeader {
                a_protocol: version,
                fn_number: fn_ascii(fn_number)?,
                container_len: 0,
                flags: FLAGS_DEFAULT,
                crc: 0,
            },
            container: ContainerHeader {
                len: 0,
                crc: 0,
                doc_type,
                service1: SERVICE1_DEFAULT,
                fn_bcd: fn_bcd(fn_number)?,
                fd_number,
                service2: [0; 12],
            },
            body,
        };
        frame.seal()?;
        Ok(frame)
    }

    /// The A-protocol version of the session header.
    pub fn version(&self) -> AppVersion {
        self.session.a_protocol
    }

    /// Recomputes both length fields and the container CRC from the body.
    pub fn seal(&mut self) -> Result<(), EnvelopeError> {
        if self.container.fd_number > 0x00FF_FFFF {
            return Err(EnvelopeError::FdNumberTooLarge(self.container.fd_number));
        }
        let len = u16::try_from(CONTAINER_HEADER_LEN + self.body.len())
            .map_err(|_| EnvelopeError::BodyTooLarge(self.body.len()))?;
        self.session.container_len = len;
        self.container.len = len;
        self.container.crc = container_crc(&self.container.encode(), &self.body);
        Ok(())
    }

    /// Writes the frame exactly as its fields say (call `seal` first unless testing bad frames).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(SESSION_HEADER_LEN + CONTAINER_HEADER_LEN + self.body.len());
        out.extend_from_slice(&self.session.encode());
        out.extend_from_slice(&self.container.encode());
        out.extend_from_slice(&self.body);
        out
    }

    /// Parses exactly one message, validating signature, versions, lengths and the container CRC.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let session = SessionHeader::decode(bytes)?;
        if usize::from(session.container_len) < CONTAINER_HEADER_LEN {
            return Err(EnvelopeError::ContainerTooShort(session.container_len));
        }
        let expected = SESSION_HEADER_LEN + usize::from(session.container_len);
        if bytes.len() != expected {
            return Err(EnvelopeError::SizeMismatch {
                expected,
                got: bytes.len(),
            });
        }
        let raw_header: [u8; CONTAINER_HEADER_LEN] = bytes
            [SESSION_HEADER_LEN..SESSION_HEADER_LEN + CONTAINER_HEADER_LEN]
            .try_into()
            .map_err(|_| EnvelopeError::Short {
                needed: SESSION_HEADER_LEN + CONTAINER_HEADER_LEN,
                got: bytes.len(),
            })?;
        let container = ContainerHeader::decode(&raw_header)?;
        if container.len != session.container_len {
            return Err(EnvelopeError::LengthMismatch {
                session: session.container_len,
                container: container.len,
            });
        }
        let body = &bytes[SESSION_HEADER_LEN + CONTAINER_HEADER_LEN..];
        let computed = container_crc(&raw_header, body);
        if computed != container.crc {
            return Err(EnvelopeError::BadCrc {
                stated: container.crc,
                computed,
            });
        }
        Ok(Self {
            session,
            container,
            body: body.to_vec(),
        })
    }

    /// Decodes the body: the document TLV and the raw trailer after it.
    pub fn document(&self) -> Result<(Tlv, &[u8]), EnvelopeError> {
        let (doc, used) = decode_document_prefix(&self.body)?;
        if u16::from(self.container.doc_type) != doc.tag {
            return Err(EnvelopeError::DocTypeMismatch {
                header: self.container.doc_type,
                document: doc.tag,
            });
        }
        Ok((doc, &self.body[used..]))
    }
}

/// A parsed message with its decoded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub frame: Frame,
    pub document: Tlv,
    /// Bytes after the document (a real FN's message sign); empty for our own messages.
    pub trailer: Vec<u8>,
}

/// Builds a full message (session header + container header + body) carrying one document, in A-protocol
/// version [`AppVersion::DEFAULT`].
pub fn build_message(
    fn_number: &str,
    fd_number: u32,
    document: &Tlv,
) -> Result<Vec<u8>, EnvelopeError> {
    build_message_in(AppVersion::DEFAULT, fn_number, fd_number, document)
}

/// Builds a full message carrying one document, in A-protocol `version`.
pub fn build_message_in(
    version: AppVersion,
    fn_number: &str,
    fd_number: u32,
    document: &Tlv,
) -> Result<Vec<u8>, EnvelopeError> {
    let doc_type = DocCode::from_tag(document.tag)
        .and_then(|code| u8::try_from(code.tag()).ok())
        .ok_or(crate::error::TlvError::NotADocument { tag: document.tag })?;
    let body = document.encode()?;
    Ok(Frame::new_in(version, fn_number, doc_type, fd_number, body)?.encode())
}

/// The FN number (without padding) and FD number a message names in its session and container
/// headers, read without checking the body: what a relay needs to journal against before it parses.
pub fn message_ids(message: &[u8]) -> Result<(String, u32), EnvelopeError> {
    let session = SessionHeader::decode(message)?;
    let container = message
        .get(SESSION_HEADER_LEN..SESSION_HEADER_LEN + CONTAINER_HEADER_LEN)
        .ok_or(EnvelopeError::Short {
            needed: SESSION_HEADER_LEN + CONTAINER_HEADER_LEN,
            got: message.len(),
        })?;
    let container = ContainerHeader::decode(container)?;
    Ok((
        session.fn_number_str().trim().to_owned(),
        container.fd_number,
    ))
}

/// Parses one whole message and decodes its document.
pub fn parse_message(bytes: &[u8]) -> Result<Message, EnvelopeError> {
    let frame = Frame::parse(bytes)?;
    let (document, trailer) = frame.document()?;
    let trailer = trailer.to_vec();
    Ok(Message {
        frame,
        document,
        trailer,
    })
}

/// Builds the OFD's reply to `request`: document type 7 carrying `ack`, same A-protocol version, FN, FD number
/// and service data 1.
pub fn build_reply(request: &Frame, ack: &OperatorAck) -> Result<Vec<u8>, EnvelopeError> {
    let body = ack.to_tlv().encode()?;
    let mut frame = Frame {
        session: SessionHeader {
            a_protocol: request.session.a_protocol,
            fn_number: request.session.fn_number,
            container_len: 0,
            flags: FLAGS_DEFAULT,
            crc: 0,
        },
        container: ContainerHeader {
            len: 0,
            crc: 0,
            doc_type: DocCode::OperatorAck as u8,
            service1: request.container.service1,
            fn_bcd: request.container.fn_bcd,
            fd_number: request.container.fd_number,
            service2: [0; 12],
        },
        body,
    };
    frame.seal()?;
    Ok(frame.encode())
}

/// Parses an OFD reply of any version in [`AppVersion::ALL`] and reads its operator acknowledgement; the
/// version is in the returned frame ([`Frame::version`]).
pub fn parse_reply(bytes: &[u8]) -> Result<(Frame, OperatorAck), EnvelopeError> {
    let message = parse_message(bytes)?;
    let ack = OperatorAck::from_tlv(&message.document)?;
    Ok((message.frame, ack))
}

/// How a stream reader should proceed with the bytes it has buffered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read at least this many more bytes.
    More(usize),
    /// The first message is complete and this long; the rest of the buffer belongs to the next one.
    Complete(usize),
}

/// Says how many bytes complete the message at the start of `buf`, refusing messages above `max_len`.
///
/// Garbage is refused as early as possible: the signature is checked on its first byte.
pub fn bytes_needed(buf: &[u8], max_len: usize) -> Result<Need, EnvelopeError> {
    if buf.len() < SESSION_HEADER_LEN {
        let n = buf.len().min(SIGNATURE.len());
        if buf[..n] != SIGNATURE[..n] {
            let mut sig = [0u8; 4];
            sig[..n].copy_from_slice(&buf[..n]);
            return Err(EnvelopeError::BadSignature(sig));
        }
        return Ok(Need::More(SESSION_HEADER_LEN - buf.len()));
    }
    let session = SessionHeader::decode(buf)?;
    if usize::from(session.container_len) < CONTAINER_HEADER_LEN {
        return Err(EnvelopeError::ContainerTooShort(session.container_len));
    }
    let total = SESSION_HEADER_LEN + usize::from(session.container_len);
    if total > max_len {
        return Err(EnvelopeError::TooLarge {
            len: total,
            max: max_len,
        });
    }
    Ok(if buf.len() < total {
        Need::More(total - buf.len())
    } else {
        Need::Complete(total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn fn_number_to_bcd_pads_with_f() {
        assert_eq!(
            fn_bcd("999907891234567").unwrap(),
            [0x99, 0x99, 0x07, 0x89, 0x12, 0x34, 0x56, 0x7f]
        );
        assert!(fn_bcd("12345678901234567").is_err());
        assert!(fn_bcd("12a").is_err());
    }

    #[test]
    fn fd_number_over_three_bytes_is_refused() {
        assert_eq!(
            Frame::new("9999078900005488", 3, 0x0100_0000, vec![]),
            Err(EnvelopeError::FdNumberTooLarge(0x0100_0000))
        );
    }

    #[test]
    fn bytes_needed_rejects_garbage_at_the_first_byte() {
        assert_eq!(
            bytes_needed(b"G", 1000),
            Err(EnvelopeError::BadSignature([b'G', 0, 0, 0]))
        );
        assert_eq!(bytes_needed(&[], 1000), Ok(Need::More(30)));
        assert_eq!(bytes_needed(&SIGNATURE[..2], 1000), Ok(Need::More(28)));
    }
}
