//! A stand-in fiscal sign (FPD) shared by the KKT emulator and the mock OFD. It is NOT a GOST fiscal sign.
//!
//! A real FN computes the FPD in its crypto coprocessor as a GOST MAC with keys nobody outside the FN and the
//! FNS holds. This module only gives the emulator and the mock one deterministic, keyed function they can both
//! compute, so that the mock can tell a document the emulator signed from one that was altered on the way.
//!
//! Definition: `fpd = u32::from_be_bytes(HMAC-SHA256(secret, message)[0..4])`, where `message` is
//!
//! | bytes | field |
//! |---|---|
//! | n | FN number, its bytes exactly as given (normally 16 ASCII digits) |
//! | 4 | FD number, u32 big-endian |
//! | 4 | document time, u32 big-endian Unix seconds |
//! | 8 | total in kopecks, u64 big-endian |
//! | 1 | operation type (1054) |
//!
//! Every field after the FN number has a fixed width, so the layout is unambiguous read from the end.
//! Big-endian was chosen for the integers and for reading the first four MAC bytes because it is the
//! conventional network order for MAC inputs and truncations (as in HOTP's dynamic truncation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The message the FPD MAC covers; see the module documentation for the layout.
pub fn fpd_message(
    fn_number: &str,
    fd: u32,
    time: u32,
    total_kopecks: u64,
    operation_type: u8,
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(fn_number.len() + 17);
    msg.extend_from_slice(fn_number.as_bytes());
    msg.extend_from_slice(&fd.to_be_bytes());
    msg.extend_from_slice(&time.to_be_bytes());
    msg.extend_from_slice(&total_kopecks.to_be_bytes());
    msg.push(operation_type);
    msg
}

/// The stand-in FPD: the first 4 bytes, read big-endian, of HMAC-SHA256(secret, message). Not a GOST sign.
pub fn fpd(
    secret: &[u8],
    fn_number: &str,
    fd: u32,
    time: u32,
    total_kopecks: u64,
    operation_type: u8,
) -> u32 {
    // HMAC accepts keys of any length, so this constructor cannot fail; the fallback keeps it panic-free anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&fpd_message(
        fn_number,
        fd,
        time,
        total_kopecks,
        operation_type,
    ));
    let tag = mac.finalize().into_bytes();
    u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_fixed() {
        let msg = fpd_message("9999078900005488", 17, 0x5E0B_E100, 12_345, 1);
        assert_eq!(&msg[..16], b"9999078900005488");
        assert_eq!(&msg[16..20], &[0, 0, 0, 17]);
        assert_eq!(&msg[20..24], &[0x5E, 0x0B, 0xE1, 0x00]);
        assert_eq!(&msg[24..32], &12_345u64.to_be_bytes());
        assert_eq!(msg[32], 1);
        assert_eq!(msg.len(), 33);
    }

    #[test]
    fn matches_an_independent_hmac_computation() {
        // Computed with Python's hmac module: hmac.new(b"emulator-secret",
        // b"9999078900005488" + struct.pack(">IIQB", 17, 1700000000, 25050, 1), sha256).digest()[:4].
        let sign = fpd(
            b"emulator-secret",
            "9999078900005488",
            17,
            1_700_000_000,
            25_050,
            1,
        );
        assert_eq!(sign, 0x6DDF_CF68);
        assert_eq!(sign, 1_843_384_168);
    }

    #[test]
    fn every_input_changes_the_sign() {
        let base = fpd(b"k", "9999078900005488", 17, 1_600_000_000, 12_345, 1);
        assert_ne!(
            base,
            fpd(b"K", "9999078900005488", 17, 1_600_000_000, 12_345, 1)
        );
        assert_ne!(
            base,
            fpd(b"k", "9999078900005489", 17, 1_600_000_000, 12_345, 1)
        );
        assert_ne!(
            base,
            fpd(b"k", "9999078900005488", 18, 1_600_000_000, 12_345, 1)
        );
        assert_ne!(
            base,
            fpd(b"k", "9999078900005488", 17, 1_600_000_001, 12_345, 1)
        );
        assert_ne!(
            base,
            fpd(b"k", "9999078900005488", 17, 1_600_000_000, 12_346, 1)
        );
        assert_ne!(
            base,
            fpd(b"k", "9999078900005488", 17, 1_600_000_000, 12_345, 2)
        );
        assert_eq!(
            base,
            fpd(b"k", "9999078900005488", 17, 1_600_000_000, 12_345, 1)
        );
    }
}
