//! Scripted link conversations for the host and device state machines, and both wired together.

use std::collections::VecDeque;
use std::time::Duration;

use kkt_proto::{
    ACK, DeviceLink, DeviceOutput, ENQ, FrameError, HostLink, HostOutput, Indeterminate,
    LinkConfig, LinkFailure, NAK, NotDelivered, Reply, Request, TimerToken,
};

use crate::hex;

const SHORT_STATUS_PWD1: &str = "02 05 10 01 00 00 00 14";
const SHORT_STATUS_ANSWER: &str = "02 11 10 00 01 90 00 08 00 00 00 00 00 00 00 FF FF FF 00 67";
const FF45_ANSWER: &str = "02 10 FF 45 00 00 00 00 00 00 DC 45 00 00 B5 BC 48 11 63";

/// Drives a [`HostLink`] as a test script: timer arms are recorded, every other output is checked in order.
struct Host {
    link: HostLink,
    outputs: VecDeque<HostOutput>,
    timer: Option<(TimerToken, Duration)>,
}

impl Host {
    fn new() -> Self {
        Self::with_config(LinkConfig::default())
    }

    fn with_config(config: LinkConfig) -> Self {
        Self {
            link: HostLink::new(config),
            outputs: VecDeque::new(),
            timer: None,
        }
    }

    fn absorb(&mut self, outputs: Vec<HostOutput>) {
        for output in outputs {
            match output {
                HostOutput::ArmTimer { token, after } => self.timer = Some((token, after)),
                other => self.outputs.push_back(other),
            }
        }
    }

    fn start(&mut self, frame_hex: &str) {
        let payload = kkt_proto::decode_frame(&hex(frame_hex)).unwrap();
        let outputs = self.link.start(&payload).unwrap();
        self.absorb(outputs);
    }

    /// Starts `frame_hex` on an idle line: ENQ, the device's NAK ("nothing pending"), the frame.
    fn send_on_an_idle_line(&mut self, frame_hex: &str) {
        self.start(frame_hex);
        self.device_sends(&[NAK]);
        self.expect_write(&[ENQ]);
        self.expect_write(&hex(frame_hex));
    }

    fn device_sends(&mut self, bytes: &[u8]) {
        let outputs = self.link.bytes_in(bytes);
        self.absorb(outputs);
    }

    fn timeout(&mut self) {
        let (token, _) = self.timer.expect("a timer is armed");
        let outputs = self.link.timer_expired(token);
        self.absorb(outputs);
    }

    fn armed(&self) -> Duration {
        self.timer.expect("a timer is armed").1
    }

    fn expect(&mut self, expected: HostOutput) {
        assert_eq!(self.outputs.pop_front(), Some(expected));
    }

    fn expect_write(&mut self, bytes: &[u8]) {
        self.expect(HostOutput::Write(bytes.to_vec()));
    }

    fn expect_quiet(&mut self) {
        assert_eq!(self.outputs.pop_front(), None);
    }
}

fn payload(frame_hex: &str) -> Vec<u8> {
    kkt_proto::decode_frame(&hex(frame_hex)).unwrap()
}

#[test]
fn enq_nak_frame_ack_answer_ack() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    assert_eq!(host.armed(), Duration::from_secs(1));
    host.device_sends(&[NAK]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    host.device_sends(&[ACK]);
    host.expect_quiet();
    assert_eq!(host.armed(), Duration::from_secs(2));
    host.device_sends(&hex(SHORT_STATUS_ANSWER));
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
    host.expect_quiet();
    assert!(host.link.is_idle());
}

#[test]
fn answer_split_across_reads_with_filler() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    host.device_sends(&[0xFF, NAK]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    host.device_sends(&[0xFF, ACK, 0xFF]);
    let answer = hex(SHORT_STATUS_ANSWER);
    let (head, tail) = answer.split_at(7);
    host.device_sends(head);
    assert_eq!(
        host.armed(),
        Duration::from_millis(100),
        "byte timeout inside a frame"
    );
    host.expect_quiet();
    host.device_sends(tail);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
}

#[test]
fn fn_commands_get_their_own_answer_timeouts() {
    let config = LinkConfig::default();
    assert_eq!(
        config.answer_timeout(kkt_proto::CommandCode::FN_CLOSE_RECEIPT),
        Duration::from_secs(5)
    );
    assert_eq!(
        config.answer_timeout(kkt_proto::CommandCode::FN_OPEN_SHIFT),
        Duration::from_secs(15)
    );
    let mut host = Host::new();
    host.start("02 06 FF 41 1E 00 00 00 A6");
    host.device_sends(&[NAK]);
    host.device_sends(&[ACK]);
    assert_eq!(host.armed(), Duration::from_secs(2));
}

