//! Framing of Shtrih-M protocol v1: control bytes, LRC, frame encoding and a streaming decoder; command
//! codes are in `code.rs`, frame errors in `error.rs` (both re-exported here).
//!
//! A frame is `STX LEN PAYLOAD LRC`, where the payload is `CMD[1 or 2] PASSWORD[4] PARAMS` from the host
//! and `CMD[1 or 2] ERR DATA` from the device. LEN counts the payload bytes, and LRC is the XOR of LEN and
//! every payload byte. There is no byte stuffing, so the decoder only needs LEN to find the frame end.
//! Sources: oleg-golovanov/pyshtrih `protocol.py` (`lrc(len + payload)`), afilippov1985/kkt-shtrih
//! `Transport8.php` (XOR seeded with the length), shtrih-m/javapos_shtrih `PrinterProtocol_1.java`.

pub use crate::code::CommandCode;
pub use crate::error::FrameError;
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

impl CommandCode {
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
