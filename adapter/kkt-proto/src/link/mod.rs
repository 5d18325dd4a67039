//! The ENQ/ACK/NAK link of protocol v1 as IO-free state machines for both ends, and their configuration.
//!
//! Rules (shtrih-m/javapos_shtrih `PrinterProtocol_1.java` `send`/`readAnswer`;
//! docs/protocols.md#shtrih-m-link): the host sends ENQ; NAK means the device is idle, so the host sends
//! its frame; ACK means the device
//! still holds an unread answer, which the host reads, ACKs and reports as stale before sending ENQ again.
//! After the frame is ACKed the host waits for STX up to the command's answer timeout, reads the answer
//! and ACKs it, or NAKs a bad LRC and sends ENQ so the device repeats it. Every wait is a timer the
//! caller arms, and every retry loop is bounded by [`LinkConfig::retries_max`].

mod device;
mod host;

use std::time::Duration;

pub use device::{DeviceLink, DeviceOutput};
pub use host::{HostLink, HostOutput, StartError};

use crate::frame::CommandCode;

/// Link timing and retry limits. Defaults follow afilippov1985/kkt-shtrih `Transport8.php` and
/// `Request/*.php` (control byte 1 s, answer 2 s, FF45 5 s, FF0B 15 s, 3 retries) and javapos
/// `PrinterProtocol_1.java` (byte timeout 100 ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Longest gap between two bytes inside a frame.
    pub byte_timeout: Duration,
    /// Wait for a control byte: the reply to ENQ and the ACK/NAK after our frame.
    pub control_timeout: Duration,
    /// Wait for the answer's STX after the frame was ACKed, unless overridden below.
    pub answer_timeout_default: Duration,
    /// Per-command answer timeouts; the first match wins.
    pub answer_timeouts: Vec<(CommandCode, Duration)>,
    /// How many times one step (ENQ, frame, answer read) is retried before the link gives up.
    pub retries_max: u32,
    /// How many stale answers one command may drain before the link gives up (a device that keeps
    /// producing answers is broken, and the loop must stay bounded).
    pub stale_answers_max: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            byte_timeout: Duration::from_millis(100),
            control_timeout: Duration::from_secs(1),
            answer_timeout_default: Duration::from_secs(2),
            answer_timeouts: vec![
                (CommandCode::FN_CLOSE_RECEIPT, Duration::from_secs(5)),
                (CommandCode::FN_OPEN_SHIFT, Duration::from_secs(15)),
            ],
            retries_max: 3,
            stale_answers_max: 8,
        }
    }
}

impl LinkConfig {
    /// The answer timeout for a command.
    pub fn answer_timeout(&self, cmd: CommandCode) -> Duration {
        self.answer_timeouts
            .iter()
            .find(|(c, _)| *c == cmd)
            .map_or(self.answer_timeout_default, |(_, t)| *t)
    }
}

/// Identifies one armed timer. The link ignores expiries whose token is not the latest, so the caller may
/// let superseded timers fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerToken(pub u64);

/// Why a command failed on the link. The split is by certainty: [`LinkFailure::NotDelivered`] means the
/// device certainly did not execute the command; [`LinkFailure::Indeterminate`] means it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkFailure {
    /// Definite: the device never accepted our frame.
    #[error("command not delivered: {0:?}")]
    NotDelivered(NotDelivered),
    /// Indeterminate: the frame was (or may have been) accepted, and no answer arrived.
    #[error("command outcome unknown: {0:?}")]
    Indeterminate(Indeterminate),
}

impl LinkFailure {
    /// True when the command certainly did not run.
    pub fn is_definite(self) -> bool {
        matches!(self, Self::NotDelivered(_))
    }
}

/// Reasons for a definite failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDelivered {
    /// ENQ got no reply after all retries: no link.
    NoLink,
    /// The device NAKed our frame on every attempt.
    FrameRejected,
    /// A stale answer could not be read intact, so our frame was never sent.
    StaleAnswerUnreadable,
    /// More stale answers than [`LinkConfig::stale_answers_max`].
    TooManyStaleAnswers,
}

/// Reasons for an indeterminate failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indeterminate {
    /// Our frame got neither ACK nor NAK, and the device stayed silent afterwards.
    NoAckForFrame,
    /// The frame was ACKed but no answer arrived in time, after all retries.
    AnswerTimeout,
    /// The answer kept arriving with a bad LRC or truncated.
    AnswerCorrupt,
    /// The device said it holds no answer (NAK to ENQ) after accepting our frame: the answer is lost.
    AnswerLost,
}
