//! Every fault kind of the menu, observed byte by byte on the wire.

use std::time::{Duration, Instant};

use kkt_proto::{ACK, Answer, ENQ, NAK, Reply, Request, STX, decode_frame};

use crate::harness::{Emu, Host, close, item};

fn open_shift(host: &mut Host) {
    host.ok(&Request::FnBeginOpenShift);
    host.ok(&Request::FnOpenShift);
}

fn last_fd(emu: &Emu) -> u64 {
    emu.get("/_emu/state")["last_fd"].as_u64().expect("last_fd")
}

#[test]
fn paper_out_and_cover_open_refuse_until_cleared() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"paper_out"}"#);
    assert_eq!(host.err(&Request::FnBeginOpenShift), 0x6B);
    let Answer::ShortStatus(s) = host.ok(&Request::ShortStatus) else {
        panic!("10")
    };
    assert_eq!(
        (s.flags & 0x0002, s.submode),
        (0, 1),
        "no receipt roll, passive out-of-paper"
    );
    assert_eq!(emu.get("/_emu/state")["paper"], "out");
    emu.post_ok("/_emu/clear", "");
    emu.fault(r#"{"kind":"cover_open"}"#);
    assert_eq!(host.err(&Request::FnBeginOpenShift), 0x6B);
    let Answer::ShortStatus(s) = host.ok(&Request::ShortStatus) else {
        panic!("10")
    };
    assert_eq!(s.flags & 0x0400, 0x0400, "cover flag");
    emu.post_ok("/_emu/clear", "");
    open_shift(&mut host);
    assert_eq!(last_fd(&emu), 1);
}

#[test]
fn slow_delays_the_answer_after_the_ack() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"slow","ms":400,"command":"10"}"#);
    host.enq_idle();
    host.write(&Request::ShortStatus.to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    let acked = Instant::now();
    let answer = host.read_frame();
    assert!(
        acked.elapsed() >= Duration::from_millis(400),
        "answer held for the configured delay"
    );
    assert!(Reply::from_frame(&answer).is_ok());
    host.write(&[ACK]);
}

#[test]
fn drop_answer_commits_and_the_answer_comes_on_enq() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"drop_answer","command":"FF0B"}"#);
    host.ok(&Request::FnBeginOpenShift);
    host.enq_idle();
    host.write(&Request::FnOpenShift.to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    host.expect_silence(300);
    // Committed although unanswered.
    assert_eq!(last_fd(&emu), 1);
    // ENQ: ACK means "an answer is pending", and the answer follows.
    host.write(&[ENQ]);
    assert_eq!(host.read_byte(), ACK);
    let answer = host.read_frame();
    host.write(&[ACK]);
    let Reply::Ok(Answer::FnOpenShift(doc)) = Reply::from_frame(&answer).expect("decodes") else {
        panic!("FF0B")
    };
    assert_eq!(doc.fd_number, 1);
    host.enq_idle();
}

