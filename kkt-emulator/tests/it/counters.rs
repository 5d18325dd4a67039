//! `GET /_emu/counters` and `POST /_emu/counters/reset`: the bytes, frames and control bytes of a known
//! exchange counted exactly each way, the zeroing, the device's command time and the paced line time (both ways).

use std::time::Duration;

use kkt_proto::{ACK, ENQ, NAK, Request};
use serde_json::Value;

use crate::harness::{Emu, Host};

/// The short status answer of the golden frames (`02 11 10 00 ...`): 17 payload bytes plus STX, LEN, LRC.
const SHORT_STATUS_ANSWER_LEN: u64 = 20;

/// The figures of one period that do not depend on timing.
#[derive(Debug, Default, PartialEq, Eq)]
struct Line {
    bytes_from_host: u64,
    bytes_to_host: u64,
    frames_from_host: u64,
    frames_to_host: u64,
    control_bytes_from_host: u64,
    control_bytes_to_host: u64,
    commands: u64,
}

fn line(c: &Value) -> Line {
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {c}"))
    };
    Line {
        bytes_from_host: n("bytes_from_host"),
        bytes_to_host: n("bytes_to_host"),
        frames_from_host: n("frames_from_host"),
        frames_to_host: n("frames_to_host"),
        control_bytes_from_host: n("control_bytes_from_host"),
        control_bytes_to_host: n("control_bytes_to_host"),
        commands: n("commands"),
    }
}

/// `n` short status exchanges (ENQ/NAK, frame/ACK, answer/ACK each), then one ENQ/NAK as a barrier: the NAK
/// proves the device has read the host's last ACK, so the counters are complete when read.
fn short_status_exchanges(host: &mut Host, n: u64) -> Line {
    let request_len = Request::ShortStatus.to_frame(30).expect("frame").len() as u64;
    for _ in 0..n {
        let answer = host.exchange(&Request::ShortStatus.to_frame(30).expect("frame"));
        assert_eq!(answer.len() as u64, SHORT_STATUS_ANSWER_LEN);
    }
    host.enq_idle();
    Line {
        // ENQ + request + ACK each, then the barrier ENQ.
        bytes_from_host: n * (1 + request_len + 1) + 1,
        // NAK + ACK + answer each, then the barrier NAK.
        bytes_to_host: n * (1 + 1 + SHORT_STATUS_ANSWER_LEN) + 1,
        frames_from_host: n,
        frames_to_host: n,
        control_bytes_from_host: 2 * n + 1,
        control_bytes_to_host: 2 * n + 1,
        commands: n,
    }
}

fn check(emu: &Emu, want: &Line) -> Value {
    let got = emu.get("/_emu/counters");
    assert_eq!(&line(&got), want, "{got}");
    got
}

fn reset(emu: &Emu) -> Value {
    let zeroed = emu.post_ok("/_emu/counters/reset", "");
    assert_eq!(line(&zeroed), Line::default(), "{zeroed}");
    assert_eq!(
        (
            zeroed["command_time_us"].as_u64(),
            zeroed["wire_time_us"].as_u64()
        ),
        (Some(0), Some(0)),
        "{zeroed}"
    );
    zeroed
}

#[test]
fn one_exchange_moves_the_counters_by_its_exact_bytes() {
    let emu = Emu::start();
    let mut host = emu.host();
    let zeroed = reset(&emu);
    check(&emu, &Line::default());
    let want = short_status_exchanges(&mut host, 1);
    assert_eq!(
        (want.bytes_from_host, want.bytes_to_host),
        (11, 23),
        "ENQ 02 05 10 1E 00 00 00 0B ACK ENQ / NAK ACK 02 11 ... NAK"
    );
    let got = check(&emu, &want);
    assert_eq!(got["wire_time_us"], 0, "unpaced: no line time");
    assert!(got["command_time_us"].as_u64() > Some(0), "{got}");
    assert_eq!(got["since_unix_ms"], zeroed["since_unix_ms"]);
    // A stray ACK from the host outside any exchange: a byte and a control byte, no frame.
    host.write(&[ACK]);
    host.enq_idle();
    let more = Line {
        bytes_from_host: want.bytes_from_host + 2,
        bytes_to_host: want.bytes_to_host + 1,
        control_bytes_from_host: want.control_bytes_from_host + 2,
        control_bytes_to_host: want.control_bytes_to_host + 1,
        ..want
    };
    check(&emu, &more);
}

