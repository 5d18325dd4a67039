//! Fuzz target: the host link state machine (`HostLink`) driven by arbitrary byte and timer events.
//!
//! The input is a small program for a scripted device, so that the fuzzer reaches the deep states (ACKed
//! frame, stale answers, corrupt answers) without having to guess LRCs:
//!
//! ```text
//! byte 0: retries_max = b % 5        byte 1: stale_answers_max = b % 10
//! then ops, op = byte % 8:
//!   0 start raw payload   len = next % 16, then len bytes (may be empty or invalid)
//!   1 start a known command        next byte picks one of KNOWN
//!   2 device sends raw bytes       len = next % 32, then len bytes
//!   3 device sends a control byte  next byte picks ACK, NAK, ENQ, filler or STX
//!   4 device sends an answer frame flags, error byte, data len % 24, data (see `answer_frame`)
//!   5 the latest timer expires
//!   6 a superseded or made-up timer expires   next byte
//!   7 the device goes silent: the latest timer expires until the link is idle
//! ```
//!
//! Checked: no panic; a start is refused exactly while a command is in flight; every exchange ends in
//! exactly one `Answer` or `Failed`, after which the link is idle and ignores old timers and stray bytes;
//! an `Answer` carries the started command's code and comes only after our frame was written; timer
//! tokens only grow; and each exchange stays within the bounds `LinkConfig` sets (ENQs, frame writes,
//! NAKs and effective timer expiries), and a silent device ends it within that many expiries.
//!
//! The definite/indeterminate thread is checked against a small model fed the same bytes one at a time
//! ([`Certainty`]): a failure is definite exactly when the device certainly did not take our frame, our
//! frame is never sent again once the device may have taken it, and from then on a frame carrying our
//! command code is our answer, never a stale one to drain (and before then, always a stale one).

#![no_main]

use std::time::Duration;

use kkt_proto::{
    ACK, CommandCode, ENQ, FILLER, FrameDecoder, FrameError, HostLink, HostOutput, LinkConfig,
    LinkFailure, NAK, Request, STX, StartError, TimerToken, Token, encode_frame,
};
use libfuzzer_sys::fuzz_target;

/// Commands a real driver sends, with different answer timeouts.
const KNOWN: &[Request] = &[
    Request::ShortStatus,
    Request::FnStatus,
    Request::FnOpenShift,
    Request::DeviceType,
    Request::FnReadDocument { fd_number: 1 },
];

/// Reads the program bytes; running out of input reads zeros and ends the loop.
struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn next(&mut self) -> Option<u8> {
        let (first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(*first)
    }

    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn take(&mut self, len: usize) -> Vec<u8> {
        let len = len.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        head.to_vec()
    }
}

/// Whether the device may have executed our command, as the bytes on the wire prove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Certainty {
    /// Never sent, NAKed, or the device since answered ENQ with NAK (idle and holding no answer).
    NotTaken,
    /// Sent, and then neither ACK nor NAK: silence, a frame or garbage in place of the ACK.
    MaybeTaken,
    /// The device ACKed our frame.
    Taken,
}

/// What our last ENQ or frame write still waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Awaiting {
    #[default]
    Nothing,
    /// The first reaction to our ENQ.
    EnqReply,
    /// The first reaction to our frame.
    FrameReply,
}

/// What one exchange (one successful `start` up to its `Answer` or `Failed`) has done so far.
struct Exchange {
    cmd: CommandCode,
    frame: Vec<u8>,
    enq_writes: u32,
    frame_writes: u32,
    nak_writes: u32,
    effective_expiries: u32,
    certainty: Certainty,
    awaiting: Awaiting,
    /// Mirrors the link's own decoder, so the model sees the tokens the link sees.
    decoder: FrameDecoder,
}

