//! Typed device answers: decode (adapter) and encode (emulator) of `CMD ERR DATA` payloads.
//!
//! A non-zero ERR becomes [`Reply::Error`] whatever the command; a zero ERR is decoded by the command's layout.
//! Status answers keep unknown trailing bytes (`tail`) because firmware versions append fields; every other
//! layout is strict, so a surprise is a [`DecodeError`] rather than a silent misread.

use crate::error::{DecodeError, DeviceError, EncodeError};
use crate::frame::{CommandCode, decode_frame, encode_frame};
use crate::wire::{MONEY_BYTES, Reader, Text, put_uint};

mod status;

pub use status::{DeviceMode, FnStatus, FullStatus, ShortStatus};

/// `FF0B` / `FF43` answer: `shift_number(2) fd_number(4) fpd(4)` (kkt-shtrih `Response/FNOpenSession.php`
/// `vSessionNumber/VDocumentNumber/VFiscalSign`; javapos `FSOpenDay.java`, `FSDayClose.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShiftDocument {
    /// Shift number.
    pub shift_number: u16,
    /// Fiscal document number of the shift report.
    pub fd_number: u32,
    /// Fiscal sign (FPD).
    pub fpd: u32,
}

/// `FF45` answer: `change(5) fd_number(4) fpd(4)` (kkt-shtrih `Response/FNCloseCheckEx.php`; fr_drv_ng
/// issue #247 trace: change 0, FD 17884, FPD 289979573).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptDocument {
    /// Change, kopecks.
    pub change: u64,
    /// Fiscal document number of the receipt.
    pub fd_number: u32,
    /// Fiscal sign (FPD).
    pub fpd: u32,
}

/// `FF0A` answer: `doc_type(1) ticket_received(1) data(N)`, data depending on the type (javapos
/// `FSFindDocument.java`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundDocument {
    /// FFD document code (1 registration, 2 shift open, 3 receipt, 5 shift close, ...).
    pub doc_type: u8,
    /// 1 if the OFD ticket for the document was received, 0 if not.
    pub ticket_received: u8,
    /// Type-specific document data.
    pub data: Vec<u8>,
}

/// `FF3A` answer: `doc_type(2) size(2)` of the document the following `FF3B` calls return
/// (javapos `FSReadDocument.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentHeader {
    /// STLV tag of the document (FFD document code).
    pub doc_type: u16,
    /// Total TLV bytes of the document.
    pub size: u16,
}

/// `FF39` answer: `status(1) read_in_progress(1) queue_len(2) first_fd(4) first_datetime(5)`
/// (javapos `FSReadCommStatus.java`; 13 bytes, as in the fr_drv_ng issue #11 trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeStatus {
    /// Bit 0 transport connected, bit 1 message for the OFD waiting, bit 2 waiting for the OFD ticket,
    /// bit 3 command from the OFD, bit 4 connection settings changed, bit 5 waiting for a command answer.
    pub status: u8,
    /// 1 while a message is being read out (FF30/FF31 in progress).
    pub read_in_progress: u8,
    /// Messages queued for the OFD.
    pub queue_len: u16,
    /// FD number of the first queued document.
    pub first_fd: u32,
    /// Its date and time: year - 2000, month, day, hour, minute.
    pub first_datetime: [u8; 5],
}

/// `FF40` answer: `shift_open(1) shift_number(2) receipt_number(2)` (javapos `FSReadDayParameters.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShiftParams {
    /// 0 closed, 1 open.
    pub shift_open: u8,
    /// Shift number.
    pub shift_number: u16,
    /// Receipt number within the shift.
    pub receipt_number: u16,
}

/// `FF30` answer: `size(2) block_size_max(1)`, size 0 meaning no message (javapos `FSReadBufferStatus.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferStatus {
    /// Bytes of the FN's outgoing message waiting in the buffer.
    pub size: u16,
    /// Largest block one `FF31` may read.
    pub block_size_max: u8,
}

