//! Command codes of Shtrih-M protocol v1: one byte, or `FF xx` for the FN command family. A leaf
//! module: the errors name codes, and framing reads them.

use std::fmt;

/// A command code: one byte (`10`, `E0`, ...) or two bytes `FF xx` for the FN command family.
///
/// The value is kept as a `u16` (`0x0010`, `0xFF45`); a lone `0xFF` is not a valid one-byte code because
/// it always introduces a second byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandCode(pub(crate) u16);

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