impl Exchange {
    fn new(cmd: CommandCode, frame: Vec<u8>) -> Self {
        Self {
            cmd,
            frame,
            enq_writes: 0,
            frame_writes: 0,
            nak_writes: 0,
            effective_expiries: 0,
            certainty: Certainty::NotTaken,
            awaiting: Awaiting::Nothing,
            decoder: FrameDecoder::new(),
        }
    }

    /// The device's reaction to what we wrote last: a token, a bad frame (`Err`), or silence (`None`).
    fn react(&mut self, reaction: Option<Result<&Token, ()>>) {
        // Noise between our write and the device's reaction is ignored, as the link ignores it.
        if let Some(Ok(Token::Control(c))) = reaction
            && *c != ACK
            && *c != NAK
        {
            return;
        }
        let awaiting = std::mem::take(&mut self.awaiting);
        self.certainty = match (awaiting, reaction) {
            (Awaiting::FrameReply, Some(Ok(Token::Control(ACK)))) => Certainty::Taken,
            (Awaiting::FrameReply, Some(Ok(Token::Control(NAK)))) => Certainty::NotTaken,
            // Silence, an answer frame or a bad frame instead of ACK or NAK: it may have been taken.
            (Awaiting::FrameReply, _) => Certainty::MaybeTaken,
            // An idle device holds no answer, so a frame that may have arrived was not executed.
            (Awaiting::EnqReply, Some(Ok(Token::Control(NAK))))
                if self.certainty == Certainty::MaybeTaken =>
            {
                Certainty::NotTaken
            }
            _ => self.certainty,
        };
    }
}

struct Harness {
    link: HostLink,
    retries_max: u32,
    stale_max: u32,
    latest: Option<TimerToken>,
    exchange: Option<Exchange>,
}

impl Harness {
    /// Attempt counters reset once, when the device ACKs our frame, so each step gets two rounds.
    fn attempts_max(&self) -> u32 {
        2 * (self.retries_max + 1)
    }

    fn enq_max(&self) -> u32 {
        1 + self.attempts_max() + self.stale_max + 1
    }

    fn start(&mut self, payload: &[u8]) {
        let was_idle = self.link.is_idle();
        assert_eq!(was_idle, self.exchange.is_none());
        match self.link.start(payload) {
            Ok(outputs) => {
                assert!(
                    was_idle,
                    "a start was accepted while a command was in flight"
                );
                let cmd = CommandCode::split(payload)
                    .expect("accepted payload has a code")
                    .0;
                assert_eq!(outputs.first(), Some(&HostOutput::Write(vec![ENQ])));
                let frame = encode_frame(payload).expect("accepted payload fits a frame");
                self.exchange = Some(Exchange::new(cmd, frame));
                self.apply(outputs, false);
            }
            Err(StartError::InFlight) => assert!(!was_idle, "an idle link refused a start"),
            Err(StartError::BadCode(_) | StartError::TooLong(_)) => {
                assert!(
                    self.link.is_idle() == was_idle,
                    "a refused start changed the link"
                );
            }
        }
    }

    /// Feeds bytes one at a time (the link treats a chunk byte by byte), so the model follows each token.
    fn bytes_in(&mut self, bytes: &[u8]) {
        for byte in bytes {
            let Some(exchange) = self.exchange.as_mut() else {
                let outputs = self.link.bytes_in(&[*byte]);
                assert!(
                    outputs.is_empty(),
                    "an idle link reacted to bytes: {outputs:?}"
                );
                continue;
            };
            let token = exchange.decoder.push(*byte);
            match &token {
                None => {}
                Some(Ok(token)) => exchange.react(Some(Ok(token))),
                Some(Err(_)) => exchange.react(Some(Err(()))),
            }
            let (ours, certainty) = (exchange.cmd, exchange.certainty);
            let outputs = self.link.bytes_in(&[*byte]);
            if let Some(Ok(Token::Frame(payload))) = &token {
                let code = CommandCode::split(payload).ok().map(|(code, _)| code);
                let answered = outputs.contains(&HostOutput::Answer(payload.clone()));
                let drained = outputs.contains(&HostOutput::StaleAnswer(payload.clone()));
                assert!(
                    answered != drained,
                    "a frame must be our answer or a stale one"
                );
                if certainty == Certainty::NotTaken {
                    assert!(
                        drained,
                        "an answer taken as ours before our frame can have run"
                    );
                } else if code == Some(ours) {
                    assert!(
                        answered,
                        "our answer drained as stale, our frame {certainty:?}"
                    );
                }
            }
            self.apply(outputs, false);
        }
    }