#[test]
fn power_cut_after_commit_goes_silent_until_power_on() {
    let emu = Emu::start();
    let mut host = emu.host();
    open_shift(&mut host);
    host.ok(&item("Tea", 1000, 5_000, 1));
    emu.fault(r#"{"kind":"power_cut_after_commit"}"#);
    // A status command commits nothing, so the armed cut waits.
    host.ok(&Request::ShortStatus);
    host.enq_idle();
    host.write(&close(5_000, 0).to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    host.expect_silence(300);
    host.write(&[ENQ]);
    host.expect_silence(300);
    let state = emu.get("/_emu/state");
    assert_eq!(
        (state["powered"].as_bool(), state["last_fd"].as_u64()),
        (Some(false), Some(2))
    );
    emu.post_ok("/_emu/power_on", "");
    // The answer died with the power; the FN kept the receipt.
    host.enq_idle();
    let Answer::FnStatus(st) = host.ok(&Request::FnStatus) else {
        panic!("FF01")
    };
    assert_eq!(st.last_fd, 2);
    let Answer::ShortStatus(s) = host.ok(&Request::ShortStatus) else {
        panic!("10")
    };
    assert_eq!(s.mode, 2, "receipt closed, shift open");
}

/// "Power back" leaves the device on: a cut still waiting for its commit when the power comes
/// back is disarmed, so a commit after the power-on does not switch the device off for good (the
/// nightly chaos scenario hit this when a sale was slow to close).
#[test]
fn power_on_disarms_a_cut_that_has_not_fired() {
    let emu = Emu::start();
    let mut host = emu.host();
    open_shift(&mut host);
    host.ok(&item("Tea", 1000, 5_000, 1));
    emu.fault(r#"{"kind":"power_cut_after_commit"}"#);
    let answer = emu.post_ok("/_emu/power_on", "");
    assert_eq!(answer["power_cuts_disarmed"], 1, "{answer}");
    let Answer::CloseReceipt(_) = host.ok(&close(5_000, 0)) else {
        panic!("FF45")
    };
    let state = emu.get("/_emu/state");
    assert_eq!(
        (state["powered"].as_bool(), state["last_fd"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(emu.post_ok("/_emu/power_on", "")["power_cuts_disarmed"], 0);
}

#[test]
fn nak_refuses_a_good_frame_once_and_the_resend_executes_once() {
    let emu = Emu::start();
    let mut host = emu.host();
    host.ok(&Request::FnBeginOpenShift);
    emu.fault(r#"{"kind":"nak","command":"FF0B"}"#);
    let frame = Request::FnOpenShift.to_frame(30).expect("frame");
    host.enq_idle();
    host.write(&frame);
    assert_eq!(host.read_byte(), NAK);
    assert_eq!(last_fd(&emu), 0, "a NAKed frame is not executed");
    let answer = host.exchange(&frame);
    assert!(
        matches!(Reply::from_frame(&answer), Ok(Reply::Ok(Answer::FnOpenShift(d))) if d.fd_number == 1)
    );
    assert_eq!(last_fd(&emu), 1);
}

#[test]
fn garbage_comes_before_a_good_answer() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"garbage","count":1}"#);
    host.enq_idle();
    host.write(&Request::ShortStatus.to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    let mut noise = Vec::new();
    let mut first = host.read_byte();
    for _ in 0..16 {
        if first == STX {
            break;
        }
        noise.push(first);
        first = host.read_byte();
    }
    assert_eq!(first, STX);
    assert!(noise.len() >= 3, "noise bytes before STX: {noise:02X?}");
    let answer = host.read_frame_after_stx();
    assert!(decode_frame(&answer).is_ok());
    host.write(&[ACK]);
    host.enq_idle();
}

#[test]
fn bad_lrc_answer_is_resent_good_after_nak_and_enq() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"bad_lrc","command":"10"}"#);
    host.enq_idle();
    host.write(&Request::ShortStatus.to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    let bad = host.read_frame();
    assert!(decode_frame(&bad).is_err(), "checksum corrupted");
    host.write(&[NAK]);
    host.write(&[ENQ]);
    assert_eq!(host.read_byte(), ACK);
    let good = host.read_frame();
    host.write(&[ACK]);
    assert_eq!(
        good[..good.len() - 1],
        bad[..bad.len() - 1],
        "same answer, good LRC"
    );
    assert!(decode_frame(&good).is_ok());
}

#[test]
fn busy_answers_0x50_without_executing() {
    let emu = Emu::start();
    let mut host = emu.host();
    emu.fault(r#"{"kind":"busy","count":2}"#);
    assert_eq!(host.err(&Request::FnBeginOpenShift), 0x50);
    assert_eq!(host.err(&Request::OpenShift), 0x50);
    assert_eq!(last_fd(&emu), 0);
    host.ok(&Request::OpenShift);
    assert_eq!(last_fd(&emu), 1);
}

#[test]
fn probabilistic_faults_follow_their_seed() {
    let run = || {
        let emu = Emu::start();
        let mut host = emu.host();
        emu.fault(r#"{"kind":"busy","probability":0.5,"seed":7}"#);
        (0..16)
            .map(|_| matches!(host.call(&Request::ShortStatus), Reply::Error { .. }))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.contains(&true) && a.contains(&false), "{a:?}");
}

#[test]
fn control_api_rejects_bad_requests() {
    let emu = Emu::start();
    for body in [
        r#"{"kind":"meteor"}"#,
        r#"{"kind":"nak","cuont":1}"#,
        r#"{"kind":"slow"}"#,
        r#"{"kind":"nak","probability":2,"seed":1}"#,
        "not json",
    ] {
        let (status, v) = emu.post("/_emu/fault", body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(emu.post("/_emu/clock", r#"{"offset_s":1,"unix":2}"#).0, 400);
    assert_eq!(emu.post("/_emu/reset", "").0, 403);
    assert_eq!(emu.post("/_emu/nothing", "").0, 404);
    assert!(
        emu.get("/_emu/state")["faults"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[test]
fn reset_gives_a_fresh_fn_when_allowed() {
    let emu = Emu::start_with(|c| c.allow_reset = true);
    let mut host = emu.host();
    host.ok(&Request::OpenShift);
    let before = emu.get("/_emu/state")["fn_serial"].clone();
    let v = emu.post_ok("/_emu/reset", "");
    assert_ne!(v["fn_serial"], before);
    assert_eq!(emu.get("/_emu/state")["last_fd"], 0);
}

#[test]
fn baud_pacing_is_no_faster_than_the_line() {
    // 1200 baud 8N1: 8.33 ms per byte. The emulator writes STX on its own, then paces the 20 bytes
    // after it, so the answer cannot be complete sooner than 19 byte times after the request was
    // written. The clock starts before anything the emulator sends: a reader the scheduler runs
    // late only makes the figure larger (timing from the STX read flaked under load).
    let emu = Emu::start_with(|c| c.baud = Some(1200));
    let mut host = emu.host();
    host.enq_idle();
    let asked = Instant::now();
    host.write(&Request::ShortStatus.to_frame(30).expect("frame"));
    assert_eq!(host.read_byte(), ACK);
    assert_eq!(host.read_byte(), STX);
    let rest = host.read_frame_after_stx();
    assert_eq!(rest.len(), 20);
    assert!(
        asked.elapsed() >= Duration::from_micros(19 * 8_333),
        "{:?}",
        asked.elapsed()
    );
    host.write(&[ACK]);
}

#[test]
fn paced_host_bytes_are_heard_no_faster_than_the_line() {
    // 1200 baud 8N1: 8.33 ms per byte. The host's request reaches the pty at once, but a real line carries
    // its B bytes in B x 10 / 1200 s, and the device cannot ACK a frame before its last byte arrived.
    // A loose lower bound, not a speed assertion: a late scheduler only makes the figure larger.
    let emu = Emu::start_with(|c| c.baud = Some(1200));
    let mut host = emu.host();
    host.enq_idle();
    let frame = Request::ShortStatus.to_frame(30).expect("frame");
    let line = Duration::from_micros(frame.len() as u64 * 10 * 1_000_000 / 1200);
    let asked = Instant::now();
    host.write(&frame);
    assert_eq!(host.read_byte(), ACK);
    let acked = asked.elapsed();
    assert!(
        acked >= line,
        "ACK after {acked:?}, before the {} request bytes could cross the line ({line:?})",
        frame.len()
    );
    assert_eq!(host.read_byte(), STX);
    host.read_frame_after_stx();
    host.write(&[ACK]);
}