/// `FC` answer: `device_type(1) subtype(1) protocol_version(1) protocol_subversion(1) model(1) language(1)
/// name(N, cp1251)` (pyshtrih `handlers/commands.py` 0xFC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_type: u8,
    pub subtype: u8,
    pub protocol_version: u8,
    pub protocol_subversion: u8,
    pub model: u8,
    pub language: u8,
    pub name: Text,
}

/// A successful answer (ERR = 0), keyed by command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `10`.
    ShortStatus(ShortStatus),
    /// `11`.
    FullStatus(FullStatus),
    /// `FF01`.
    FnStatus(FnStatus),
    /// `FF0B`.
    FnOpenShift(ShiftDocument),
    /// `FF43`.
    FnCloseShift(ShiftDocument),
    /// `FF45`.
    CloseReceipt(ReceiptDocument),
    /// `FF0A`.
    FnFindDocument(FoundDocument),
    /// `FF3A`.
    FnReadDocument(DocumentHeader),
    /// `FF3B`: the next TLV block (javapos `FSReadDocumentBlock.java`).
    FnReadDocumentBlock(Vec<u8>),
    /// `FF3C`: the OFD ticket bytes (javapos `FSReadDocTicket.java`).
    FnReadTicket(Vec<u8>),
    /// `FF39`.
    FnExchangeStatus(ExchangeStatus),
    /// `FF40`.
    FnShiftParams(ShiftParams),
    /// `FF3F`: `count(2)` of fiscal documents without an OFD ticket (pyshtrih 0xFF3F,
    /// "Количество неподтверждённых ФД").
    FnUnconfirmedCount(u16),
    /// `FF30`.
    FnBufferStatus(BufferStatus),
    /// `FF31`: the block read (javapos `FSReadBlock.java`).
    FnBufferBlock(Vec<u8>),
    /// `FF32`: largest block one `FF33` may write (javapos `FSStartWriteBlock.java`).
    FnStartWriteBuffer {
        /// Block size limit.
        block_size_max: u8,
    },
    /// `FC`.
    DeviceType(DeviceInfo),
    /// `85`: `operator(1) change(5)` (pyshtrih 0x85).
    CloseCheck {
        /// Operator number.
        operator: u8,
        /// Change, kopecks.
        change: u64,
    },
    /// ERR only: `FF41`, `FF42`, `FF46`, `FF0C`, `FF33` (javapos `FSStartDayOpen`, `FSWriteBlock`, ...).
    Done(CommandCode),
    /// ERR and the operator number: `17`, `8D`, `88`, `80`, `82`, `40`, `41`, `E0` (pyshtrih
    /// `handlers/commands.py`).
    OperatorDone {
        /// The command answered.
        cmd: CommandCode,
        /// Operator number.
        operator: u8,
    },
}

const DONE: &[CommandCode] = &[
    CommandCode::FN_BEGIN_OPEN_SHIFT,
    CommandCode::FN_BEGIN_CLOSE_SHIFT,
    CommandCode::FN_OPERATION,
    CommandCode::FN_SEND_TLV,
    CommandCode::FN_WRITE_BUFFER_BLOCK,
];

const OPERATOR_DONE: &[CommandCode] = &[
    CommandCode::PRINT_STRING,
    CommandCode::OPEN_RECEIPT,
    CommandCode::CANCEL_RECEIPT,
    CommandCode::SALE,
    CommandCode::RETURN_SALE,
    CommandCode::X_REPORT,
    CommandCode::Z_REPORT,
    CommandCode::OPEN_SHIFT,
];

fn decode_shift_document(r: &mut Reader<'_>) -> Result<ShiftDocument, DecodeError> {
    Ok(ShiftDocument {
        shift_number: r.u16("shift_number")?,
        fd_number: r.u32("fd_number")?,
        fpd: r.u32("fpd")?,
    })
}

fn encode_shift_document(doc: &ShiftDocument, out: &mut Vec<u8>) {
    out.extend_from_slice(&doc.shift_number.to_le_bytes());
    out.extend_from_slice(&doc.fd_number.to_le_bytes());
    out.extend_from_slice(&doc.fpd.to_le_bytes());
}

