//! Codec errors (decode and encode) and the device's error byte as a typed enum.

use crate::code::CommandCode;

/// A payload that does not match the layout of its command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload has no bytes at all.
    #[error("empty payload")]
    EmptyPayload,
    /// The payload ended inside a field.
    #[error("payload ends inside field `{field}`")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes were left after the last field of a fixed layout.
    #[error("{count} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The command code is not in the supported subset.
    #[error("unsupported command {0}")]
    UnknownCommand(CommandCode),
    /// A field holds a value outside its documented range.
    #[error("field `{field}` has invalid value {value}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// The frame around the payload was malformed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A value that cannot be put on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A payload must hold 1..=255 bytes because LEN is one byte.
    #[error("payload of {len} bytes does not fit a frame (1..=255)")]
    PayloadLength {
        /// The payload length.
        len: usize,
    },
    /// A number does not fit its fixed-width field.
    #[error("field `{field}` value {value} does not fit {bytes} bytes")]
    FieldTooLarge {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// Width of the field in bytes.
        bytes: usize,
    },
    /// A text or byte field is longer than the protocol allows.
    #[error("field `{field}` is {len} bytes, at most {max} allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A string holds characters that windows-1251 cannot represent.
    #[error("text cannot be encoded in windows-1251")]
    Unencodable,
    /// The answer variant cannot carry this command code.
    #[error("answer shape does not belong to command {0}")]
    WrongCommand(CommandCode),
}

/// Broad class of a device error, for callers that decide what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The shift is in the wrong state (not open, open too long, already open).
    Shift,
    /// A document is in the wrong state (receipt open or closed).
    Document,
    /// The command's parameters were rejected.
    Parameters,
    /// The device is busy printing or waits for "continue printing"; retry after polling status.
    Busy,
    /// The printer failed (no paper, cutter): a fiscal command may have reached the FN before printing stopped.
    Printer,
    /// The fiscal storage (FN) refused or failed.
    FiscalStorage,
    /// Anything else.
    Other,
}