#[test]
fn reset_zeroes_and_counting_starts_again() {
    let emu = Emu::start();
    let mut host = emu.host();
    let first = emu.get("/_emu/counters");
    short_status_exchanges(&mut host, 2);
    let zeroed = reset(&emu);
    assert!(zeroed["since_unix_ms"].as_u64() >= first["since_unix_ms"].as_u64());
    check(&emu, &Line::default());
    let want = short_status_exchanges(&mut host, 3);
    check(&emu, &want);
    // The commands counter agrees with the by-code view, which counts since start.
    assert_eq!(emu.get("/_emu/commands")["by_code"]["10"], 5);
}

#[test]
fn a_frame_cut_off_is_no_frame_and_a_nak_fault_is_no_command() {
    let emu = Emu::start();
    let mut host = emu.host();
    reset(&emu);
    let frame = Request::ShortStatus.to_frame(30).expect("frame");
    // Half a frame, then silence past the 100 ms byte timeout: dropped by the device and by the count.
    host.write(&frame[..4]);
    std::thread::sleep(Duration::from_millis(250));
    host.enq_idle();
    emu.fault(r#"{"kind":"nak","command":"10"}"#);
    host.write(&frame);
    assert_eq!(host.read_byte(), NAK);
    host.write(&[ENQ]);
    assert_eq!(host.read_byte(), NAK, "nothing executed, nothing held");
    check(
        &emu,
        &Line {
            bytes_from_host: 4 + 1 + 8 + 1,
            bytes_to_host: 3,
            frames_from_host: 1,
            frames_to_host: 0,
            control_bytes_from_host: 2,
            control_bytes_to_host: 3,
            commands: 0,
        },
    );
}

#[test]
fn paced_line_time_follows_the_bytes_and_stays_out_of_command_time() {
    // 1200 baud 8N1: 8.33 ms per byte. The answer waits 100 ms (`slow`), which is device time.
    const BAUD: u64 = 1200;
    const SLOW_US: u64 = 100_000;
    let byte_us = 10 * 1_000_000 / BAUD;
    let emu = Emu::start_with(|c| c.baud = Some(1200));
    let mut host = emu.host();
    reset(&emu);
    emu.fault(&format!(
        r#"{{"kind":"slow","ms":{},"command":"10"}}"#,
        SLOW_US / 1000
    ));
    let want = short_status_exchanges(&mut host, 1);
    let got = check(&emu, &want);
    let wire_us = got["wire_time_us"].as_u64().expect("wire_time_us");
    // Both directions are line time: the host's bytes as the receive clock holds them back, the device's
    // as they are paced out. The device's bytes alone are 23 of 34, below the 90% bound.
    let bytes = want.bytes_from_host + want.bytes_to_host;
    let line_us = bytes * byte_us;
    assert!(
        wire_us * 10 >= line_us * 9,
        "wire_time_us {wire_us} is below 90% of {bytes} bytes x 10 / {BAUD} = {line_us} us"
    );
    let command_us = got["command_time_us"].as_u64().expect("command_time_us");
    assert!(
        command_us >= SLOW_US,
        "the slow answer is device time: {got}"
    );
    // The answer's pacing (19 byte times after its STX) is line time; counted as device time it would
    // push the figure past this bound.
    let answer_pacing_us = (SHORT_STATUS_ANSWER_LEN - 1) * byte_us;
    assert!(
        command_us < SLOW_US + answer_pacing_us,
        "command_time_us {command_us} includes the answer's pacing: {got}"
    );
}
