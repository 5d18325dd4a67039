//! Text lengths the emulated register accepts, command by command, so a driver padding to a real model's width is served.
//!
//! The codec (`kkt-proto`) decodes a legacy text of any length the frame carries; how much a device takes is a
//! property of the model. Real FN-era Shtrih registers take more than the classic 40 bytes: pyshtrih 2.0.6
//! pads these texts to its model's length (36, 40 or 48 bytes, 48 for ШТРИХ-М-01Ф, 50 for ШТРИХ-МИНИ-01Ф) and
//! those devices print them. The emulator accepts up to 128 bytes in every legacy text field, the longest an
//! item name may be in the FN (FFD tag 1030); longer is 0x33 "incorrect parameters", as on the device.
//! The length counted is the field's bytes as sent, zero padding included, because that is what the device
//! receives and checks.

use kkt_proto::{DeviceError, Request};

/// `17` print string: the line.
pub const PRINT_STRING_TEXT_MAX: usize = 128;
/// `80` sale: the item text, which becomes the FFD item name (tag 1030, at most 128).
pub const SALE_TEXT_MAX: usize = 128;
/// `82` sale return: the item text, as for `80`.
pub const RETURN_SALE_TEXT_MAX: usize = 128;
/// `85` close check: the text printed under the receipt.
pub const CLOSE_CHECK_TEXT_MAX: usize = 128;
/// `FF46` operation: the item name (tag 1030, at most 128 bytes in FFD 1.05).
pub const FN_OPERATION_NAME_MAX: usize = 128;
/// `FF45` close receipt: the text field is 0..64 bytes in its layout (kkt-shtrih `FNCloseCheckEx.php`).
pub const FN_CLOSE_RECEIPT_TEXT_MAX: usize = 64;

/// The length of `req`'s text field and the most this model accepts there; `None` for a command without text.
pub fn text_len_and_max(req: &Request) -> Option<(usize, usize)> {
    let (text, max) = match req {
        Request::PrintString(p) => (&p.text, PRINT_STRING_TEXT_MAX),
        Request::Sale(item) => (&item.text, SALE_TEXT_MAX),
        Request::ReturnSale(item) => (&item.text, RETURN_SALE_TEXT_MAX),
        Request::CloseCheck(c) => (&c.text, CLOSE_CHECK_TEXT_MAX),
        Request::FnOperation(op) => (&op.name, FN_OPERATION_NAME_MAX),
        Request::CloseReceipt(r) => (&r.text, FN_CLOSE_RECEIPT_TEXT_MAX),
        _ => return None,
    };
    Some((text.as_bytes().len(), max))
}

/// Refuses a text longer than its command allows, before the command touches any state.
pub fn check(req: &Request) -> Result<(), DeviceError> {
    match text_len_and_max(req) {
        Some((len, max)) if len > max => Err(DeviceError::BadParameters),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kkt_proto::{CloseCheck, CloseReceipt, FnOperation, LegacyItem, PrintString, Text};
    use rstest::rstest;

    fn text(len: usize) -> Text {
        Text::from_raw(vec![b'x'; len])
    }

    fn legacy_item(len: usize) -> LegacyItem {
        LegacyItem {
            quantity: 1000,
            price: 100,
            department: 1,
            taxes: [1, 0, 0, 0],
            text: text(len),
        }
    }

    fn request(cmd: &str, len: usize) -> Request {
        match cmd {
            "17" => Request::PrintString(PrintString {
                flags: 2,
                text: text(len),
            }),
            "80" => Request::Sale(legacy_item(len)),
            "82" => Request::ReturnSale(legacy_item(len)),
            "85" => Request::CloseCheck(CloseCheck {
                payments: [100, 0, 0, 0],
                discount: 0,
                taxes: [0; 4],
                text: text(len),
            }),
            "FF46" => Request::FnOperation(FnOperation {
                check_type: 1,
                quantity: 1_000_000,
                price: 100,
                sum: None,
                tax_value: None,
                tax_bits: 1,
                department: 1,
                payment_method: 4,
                payment_object: 1,
                name: text(len),
            }),
            "FF45" => Request::CloseReceipt(CloseReceipt {
                payments: [0; 16],
                rounding: 0,
                taxes: [0; 6],
                tax_system: 1,
                text: text(len),
            }),
            other => panic!("no case for {other}"),
        }
    }

    /// One row per command and length: pyshtrih's model widths (36, 40, 48, 50) pass, the limit passes, one
    /// byte more is 0x33.
    #[rstest]
    #[case::print_string_empty("17", 0, true)]
    #[case::print_string_36("17", 36, true)]
    #[case::print_string_48("17", 48, true)]
    #[case::print_string_128("17", 128, true)]
    #[case::print_string_129("17", 129, false)]
    #[case::sale_40("80", 40, true)]
    #[case::sale_48("80", 48, true)]
    #[case::sale_50("80", 50, true)]
    #[case::sale_128("80", 128, true)]
    #[case::sale_129("80", 129, false)]
    #[case::return_48("82", 48, true)]
    #[case::return_128("82", 128, true)]
    #[case::return_129("82", 129, false)]
    #[case::close_check_48("85", 48, true)]
    #[case::close_check_128("85", 128, true)]
    #[case::close_check_129("85", 129, false)]
    #[case::fn_operation_128("FF46", 128, true)]
    #[case::fn_operation_129("FF46", 129, false)]
    #[case::fn_close_64("FF45", 64, true)]
    #[case::fn_close_65("FF45", 65, false)]
    fn text_limit(#[case] cmd: &str, #[case] len: usize, #[case] accepted: bool) {
        let req = request(cmd, len);
        assert_eq!(
            req.code().to_string(),
            cmd,
            "the case builds the command it names"
        );
        let expected = if accepted {
            Ok(())
        } else {
            Err(DeviceError::BadParameters)
        };
        assert_eq!(check(&req), expected, "{cmd} with {len} bytes");
    }

    #[test]
    fn commands_without_text_have_no_limit() {
        assert_eq!(text_len_and_max(&Request::ZReport), None);
        assert_eq!(check(&Request::ZReport), Ok(()));
    }
}
