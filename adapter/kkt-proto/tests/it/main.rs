//! Integration tests of kkt-proto: golden vectors, link conversations and property tests.

mod golden;
mod link;
mod props;

/// Parses "02 05 10" style hex into bytes; test vectors are written the way traces print them.
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).expect("test vector is valid hex"))
        .collect()
}
