//! Integration tests of ofd-proto: golden vectors, typed documents, the envelope, A-protocol versions and
//! property tests.

mod docs;
mod envelope;
mod golden;
mod props;
mod versions;

/// Parses hex with optional whitespace; test vectors are written the way their sources print them.
pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(text, 16).expect("hex digit")
        })
        .collect()
}

/// Encodes `tlv`, asserts the exact wire bytes, decodes them back and asserts the same tree.
pub fn check_tlv(tlv: &ofd_proto::Tlv, expected_hex: &str) {
    let expected = unhex(expected_hex);
    let encoded = tlv.encode().expect("encode");
    assert_eq!(encoded, expected, "encoding of tag {}", tlv.tag);
    let (decoded, used) = ofd_proto::decode_one(&expected).expect("decode");
    assert_eq!(used, expected.len());
    assert_eq!(&decoded, tlv);
}

/// The yandex/ofd tests/ofd_test.py vectors: session header, container header and the 273-byte body they cover.
pub const YANDEX_SESSION_HEADER: &str =
    "2a 08 41 0a 81 a2 00 01 39 39 39 39 30 37 38 39 35 30 20 20 20 20 20 20 31 01 14 00 00 00";
pub const YANDEX_CONTAINER_HEADER: &str = "31 01 03 ec a5 01 01 10 09 99 99 07 89 12 34 56 7f 00 00 01 00 23 09 82 c4 00 00 01 00 02 01 07";
pub const YANDEX_CRC_BODY: &str = "
0100030111041000393939393037383931323334353637200d04140031323030
30303133303030302020202020202020fa030c00313132323333343435353636
1004040001000000f403040028540e573504060021041c6b81a4e903010000ea
0301000020040100002604010001180409008e8e8e20228c8c8c222104010000
2204010000f10326008caee1aaa2a02c2087a5aba5adeba920afe0aee1afa5aa
e22c20a42e363620aaaee0af2e2032160408008e94842de2a5e1e225040a0077
77772e6f66642e727524040c007777772e6e616c6f672e727519040600313131
323334fd0312009188912e2080848c888d8891929080928e90f5030a00303632
30303030303031810673fca34b28720000";

/// The whole message of yandex/ofd tests/example_test.py (a registration-change report with its FN trailer).
pub const YANDEX_EXAMPLE_MESSAGE: &str = "
2a08410a81a2000139393939303738393030303035343838b40114000000b401
2578a50b011009999907890000548800000184ec4c14c20000010004018a0b00
860111041000393939393037383930303030353438380d041400303030303030
3030303530303835373020202020fa030c003737303232303332373620201004
040001000000f40304009855b958350406002104aa1075412004010000ea0301
0000e90301000055040100015604010000540401000026040100064d04010001
f5030c00303030303030303030303032180411008e8e8e2090808f8a80922de6
a5ade2e020f103300031313131343120a32e8caee1aaa2a02c20e3ab2e208ae3
e1aaaea2e1aaa0ef20a42e32308020aee4a8e120822d323032f9030c00373730
343335383531382020240408006e616c6f672e72755d0413006578616d706c65
406578616d706c652e636f6dfd030a0098a5adadaead208a2e2016040a004f4f
4f20544158434f4da504010002b904010002a4040300322e30a3043100313131
31343120a32e8caee1aaa2a02c20e3ab2e208ae3e1aaaea2e1aaa0ef0d0aa42e
32308020aee4a8e120822d323032b3040c00373731323334353637383930c504
010000b7040100018106a55ae10c4d750000";
