//! Typed host commands: encode (adapter) and decode (emulator) of `CMD PASSWORD PARAMS` payloads.
//!
//! Every command except `FC` carries a 4-byte LE password right after the code; the parameter layouts below
//! name their source. Money is u40 LE kopecks, FF46 quantity is u48 LE in units of 10^-6, legacy 80/82
//! quantity is u40 LE in units of 10^-3, and text is windows-1251.

use crate::error::{DecodeError, EncodeError};
use crate::frame::{CommandCode, decode_frame, encode_frame};
use crate::wire::{MONEY_BYTES, Reader, Text, put_bounded, put_uint};

/// Receipt type of `8D` open receipt: the values match pyshtrih's mode-8 status table
/// (8 sale, 24 buy, 40 sale return, 56 buy return = `8 | type << 4`). The parameter byte itself is recalled
/// from the vendor protocol description (docs/protocols.md#shtrih-m-commands marks it so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptType {
    /// 0: sale (приход).
    Sale,
    /// 1: buy (расход).
    Buy,
    /// 2: sale return (возврат прихода).
    SaleReturn,
    /// 3: buy return (возврат расхода).
    BuyReturn,
}

impl ReceiptType {
    /// The parameter byte.
    pub fn code(self) -> u8 {
        match self {
            Self::Sale => 0,
            Self::Buy => 1,
            Self::SaleReturn => 2,
            Self::BuyReturn => 3,
        }
    }

    /// Parses the parameter byte.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Sale,
            1 => Self::Buy,
            2 => Self::SaleReturn,
            3 => Self::BuyReturn,
            _ => return None,
        })
    }
}

/// `FF46` item (operation) in FFD 1.05 form.
///
/// Layout after the password (afilippov1985/kkt-shtrih `Request/FNOperation.php` pack
/// `CVa6a5a5a5CCCCa*`; re-star-ru/shtrih-m-driver `CreateFNOperationV2`, 160-byte body):
/// `check_type(1) quantity(6) price(5) sum(5) tax_value(5) tax_bits(1) department(1) payment_method(1)
/// payment_object(1) name(0..128)`. `FF FF FF FF FF` in sum or tax value asks the device to compute it.
/// re-star-ru pads the name to 128 bytes with zeros; kkt-shtrih sends it unpadded. Both decode here, and the
/// raw bytes are kept so each re-encodes as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnOperation {
    /// 1 sale, 2 sale return, 3 buy, 4 buy return (kkt-shtrih `CheckType.php`).
    pub check_type: u8,
    /// Quantity in units of 10^-6 (u48; kkt-shtrih `Quantity.php`).
    pub quantity: u64,
    /// Unit price, kopecks (u40).
    pub price: u64,
    /// Line sum, kopecks; `None` = `FF×5`, the device multiplies price by quantity.
    pub sum: Option<u64>,
    /// Tax amount, kopecks; `None` = `FF×5`, the device computes it.
    pub tax_value: Option<u64>,
    /// Device tax bitmask, not FFD 1199: 1 = 20%, 2 = 10%, 4 = 0%, 8 = no VAT, 16 = 20/120, 32 = 10/110
    /// (kkt-shtrih `VatType.php`).
    pub tax_bits: u8,
    /// Department number.
    pub department: u8,
    /// FFD tag 1214, payment method (4 = full payment).
    pub payment_method: u8,
    /// FFD tag 1212, payment object (1 = goods, 4 = service).
    pub payment_object: u8,
    /// Item name, at most 128 bytes.
    pub name: Text,
}

/// `FF46` name field limit.
pub const FN_OPERATION_NAME_MAX: usize = 128;
/// `FF45` text field limit.
pub const CLOSE_RECEIPT_TEXT_MAX: usize = 64;

