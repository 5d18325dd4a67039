//! Framing of Shtrih-M protocol v1: control bytes, command codes, LRC, frame encoding and a streaming decoder.
//!
//! A frame is `STX LEN PAYLOAD LRC`, where the payload is `CMD[1 or 2] PASSWORD[4] PARAMS` from the host
//! and `CMD[1 or 2] ERR DATA` from the device. LEN counts the payload bytes, and LRC is the XOR of LEN and
//! every payload byte. There is no byte stuffing, so the decoder only needs LEN to find the frame end.
//! Sources: oleg-golovanov/pyshtrih `protocol.py` (`lrc(len + payload)`), afilippov1985/kkt-shtrih
//! `Transport8.php` (XOR seeded with the length), shtrih-m/javapos_shtrih `PrinterProtocol_1.java`.

use std::fmt;

use crate::error::{DecodeError, EncodeError};

/// Enquiry: the host asks whether the device is idle (NAK) or holds an answer (ACK).
pub const ENQ: u8 = 0x05;
/// Positive acknowledgement: "frame accepted" or, in reply to ENQ, "an answer is pending".
pub const ACK: u8 = 0x06;
/// Negative acknowledgement: "bad frame, resend" or, in reply to ENQ, "idle, send your command".
pub const NAK: u8 = 0x15;
/// Start of a frame.
pub const STX: u8 = 0x02;
/// Filler byte that devices (notably over TCP) emit around control bytes; readers skip it between frames
/// (afilippov1985/kkt-shtrih `Transport8.php` comment; javapos `readControlByte`; fr_drv_ng issue #97 trace `<- FF`).
pub const FILLER: u8 = 0xFF;
/// LEN is one byte, so a payload holds at most 255 bytes.
pub const PAYLOAD_LEN_MAX: usize = 255;

/// A command code: one byte (`10`, `E0`, ...) or two bytes `FF xx` for the FN command family.
///
/// The value is kept as a `u16` (`0x0010`, `0xFF45`); a lone `0xFF` is not a valid one-byte code because
/// it always introduces a second byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandCode(u16);

impl CommandCode {
    /// Short status (`10`).
    pub const SHORT_STATUS: Self = Self(0x10);
    /// Full status (`11`).
    pub const FULL_STATUS: Self = Self(0x11);
    /// Print a line of text (`17`).
    pub const PRINT_STRING: Self = Self(0x17);
    /// X report, prints the shift totals without closing the shift (`40`).
    pub const X_REPORT: Self = Self(0x40);
    /// Z report, prints the totals and closes the shift (`41`).
    pub const Z_REPORT: Self = Self(0x41);
    /// Legacy sale (`80`).
    pub const SALE: Self = Self(0x80);
    /// Legacy sale return (`82`).
    pub const RETURN_SALE: Self = Self(0x82);
    /// Legacy close check (`85`).
    pub const CLOSE_CHECK: Self = Self(0x85);
    /// Cancel the open receipt (`88`).
    pub const CANCEL_RECEIPT: Self = Self(0x88);
    /// Open a receipt of a given type (`8D`).
    pub const OPEN_RECEIPT: Self = Self(0x8D);
    /// Legacy open shift, prints the shift-open report (`E0`).
    pub const OPEN_SHIFT: Self = Self(0xE0);
    /// Device type, the only command without a password (`FC`).
    pub const DEVICE_TYPE: Self = Self(0xFC);
    /// FN status (`FF01`).
    pub const FN_STATUS: Self = Self(0xFF01);
    /// Find a fiscal document by number (`FF0A`).
    pub const FN_FIND_DOCUMENT: Self = Self(0xFF0A);
    /// Open the shift in the FN (`FF0B`).
    pub const FN_OPEN_SHIFT: Self = Self(0xFF0B);
    /// Pass a TLV to the open document (`FF0C`).
    pub const FN_SEND_TLV: Self = Self(0xFF0C);
    /// Exchange buffer: status of the FN's outgoing message (`FF30`).
    pub const FN_READ_BUFFER_STATUS: Self = Self(0xFF30);
    /// Exchange buffer: read a block of the outgoing message (`FF31`).
    pub const FN_READ_BUFFER_BLOCK: Self = Self(0xFF31);
    /// Exchange buffer: start writing the OFD's reply (`FF32`).
    pub const FN_START_WRITE_BUFFER: Self = Self(0xFF32);
    /// Exchange buffer: write a block of the OFD's reply (`FF33`).
    pub const FN_WRITE_BUFFER_BLOCK: Self = Self(0xFF33);
    /// OFD exchange status (`FF39`).
    pub const FN_EXCHANGE_STATUS: Self = Self(0xFF39);
    /// Read a fiscal document as TLV: header (`FF3A`).
    pub const FN_READ_DOCUMENT: Self = Self(0xFF3A);
    /// Read a fiscal document as TLV: next block (`FF3B`).
    pub const FN_READ_DOCUMENT_BLOCK: Self = Self(0xFF3B);
    /// Read the OFD ticket of a fiscal document (`FF3C`).
    pub const FN_READ_TICKET: Self = Self(0xFF3C);
    /// Count of fiscal documents without an OFD ticket (`FF3F`).
    pub const FN_UNCONFIRMED_COUNT: Self = Self(0xFF3F);
    /// Current shift parameters (`FF40`).
    pub const FN_SHIFT_PARAMS: Self = Self(0xFF40);
    /// Begin opening a shift (`FF41`).
    pub const FN_BEGIN_OPEN_SHIFT: Self = Self(0xFF41);
    /// Begin closing a shift (`FF42`).
    pub const FN_BEGIN_CLOSE_SHIFT: Self = Self(0xFF42);
    /// Close the shift in the FN (`FF43`).
    pub const FN_CLOSE_SHIFT: Self = Self(0xFF43);
    /// Close the receipt, extended form (`FF45`).
    pub const FN_CLOSE_RECEIPT: Self = Self(0xFF45);
    /// Receipt item, FFD 1.05 form (`FF46`).
    pub const FN_OPERATION: Self = Self(0xFF46);

