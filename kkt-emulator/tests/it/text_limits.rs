//! Text lengths over the wire: every text-carrying command takes what a real FN-era Shtrih takes (pyshtrih's 48
//! bytes, up to 128) and answers 0x33 for one byte more, without touching the receipt.

use kkt_proto::{LegacyItem, Reply, Request, Text, encode_frame};
use rstest::rstest;

use crate::harness::{Emu, Host};

const PASSWORD: [u8; 4] = 30u32.to_le_bytes();
const BAD_PARAMETERS: u8 = 0x33;

/// Brings the device into the state the command needs: a shift for lines, a one-rouble line for 85.
fn prepare(host: &mut Host, cmd: &str) {
    if cmd == "17" {
        return;
    }
    host.ok(&Request::OpenShift);
    if cmd == "85" {
        host.ok(&Request::Sale(LegacyItem {
            quantity: 1000,
            price: 100,
            department: 1,
            taxes: [1, 0, 0, 0],
            text: Text::padded("Tea", 40).expect("text"),
        }));
    }
}

/// The payload of `cmd` with a text of `len` bytes, laid out by hand: the codec's encoder stops at 40 bytes
/// for the legacy commands, which is exactly what this test must go past.
fn payload(cmd: &str, len: usize) -> Vec<u8> {
    let money = |v: u64| v.to_le_bytes()[..5].to_vec();
    let mut p = match cmd {
        "17" => vec![0x17],
        "80" => vec![0x80],
        "82" => vec![0x82],
        "85" => vec![0x85],
        "FF46" => vec![0xFF, 0x46],
        other => panic!("no layout for {other}"),
    };
    p.extend_from_slice(&PASSWORD);
    match cmd {
        "17" => p.push(2),
        "80" | "82" => {
            p.extend(money(1000));
            p.extend(money(100));
            p.extend([1, 1, 0, 0, 0]);
        }
        "85" => {
            p.extend(money(100));
            p.extend([0u8; 15]);
            p.extend([0, 0, 0, 0, 0, 0]);
        }
        _ => {
            p.push(1);
            p.extend(&1_000_000u64.to_le_bytes()[..6]);
            p.extend(money(100));
            p.extend([0xFF; 10]);
            p.extend([1, 1, 4, 1]);
        }
    }
    // pyshtrih's shape: the text, then zero padding up to the field length.
    let text = b"Long item name";
    p.extend(text.iter().copied().chain(std::iter::repeat(0)).take(len));
    p
}

#[rstest]
#[case::print_string_48("17", 48, true)]
#[case::print_string_128("17", 128, true)]
#[case::print_string_129("17", 129, false)]
#[case::sale_48("80", 48, true)]
#[case::sale_128("80", 128, true)]
#[case::sale_129("80", 129, false)]
#[case::return_sale_128("82", 128, true)]
#[case::return_sale_129("82", 129, false)]
#[case::close_check_48("85", 48, true)]
#[case::close_check_128("85", 128, true)]
#[case::close_check_129("85", 129, false)]
#[case::fn_operation_128("FF46", 128, true)]
#[case::fn_operation_129("FF46", 129, false)]
fn text_length(#[case] cmd: &str, #[case] len: usize, #[case] accepted: bool) {
    let emu = Emu::start();
    let mut host = emu.host();
    prepare(&mut host, cmd);
    let before = emu.get("/_emu/state");
    let frame = encode_frame(&payload(cmd, len)).expect("frame");
    let reply = Reply::from_frame(&host.exchange(&frame)).expect("answer decodes");
    assert_eq!(reply.code().to_string(), cmd);
    match (accepted, reply) {
        (true, Reply::Ok(_)) => {}
        (false, Reply::Error { error, .. }) => {
            assert_eq!(error.code(), BAD_PARAMETERS, "{cmd} with {len} bytes");
            let after = emu.get("/_emu/state");
            assert_eq!(
                (&after["open_receipt_items"], &after["last_fd"]),
                (&before["open_receipt_items"], &before["last_fd"]),
                "a refused command changes nothing"
            );
        }
        (_, reply) => panic!("{cmd} with {len} bytes: {reply:?}"),
    }
    if accepted && cmd != "17" {
        let state = emu.get("/_emu/state");
        let changed = if cmd == "85" {
            state["last_fd"] != before["last_fd"]
        } else {
            state["open_receipt_items"] != before["open_receipt_items"]
        };
        assert!(changed, "{cmd} with {len} bytes took effect");
    }
}