/// `FF45` close receipt, extended form.
///
/// Layout after the password (kkt-shtrih `Request/FNCloseCheckEx.php` pack `Va5×16Ca5×6Ca*`;
/// re-star-ru `CreateFNCloseCheck`, 182-byte body): `payments(16 × 5) rounding(1) taxes(6 × 5)
/// tax_system(1) text(0..64)`. Payment 1 is cash, payment 2 electronic; rounding is kopecks (0..99) taken off
/// to round to a rouble; tax_system is the bitmask of FFD tag 1055 (1 OSN, 2 USN income, 4 USN income-expense,
/// 8 ENVD, 16 ESHN, 32 PSN). re-star-ru pads the text with 64 zero bytes; the fr_drv_ng issue #247 trace sends
/// none (LEN 0x76 = 118). Raw bytes are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReceipt {
    /// The 16 payment sums, kopecks.
    pub payments: [u64; 16],
    /// Rounding in kopecks.
    pub rounding: u8,
    /// The 6 tax sums, kopecks.
    pub taxes: [u64; 6],
    /// Tax system bitmask (FFD 1055).
    pub tax_system: u8,
    /// Text printed below the receipt, at most 64 bytes.
    pub text: Text,
}

/// `80` sale and `82` sale return, the pre-FN item command.
///
/// The text of the legacy commands (17, 80, 82, 85) is as long as the frame carries, in both directions: its
/// width is the model's business, not the codec's. The classic protocol says 40 bytes; pyshtrih 2.0.6 pads
/// to its model's length (36, 40, 48 or 50 bytes, never fewer than 40) and javapos pads to at least 40 and
/// sends longer lines whole. A device (the emulator) applies its own per-command limit.
///
/// Layout after the password (pyshtrih `commands.py` `sale`/`return_sale`): `quantity(5) price(5)
/// department(1) tax1..tax4(4) text(N)`, N = 40 in the classic protocol, the model's width in pyshtrih.
/// Quantity is u40 in units of 10^-3 (the protocol's "количество ×1000"; pyshtrih passes the caller's
/// integer through), price is kopecks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyItem {
    /// Quantity in units of 10^-3.
    pub quantity: u64,
    /// Unit price, kopecks.
    pub price: u64,
    /// Department (0..16).
    pub department: u8,
    /// Four tax group numbers (0 = none).
    pub taxes: [u8; 4],
    /// Item text, padded with zeros to the model's width ([`Text::padded`]).
    pub text: Text,
}

/// `85` close check, the pre-FN close command.
///
/// Layout after the password (pyshtrih `commands.py` `close_check`): `cash(5) payment2(5) payment3(5)
/// payment4(5) discount(2, signed, 0.01 %) tax1..tax4(4) text(N)`, N as in [`LegacyItem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseCheck {
    /// Cash, payment type 2, 3 and 4, kopecks.
    pub payments: [u64; 4],
    /// Discount (negative) or surcharge in hundredths of a percent (pyshtrih `CAST_SIZE['s2']`).
    pub discount: i16,
    /// Four tax group numbers.
    pub taxes: [u8; 4],
    /// Text, padded with zeros to the model's width.
    pub text: Text,
}

/// `17` print a line of text, the pre-FN non-fiscal print command.
///
/// Layout after the password (pyshtrih `commands.py` `print_string`; javapos `PrintString.java`):
/// `flags(1) text(N)`, flags bit 0 = control tape, bit 1 = receipt tape. pyshtrih pads the text to its
/// model's length; the device skips the zero bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintString {
    /// Tapes to print on.
    pub flags: u8,
    /// The line, normally padded with zeros.
    pub text: Text,
}