#[test]
fn enq_ack_drains_a_stale_answer_first() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    let mut bytes = vec![ACK];
    bytes.extend(hex(FF45_ANSWER));
    host.device_sends(&bytes);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::StaleAnswer(payload(FF45_ANSWER)));
    host.expect_write(&[ENQ]);
    host.device_sends(&[NAK]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    host.device_sends(&[ACK]);
    host.device_sends(&hex(SHORT_STATUS_ANSWER));
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
}

#[test]
fn stale_answer_with_our_command_code_is_still_stale_before_we_send() {
    // After a restart the device may hold an answer to the very command we are about to send; it cannot be
    // ours because our frame has not left yet.
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    host.device_sends(&[ACK]);
    host.device_sends(&hex(SHORT_STATUS_ANSWER));
    host.expect_write(&[ACK]);
    host.expect(HostOutput::StaleAnswer(payload(SHORT_STATUS_ANSWER)));
    host.expect_write(&[ENQ]);
}

#[test]
fn nak_after_frame_resends_then_fails_definitely() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    host.device_sends(&[NAK]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    for _ in 0..3 {
        host.device_sends(&[NAK]);
        host.expect_write(&hex(SHORT_STATUS_PWD1));
    }
    host.device_sends(&[NAK]);
    let failure = LinkFailure::NotDelivered(NotDelivered::FrameRejected);
    host.expect(HostOutput::Failed(failure));
    assert!(failure.is_definite());
    assert!(host.link.is_idle());
}

#[test]
fn bad_lrc_answer_is_naked_and_requested_again() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.device_sends(&[NAK]);
    host.device_sends(&[ACK]);
    host.expect_write(&[ENQ]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    let mut corrupt = hex(SHORT_STATUS_ANSWER);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    host.device_sends(&corrupt);
    host.expect(HostOutput::BadFrame(FrameError::BadLrc {
        computed: 0x67,
        received: 0x66,
        payload: payload(SHORT_STATUS_ANSWER),
    }));
    host.expect_write(&[NAK]);
    host.expect_write(&[ENQ]);
    let mut resent = vec![ACK];
    resent.extend(hex(SHORT_STATUS_ANSWER));
    host.device_sends(&resent);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
}

#[test]
fn silent_device_is_no_link_after_retries() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.expect_write(&[ENQ]);
    for _ in 0..3 {
        host.timeout();
        host.expect_write(&[ENQ]);
    }
    host.timeout();
    host.expect(HostOutput::Failed(LinkFailure::NotDelivered(
        NotDelivered::NoLink,
    )));
    host.expect_quiet();
}

#[test]
fn answer_timeout_then_device_idle_means_answer_lost() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.device_sends(&[NAK]);
    host.device_sends(&[ACK]);
    host.expect_write(&[ENQ]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    host.timeout();
    host.expect_write(&[ENQ]);
    host.device_sends(&[NAK]);
    let failure = LinkFailure::Indeterminate(Indeterminate::AnswerLost);
    host.expect(HostOutput::Failed(failure));
    assert!(!failure.is_definite());
}

#[test]
fn answer_timeouts_exhaust_retries_indeterminately() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.device_sends(&[NAK]);
    host.device_sends(&[ACK]);
    host.expect_write(&[ENQ]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    for _ in 0..3 {
        host.timeout();
        host.expect_write(&[ENQ]);
        // The device says "busy, answer coming" each time and then stays silent.
        host.device_sends(&[ACK]);
    }
    host.timeout();
    host.expect(HostOutput::Failed(LinkFailure::Indeterminate(
        Indeterminate::AnswerTimeout,
    )));
}

#[test]
fn lost_frame_ack_recovers_our_answer_via_enq() {
    let mut host = Host::new();
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    host.timeout();
    host.expect_write(&[ENQ]);
    let mut bytes = vec![ACK];
    bytes.extend(hex(SHORT_STATUS_ANSWER));
    host.device_sends(&bytes);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
}

