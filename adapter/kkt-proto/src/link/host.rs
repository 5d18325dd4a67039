//! Host (adapter) side of the link: sends one command at a time and reports its answer or a typed failure.
//!
//! The caller feeds three events (`start`, `bytes_in`, `timer_expired`) and performs the outputs in order:
//! write bytes, arm the single timer (a new arm replaces the old one), deliver answers. The machine tracks
//! whether our frame may have reached the device, which decides between a definite and an indeterminate
//! failure, and whether an answer read after ENQ/ACK belongs to our command or is a stale one to drain.

use std::time::Duration;

use super::{Indeterminate, LinkConfig, LinkFailure, NotDelivered, TimerToken};
use crate::error::{DecodeError, EncodeError};
use crate::frame::{ACK, CommandCode, ENQ, FrameDecoder, FrameError, NAK, Token, encode_frame};

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOutput {
    /// Write these bytes to the port.
    Write(Vec<u8>),
    /// (Re)arm the single link timer; an expiry must be reported with this token.
    ArmTimer {
        /// Token to pass back to [`HostLink::timer_expired`].
        token: TimerToken,
        /// Delay from now.
        after: Duration,
    },
    /// The answer payload (`CMD ERR DATA`) to the current command; the link is idle again.
    Answer(Vec<u8>),
    /// An answer the device held from an earlier command (for example before an adapter restart). It was
    /// read and ACKed so the device is free; the caller should log it, and may reconcile with it.
    StaleAnswer(Vec<u8>),
    /// A malformed frame was seen and NAKed; informational, the machine already reacted.
    BadFrame(FrameError),
    /// The current command failed; the link is idle again.
    Failed(LinkFailure),
}

/// Why [`HostLink::start`] refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A command is already in flight; the link carries one at a time.
    #[error("a command is already in flight")]
    InFlight,
    /// The payload has no valid command code.
    #[error("bad payload: {0}")]
    BadCode(#[from] DecodeError),
    /// The payload does not fit a frame.
    #[error("bad payload: {0}")]
    TooLong(#[from] EncodeError),
}

/// How far our frame got; decides definite versus indeterminate failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not sent, or sent and NAKed, or the device later proved it holds no answer: certainly not executed.
    Unsent,
    /// Sent, but neither ACK nor NAK arrived: the device may be executing it.
    MaybeAccepted,
    /// ACKed: the device took it.
    Accepted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    AwaitEnqReply,
    AwaitFrameAck,
    ReadAnswer,
}

#[derive(Clone, Debug)]
struct Job {
    cmd: CommandCode,
    frame: Vec<u8>,
    phase: Phase,
    attempts: u32,
    stale: u32,
}

/// The host side of the link. One command in flight at a time.
#[derive(Clone, Debug)]
pub struct HostLink {
    config: LinkConfig,
    decoder: FrameDecoder,
    state: State,
    job: Option<Job>,
    timer: u64,
    out: Vec<HostOutput>,
}

impl HostLink {
    /// An idle link.
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config,
            decoder: FrameDecoder::new(),
            state: State::Idle,
            job: None,
            timer: 0,
            out: Vec::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// True when no command is in flight.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Starts a command given its payload `CMD PASSWORD PARAMS` (see [`crate::Request::to_payload`]).
    pub fn start(&mut self, payload: &[u8]) -> Result<Vec<HostOutput>, StartError> {
        if self.state != State::Idle {
            return Err(StartError::InFlight);
        }
        let (cmd, _) = CommandCode::split(payload)?;
        let frame = encode_frame(payload)?;
        self.decoder.reset();
        self.job = Some(Job {
            cmd,
            frame,
            phase: Phase::Unsent,
            attempts: 0,
            stale: 0,
        });
        self.send_enq();
        Ok(std::mem::take(&mut self.out))
    }