    /// Builds a code from its numeric value; `None` for a lone `0xFF` or a two-byte value not starting with `FF`.
    pub const fn from_u16(value: u16) -> Option<Self> {
        if value < 0xFF || value >> 8 == 0xFF {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The numeric value (`0x10`, `0xFF45`).
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Number of bytes the code takes on the wire.
    pub const fn wire_len(self) -> usize {
        if self.0 > 0xFF { 2 } else { 1 }
    }

    /// Appends the code's wire bytes to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let [high, low] = self.0.to_be_bytes();
        if self.0 > 0xFF {
            out.push(high);
        }
        out.push(low);
    }

    /// Splits a payload into its command code and the bytes after it.
    pub fn split(payload: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        match payload {
            [] => Err(DecodeError::EmptyPayload),
            [FILLER] => Err(DecodeError::Truncated {
                field: "command code",
            }),
            [FILLER, second, rest @ ..] => Ok((Self(0xFF00 | u16::from(*second)), rest)),
            [first, rest @ ..] => Ok((Self(u16::from(*first)), rest)),
        }
    }
}

impl fmt::Display for CommandCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0xFF {
            write!(f, "{:04X}", self.0)
        } else {
            write!(f, "{:02X}", self.0)
        }
    }
}

impl fmt::Debug for CommandCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandCode({self})")
    }
}

/// XOR of the LEN byte and every payload byte.
pub fn lrc(len: u8, payload: &[u8]) -> u8 {
    payload.iter().fold(len, |acc, b| acc ^ b)
}

/// Wraps a payload into `STX LEN PAYLOAD LRC`.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let len = u8::try_from(payload.len())
        .ok()
        .filter(|len| *len > 0)
        .ok_or(EncodeError::PayloadLength { len: payload.len() })?;
    let mut frame = Vec::with_capacity(payload.len() + 3);
    frame.push(STX);
    frame.push(len);
    frame.extend_from_slice(payload);
    frame.push(lrc(len, payload));
    Ok(frame)
}

/// Builds a host frame `STX LEN CMD PASSWORD(u32 LE) PARAMS LRC`.
pub fn encode_request(
    cmd: CommandCode,
    password: u32,
    params: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut payload = Vec::with_capacity(cmd.wire_len() + 4 + params.len());
    cmd.write_to(&mut payload);
    payload.extend_from_slice(&password.to_le_bytes());
    payload.extend_from_slice(params);
    encode_frame(&payload)
}

