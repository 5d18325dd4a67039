//! The wire loop: pty bytes through `kkt_proto::DeviceLink`, commands through the device, and the faults
//! that act on the wire (NAK, busy, slow, garbage, bad LRC, dropped answer, power cut).

use std::collections::VecDeque;
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
use crate::pty::{Pty, PtyError};

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

/// Runs the wire loop until the pty fails.
pub async fn run(pty: Arc<Pty>, shared: Arc<Shared>) -> Result<(), PtyError> {
    let mut wire = Wire {
        pty,
        shared,
        link: DeviceLink::new(),
        noise: ChaCha8Rng::seed_from_u64(0x5eed),
    };
    let mut buf = [0u8; 512];
    loop {
        let n = if wire.link.is_mid_frame() {
            match tokio::time::timeout(BYTE_TIMEOUT, wire.pty.read(&mut buf)).await {
                Ok(r) => r?,
                Err(_elapsed) => {
                    if let Some(e) = wire.link.byte_timeout() {
                        tracing::debug!(error = %e, "partial frame dropped");
                    }
                    continue;
                }
            }
        } else {
            wire.pty.read(&mut buf).await?
        };
        // Paced, the bytes are not heard before the line could have carried them.
        wire.pty.pace_received(n).await;
        // The last byte of any request in these bytes arrived by now: its command time starts here.
        let received_at = Instant::now();
        if !wire.shared.powered() {
            // A powered-off device hears nothing; the link restarts clean at power-on.
            wire.link = DeviceLink::new();
            continue;
        }
        let outputs: VecDeque<DeviceOutput> = wire.link.bytes_in(&buf[..n]).into();
        wire.handle(outputs, received_at).await?;
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
    async fn handle(
        &mut self,
        mut outputs: VecDeque<DeviceOutput>,
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
                    self.request(bytes, payload, received_at).await?;
                }
                DeviceOutput::Write(bytes) => {
                    self.pty.write_all(&bytes).await?;
                }
                DeviceOutput::Request(payload) => {
                    self.request(vec![ACK], payload, received_at).await?;
                }
                DeviceOutput::BadFrame(e) => tracing::debug!(error = %e, "bad frame NAKed"),
            }
        }
        Ok(())
    }

    /// Drops the request the link handed over without answering it (the NAK fault and unreadable frames).
    fn abandon(&mut self) {
        let _ = self.link.answer_ready(&[0x10, 0]);
        // Our own ACK clears the held dummy answer, so nothing is re-delivered on ENQ.
        let _ = self.link.bytes_in(&[ACK]);
    }

    /// Acknowledges, executes and answers one request whose last byte arrived at `received_at`.
    async fn request(
        &mut self,
        ack: Vec<u8>,
        payload: Vec<u8>,
        received_at: Instant,
    ) -> Result<(), PtyError> {
        let cmd_code = CommandCode::split(&payload).map_or(0, |(c, _)| c.value());
        let mut fx = Effects::default();
        self.shared.take_faults(cmd_code, PRE_EXEC, &mut fx);
        if fx.nak {
            self.abandon();
            self.pty.write_all(&[NAK]).await?;
            return Ok(());
        }
        let paced = self.pty.write_all(&ack).await?;
        let executed = match Request::from_payload(&payload) {
            Ok(_) if fx.busy => Some(exec::error(
                CommandCode::split(&payload).map_or(CommandCode::SHORT_STATUS, |(c, _)| c),
                DeviceError::PrintingPrevious,
            )),
            Ok((password, req)) => {
                let shared = Arc::clone(&self.shared);
                // Execution fsyncs the FN state, so it runs on the blocking pool.
                tokio::task::spawn_blocking(move || shared.execute(password, &req))
                    .await
                    .ok()
            }
            Err(e) => undecodable(&payload, &e),
        };
        let Some(executed) = executed else {
            self.abandon();
            return Ok(());
        };
        if executed.committed_fd.is_some() || self.shared.power_cut_armed_for(cmd_code) {
            let mut cut = Effects::default();
            self.shared
                .take_faults(cmd_code, &[FaultKind::PowerCutAfterCommit], &mut cut);
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
        self.send_answer(writes, &fx, received_at, paced).await
    }

    /// Sends the answer as the faults ask. The command time ends right before its first byte; `paced` is
    /// the pacing already spent on bytes since `received_at` (the ACK), which is line time, not device time.
    async fn send_answer(
        &mut self,
        writes: Vec<DeviceOutput>,
        fx: &Effects,
        received_at: Instant,
        mut paced: Duration,
    ) -> Result<(), PtyError> {
        if fx.drop_answer {
            // Committed and held: the host gets it only by asking with ENQ.
            return Ok(());
        }
        if fx.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fx.slow_ms)).await;
        }
        if fx.garbage {
            let noise = self.noise();
            paced += self.pty.write_all(&noise).await?;
        }
        let counters = self.shared.counters();
        counters.command_time(received_at.elapsed().saturating_sub(paced));
        for w in writes {
            if let DeviceOutput::Write(mut bytes) = w {
                if fx.bad_lrc
                    && let Some(last) = bytes.last_mut()
                {
                    // The link keeps the good frame; the host NAKs this one and gets the good one on ENQ.
                    *last ^= 0xFF;
                }
                self.pty.write_all(&bytes).await?;
            }
        }
        Ok(())
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