    /// Feeds bytes read from the port.
    pub fn bytes_in(&mut self, bytes: &[u8]) -> Vec<HostOutput> {
        for byte in bytes {
            if self.state == State::Idle {
                // Nothing is in flight: whatever arrives is unsolicited. A real answer the device still
                // holds is not lost, because the device re-sends it after the next ENQ.
                self.decoder.reset();
                break;
            }
            match self.decoder.push(*byte) {
                None => {}
                Some(Ok(Token::Control(control))) => self.on_control(control),
                Some(Ok(Token::Frame(payload))) => self.on_frame(payload),
                Some(Err(error)) => self.on_frame_error(error),
            }
        }
        if self.state != State::Idle && self.decoder.is_mid_frame() {
            let after = self.config.byte_timeout;
            self.arm(after);
        }
        std::mem::take(&mut self.out)
    }

    /// Reports that the timer armed with `token` expired; stale tokens are ignored.
    pub fn timer_expired(&mut self, token: TimerToken) -> Vec<HostOutput> {
        if token != TimerToken(self.timer) || self.state == State::Idle {
            return Vec::new();
        }
        match self.state {
            State::Idle => {}
            State::AwaitEnqReply => {
                let failure = match self.phase() {
                    Phase::Unsent => LinkFailure::NotDelivered(NotDelivered::NoLink),
                    Phase::MaybeAccepted => {
                        LinkFailure::Indeterminate(Indeterminate::NoAckForFrame)
                    }
                    Phase::Accepted => LinkFailure::Indeterminate(Indeterminate::AnswerTimeout),
                };
                self.retry_or_fail(failure);
            }
            State::AwaitFrameAck => {
                self.set_phase(Phase::MaybeAccepted);
                self.retry_or_fail(LinkFailure::Indeterminate(Indeterminate::NoAckForFrame));
            }
            State::ReadAnswer => match self.decoder.timeout() {
                Some(error) => self.on_frame_error(error),
                None => {
                    let failure = match self.phase() {
                        Phase::Unsent => {
                            LinkFailure::NotDelivered(NotDelivered::StaleAnswerUnreadable)
                        }
                        _ => LinkFailure::Indeterminate(Indeterminate::AnswerTimeout),
                    };
                    self.retry_or_fail(failure);
                }
            },
        }
        std::mem::take(&mut self.out)
    }

    fn phase(&self) -> Phase {
        self.job.as_ref().map_or(Phase::Unsent, |job| job.phase)
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(job) = self.job.as_mut() {
            job.phase = phase;
        }
    }

    fn arm(&mut self, after: Duration) {
        self.timer += 1;
        self.out.push(HostOutput::ArmTimer {
            token: TimerToken(self.timer),
            after,
        });
    }

    fn send_enq(&mut self) {
        self.out.push(HostOutput::Write(vec![ENQ]));
        self.state = State::AwaitEnqReply;
        let after = self.config.control_timeout;
        self.arm(after);
    }

    fn send_frame(&mut self) {
        let Some(job) = self.job.as_mut() else {
            return;
        };
        job.phase = Phase::Unsent;
        self.out.push(HostOutput::Write(job.frame.clone()));
        self.state = State::AwaitFrameAck;
        let after = self.config.control_timeout;
        self.arm(after);
    }

    fn await_answer(&mut self) {
        self.state = State::ReadAnswer;
        let after = match self.job.as_ref() {
            Some(job) if job.phase != Phase::Unsent => self.config.answer_timeout(job.cmd),
            _ => self.config.answer_timeout_default,
        };
        self.arm(after);
    }

    /// Counts one failed attempt, then retries with ENQ or gives up with `failure`.
    fn retry_or_fail(&mut self, failure: LinkFailure) {
        let retries_max = self.config.retries_max;
        let Some(job) = self.job.as_mut() else {
            return;
        };
        job.attempts += 1;
        if job.attempts > retries_max {
            self.finish(HostOutput::Failed(failure));
        } else {
            self.send_enq();
        }
    }