impl Answer {
    /// The command this answer belongs to.
    pub fn code(&self) -> CommandCode {
        match self {
            Self::ShortStatus(_) => CommandCode::SHORT_STATUS,
            Self::FullStatus(_) => CommandCode::FULL_STATUS,
            Self::FnStatus(_) => CommandCode::FN_STATUS,
            Self::FnOpenShift(_) => CommandCode::FN_OPEN_SHIFT,
            Self::FnCloseShift(_) => CommandCode::FN_CLOSE_SHIFT,
            Self::CloseReceipt(_) => CommandCode::FN_CLOSE_RECEIPT,
            Self::FnFindDocument(_) => CommandCode::FN_FIND_DOCUMENT,
            Self::FnReadDocument(_) => CommandCode::FN_READ_DOCUMENT,
            Self::FnReadDocumentBlock(_) => CommandCode::FN_READ_DOCUMENT_BLOCK,
            Self::FnReadTicket(_) => CommandCode::FN_READ_TICKET,
            Self::FnExchangeStatus(_) => CommandCode::FN_EXCHANGE_STATUS,
            Self::FnShiftParams(_) => CommandCode::FN_SHIFT_PARAMS,
            Self::FnUnconfirmedCount(_) => CommandCode::FN_UNCONFIRMED_COUNT,
            Self::FnBufferStatus(_) => CommandCode::FN_READ_BUFFER_STATUS,
            Self::FnBufferBlock(_) => CommandCode::FN_READ_BUFFER_BLOCK,
            Self::FnStartWriteBuffer { .. } => CommandCode::FN_START_WRITE_BUFFER,
            Self::DeviceType(_) => CommandCode::DEVICE_TYPE,
            Self::CloseCheck { .. } => CommandCode::CLOSE_CHECK,
            Self::Done(cmd) | Self::OperatorDone { cmd, .. } => *cmd,
        }
    }

    /// Decodes the data after a zero ERR byte for command `cmd`.
    pub fn decode(cmd: CommandCode, data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let answer = match cmd {
            CommandCode::SHORT_STATUS => Self::ShortStatus(ShortStatus::decode(&mut r)?),
            CommandCode::FULL_STATUS => Self::FullStatus(FullStatus::decode(&mut r)?),
            CommandCode::FN_STATUS => Self::FnStatus(FnStatus::decode(&mut r)?),
            CommandCode::FN_OPEN_SHIFT => Self::FnOpenShift(decode_shift_document(&mut r)?),
            CommandCode::FN_CLOSE_SHIFT => Self::FnCloseShift(decode_shift_document(&mut r)?),
            CommandCode::FN_CLOSE_RECEIPT => Self::CloseReceipt(ReceiptDocument {
                change: r.uint(MONEY_BYTES, "change")?,
                fd_number: r.u32("fd_number")?,
                fpd: r.u32("fpd")?,
            }),
            CommandCode::FN_FIND_DOCUMENT => Self::FnFindDocument(FoundDocument {
                doc_type: r.u8("doc_type")?,
                ticket_received: r.u8("ticket_received")?,
                data: r.rest().to_vec(),
            }),
            CommandCode::FN_READ_DOCUMENT => Self::FnReadDocument(DocumentHeader {
                doc_type: r.u16("doc_type")?,
                size: r.u16("size")?,
            }),
            CommandCode::FN_READ_DOCUMENT_BLOCK => Self::FnReadDocumentBlock(r.rest().to_vec()),
            CommandCode::FN_READ_TICKET => Self::FnReadTicket(r.rest().to_vec()),
            CommandCode::FN_EXCHANGE_STATUS => Self::FnExchangeStatus(ExchangeStatus {
                status: r.u8("status")?,
                read_in_progress: r.u8("read_in_progress")?,
                queue_len: r.u16("queue_len")?,
                first_fd: r.u32("first_fd")?,
                first_datetime: r.array("first_datetime")?,
            }),
            CommandCode::FN_SHIFT_PARAMS => Self::FnShiftParams(ShiftParams {
                shift_open: r.u8("shift_open")?,
                shift_number: r.u16("shift_number")?,
                receipt_number: r.u16("receipt_number")?,
            }),
            CommandCode::FN_UNCONFIRMED_COUNT => Self::FnUnconfirmedCount(r.u16("count")?),
            CommandCode::FN_READ_BUFFER_STATUS => Self::FnBufferStatus(BufferStatus {
                size: r.u16("size")?,
                block_size_max: r.u8("block_size_max")?,
            }),
            CommandCode::FN_READ_BUFFER_BLOCK => Self::FnBufferBlock(r.rest().to_vec()),
            CommandCode::FN_START_WRITE_BUFFER => Self::FnStartWriteBuffer {
                block_size_max: r.u8("block_size_max")?,
            },
            CommandCode::DEVICE_TYPE => Self::DeviceType(DeviceInfo {
                device_type: r.u8("device_type")?,
                subtype: r.u8("subtype")?,
                protocol_version: r.u8("protocol_version")?,
                protocol_subversion: r.u8("protocol_subversion")?,
                model: r.u8("model")?,
                language: r.u8("language")?,
                name: Text::from_raw(r.rest()),
            }),
            CommandCode::CLOSE_CHECK => Self::CloseCheck {
                operator: r.u8("operator")?,
                change: r.uint(MONEY_BYTES, "change")?,
            },
            cmd if DONE.contains(&cmd) => Self::Done(cmd),
            cmd if OPERATOR_DONE.contains(&cmd) => Self::OperatorDone {
                cmd,
                operator: r.u8("operator")?,
            },
            other => return Err(DecodeError::UnknownCommand(other)),
        };
        r.finish()?;
        Ok(answer)
    }

