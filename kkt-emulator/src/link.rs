//! The wire loop: pty bytes through `kkt_proto::DeviceLink`, commands through the device, and the faults
//! that act on the wire (NAK, busy, slow, garbage, bad LRC, dropped answer, power cut).

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kkt_proto::{
    ACK, CommandCode, DecodeError, DeviceError, DeviceLink, DeviceOutput, ENQ, NAK, Reply, Request,
    STX,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::emu::Shared;
use crate::exec::{self, Executed};
use crate::faults::{Effects, FaultKind};
use crate::pty::{Heard, Pty, PtyError};

/// Gap after which a partly received frame is dropped (javapos uses 100 ms between bytes).
pub(crate) const BYTE_TIMEOUT: Duration = Duration::from_millis(100);

/// Faults decided before a command executes.
const PRE_EXEC: &[FaultKind] = &[
    FaultKind::Nak,
    FaultKind::Busy,
    FaultKind::Slow,
    FaultKind::Garbage,
    FaultKind::BadLrc,
    FaultKind::DropAnswer,
];

/// The state of the wire loop.
struct Wire {
    pty: Arc<Pty>,
    shared: Arc<Shared>,
    link: DeviceLink,
    noise: ChaCha8Rng,
}

/// Runs the wire loop on the calling (blocking) thread until the pty fails or `stop` becomes
/// readable. One thread hears the host, answers and paces its bytes: a real device answers ENQ
/// and a frame at once, so no hand-over between threads or a runtime's scheduler sits between the
/// host's bytes and the device's answer.
pub fn run(pty: Arc<Pty>, shared: Arc<Shared>, stop: &impl AsFd) -> Result<(), PtyError> {
    let mut wire = Wire {
        pty,
        shared,
        link: DeviceLink::new(),
        noise: ChaCha8Rng::seed_from_u64(0x5eed),
    };
    let mut buf = [0u8; 512];
    loop {
        let wait = wire.link.is_mid_frame().then_some(BYTE_TIMEOUT);
        let n = match wire.pty.read_blocking(&mut buf, wait, stop)? {
            Heard::Bytes(n) => n,
            Heard::Stopped => return Ok(()),
            Heard::TimedOut => {
                if let Some(e) = wire.link.byte_timeout() {
                    tracing::debug!(error = %e, "partial frame dropped");
                }
                continue;
            }
        };
        // Paced, the bytes are not heard before the line could have carried them: nothing answers them
        // sooner. The last byte of any request in them arrives then, and its command time starts there.
        let heard = wire.pty.hear(n);
        let received_at = heard.unwrap_or_else(Instant::now);
        if !wire.shared.powered() {
            // A powered-off device hears nothing; the link restarts clean at power-on.
            wire.link = DeviceLink::new();
            continue;
        }
        let outputs: VecDeque<DeviceOutput> = wire.link.bytes_in(&buf[..n]).into();
        wire.handle(outputs, heard, received_at)?;
    }
}

/// A command whose decoding failed still gets an answer when its code can be read.
fn undecodable(payload: &[u8], e: &DecodeError) -> Option<Executed> {
    let (cmd, _) = CommandCode::split(payload).ok()?;
    let error = match e {
        DecodeError::UnknownCommand(_) => DeviceError::NotSupported,
        _ => DeviceError::BadParameters,
    };
    Some(exec::error(cmd, error))
}

impl Wire {
    /// Acts on what the link made of bytes heard at `heard` (paced) and received at `received_at`.
    fn handle(
        &mut self,
        mut outputs: VecDeque<DeviceOutput>,
        heard: Option<Instant>,
        received_at: Instant,
    ) -> Result<(), PtyError> {
        while let Some(out) = outputs.pop_front() {
            if !self.shared.powered() {
                return Ok(());
            }
            match out {
                // The link queues ACK right before handing over a request; the request decides whether the
                // ACK really goes out (a NAK fault replaces it).
                DeviceOutput::Write(bytes)
                    if matches!(outputs.front(), Some(DeviceOutput::Request(_))) =>
                {
                    let Some(DeviceOutput::Request(payload)) = outputs.pop_front() else {
                        continue;
                    };
                    self.request(&bytes, &payload, heard, received_at)?;
                }
                DeviceOutput::Write(bytes) => {
                    self.pty.send_blocking(&bytes, heard)?;
                }
                DeviceOutput::Request(payload) => {
                    self.request(&[ACK], &payload, heard, received_at)?;
                }
                DeviceOutput::BadFrame(e) => tracing::debug!(error = %e, "bad frame NAKed"),
            }
        }
        Ok(())
    }

    /// Acknowledges, executes and answers one request whose last byte arrived at `received_at` (paced:
    /// `heard`, where the ACK starts on the line).
    fn request(
        &mut self,
        ack: &[u8],
        payload: &[u8],
        heard: Option<Instant>,
        received_at: Instant,
    ) -> Result<(), PtyError> {
        let cmd_code = CommandCode::split(payload).map_or(0, |(c, _)| c.value());
        let mut fx = Effects::default();
        self.shared.take_faults(cmd_code, PRE_EXEC, &mut fx);
        if fx.nak {
            abandon(&mut self.link);
            self.pty.send_blocking(&[NAK], heard)?;
            return Ok(());
        }
        let noise = if fx.garbage { self.noise() } else { Vec::new() };
        // The ACK, the execution (it fsyncs the FN state) and the answer, one after the other.
        let mut step = Step {
            pty: Arc::clone(&self.pty),
            shared: Arc::clone(&self.shared),
            link: std::mem::take(&mut self.link),
            cmd_code,
            fx,
            noise,
        };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            step.run(ack, payload, heard, received_at)
        }));
        match ran {
            Ok(result) => {
                self.link = step.link;
                result
            }
            Err(_) => {
                tracing::error!("the request step panicked; the link restarts clean");
                self.link = DeviceLink::new();
                Ok(())
            }
        }
    }

    /// A few noise bytes that are not protocol control bytes (a line glitch, not a protocol message).
    fn noise(&mut self) -> Vec<u8> {
        let len = self.noise.random_range(3..=8);
        (0..len)
            .map(|_| {
                let b: u8 = self.noise.random();
                // Flipping the top bit turns a control byte into a plain one (0x02 -> 0x82, ...).
                if [STX, ENQ, ACK, NAK].contains(&b) {
                    b ^ 0x80
                } else {
                    b
                }
            })
            .collect()
    }
}