/// Builds a device frame `STX LEN CMD ERR DATA LRC`.
pub fn encode_answer(cmd: CommandCode, error: u8, data: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut payload = Vec::with_capacity(cmd.wire_len() + 1 + data.len());
    cmd.write_to(&mut payload);
    payload.push(error);
    payload.extend_from_slice(data);
    encode_frame(&payload)
}

/// Parses exactly one whole frame (`STX LEN PAYLOAD LRC`, no filler) and returns its payload.
pub fn decode_frame(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    // The streaming decoder skips filler between frames; a whole frame has none, before or after.
    if bytes.first().is_some_and(|first| *first != STX) {
        return Err(FrameError::NotAFrame);
    }
    let mut decoder = FrameDecoder::new();
    let mut found = None;
    for (index, byte) in bytes.iter().enumerate() {
        match decoder.push(*byte) {
            None => {}
            Some(Ok(Token::Frame(payload))) if index + 1 == bytes.len() => found = Some(payload),
            Some(Ok(_)) => return Err(FrameError::NotAFrame),
            Some(Err(error)) => return Err(error),
        }
    }
    match found {
        Some(payload) => Ok(payload),
        None if decoder.is_mid_frame() => Err(FrameError::Truncated {
            have: decoder.buffered(),
            want: decoder.expected(),
        }),
        None => Err(FrameError::NotAFrame),
    }
}

/// What the streaming decoder recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A byte seen between frames that is neither STX nor filler: normally ENQ, ACK or NAK.
    Control(u8),
    /// A complete frame with a correct LRC; the payload is `CMD..last data byte`.
    Frame(Vec<u8>),
}

/// A malformed frame on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The LRC byte did not match; the payload is kept for logging.
    #[error("bad LRC: computed {computed:#04x}, received {received:#04x}")]
    BadLrc {
        /// LRC computed over LEN and the payload.
        computed: u8,
        /// LRC byte that arrived.
        received: u8,
        /// The payload as received.
        payload: Vec<u8>,
    },
    /// A frame announced LEN 0, which cannot hold a command code.
    #[error("frame with LEN 0")]
    ZeroLength,
    /// The frame stopped arriving before LEN bytes and the LRC were read (byte timeout).
    #[error("frame truncated: {have} of {want} bytes after LEN")]
    Truncated {
        /// Bytes received after LEN (payload and LRC).
        have: usize,
        /// Bytes LEN announced plus the LRC.
        want: usize,
    },
    /// The bytes are not exactly one frame.
    #[error("not exactly one frame")]
    NotAFrame,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecodeState {
    Between,
    Len,
    Body { len: u8 },
}

