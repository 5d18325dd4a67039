//! Device (emulator) side of the link: answers ENQ, accepts frames, and holds an answer until the host ACKs it.
//!
//! The machine has no timers of its own except the inter-byte timeout, which the emulator reports through
//! [`DeviceLink::byte_timeout`] when [`DeviceLink::is_mid_frame`] stays true for too long.

use crate::error::EncodeError;
use crate::frame::{ACK, ENQ, FrameDecoder, FrameError, NAK, Token, encode_frame};

/// What the emulator must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceOutput {
    /// Write these bytes to the port.
    Write(Vec<u8>),
    /// A request payload (`CMD PASSWORD PARAMS`) with a good LRC was accepted (ACK already queued).
    /// Execute it and call [`DeviceLink::answer_ready`] with the answer payload.
    Request(Vec<u8>),
    /// A malformed frame arrived and was NAKed; informational.
    BadFrame(FrameError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the host; an unread answer may be held in `pending`.
    Idle,
    /// A request was handed to the emulator and its answer is not ready yet.
    Executing,
    /// The pending answer was written and the device waits for the host's ACK.
    AnswerSent,
}

/// The device side of the link.
#[derive(Clone, Debug)]
pub struct DeviceLink {
    decoder: FrameDecoder,
    state: State,
    pending: Option<Vec<u8>>,
}

impl Default for DeviceLink {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceLink {
    /// An idle device with no pending answer.
    pub fn new() -> Self {
        Self {
            decoder: FrameDecoder::new(),
            state: State::Idle,
            pending: None,
        }
    }

    /// True while a frame from the host is partly received.
    pub fn is_mid_frame(&self) -> bool {
        self.decoder.is_mid_frame()
    }

    /// True while an answer is held that the host has not ACKed.
    pub fn has_pending_answer(&self) -> bool {
        self.pending.is_some()
    }

    /// True between [`DeviceOutput::Request`] and [`DeviceLink::answer_ready`].
    pub fn is_executing(&self) -> bool {
        self.state == State::Executing
    }

    /// The inter-byte timeout expired: a partial frame is dropped (no NAK; the host times out and retries).
    pub fn byte_timeout(&mut self) -> Option<FrameError> {
        self.decoder.timeout()
    }

    /// Feeds bytes from the host.
    pub fn bytes_in(&mut self, bytes: &[u8]) -> Vec<DeviceOutput> {
        let mut out = Vec::new();
        for byte in bytes {
            match self.decoder.push(*byte) {
                None => {}
                Some(Ok(Token::Control(control))) => self.on_control(control, &mut out),
                Some(Ok(Token::Frame(payload))) => self.on_frame(payload, &mut out),
                Some(Err(error)) => {
                    out.push(DeviceOutput::Write(vec![NAK]));
                    out.push(DeviceOutput::BadFrame(error));
                }
            }
        }
        out
    }

    /// Hands over the answer payload (`CMD ERR DATA`) to the last request; it is written at once and kept
    /// until the host ACKs it. Ignored (empty output) when no request is executing.
    pub fn answer_ready(&mut self, payload: &[u8]) -> Result<Vec<DeviceOutput>, EncodeError> {
        if self.state != State::Executing {
            return Ok(Vec::new());
        }
        let frame = encode_frame(payload)?;
        self.pending = Some(frame.clone());
        self.state = State::AnswerSent;
        Ok(vec![DeviceOutput::Write(frame)])
    }

    fn on_control(&mut self, control: u8, out: &mut Vec<DeviceOutput>) {
        match control {
            ENQ => match (self.state, &self.pending) {
                // Still executing: ACK says "answer coming"; the frame follows from answer_ready.
                (State::Executing, _) => out.push(DeviceOutput::Write(vec![ACK])),
                (_, Some(frame)) => {
                    let mut bytes = Vec::with_capacity(frame.len() + 1);
                    bytes.push(ACK);
                    bytes.extend_from_slice(frame);
                    out.push(DeviceOutput::Write(bytes));
                    self.state = State::AnswerSent;
                }
                (_, None) => out.push(DeviceOutput::Write(vec![NAK])),
            },
            ACK if self.state == State::AnswerSent => {
                self.pending = None;
                self.state = State::Idle;
            }
            // A NAK keeps the answer; the host asks for it again with ENQ.
            NAK if self.state == State::AnswerSent => self.state = State::Idle,
            _ => {}
        }
    }

    fn on_frame(&mut self, payload: Vec<u8>, out: &mut Vec<DeviceOutput>) {
        if self.state == State::Executing {
            // A correct host never sends a frame before ENQ while we execute; staying silent makes it time
            // out and ENQ, which then returns the answer to the command in progress.
            return;
        }
        // A new command means the host gave up on the pending answer (it skipped ENQ), so it is dropped.
        self.pending = None;
        self.state = State::Executing;
        out.push(DeviceOutput::Write(vec![ACK]));
        out.push(DeviceOutput::Request(payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_device_naks_enq() {
        let mut device = DeviceLink::new();
        assert_eq!(
            device.bytes_in(&[ENQ]),
            vec![DeviceOutput::Write(vec![NAK])]
        );
    }

    #[test]
    fn answer_without_request_is_ignored() {
        let mut device = DeviceLink::new();
        assert_eq!(device.answer_ready(&[0x10, 0]).unwrap(), vec![]);
        assert!(!device.has_pending_answer());
    }
}