    fn timer(&mut self, token: TimerToken) {
        let was_idle = self.link.is_idle();
        let outputs = self.link.timer_expired(token);
        if was_idle || Some(token) != self.latest {
            assert!(
                outputs.is_empty(),
                "a stale or idle timer acted: {outputs:?}"
            );
        }
        if let Some(exchange) = self.exchange.as_mut()
            && !outputs.is_empty()
        {
            // The link ends a partial frame only while it reads an answer, and then says so.
            let truncated = outputs
                .iter()
                .any(|o| matches!(o, HostOutput::BadFrame(FrameError::Truncated { .. })));
            if truncated {
                assert!(exchange.decoder.timeout().is_some(), "model out of step");
            }
            exchange.react(None);
        }
        self.apply(outputs, true);
    }

    /// Lets the latest timer expire until the link gives up; a silent device must end the exchange.
    fn silence(&mut self) {
        let budget = self.attempts_max() + 1;
        for _ in 0..budget {
            if self.link.is_idle() {
                return;
            }
            let token = self.latest.expect("a busy link has a timer armed");
            self.timer(token);
        }
        assert!(
            self.link.is_idle(),
            "a silent device did not end the exchange within {budget} timer expiries"
        );
    }

    fn apply(&mut self, outputs: Vec<HostOutput>, from_timer: bool) {
        if from_timer
            && !outputs.is_empty()
            && let Some(exchange) = self.exchange.as_mut()
        {
            exchange.effective_expiries += 1;
        }
        let mut finished = false;
        for output in outputs {
            assert!(!finished, "output after the exchange ended: {output:?}");
            let exchange = self
                .exchange
                .as_mut()
                .expect("outputs only during an exchange");
            match output {
                HostOutput::Write(bytes) => {
                    if bytes == [ENQ] {
                        exchange.enq_writes += 1;
                        exchange.awaiting = Awaiting::EnqReply;
                    } else if bytes == [NAK] {
                        exchange.nak_writes += 1;
                    } else if bytes == exchange.frame {
                        let certainty = exchange.certainty;
                        assert_eq!(certainty, Certainty::NotTaken, "frame sent again");
                        exchange.frame_writes += 1;
                        exchange.awaiting = Awaiting::FrameReply;
                    } else {
                        assert_eq!(bytes, [ACK], "unexpected write");
                    }
                }
                HostOutput::ArmTimer { token, after } => {
                    assert!(
                        self.latest.is_none_or(|t| token > t),
                        "timer tokens only grow"
                    );
                    assert!(after > Duration::ZERO);
                    self.latest = Some(token);
                }
                HostOutput::Answer(payload) => {
                    let code = CommandCode::split(&payload)
                        .expect("an answer has a code")
                        .0;
                    assert_eq!(code, exchange.cmd, "an answer to another command");
                    assert!(exchange.frame_writes > 0, "an answer before our frame left");
                    finished = true;
                }
                HostOutput::Failed(failure) => {
                    let definite = matches!(failure, LinkFailure::NotDelivered(_));
                    assert_eq!(failure.is_definite(), definite);
                    assert_eq!(
                        definite,
                        exchange.certainty == Certainty::NotTaken,
                        "{failure:?} while our frame is {:?}",
                        exchange.certainty
                    );
                    finished = true;
                }
                HostOutput::StaleAnswer(_) | HostOutput::BadFrame(_) => {}
            }
        }
        if let Some(exchange) = self.exchange.as_ref() {
            let attempts_max = self.attempts_max();
            assert!(exchange.enq_writes <= self.enq_max(), "too many ENQs");
            assert!(
                exchange.frame_writes <= self.enq_max() + attempts_max,
                "too many frame writes"
            );
            assert!(exchange.nak_writes <= attempts_max, "too many NAKs");
            assert!(
                exchange.effective_expiries <= attempts_max,
                "too many timeouts"
            );
        }
        if finished {
            assert!(
                self.link.is_idle(),
                "the link is busy after its exchange ended"
            );
            self.exchange = None;
        } else {
            assert_eq!(self.link.is_idle(), self.exchange.is_none());
        }
    }
}