    /// Encodes the data after the ERR byte.
    pub fn encode_data(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::ShortStatus(s) => s.encode(out),
            Self::FullStatus(s) => s.encode(out),
            Self::FnStatus(s) => s.encode(out),
            Self::FnOpenShift(doc) | Self::FnCloseShift(doc) => encode_shift_document(doc, out),
            Self::CloseReceipt(doc) => {
                put_uint(out, doc.change, MONEY_BYTES, "change")?;
                out.extend_from_slice(&doc.fd_number.to_le_bytes());
                out.extend_from_slice(&doc.fpd.to_le_bytes());
            }
            Self::FnFindDocument(doc) => {
                out.extend_from_slice(&[doc.doc_type, doc.ticket_received]);
                out.extend_from_slice(&doc.data);
            }
            Self::FnReadDocument(h) => {
                out.extend_from_slice(&h.doc_type.to_le_bytes());
                out.extend_from_slice(&h.size.to_le_bytes());
            }
            Self::FnReadDocumentBlock(data)
            | Self::FnReadTicket(data)
            | Self::FnBufferBlock(data) => {
                out.extend_from_slice(data);
            }
            Self::FnExchangeStatus(s) => {
                out.extend_from_slice(&[s.status, s.read_in_progress]);
                out.extend_from_slice(&s.queue_len.to_le_bytes());
                out.extend_from_slice(&s.first_fd.to_le_bytes());
                out.extend_from_slice(&s.first_datetime);
            }
            Self::FnShiftParams(p) => {
                out.push(p.shift_open);
                out.extend_from_slice(&p.shift_number.to_le_bytes());
                out.extend_from_slice(&p.receipt_number.to_le_bytes());
            }
            Self::FnUnconfirmedCount(count) => out.extend_from_slice(&count.to_le_bytes()),
            Self::FnBufferStatus(s) => {
                out.extend_from_slice(&s.size.to_le_bytes());
                out.push(s.block_size_max);
            }
            Self::FnStartWriteBuffer { block_size_max } => out.push(*block_size_max),
            Self::DeviceType(d) => {
                out.extend_from_slice(&[d.device_type, d.subtype, d.protocol_version]);
                out.extend_from_slice(&[d.protocol_subversion, d.model, d.language]);
                out.extend_from_slice(d.name.as_bytes());
            }
            Self::CloseCheck { operator, change } => {
                out.push(*operator);
                put_uint(out, *change, MONEY_BYTES, "change")?;
            }
            Self::Done(cmd) if DONE.contains(cmd) => {}
            Self::OperatorDone { cmd, operator } if OPERATOR_DONE.contains(cmd) => {
                out.push(*operator)
            }
            Self::Done(cmd) | Self::OperatorDone { cmd, .. } => {
                return Err(EncodeError::WrongCommand(*cmd));
            }
        }
        Ok(())
    }
}