/// The error byte of a device answer.
///
/// Meanings come from oleg-golovanov/pyshtrih `pyshtrih/excepts.py` (the KKT's table, 0x33 and up) and, for
/// 0x01-0x2F, the FN error table of the FN-era protocol (as reproduced in public Shtrih driver wrappers:
/// "ФН: Нет транспортного соединения" 0x11, "Продолжительность смены более 24 часов" 0x16,
/// "Сообщение от ОФД не может быть принято" 0x20). pyshtrih's older table gives pre-FN meanings for that range
/// (0x16 "Смена не открыта", 0x20 "money register overflow"); an FN-era device reports the FN meanings, which we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceError {
    /// 0x01 FN: unknown command or bad format.
    FnUnknownCommand,
    /// 0x02 FN: its state does not allow the command.
    FnWrongState,
    /// 0x03 FN: internal failure.
    FnFailure,
    /// 0x04 FN: cryptographic coprocessor failure.
    FnCryptoFailure,
    /// 0x05 FN: service life is over.
    FnExpired,
    /// 0x06 FN: archive is full.
    FnArchiveFull,
    /// 0x07 FN: date and time contradict the FN's records.
    FnBadDateTime,
    /// 0x08 FN: the requested data is not in the archive (e.g. no such FD number).
    FnNoData,
    /// 0x09 FN: parameter values are wrong.
    FnBadParameters,
    /// 0x10 FN: TLV data too large.
    FnTlvTooLarge,
    /// 0x11 FN: no transport connection to the OFD.
    FnNoTransport,
    /// 0x12 FN: cryptographic resource exhausted.
    FnCryptoExhausted,
    /// 0x14 FN: storage for documents awaiting the OFD is exhausted.
    FnOfdStorageExhausted,
    /// 0x15 FN: documents waited for the OFD longer than allowed (30 days).
    FnOfdWaitExceeded,
    /// 0x16 FN: the shift lasts more than 24 hours. pyshtrih's pre-FN table reads 0x16 as "shift not open";
    /// both mean the current shift cannot take receipts, so both are [`ErrorClass::Shift`].
    FnShiftOver24h,
    /// 0x17 FN: wrong time difference between two operations.
    FnBadTimeDelta,
    /// 0x20 FN: the message from the OFD cannot be accepted (written through FF32/FF33).
    OfdMessageRejected,
    /// 0x33 Incorrect parameters in the command.
    BadParameters,
    /// 0x34 No data.
    NoData,
    /// 0x35 Parameter not allowed with the current settings.
    BadParameterForSettings,
    /// 0x37 Command not supported by this device.
    NotSupported,
    /// 0x3C Shift open, operation impossible.
    ShiftOpen,
    /// 0x3D Shift not open, operation impossible.
    ShiftNotOpen,
    /// 0x45 Sum of all payments is less than the receipt total.
    PaymentsBelowTotal,
    /// 0x46 Not enough cash in the drawer.
    NotEnoughCash,
    /// 0x4A Receipt open, operation impossible.
    ReceiptOpen,
    /// 0x4D Cashless payment exceeds the receipt total.
    CashlessAboveTotal,
    /// 0x4E Shift exceeded 24 hours.
    ShiftOver24h,
    /// 0x4F Wrong password.
    WrongPassword,
    /// 0x50 Printing of the previous command is in progress.
    PrintingPrevious,
    /// 0x55 Receipt closed, operation impossible.
    ReceiptClosed,
    /// 0x58 Waiting for the "continue printing" command.
    WaitingContinuePrint,
    /// 0x6B No receipt tape.
    NoReceiptTape,
    /// 0x6C No control tape.
    NoControlTape,
    /// 0x71 Cutter failure.
    CutterFailure,
    /// 0x72 Command not supported in this submode.
    WrongSubmode,
    /// 0x73 Command not supported in this mode.
    WrongMode,
    /// 0x8E Zero receipt total.
    ZeroTotal,
    /// Any other code, kept as is.
    Other(u8),
}

/// (code, variant) pairs; one table drives both directions so they cannot drift apart.
const TABLE: &[(u8, DeviceError)] = &[
    (0x01, DeviceError::FnUnknownCommand),
    (0x02, DeviceError::FnWrongState),
    (0x03, DeviceError::FnFailure),
    (0x04, DeviceError::FnCryptoFailure),
    (0x05, DeviceError::FnExpired),
    (0x06, DeviceError::FnArchiveFull),
    (0x07, DeviceError::FnBadDateTime),
    (0x08, DeviceError::FnNoData),
    (0x09, DeviceError::FnBadParameters),
    (0x10, DeviceError::FnTlvTooLarge),
    (0x11, DeviceError::FnNoTransport),
    (0x12, DeviceError::FnCryptoExhausted),
    (0x14, DeviceError::FnOfdStorageExhausted),
    (0x15, DeviceError::FnOfdWaitExceeded),
    (0x16, DeviceError::FnShiftOver24h),
    (0x17, DeviceError::FnBadTimeDelta),
    (0x20, DeviceError::OfdMessageRejected),
    (0x33, DeviceError::BadParameters),
    (0x34, DeviceError::NoData),
    (0x35, DeviceError::BadParameterForSettings),
    (0x37, DeviceError::NotSupported),
    (0x3C, DeviceError::ShiftOpen),
    (0x3D, DeviceError::ShiftNotOpen),
    (0x45, DeviceError::PaymentsBelowTotal),
    (0x46, DeviceError::NotEnoughCash),
    (0x4A, DeviceError::ReceiptOpen),
    (0x4D, DeviceError::CashlessAboveTotal),
    (0x4E, DeviceError::ShiftOver24h),
    (0x4F, DeviceError::WrongPassword),
    (0x50, DeviceError::PrintingPrevious),
    (0x55, DeviceError::ReceiptClosed),
    (0x58, DeviceError::WaitingContinuePrint),
    (0x6B, DeviceError::NoReceiptTape),
    (0x6C, DeviceError::NoControlTape),
    (0x71, DeviceError::CutterFailure),
    (0x72, DeviceError::WrongSubmode),
    (0x73, DeviceError::WrongMode),
    (0x8E, DeviceError::ZeroTotal),
];

