//! The golden request frames of `kkt-proto` (docs/protocols.md#shtrih-m-golden-frames) replayed against
//! the emulator, with the answers asserted byte for byte (frozen clock, fresh FN of seed 1). The answer
//! LRCs were computed by hand from the framing rule, not by our encoder.

use kkt_proto::decode_frame;

use crate::harness::{Emu, hex};

fn check(host: &mut crate::harness::Host, request: &str, answer: &str) {
    let got = host.exchange(&hex(request));
    assert_eq!(got, hex(answer), "answer to {request}");
    assert!(decode_frame(&got).is_ok());
}

#[test]
fn golden_frames_get_the_documented_answers() {
    let emu = Emu::start();
    let mut host = emu.host();
    // Short status, password 1 (javapos issue #68 trace): operator 1, flags 0x0092, mode 4 (shift closed).
    check(
        &mut host,
        "02 05 10 01 00 00 00 14",
        "02 11 10 00 01 92 00 04 00 00 9C 9C 00 00 00 00 00 00 00 96",
    );
    // Short status, password 30.
    check(
        &mut host,
        "02 05 10 1E 00 00 00 0B",
        "02 11 10 00 1E 92 00 04 00 00 9C 9C 00 00 00 00 00 00 00 89",
    );
    // FN begin open shift: ERR only.
    check(&mut host, "02 06 FF 41 1E 00 00 00 A6", "02 03 FF 41 00 BD");
    // Find FD 1 before any document: FN "no data" (0x08).
    check(
        &mut host,
        "02 0A FF 0A 1E 00 00 00 01 00 00 00 E0",
        "02 03 FF 0A 08 FE",
    );
    // Cancel with no receipt open: 0x55 "receipt closed".
    check(&mut host, "02 05 88 1E 00 00 00 93", "02 02 88 55 DF");
    // Legacy open shift E0 (fr_drv_ng issue #158 trace): operator 30.
    check(&mut host, "02 05 E0 1E 00 00 00 FB", "02 03 E0 00 1E FD");
    // Table commands (fr_drv_ng issue #236 trace) are outside the subset: 0x37 "not supported".
    check(&mut host, "02 06 2D 1E 00 00 00 0A 3F", "02 02 2D 37 18");
    // Z report closes the shift: operator 30.
    check(&mut host, "02 05 41 1E 00 00 00 5A", "02 03 41 00 1E 5C");
    // Find FD 1 now: shift-open report, no ticket, 2023-11-14 22:13, FD 1, its FPD, shift 1.
    let found = host.exchange(&hex("02 0A FF 0A 1E 00 00 00 01 00 00 00 E0"));
    assert_eq!(&found[..7], &hex("02 14 FF 0A 00 02 00")[..]);
    assert_eq!(&found[7..16], &hex("17 0B 0E 16 0D 01 00 00 00")[..]);
    // FN status: fiscal mode, no document, shift closed, FN number, last FD 2.
    let st = host.exchange(&hex("02 06 FF 01 1E 00 00 00 E6"));
    assert_eq!(&st[..9], &hex("02 21 FF 01 00 03 00 00 00")[..]);
    assert_eq!(&st[31..35], &2u32.to_le_bytes());
}