    fn finish(&mut self, output: HostOutput) {
        self.out.push(output);
        self.job = None;
        self.state = State::Idle;
        self.decoder.reset();
        // Bumping the token makes any timer still armed for this command a no-op.
        self.timer += 1;
    }

    fn on_control(&mut self, control: u8) {
        match (self.state, control) {
            (State::AwaitEnqReply, NAK) => {
                if self.phase() == Phase::Accepted {
                    self.finish(HostOutput::Failed(LinkFailure::Indeterminate(
                        Indeterminate::AnswerLost,
                    )));
                } else {
                    // Idle and holding no answer: a frame that may have arrived was not executed.
                    self.send_frame();
                }
            }
            (State::AwaitEnqReply, ACK) => self.await_answer(),
            (State::AwaitFrameAck, ACK) => {
                if let Some(job) = self.job.as_mut() {
                    job.phase = Phase::Accepted;
                    job.attempts = 0;
                }
                self.await_answer();
            }
            (State::AwaitFrameAck, NAK) => {
                let retries_max = self.config.retries_max;
                let Some(job) = self.job.as_mut() else {
                    return;
                };
                job.attempts += 1;
                if job.attempts > retries_max {
                    self.finish(HostOutput::Failed(LinkFailure::NotDelivered(
                        NotDelivered::FrameRejected,
                    )));
                } else {
                    self.send_frame();
                }
            }
            // Anything else (stray bytes, a repeated ACK while the device prepares the answer) is noise.
            _ => {}
        }
    }

    /// A frame, good or bad, arrived where the ACK or NAK to our frame belonged: the device may have
    /// taken our frame, whatever the frame says. Remembering that keeps a later failure indeterminate
    /// and makes a later answer with our code ours, instead of draining it as stale and sending the
    /// command a second time.
    fn frame_in_place_of_ack(&mut self) {
        if self.state == State::AwaitFrameAck {
            self.set_phase(Phase::MaybeAccepted);
        }
    }

    fn on_frame(&mut self, payload: Vec<u8>) {
        self.frame_in_place_of_ack();
        let Some(job) = self.job.as_ref() else {
            return;
        };
        let ours = job.phase != Phase::Unsent
            && CommandCode::split(&payload).is_ok_and(|(cmd, _)| cmd == job.cmd);
        self.out.push(HostOutput::Write(vec![ACK]));
        if ours {
            self.finish(HostOutput::Answer(payload));
            return;
        }
        self.out.push(HostOutput::StaleAnswer(payload));
        let stale_max = self.config.stale_answers_max;
        let Some(job) = self.job.as_mut() else {
            return;
        };
        job.stale += 1;
        if job.stale > stale_max {
            let failure = match job.phase {
                Phase::Unsent => LinkFailure::NotDelivered(NotDelivered::TooManyStaleAnswers),
                _ => LinkFailure::Indeterminate(Indeterminate::AnswerLost),
            };
            self.finish(HostOutput::Failed(failure));
        } else {
            self.send_enq();
        }
    }

    fn on_frame_error(&mut self, error: FrameError) {
        self.frame_in_place_of_ack();
        self.out.push(HostOutput::BadFrame(error));
        self.out.push(HostOutput::Write(vec![NAK]));
        let failure = match self.phase() {
            Phase::Unsent => LinkFailure::NotDelivered(NotDelivered::StaleAnswerUnreadable),
            _ => LinkFailure::Indeterminate(Indeterminate::AnswerCorrupt),
        };
        self.retry_or_fail(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_start_is_refused() {
        let mut link = HostLink::new(LinkConfig::default());
        assert!(link.start(&[0x10, 1, 0, 0, 0]).is_ok());
        assert_eq!(link.start(&[0x10, 1, 0, 0, 0]), Err(StartError::InFlight));
    }

    #[test]
    fn stale_timer_is_ignored() {
        let mut link = HostLink::new(LinkConfig::default());
        link.start(&[0x10, 1, 0, 0, 0]).unwrap();
        assert!(link.timer_expired(TimerToken(0)).is_empty());
    }
}