/// A host command of the supported subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `10`: no parameters.
    ShortStatus,
    /// `11`: no parameters.
    FullStatus,
    /// `FF01`: no parameters.
    FnStatus,
    /// `FF41`: no parameters.
    FnBeginOpenShift,
    /// `FF0B`: no parameters.
    FnOpenShift,
    /// `FF42`: no parameters.
    FnBeginCloseShift,
    /// `FF43`: no parameters.
    FnCloseShift,
    /// `8D`: receipt type (1).
    OpenReceipt(ReceiptType),
    /// `FF46`, see [`FnOperation`].
    FnOperation(FnOperation),
    /// `FF0C`: raw TLV bytes passed to the open document (pyshtrih `send_tlv_struct`; re-star-ru
    /// `CreateWriteCashierINN`).
    FnSendTlv(Vec<u8>),
    /// `FF45`, see [`CloseReceipt`].
    CloseReceipt(CloseReceipt),
    /// `88`: no parameters.
    CancelReceipt,
    /// `FF0A`: FD number (u32) (javapos `FSFindDocument.java`).
    FnFindDocument {
        /// Fiscal document number.
        fd_number: u32,
    },
    /// `FF3A`: FD number (u32) (javapos `FSReadDocument.java`).
    FnReadDocument {
        /// Fiscal document number.
        fd_number: u32,
    },
    /// `FF3B`: no parameters; each call returns the next TLV block (javapos `FSReadDocumentBlock.java`).
    FnReadDocumentBlock,
    /// `FF3C`: FD number (u32) (javapos `FSReadDocTicket.java`).
    FnReadTicket {
        /// Fiscal document number.
        fd_number: u32,
    },
    /// `FF39`: no parameters.
    FnExchangeStatus,
    /// `FF40`: no parameters.
    FnShiftParams,
    /// `FF3F`: no parameters (pyshtrih `fs_unconfirmed_document_count`).
    FnUnconfirmedCount,
    /// `17`, see [`PrintString`].
    PrintString(PrintString),
    /// `FF30`: no parameters (javapos `FSReadBufferStatus.java`).
    FnReadBufferStatus,
    /// `FF31`: offset (u16), length (u8) (javapos `FSReadBlock.java`).
    FnReadBufferBlock {
        /// Offset into the FN's outgoing message.
        offset: u16,
        /// Bytes requested, at most the block size FF30 reported.
        len: u8,
    },
    /// `FF32`: total size of the OFD reply (u16) (javapos `FSStartWriteBlock.java`).
    FnStartWriteBuffer {
        /// Size of the whole reply to be written.
        size: u16,
    },
    /// `FF33`: offset (u16), length (u8), data (javapos `FSWriteBlock.java`).
    FnWriteBufferBlock {
        /// Offset into the reply.
        offset: u16,
        /// The block, at most the block size FF32 reported.
        data: Vec<u8>,
    },
    /// `FC`: no password, no parameters (pyshtrih `command_nopass(0xFC)`).
    DeviceType,
    /// `E0`: no parameters.
    OpenShift,
    /// `80`, see [`LegacyItem`].
    Sale(LegacyItem),
    /// `82`, see [`LegacyItem`].
    ReturnSale(LegacyItem),
    /// `85`, see [`CloseCheck`].
    CloseCheck(CloseCheck),
    /// `40`: no parameters.
    XReport,
    /// `41`: no parameters.
    ZReport,
}

/// Commands without parameters, as (code, variant), for decoding.
const NO_PARAMS: &[(CommandCode, Request)] = &[
    (CommandCode::SHORT_STATUS, Request::ShortStatus),
    (CommandCode::FULL_STATUS, Request::FullStatus),
    (CommandCode::FN_STATUS, Request::FnStatus),
    (CommandCode::FN_BEGIN_OPEN_SHIFT, Request::FnBeginOpenShift),
    (CommandCode::FN_OPEN_SHIFT, Request::FnOpenShift),
    (
        CommandCode::FN_BEGIN_CLOSE_SHIFT,
        Request::FnBeginCloseShift,
    ),
    (CommandCode::FN_CLOSE_SHIFT, Request::FnCloseShift),
    (CommandCode::CANCEL_RECEIPT, Request::CancelReceipt),
    (
        CommandCode::FN_READ_DOCUMENT_BLOCK,
        Request::FnReadDocumentBlock,
    ),
    (CommandCode::FN_EXCHANGE_STATUS, Request::FnExchangeStatus),
    (CommandCode::FN_SHIFT_PARAMS, Request::FnShiftParams),
    (
        CommandCode::FN_UNCONFIRMED_COUNT,
        Request::FnUnconfirmedCount,
    ),
    (
        CommandCode::FN_READ_BUFFER_STATUS,
        Request::FnReadBufferStatus,
    ),
    (CommandCode::OPEN_SHIFT, Request::OpenShift),
    (CommandCode::X_REPORT, Request::XReport),
    (CommandCode::Z_REPORT, Request::ZReport),
];

