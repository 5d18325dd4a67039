//! Status answers (`10`, `11`, `FF01`) and the device mode, whose layouts grow with firmware versions.

use crate::error::DecodeError;
use crate::wire::Reader;

/// Device mode, the low nibble of the mode byte in `10`/`11` (pyshtrih `handlers/functions.py` `FRMode`).
/// The high nibble is a status within the mode; for mode 8 it is the receipt type (0 sale, 1 buy,
/// 2 sale return, 3 buy return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceMode {
    /// 2: shift open, under 24 hours.
    ShiftOpen,
    /// 3: shift open, over 24 hours; only closing it is allowed.
    ShiftOpenOver24h,
    /// 4: shift closed.
    ShiftClosed,
    /// 8: a document (receipt) is open.
    DocumentOpen,
    /// Any other mode (1 data output, 5 locked by wrong tax password, 6 waiting for date confirmation, ...).
    Other(u8),
}

impl DeviceMode {
    /// Splits a raw mode byte into the mode and its status nibble.
    pub fn from_byte(byte: u8) -> (Self, u8) {
        let mode = match byte & 0x0F {
            2 => Self::ShiftOpen,
            3 => Self::ShiftOpenOver24h,
            4 => Self::ShiftClosed,
            8 => Self::DocumentOpen,
            other => Self::Other(other),
        };
        (mode, byte >> 4)
    }

    /// The low nibble.
    pub fn code(self) -> u8 {
        match self {
            Self::ShiftOpen => 2,
            Self::ShiftOpenOver24h => 3,
            Self::ShiftClosed => 4,
            Self::DocumentOpen => 8,
            Self::Other(code) => code & 0x0F,
        }
    }
}

/// `10` short status. Layout after ERR (pyshtrih `handlers/commands.py` 0x10): `operator(1) flags(2) mode(1)
/// submode(1) operations_low(1) battery(1) power(1) fp_error(1) eklz_error(1) operations_high(1)
/// reserved(3)`, then firmware-dependent bytes kept in `tail` (the javapos issue #68 trace has one `00`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortStatus {
    /// Operator number.
    pub operator: u8,
    /// Device flags (u16).
    pub flags: u16,
    /// Raw mode byte; see [`ShortStatus::mode`].
    pub mode: u8,
    /// Submode: 0 paper present and idle, 1/2 out of paper, 3 waiting for "continue printing", 4/5 printing.
    pub submode: u8,
    /// Operations in the current receipt (low and high byte are apart on the wire).
    pub operations: u16,
    /// Backup battery voltage, raw.
    pub battery: u8,
    /// Supply voltage, raw.
    pub power: u8,
    /// Fiscal memory error code.
    pub fp_error: u8,
    /// EKLZ error code.
    pub eklz_error: u8,
    /// Three reserved bytes.
    pub reserved: [u8; 3],
    /// Bytes after the documented layout.
    pub tail: Vec<u8>,
}

impl ShortStatus {
    /// The mode and its status nibble.
    pub fn mode(&self) -> (DeviceMode, u8) {
        DeviceMode::from_byte(self.mode)
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let operator = r.u8("operator")?;
        let flags = r.u16("flags")?;
        let mode = r.u8("mode")?;
        let submode = r.u8("submode")?;
        let low = r.u8("operations_low")?;
        let battery = r.u8("battery")?;
        let power = r.u8("power")?;
        let fp_error = r.u8("fp_error")?;
        let eklz_error = r.u8("eklz_error")?;
        let high = r.u8("operations_high")?;
        Ok(Self {
            operator,
            flags,
            mode,
            submode,
            operations: u16::from_le_bytes([low, high]),
            battery,
            power,
            fp_error,
            eklz_error,
            reserved: r.array("reserved")?,
            tail: r.rest().to_vec(),
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let [low, high] = self.operations.to_le_bytes();
        out.push(self.operator);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&[self.mode, self.submode, low, self.battery, self.power]);
        out.extend_from_slice(&[self.fp_error, self.eklz_error, high]);
        out.extend_from_slice(&self.reserved);
        out.extend_from_slice(&self.tail);
    }
}

/// `11` full status. Layout after ERR (pyshtrih `handlers/commands.py` 0x11): `operator(1) fw_version(2)
/// fw_build(2) fw_date(3: d m y) hall_number(1) document_number(2) flags(2) mode(1) submode(1) port(1)
/// fp_version(2) fp_build(2) fp_date(3) date(3: d m y) time(3: h m s) fp_flags(1) serial(4) last_shift(2)
/// free_fp_records(2) registrations(1) registrations_left(1) inn(6)`; 46 bytes, then `tail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullStatus {
    pub operator: u8,
    pub fw_version: [u8; 2],
    pub fw_build: u16,
    pub fw_date: [u8; 3],
    pub hall_number: u8,
    pub document_number: u16,
    pub flags: u16,
    /// Raw mode byte, as in [`ShortStatus::mode`].
    pub mode: u8,
    pub submode: u8,
    pub port: u8,
    pub fp_version: [u8; 2],
    pub fp_build: u16,
    pub fp_date: [u8; 3],
    /// Day, month, year - 2000.
    pub date: [u8; 3],
    /// Hour, minute, second.
    pub time: [u8; 3],
    pub fp_flags: u8,
    pub serial: u32,
    pub last_shift: u16,
    pub free_fp_records: u16,
    pub registrations: u8,
    pub registrations_left: u8,
    /// INN as a 6-byte LE integer.
    pub inn: [u8; 6],
    /// Bytes after the documented layout.
    pub tail: Vec<u8>,
}