/// A whole device answer: success with typed data, or a device error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// ERR = 0.
    Ok(Answer),
    /// ERR != 0. `data` keeps whatever followed the error byte (often the operator number, or nothing).
    Error {
        /// The command answered.
        cmd: CommandCode,
        /// The error byte.
        error: DeviceError,
        /// Bytes after the error byte.
        data: Vec<u8>,
    },
}

impl Reply {
    /// The command answered.
    pub fn code(&self) -> CommandCode {
        match self {
            Self::Ok(answer) => answer.code(),
            Self::Error { cmd, .. } => *cmd,
        }
    }

    /// Decodes a payload `CMD ERR DATA`.
    pub fn from_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let (cmd, rest) = CommandCode::split(payload)?;
        let (error, data) = rest
            .split_first()
            .ok_or(DecodeError::Truncated { field: "error" })?;
        if *error == 0 {
            Ok(Self::Ok(Answer::decode(cmd, data)?))
        } else {
            Ok(Self::Error {
                cmd,
                error: DeviceError::from_code(*error),
                data: data.to_vec(),
            })
        }
    }

    /// Decodes a whole frame `STX LEN CMD ERR DATA LRC`.
    pub fn from_frame(frame: &[u8]) -> Result<Self, DecodeError> {
        Self::from_payload(&decode_frame(frame)?)
    }

    /// Encodes the payload `CMD ERR DATA`.
    pub fn to_payload(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(16);
        match self {
            Self::Ok(answer) => {
                answer.code().write_to(&mut out);
                out.push(0);
                answer.encode_data(&mut out)?;
            }
            Self::Error { cmd, error, data } => {
                cmd.write_to(&mut out);
                // Code 0 would read back as success, so an `Other(0)` cannot be encoded as an error.
                let code = error.code();
                if code == 0 {
                    return Err(EncodeError::FieldTooLarge {
                        field: "error",
                        value: 0,
                        bytes: 1,
                    });
                }
                out.push(code);
                out.extend_from_slice(data);
            }
        }
        if out.len() > crate::frame::PAYLOAD_LEN_MAX {
            return Err(EncodeError::PayloadLength { len: out.len() });
        }
        Ok(out)
    }

    /// Encodes the whole frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, EncodeError> {
        encode_frame(&self.to_payload()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_mode_nibbles() {
        assert_eq!(DeviceMode::from_byte(0x28), (DeviceMode::DocumentOpen, 2));
        assert_eq!(DeviceMode::from_byte(0x04), (DeviceMode::ShiftClosed, 0));
        assert_eq!(DeviceMode::from_byte(0x06), (DeviceMode::Other(6), 0));
    }

    #[test]
    fn error_reply_keeps_data() {
        let reply = Reply::from_payload(&[0x80, 0x4A, 0x1E]).unwrap();
        assert_eq!(
            reply,
            Reply::Error {
                cmd: CommandCode::SALE,
                error: DeviceError::ReceiptOpen,
                data: vec![0x1E]
            }
        );
        assert_eq!(reply.to_payload().unwrap(), [0x80, 0x4A, 0x1E]);
    }

    #[test]
    fn done_shapes_are_checked() {
        assert!(
            Reply::Ok(Answer::Done(CommandCode::SHORT_STATUS))
                .to_payload()
                .is_err()
        );
        assert_eq!(
            Reply::from_payload(&[0xFF, 0x46, 0x00, 0x01]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}