/// Drops the request the link handed over without answering it (the NAK fault and unreadable frames).
fn abandon(link: &mut DeviceLink) {
    let _ = link.answer_ready(&[0x10, 0]);
    // Our own ACK clears the held dummy answer, so nothing is re-delivered on ENQ.
    let _ = link.bytes_in(&[ACK]);
}

/// One request from its ACK to its answer.
struct Step {
    pty: Arc<Pty>,
    shared: Arc<Shared>,
    link: DeviceLink,
    cmd_code: u16,
    /// The faults decided before execution.
    fx: Effects,
    /// The garbage fault's bytes (empty without it).
    noise: Vec<u8>,
}

impl Step {
    fn run(
        &mut self,
        ack: &[u8],
        payload: &[u8],
        heard: Option<Instant>,
        received_at: Instant,
    ) -> Result<(), PtyError> {
        let paced = self.pty.send_blocking(ack, heard)?;
        let executed = match Request::from_payload(payload) {
            Ok(_) if self.fx.busy => Some(exec::error(
                CommandCode::split(payload).map_or(CommandCode::SHORT_STATUS, |(c, _)| c),
                DeviceError::PrintingPrevious,
            )),
            Ok((password, req)) => {
                let shared = &self.shared;
                // A device that fails mid-command answers nothing; the host's timeout covers it.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    shared.execute(password, &req)
                }))
                .ok()
            }
            Err(e) => undecodable(payload, &e),
        };
        let Some(executed) = executed else {
            abandon(&mut self.link);
            return Ok(());
        };
        if executed.committed_fd.is_some() || self.shared.power_cut_armed_for(self.cmd_code) {
            let mut cut = Effects::default();
            self.shared
                .take_faults(self.cmd_code, &[FaultKind::PowerCutAfterCommit], &mut cut);
            if cut.power_cut {
                tracing::info!(fd = ?executed.committed_fd, "power cut after commit");
                self.shared.power_off();
                self.link = DeviceLink::new();
                return Ok(());
            }
        }
        let payload = match executed.reply.to_payload() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "answer does not encode");
                Reply::Error {
                    cmd: executed.reply.code(),
                    error: DeviceError::FnFailure,
                    data: Vec::new(),
                }
                .to_payload()
                .unwrap_or_else(|_| vec![0x10, 0x03])
            }
        };
        let writes = self.link.answer_ready(&payload).unwrap_or_default();
        self.send_answer(writes, received_at, paced)
    }

    /// Sends the answer as the faults ask. The command time ends right before its first byte; `paced` is
    /// the pacing already spent on bytes since `received_at` (the ACK), which is line time, not device time.
    fn send_answer(
        &mut self,
        writes: Vec<DeviceOutput>,
        received_at: Instant,
        mut paced: Duration,
    ) -> Result<(), PtyError> {
        if self.fx.drop_answer {
            // Committed and held: the host gets it only by asking with ENQ.
            return Ok(());
        }
        if self.fx.slow_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.fx.slow_ms));
        }
        if !self.noise.is_empty() {
            paced += self.pty.send_blocking(&self.noise, None)?;
        }
        let counters = self.shared.counters();
        counters.command_time(received_at.elapsed().saturating_sub(paced));
        for w in writes {
            if let DeviceOutput::Write(mut bytes) = w {
                if self.fx.bad_lrc
                    && let Some(last) = bytes.last_mut()
                {
                    // The link keeps the good frame; the host NAKs this one and gets the good one on ENQ.
                    *last ^= 0xFF;
                }
                self.pty.send_blocking(&bytes, None)?;
            }
        }
        Ok(())
    }
}
