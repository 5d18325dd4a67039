//! Integration tests of kkt-proto: golden vectors, link conversations and property tests.

mod golden;
mod link;
mod props;

/// Parses "02 05 10" style hex into bytes; test vectors are written the way traces print them.
pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test vector is valid hex")
}