impl DeviceError {
    /// Maps a non-zero error byte (0 means success and is not an error).
    pub fn from_code(code: u8) -> Self {
        TABLE
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Self::Other(code), |(_, e)| *e)
    }

    /// The error byte.
    pub fn code(self) -> u8 {
        match self {
            Self::Other(code) => code,
            known => TABLE
                .iter()
                .find(|(_, e)| *e == known)
                .map_or(0, |(c, _)| *c),
        }
    }

    /// The broad class, see [`ErrorClass`].
    pub fn class(self) -> ErrorClass {
        use DeviceError as E;
        match self {
            E::ShiftOpen | E::ShiftNotOpen | E::ShiftOver24h | E::FnShiftOver24h => {
                ErrorClass::Shift
            }
            E::ReceiptOpen | E::ReceiptClosed => ErrorClass::Document,
            E::BadParameters
            | E::BadParameterForSettings
            | E::PaymentsBelowTotal
            | E::CashlessAboveTotal
            | E::NotEnoughCash
            | E::ZeroTotal
            | E::WrongPassword
            | E::NotSupported
            | E::WrongMode
            | E::WrongSubmode
            | E::NoData => ErrorClass::Parameters,
            E::PrintingPrevious | E::WaitingContinuePrint => ErrorClass::Busy,
            E::NoReceiptTape | E::NoControlTape | E::CutterFailure => ErrorClass::Printer,
            E::FnUnknownCommand
            | E::FnWrongState
            | E::FnFailure
            | E::FnCryptoFailure
            | E::FnExpired
            | E::FnArchiveFull
            | E::FnBadDateTime
            | E::FnNoData
            | E::FnBadParameters
            | E::FnTlvTooLarge
            | E::FnNoTransport
            | E::FnCryptoExhausted
            | E::FnOfdStorageExhausted
            | E::FnOfdWaitExceeded
            | E::FnBadTimeDelta
            | E::OfdMessageRejected => ErrorClass::FiscalStorage,
            E::Other(_) => ErrorClass::Other,
        }
    }

    /// True when the error proves the command had no fiscal effect: the device refused it before acting.
    ///
    /// Printer faults and unknown codes are not definite: a closing command (FF45, 85, FF0B, FF43) may have
    /// written its document to the FN before the printer stopped, so the caller must read FN status (FF01's
    /// last FD number) before deciding.
    pub fn is_definite(self) -> bool {
        !matches!(self.class(), ErrorClass::Printer | ErrorClass::Other)
    }

    /// True for the "busy" class: poll short status until the device is idle, then retry.
    pub fn is_retryable(self) -> bool {
        self.class() == ErrorClass::Busy
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 1..=u8::MAX {
            assert_eq!(DeviceError::from_code(code).code(), code);
        }
        assert_eq!(DeviceError::from_code(0x4A), DeviceError::ReceiptOpen);
        assert_eq!(DeviceError::from_code(0x99), DeviceError::Other(0x99));
    }

    #[test]
    fn classification() {
        assert!(DeviceError::ReceiptOpen.is_definite());
        assert!(!DeviceError::NoReceiptTape.is_definite());
        assert!(!DeviceError::Other(0xC8).is_definite());
        assert!(DeviceError::PrintingPrevious.is_retryable());
        assert_eq!(DeviceError::from_code(0x16).class(), ErrorClass::Shift);
        assert_eq!(DeviceError::from_code(0x3D).class(), ErrorClass::Shift);
    }
}