fn put_optional_money(
    out: &mut Vec<u8>,
    value: Option<u64>,
    field: &'static str,
) -> Result<(), EncodeError> {
    match value {
        None => {
            out.extend_from_slice(&[0xFF; MONEY_BYTES]);
            Ok(())
        }
        // An explicit value equal to the "auto" marker would decode as None, so it is refused.
        Some(v) if v == crate::wire::MONEY_MAX => Err(EncodeError::FieldTooLarge {
            field,
            value: v,
            bytes: MONEY_BYTES,
        }),
        Some(v) => put_uint(out, v, MONEY_BYTES, field),
    }
}

fn read_optional_money(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<u64>, DecodeError> {
    let value = reader.uint(MONEY_BYTES, field)?;
    Ok((value != crate::wire::MONEY_MAX).then_some(value))
}

impl FnOperation {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.check_type);
        put_uint(out, self.quantity, 6, "quantity")?;
        put_uint(out, self.price, MONEY_BYTES, "price")?;
        put_optional_money(out, self.sum, "sum")?;
        put_optional_money(out, self.tax_value, "tax_value")?;
        out.extend_from_slice(&[
            self.tax_bits,
            self.department,
            self.payment_method,
            self.payment_object,
        ]);
        put_bounded(out, self.name.as_bytes(), FN_OPERATION_NAME_MAX, "name")
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let op = Self {
            check_type: reader.u8("check_type")?,
            quantity: reader.uint(6, "quantity")?,
            price: reader.uint(MONEY_BYTES, "price")?,
            sum: read_optional_money(reader, "sum")?,
            tax_value: read_optional_money(reader, "tax_value")?,
            tax_bits: reader.u8("tax_bits")?,
            department: reader.u8("department")?,
            payment_method: reader.u8("payment_method")?,
            payment_object: reader.u8("payment_object")?,
            name: Text::from_raw(reader.rest()),
        };
        check_len("name", op.name.as_bytes().len(), FN_OPERATION_NAME_MAX)?;
        Ok(op)
    }
}

impl CloseReceipt {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for payment in self.payments {
            put_uint(out, payment, MONEY_BYTES, "payment")?;
        }
        out.push(self.rounding);
        for tax in self.taxes {
            put_uint(out, tax, MONEY_BYTES, "tax")?;
        }
        out.push(self.tax_system);
        put_bounded(out, self.text.as_bytes(), CLOSE_RECEIPT_TEXT_MAX, "text")
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut payments = [0u64; 16];
        for payment in &mut payments {
            *payment = reader.uint(MONEY_BYTES, "payment")?;
        }
        let rounding = reader.u8("rounding")?;
        let mut taxes = [0u64; 6];
        for tax in &mut taxes {
            *tax = reader.uint(MONEY_BYTES, "tax")?;
        }
        let tax_system = reader.u8("tax_system")?;
        let text = Text::from_raw(reader.rest());
        check_len("text", text.as_bytes().len(), CLOSE_RECEIPT_TEXT_MAX)?;
        Ok(Self {
            payments,
            rounding,
            taxes,
            tax_system,
            text,
        })
    }
}

impl LegacyItem {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_uint(out, self.quantity, MONEY_BYTES, "quantity")?;
        put_uint(out, self.price, MONEY_BYTES, "price")?;
        out.push(self.department);
        out.extend_from_slice(&self.taxes);
        out.extend_from_slice(self.text.as_bytes());
        Ok(())
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let item = Self {
            quantity: reader.uint(MONEY_BYTES, "quantity")?,
            price: reader.uint(MONEY_BYTES, "price")?,
            department: reader.u8("department")?,
            taxes: reader.array("taxes")?,
            text: Text::from_raw(reader.rest()),
        };
        Ok(item)
    }
}