#[test]
fn lost_frame_then_idle_device_resends_the_frame() {
    let mut host = Host::new();
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    host.timeout();
    host.expect_write(&[ENQ]);
    host.device_sends(&[NAK]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
}

#[test]
fn frame_never_acknowledged_is_indeterminate() {
    let mut host = Host::new();
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    for _ in 0..3 {
        host.timeout();
        host.expect_write(&[ENQ]);
    }
    host.timeout();
    host.expect(HostOutput::Failed(LinkFailure::Indeterminate(
        Indeterminate::NoAckForFrame,
    )));
}

#[test]
fn truncated_answer_is_naked_after_the_byte_timeout() {
    let mut host = Host::new();
    host.start(SHORT_STATUS_PWD1);
    host.device_sends(&[NAK]);
    host.device_sends(&[ACK]);
    host.expect_write(&[ENQ]);
    host.expect_write(&hex(SHORT_STATUS_PWD1));
    host.device_sends(&hex("02 11 10 00"));
    host.timeout();
    host.expect(HostOutput::BadFrame(FrameError::Truncated {
        have: 2,
        want: 18,
    }));
    host.expect_write(&[NAK]);
    host.expect_write(&[ENQ]);
}

// Found by the host_link fuzz target: a corrupt frame in place of the ACK to our frame left the
// command "unsent", so our own answer, asked for again, was drained as stale and the frame went out a
// second time (for FF45 a second receipt).
#[test]
fn corrupt_frame_in_place_of_the_ack_may_be_our_answer() {
    let mut host = Host::new();
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    let mut corrupt = hex(SHORT_STATUS_ANSWER);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    host.device_sends(&corrupt);
    assert!(matches!(
        host.outputs.pop_front(),
        Some(HostOutput::BadFrame(FrameError::BadLrc { .. }))
    ));
    host.expect_write(&[NAK]);
    host.expect_write(&[ENQ]);
    let mut resent = vec![ACK];
    resent.extend(hex(SHORT_STATUS_ANSWER));
    host.device_sends(&resent);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
    host.expect_quiet();
}

// Found by the host_link fuzz target: the same corrupt frame with no retries left was reported as the
// definite "a stale answer could not be read, so our frame was never sent", although it had been sent.
#[test]
fn corrupt_frame_in_place_of_the_ack_fails_indeterminately() {
    let mut host = Host::with_config(LinkConfig {
        retries_max: 0,
        ..LinkConfig::default()
    });
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    host.device_sends(&hex("02 02 10 00 00"));
    assert!(matches!(
        host.outputs.pop_front(),
        Some(HostOutput::BadFrame(FrameError::BadLrc { .. }))
    ));
    host.expect_write(&[NAK]);
    let failure = LinkFailure::Indeterminate(Indeterminate::AnswerCorrupt);
    host.expect(HostOutput::Failed(failure));
    assert!(!failure.is_definite());
}

// Found by the host_link fuzz target: a good frame with another command's code in place of the ACK
// was drained as stale but left our frame "unsent", so our answer after the next ENQ was drained too.
#[test]
fn stale_frame_in_place_of_the_ack_keeps_our_frame_maybe_taken() {
    let mut host = Host::new();
    host.send_on_an_idle_line(SHORT_STATUS_PWD1);
    host.device_sends(&hex(FF45_ANSWER));
    host.expect_write(&[ACK]);
    host.expect(HostOutput::StaleAnswer(payload(FF45_ANSWER)));
    host.expect_write(&[ENQ]);
    let mut held = vec![ACK];
    held.extend(hex(SHORT_STATUS_ANSWER));
    host.device_sends(&held);
    host.expect_write(&[ACK]);
    host.expect(HostOutput::Answer(payload(SHORT_STATUS_ANSWER)));
    host.expect_quiet();
}

#[test]
fn device_side_conversation() {
    let mut device = DeviceLink::new();
    assert_eq!(
        device.bytes_in(&[ENQ]),
        vec![DeviceOutput::Write(vec![NAK])]
    );
    let request = payload(SHORT_STATUS_PWD1);
    assert_eq!(
        device.bytes_in(&hex(SHORT_STATUS_PWD1)),
        vec![
            DeviceOutput::Write(vec![ACK]),
            DeviceOutput::Request(request.clone())
        ]
    );
    assert_eq!(
        Request::from_payload(&request).unwrap(),
        (Some(1), Request::ShortStatus)
    );
    // ENQ while executing: "answer coming".
    assert_eq!(
        device.bytes_in(&[ENQ]),
        vec![DeviceOutput::Write(vec![ACK])]
    );
    let answer = payload(SHORT_STATUS_ANSWER);
    assert_eq!(
        device.answer_ready(&answer).unwrap(),
        vec![DeviceOutput::Write(hex(SHORT_STATUS_ANSWER))]
    );
    // The host NAKs (bad LRC on its side) and asks again: ACK then the same frame.
    assert!(device.bytes_in(&[NAK]).is_empty());
    let mut again = vec![ACK];
    again.extend(hex(SHORT_STATUS_ANSWER));
    assert_eq!(device.bytes_in(&[ENQ]), vec![DeviceOutput::Write(again)]);
    assert!(device.bytes_in(&[ACK]).is_empty());
    assert!(!device.has_pending_answer());
    assert_eq!(
        device.bytes_in(&[ENQ]),
        vec![DeviceOutput::Write(vec![NAK])]
    );
}

#[test]
fn device_naks_bad_lrc_and_drops_partial_frames() {
    let mut device = DeviceLink::new();
    let outputs = device.bytes_in(&hex("02 05 10 01 00 00 00 15"));
    assert_eq!(outputs[0], DeviceOutput::Write(vec![NAK]));
    assert!(matches!(
        outputs[1],
        DeviceOutput::BadFrame(FrameError::BadLrc { .. })
    ));
    assert!(device.bytes_in(&hex("02 05 10")).is_empty());
    assert!(device.is_mid_frame());
    assert!(matches!(
        device.byte_timeout(),
        Some(FrameError::Truncated { .. })
    ));
    assert_eq!(
        device.bytes_in(&[ENQ]),
        vec![DeviceOutput::Write(vec![NAK])]
    );
}

/// A host and a device wired back to back; the "emulator" answers every request with `answer`.
/// Returns what the host reported, in order. Bounded: at most 64 exchanges.
fn run_wired(
    host: &mut HostLink,
    device: &mut DeviceLink,
    request: &[u8],
    answer: &[u8],
) -> Vec<HostOutput> {
    let mut reported = Vec::new();
    let mut to_device: VecDeque<u8> = VecDeque::new();
    let mut pending = host.start(request).unwrap();
    for _ in 0..64 {
        let mut to_host = Vec::new();
        for output in pending.drain(..) {
            match output {
                HostOutput::Write(bytes) => to_device.extend(bytes),
                HostOutput::ArmTimer { .. } => {}
                other => reported.push(other),
            }
        }
        let bytes: Vec<u8> = to_device.drain(..).collect();
        let device_outputs = device.bytes_in(&bytes);
        if host.is_idle() {
            // The host's last ACK has been delivered; nothing more to exchange.
            return reported;
        }
        for output in device_outputs {
            match output {
                DeviceOutput::Write(bytes) => to_host.extend(bytes),
                DeviceOutput::Request(_) => {
                    for ready in device.answer_ready(answer).unwrap() {
                        if let DeviceOutput::Write(bytes) = ready {
                            to_host.extend(bytes);
                        }
                    }
                }
                DeviceOutput::BadFrame(error) => panic!("unexpected bad frame {error:?}"),
            }
        }
        pending = host.bytes_in(&to_host);
    }
    panic!("conversation did not finish: {reported:?}");
}

#[test]
fn wired_host_and_device_complete_a_command() {
    let mut host = HostLink::new(LinkConfig::default());
    let mut device = DeviceLink::new();
    let reported = run_wired(
        &mut host,
        &mut device,
        &payload(SHORT_STATUS_PWD1),
        &payload(SHORT_STATUS_ANSWER),
    );
    assert_eq!(
        reported,
        vec![HostOutput::Answer(payload(SHORT_STATUS_ANSWER))]
    );
    assert!(!device.has_pending_answer());
}

#[test]
fn restarted_host_drains_the_answer_its_predecessor_never_read() {
    let mut device = DeviceLink::new();
    // The first adapter process sends FF45 and dies right after the device ACKs it.
    let close = Request::CloseReceipt(kkt_proto::CloseReceipt {
        payments: [10_000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        rounding: 0,
        taxes: [0; 6],
        tax_system: 1,
        text: kkt_proto::Text::default(),
    })
    .to_frame(30)
    .unwrap();
    let _ = device.bytes_in(&[ENQ]);
    let _ = device.bytes_in(&close);
    let _ = device.answer_ready(&payload(FF45_ANSWER)).unwrap();
    assert!(device.has_pending_answer());
    // A new process starts with a fresh link and sends short status.
    let mut host = HostLink::new(LinkConfig::default());
    let reported = run_wired(
        &mut host,
        &mut device,
        &payload(SHORT_STATUS_PWD1),
        &payload(SHORT_STATUS_ANSWER),
    );
    assert_eq!(
        reported,
        vec![
            HostOutput::StaleAnswer(payload(FF45_ANSWER)),
            HostOutput::Answer(payload(SHORT_STATUS_ANSWER)),
        ]
    );
    let stale = Reply::from_payload(&payload(FF45_ANSWER)).unwrap();
    assert_eq!(stale.code(), kkt_proto::CommandCode::FN_CLOSE_RECEIPT);
}