/// Streaming frame decoder used by both sides: bytes in, [`Token`]s or [`FrameError`]s out.
///
/// Between frames it skips [`FILLER`] and reports every other non-STX byte as a [`Token::Control`].
/// Inside a frame every byte is data (0xFF included). It never panics and its buffer is bounded by LEN.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    state: DecodeState,
    body: Vec<u8>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder waiting for the first byte.
    pub fn new() -> Self {
        Self {
            state: DecodeState::Between,
            body: Vec::new(),
        }
    }

    /// True while a frame has started (STX seen) and is not complete.
    pub fn is_mid_frame(&self) -> bool {
        self.state != DecodeState::Between
    }

    fn buffered(&self) -> usize {
        self.body.len()
    }

    fn expected(&self) -> usize {
        match self.state {
            DecodeState::Body { len } => usize::from(len) + 1,
            _ => 0,
        }
    }

    /// Drops any partial frame, for example when the peer restarted.
    pub fn reset(&mut self) {
        self.state = DecodeState::Between;
        self.body.clear();
    }

    /// Called when the byte timeout expired: a partial frame becomes [`FrameError::Truncated`].
    pub fn timeout(&mut self) -> Option<FrameError> {
        if !self.is_mid_frame() {
            return None;
        }
        let error = FrameError::Truncated {
            have: self.buffered(),
            want: self.expected(),
        };
        self.reset();
        Some(error)
    }

    /// Feeds one byte.
    pub fn push(&mut self, byte: u8) -> Option<Result<Token, FrameError>> {
        match self.state {
            DecodeState::Between => match byte {
                STX => {
                    self.state = DecodeState::Len;
                    None
                }
                FILLER => None,
                other => Some(Ok(Token::Control(other))),
            },
            DecodeState::Len => {
                if byte == 0 {
                    self.reset();
                    return Some(Err(FrameError::ZeroLength));
                }
                self.state = DecodeState::Body { len: byte };
                self.body.clear();
                None
            }
            DecodeState::Body { len } => {
                if self.body.len() < usize::from(len) {
                    self.body.push(byte);
                    return None;
                }
                let payload = std::mem::take(&mut self.body);
                self.state = DecodeState::Between;
                let computed = lrc(len, &payload);
                if computed == byte {
                    Some(Ok(Token::Frame(payload)))
                } else {
                    Some(Err(FrameError::BadLrc {
                        computed,
                        received: byte,
                        payload,
                    }))
                }
            }
        }
    }

    /// Feeds a chunk of bytes and collects everything recognised.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Token, FrameError>> {
        bytes.iter().filter_map(|byte| self.push(*byte)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrc_of_short_status_password_1() {
        assert_eq!(lrc(5, &[0x10, 1, 0, 0, 0]), 0x14);
    }

    #[test]
    fn two_byte_codes_round_trip() {
        let mut out = Vec::new();
        CommandCode::FN_CLOSE_RECEIPT.write_to(&mut out);
        assert_eq!(out, [0xFF, 0x45]);
        let (code, rest) = CommandCode::split(&[0xFF, 0x45, 7]).unwrap();
        assert_eq!((code, rest), (CommandCode::FN_CLOSE_RECEIPT, &[7u8][..]));
        assert_eq!(
            CommandCode::split(&[0xFF]),
            Err(DecodeError::Truncated {
                field: "command code"
            })
        );
        assert_eq!(CommandCode::from_u16(0xFF), None);
        assert_eq!(CommandCode::from_u16(0x1245), None);
        assert_eq!(CommandCode::FN_CLOSE_RECEIPT.to_string(), "FF45");
    }

    #[test]
    fn decoder_skips_filler_and_reports_controls() {
        let mut decoder = FrameDecoder::new();
        let got = decoder.feed(&[FILLER, NAK, FILLER, STX, 1, 0xFF, 0xFF ^ 1, ACK]);
        assert_eq!(
            got,
            vec![
                Ok(Token::Control(NAK)),
                Ok(Token::Frame(vec![0xFF])),
                Ok(Token::Control(ACK))
            ]
        );
    }

    #[test]
    fn decoder_reports_bad_lrc_zero_len_and_truncation() {
        let mut decoder = FrameDecoder::new();
        let got = decoder.feed(&[STX, 1, 0x10, 0x00, STX, 0]);
        assert_eq!(
            got,
            vec![
                Err(FrameError::BadLrc {
                    computed: 0x11,
                    received: 0,
                    payload: vec![0x10]
                }),
                Err(FrameError::ZeroLength)
            ]
        );
        assert!(decoder.feed(&[STX, 3, 1]).is_empty());
        assert_eq!(
            decoder.timeout(),
            Some(FrameError::Truncated { have: 1, want: 4 })
        );
        assert_eq!(decoder.timeout(), None);
    }

    #[test]
    fn whole_frame_has_no_filler_before_or_after() {
        // Found by the frame_decoder fuzz target: leading filler was skipped, so the bytes did not
        // re-encode to themselves, while trailing filler was refused.
        let frame = [STX, 1, 0x10, 0x11];
        assert_eq!(decode_frame(&frame), Ok(vec![0x10]));
        assert_eq!(
            decode_frame(&[FILLER, STX, 1, 0x10, 0x11]),
            Err(FrameError::NotAFrame)
        );
        assert_eq!(
            decode_frame(&[STX, 1, 0x10, 0x11, FILLER]),
            Err(FrameError::NotAFrame)
        );
        assert_eq!(decode_frame(&[FILLER, STX, 1]), Err(FrameError::NotAFrame));
        assert_eq!(decode_frame(&[]), Err(FrameError::NotAFrame));
    }

    #[test]
    fn frame_length_limits() {
        assert_eq!(
            encode_frame(&[]),
            Err(EncodeError::PayloadLength { len: 0 })
        );
        assert!(encode_frame(&[0; 255]).is_ok());
        assert_eq!(
            encode_frame(&[0; 256]),
            Err(EncodeError::PayloadLength { len: 256 })
        );
    }
}