impl CloseCheck {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for payment in self.payments {
            put_uint(out, payment, MONEY_BYTES, "payment")?;
        }
        out.extend_from_slice(&self.discount.to_le_bytes());
        out.extend_from_slice(&self.taxes);
        out.extend_from_slice(self.text.as_bytes());
        Ok(())
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut payments = [0u64; 4];
        for payment in &mut payments {
            *payment = reader.uint(MONEY_BYTES, "payment")?;
        }
        let check = Self {
            payments,
            discount: i16::from_le_bytes(reader.array("discount")?),
            taxes: reader.array("taxes")?,
            text: Text::from_raw(reader.rest()),
        };
        Ok(check)
    }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::BadValue {
            field,
            value: len as u64,
        });
    }
    Ok(())
}

impl Request {
    /// The command code.
    pub fn code(&self) -> CommandCode {
        match self {
            Self::ShortStatus => CommandCode::SHORT_STATUS,
            Self::FullStatus => CommandCode::FULL_STATUS,
            Self::FnStatus => CommandCode::FN_STATUS,
            Self::FnBeginOpenShift => CommandCode::FN_BEGIN_OPEN_SHIFT,
            Self::FnOpenShift => CommandCode::FN_OPEN_SHIFT,
            Self::FnBeginCloseShift => CommandCode::FN_BEGIN_CLOSE_SHIFT,
            Self::FnCloseShift => CommandCode::FN_CLOSE_SHIFT,
            Self::OpenReceipt(_) => CommandCode::OPEN_RECEIPT,
            Self::FnOperation(_) => CommandCode::FN_OPERATION,
            Self::FnSendTlv(_) => CommandCode::FN_SEND_TLV,
            Self::CloseReceipt(_) => CommandCode::FN_CLOSE_RECEIPT,
            Self::CancelReceipt => CommandCode::CANCEL_RECEIPT,
            Self::FnFindDocument { .. } => CommandCode::FN_FIND_DOCUMENT,
            Self::FnReadDocument { .. } => CommandCode::FN_READ_DOCUMENT,
            Self::FnReadDocumentBlock => CommandCode::FN_READ_DOCUMENT_BLOCK,
            Self::FnReadTicket { .. } => CommandCode::FN_READ_TICKET,
            Self::FnExchangeStatus => CommandCode::FN_EXCHANGE_STATUS,
            Self::FnShiftParams => CommandCode::FN_SHIFT_PARAMS,
            Self::FnUnconfirmedCount => CommandCode::FN_UNCONFIRMED_COUNT,
            Self::PrintString(_) => CommandCode::PRINT_STRING,
            Self::FnReadBufferStatus => CommandCode::FN_READ_BUFFER_STATUS,
            Self::FnReadBufferBlock { .. } => CommandCode::FN_READ_BUFFER_BLOCK,
            Self::FnStartWriteBuffer { .. } => CommandCode::FN_START_WRITE_BUFFER,
            Self::FnWriteBufferBlock { .. } => CommandCode::FN_WRITE_BUFFER_BLOCK,
            Self::DeviceType => CommandCode::DEVICE_TYPE,
            Self::OpenShift => CommandCode::OPEN_SHIFT,
            Self::Sale(_) => CommandCode::SALE,
            Self::ReturnSale(_) => CommandCode::RETURN_SALE,
            Self::CloseCheck(_) => CommandCode::CLOSE_CHECK,
            Self::XReport => CommandCode::X_REPORT,
            Self::ZReport => CommandCode::Z_REPORT,
        }
    }