impl FullStatus {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            operator: r.u8("operator")?,
            fw_version: r.array("fw_version")?,
            fw_build: r.u16("fw_build")?,
            fw_date: r.array("fw_date")?,
            hall_number: r.u8("hall_number")?,
            document_number: r.u16("document_number")?,
            flags: r.u16("flags")?,
            mode: r.u8("mode")?,
            submode: r.u8("submode")?,
            port: r.u8("port")?,
            fp_version: r.array("fp_version")?,
            fp_build: r.u16("fp_build")?,
            fp_date: r.array("fp_date")?,
            date: r.array("date")?,
            time: r.array("time")?,
            fp_flags: r.u8("fp_flags")?,
            serial: r.u32("serial")?,
            last_shift: r.u16("last_shift")?,
            free_fp_records: r.u16("free_fp_records")?,
            registrations: r.u8("registrations")?,
            registrations_left: r.u8("registrations_left")?,
            inn: r.array("inn")?,
            tail: r.rest().to_vec(),
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.operator);
        out.extend_from_slice(&self.fw_version);
        out.extend_from_slice(&self.fw_build.to_le_bytes());
        out.extend_from_slice(&self.fw_date);
        out.push(self.hall_number);
        out.extend_from_slice(&self.document_number.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&[self.mode, self.submode, self.port]);
        out.extend_from_slice(&self.fp_version);
        out.extend_from_slice(&self.fp_build.to_le_bytes());
        out.extend_from_slice(&self.fp_date);
        out.extend_from_slice(&self.date);
        out.extend_from_slice(&self.time);
        out.push(self.fp_flags);
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.last_shift.to_le_bytes());
        out.extend_from_slice(&self.free_fp_records.to_le_bytes());
        out.extend_from_slice(&[self.registrations, self.registrations_left]);
        out.extend_from_slice(&self.inn);
        out.extend_from_slice(&self.tail);
    }
}

/// `FF01` FN status. Layout after ERR (javapos `FSReadStatus.java`; pyshtrih 0xFF01): `life_phase(1)
/// current_document(1) document_data(1) shift_open(1) warnings(1) datetime(5: y m d h m) fn_number(16 ASCII)
/// last_fd(4)`, then `tail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnStatus {
    /// Bit 0 configured, bit 1 fiscal mode open, bit 2 fiscal mode closed, bit 3 archive sent to the OFD.
    pub life_phase: u8,
    /// 0 none, 1 registration, 2 shift open report, 4 receipt, 8 shift close report, 0x10 fiscal close.
    pub current_document: u8,
    /// 0 no document data, 1 document data received.
    pub document_data: u8,
    /// 0 shift closed, 1 shift open.
    pub shift_open: u8,
    /// FN warning flags.
    pub warnings: u8,
    /// Year - 2000, month, day, hour, minute.
    pub datetime: [u8; 5],
    /// FN serial number, 16 ASCII digits.
    pub fn_number: [u8; 16],
    /// Number of the last fiscal document.
    pub last_fd: u32,
    /// Bytes after the documented layout.
    pub tail: Vec<u8>,
}

impl FnStatus {
    /// The FN number as text.
    pub fn fn_number_str(&self) -> String {
        String::from_utf8_lossy(&self.fn_number)
            .trim_end_matches(['\0', ' '])
            .to_string()
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            life_phase: r.u8("life_phase")?,
            current_document: r.u8("current_document")?,
            document_data: r.u8("document_data")?,
            shift_open: r.u8("shift_open")?,
            warnings: r.u8("warnings")?,
            datetime: r.array("datetime")?,
            fn_number: r.array("fn_number")?,
            last_fd: r.u32("last_fd")?,
            tail: r.rest().to_vec(),
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.life_phase,
            self.current_document,
            self.document_data,
            self.shift_open,
            self.warnings,
        ]);
        out.extend_from_slice(&self.datetime);
        out.extend_from_slice(&self.fn_number);
        out.extend_from_slice(&self.last_fd.to_le_bytes());
        out.extend_from_slice(&self.tail);
    }
}