/// An answer frame from the scripted device: `flags` bit 0 uses another command code, bit 1 breaks the
/// LRC, bit 2 truncates the frame, bit 3 puts an ACK before it.
fn answer_frame(script: &mut Script<'_>, ours: Option<CommandCode>) -> Vec<u8> {
    let flags = script.byte();
    let error = script.byte();
    let len = usize::from(script.byte() % 24);
    let data = script.take(len);
    let mut payload = Vec::new();
    let cmd = if flags & 1 == 0 {
        ours.unwrap_or(CommandCode::SHORT_STATUS)
    } else {
        let value = script.byte();
        if value == FILLER {
            CommandCode::from_u16(0xFF00 | u16::from(script.byte())).expect("FF xx")
        } else {
            CommandCode::from_u16(u16::from(value)).expect("one byte")
        }
    };
    cmd.write_to(&mut payload);
    payload.push(error);
    payload.extend_from_slice(&data);
    let mut frame = encode_frame(&payload).expect("at most 27 bytes");
    if flags & 2 != 0 {
        let last = frame.len() - 1;
        frame[last] ^= 0x5A;
    }
    if flags & 4 != 0 {
        let cut = 1 + usize::from(script.byte()) % (frame.len() - 1);
        frame.truncate(frame.len() - cut);
    }
    if flags & 8 != 0 {
        frame.insert(0, ACK);
    }
    frame
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script { bytes: data };
    let retries_max = u32::from(script.byte() % 5);
    let stale_max = u32::from(script.byte() % 10);
    let config = LinkConfig {
        retries_max,
        stale_answers_max: stale_max,
        ..LinkConfig::default()
    };
    let mut h = Harness {
        link: HostLink::new(config),
        retries_max,
        stale_max,
        latest: None,
        exchange: None,
    };
    while let Some(op) = script.next() {
        match op % 8 {
            0 => {
                let len = usize::from(script.byte() % 16);
                let payload = script.take(len);
                h.start(&payload);
            }
            1 => {
                let request = &KNOWN[usize::from(script.byte()) % KNOWN.len()];
                let payload = request.to_payload(30).expect("known requests encode");
                h.start(&payload);
            }
            2 => {
                let len = usize::from(script.byte() % 32);
                let bytes = script.take(len);
                h.bytes_in(&bytes);
            }
            3 => {
                let control = [ACK, NAK, ENQ, FILLER, STX][usize::from(script.byte() % 5)];
                h.bytes_in(&[control]);
            }
            4 => {
                let ours = h.exchange.as_ref().map(|e| e.cmd);
                let frame = answer_frame(&mut script, ours);
                h.bytes_in(&frame);
            }
            5 => {
                if let Some(token) = h.latest {
                    h.timer(token);
                }
            }
            6 => {
                let back = u64::from(script.byte());
                let latest = h.latest.map_or(0, |t| t.0);
                // Back from the latest token, or past it (a token the link never handed out).
                let token = if back >= 128 {
                    latest + back
                } else {
                    latest.wrapping_sub(back)
                };
                h.timer(TimerToken(token));
            }
            _ => h.silence(),
        }
    }
    h.silence();
});