    /// Encodes the payload `CMD PASSWORD PARAMS` (no password for `FC`).
    pub fn to_payload(&self, password: u32) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(16);
        self.code().write_to(&mut out);
        if *self != Self::DeviceType {
            out.extend_from_slice(&password.to_le_bytes());
        }
        self.encode_params(&mut out)?;
        if out.len() > crate::frame::PAYLOAD_LEN_MAX {
            return Err(EncodeError::PayloadLength { len: out.len() });
        }
        Ok(out)
    }

    /// Encodes the whole frame `STX LEN CMD PASSWORD PARAMS LRC`.
    pub fn to_frame(&self, password: u32) -> Result<Vec<u8>, EncodeError> {
        encode_frame(&self.to_payload(password)?)
    }

    fn encode_params(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::OpenReceipt(kind) => out.push(kind.code()),
            Self::FnOperation(op) => op.encode(out)?,
            Self::FnSendTlv(tlv) => out.extend_from_slice(tlv),
            Self::CloseReceipt(close) => close.encode(out)?,
            Self::FnFindDocument { fd_number }
            | Self::FnReadDocument { fd_number }
            | Self::FnReadTicket { fd_number } => out.extend_from_slice(&fd_number.to_le_bytes()),
            Self::FnReadBufferBlock { offset, len } => {
                out.extend_from_slice(&offset.to_le_bytes());
                out.push(*len);
            }
            Self::FnStartWriteBuffer { size } => out.extend_from_slice(&size.to_le_bytes()),
            Self::FnWriteBufferBlock { offset, data } => {
                out.extend_from_slice(&offset.to_le_bytes());
                let len = u8::try_from(data.len()).map_err(|_| EncodeError::TooLong {
                    field: "data",
                    len: data.len(),
                    max: usize::from(u8::MAX),
                })?;
                out.push(len);
                out.extend_from_slice(data);
            }
            Self::Sale(item) | Self::ReturnSale(item) => item.encode(out)?,
            Self::CloseCheck(check) => check.encode(out)?,
            Self::PrintString(p) => {
                out.push(p.flags);
                out.extend_from_slice(p.text.as_bytes());
            }
            _ => {}
        }
        Ok(())
    }

    /// Decodes a payload; the password is `None` only for `FC`.
    pub fn from_payload(payload: &[u8]) -> Result<(Option<u32>, Self), DecodeError> {
        let (code, rest) = CommandCode::split(payload)?;
        let mut reader = Reader::new(rest);
        let password = if code == CommandCode::DEVICE_TYPE {
            None
        } else {
            Some(reader.u32("password")?)
        };
        let request = Self::decode_params(code, &mut reader)?;
        reader.finish()?;
        Ok((password, request))
    }

    /// Decodes a whole frame `STX LEN PAYLOAD LRC`.
    pub fn from_frame(frame: &[u8]) -> Result<(Option<u32>, Self), DecodeError> {
        Self::from_payload(&decode_frame(frame)?)
    }

    fn decode_params(code: CommandCode, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if let Some((_, request)) = NO_PARAMS.iter().find(|(c, _)| *c == code) {
            return Ok(request.clone());
        }
        Ok(match code {
            CommandCode::DEVICE_TYPE => Self::DeviceType,
            CommandCode::OPEN_RECEIPT => {
                let value = reader.u8("receipt_type")?;
                Self::OpenReceipt(ReceiptType::from_code(value).ok_or(DecodeError::BadValue {
                    field: "receipt_type",
                    value: u64::from(value),
                })?)
            }
            CommandCode::FN_OPERATION => Self::FnOperation(FnOperation::decode(reader)?),
            CommandCode::FN_SEND_TLV => Self::FnSendTlv(reader.rest().to_vec()),
            CommandCode::FN_CLOSE_RECEIPT => Self::CloseReceipt(CloseReceipt::decode(reader)?),
            CommandCode::FN_FIND_DOCUMENT => Self::FnFindDocument {
                fd_number: reader.u32("fd_number")?,
            },
            CommandCode::FN_READ_DOCUMENT => Self::FnReadDocument {
                fd_number: reader.u32("fd_number")?,
            },
            CommandCode::FN_READ_TICKET => Self::FnReadTicket {
                fd_number: reader.u32("fd_number")?,
            },
            CommandCode::FN_READ_BUFFER_BLOCK => Self::FnReadBufferBlock {
                offset: reader.u16("offset")?,
                len: reader.u8("len")?,
            },
            CommandCode::FN_START_WRITE_BUFFER => Self::FnStartWriteBuffer {
                size: reader.u16("size")?,
            },
            CommandCode::FN_WRITE_BUFFER_BLOCK => {
                let offset = reader.u16("offset")?;
                let len = reader.u8("len")?;
                let data = reader.bytes(usize::from(len), "data")?.to_vec();
                Self::FnWriteBufferBlock { offset, data }
            }
            CommandCode::SALE => Self::Sale(LegacyItem::decode(reader)?),
            CommandCode::RETURN_SALE => Self::ReturnSale(LegacyItem::decode(reader)?),
            CommandCode::CLOSE_CHECK => Self::CloseCheck(CloseCheck::decode(reader)?),
            CommandCode::PRINT_STRING => Self::PrintString(PrintString {
                flags: reader.u8("flags")?,
                text: Text::from_raw(reader.rest()),
            }),
            other => return Err(DecodeError::UnknownCommand(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_type_has_no_password() {
        let frame = Request::DeviceType.to_frame(30).unwrap();
        assert_eq!(frame, [0x02, 0x01, 0xFC, 0xFD]);
        assert_eq!(
            Request::from_frame(&frame).unwrap(),
            (None, Request::DeviceType)
        );
    }

    #[test]
    fn parameterless_commands_reject_parameters() {
        assert_eq!(
            Request::from_payload(&[0x10, 1, 0, 0, 0, 9]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        assert_eq!(
            Request::from_payload(&[0x10, 1, 0]),
            Err(DecodeError::Truncated { field: "password" })
        );
    }

    /// pyshtrih 2.0.6 with `ShtrihM01F` pads the 80 text to 48 bytes; the bytes are laid out by hand from
    /// its `sale` (quantity 1000, price 4550, department 0, tax1 1) so the codec is not checked against itself.
    #[test]
    fn legacy_text_of_the_models_width_round_trips() {
        let mut payload = vec![
            0x80, 1, 0, 0, 0, 0xE8, 0x03, 0, 0, 0, 0xC6, 0x11, 0, 0, 0, 0, 1, 0, 0, 0,
        ];
        payload.extend(b"Bread".iter().copied().chain([0; 43]));
        let (password, request) = Request::from_payload(&payload).unwrap();
        let Request::Sale(item) = &request else {
            panic!("{request:?}")
        };
        assert_eq!(
            (
                password,
                item.quantity,
                item.price,
                item.text.as_bytes().len()
            ),
            (Some(1), 1000, 4550, 48)
        );
        assert_eq!(item.text.to_string_lossy(), "Bread");
        assert_eq!(request.to_payload(1).unwrap(), payload);
    }

    #[test]
    fn print_string_and_unconfirmed_count_round_trip() {
        let mut payload = vec![0x17, 1, 0, 0, 0, 2];
        payload.extend([b'-'; 48]);
        let (_, request) = Request::from_payload(&payload).unwrap();
        assert_eq!(
            request,
            Request::PrintString(PrintString {
                flags: 2,
                text: Text::from_raw(vec![b'-'; 48]),
            })
        );
        assert_eq!(request.to_payload(1).unwrap(), payload);
        let ff3f = [0xFF, 0x3F, 30, 0, 0, 0];
        assert_eq!(
            Request::from_payload(&ff3f),
            Ok((Some(30), Request::FnUnconfirmedCount))
        );
    }

    #[test]
    fn explicit_auto_marker_is_refused() {
        let op = FnOperation {
            check_type: 1,
            quantity: 1_000_000,
            price: 100,
            sum: Some(crate::wire::MONEY_MAX),
            tax_value: None,
            tax_bits: 8,
            department: 1,
            payment_method: 4,
            payment_object: 1,
            name: Text::new("x").unwrap(),
        };
        assert!(Request::FnOperation(op).to_payload(30).is_err());
    }
}
