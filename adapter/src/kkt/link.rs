//! The serial transport under the host link state machine of `kkt-proto`: it performs the machine's
//! writes, reads with the machine's timer as the read timeout, and reopens the port after an I/O
//! failure (a replugged device, or a restarted emulator whose pty path changed behind its symlink).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kkt_proto::{HostLink, HostOutput, LinkConfig, LinkFailure, TimerToken};
use serialport::{SerialPort, TTYPort};

use super::{KktError, REOPEN_PAUSE};

/// One serial port driven by one [`HostLink`].
pub struct SerialLink {
    path: PathBuf,
    baud: u32,
    config: LinkConfig,
    port: Option<TTYPort>,
}

impl SerialLink {
    pub fn new(path: PathBuf, baud: u32, config: LinkConfig) -> SerialLink {
        SerialLink {
            path,
            baud,
            config,
            port: None,
        }
    }

    pub fn close(&mut self) {
        self.port = None;
    }

    fn port(&mut self) -> Result<&mut TTYPort, KktError> {
        if self.port.is_none() {
            let port = serialport::new(self.path.to_string_lossy(), self.baud)
                .timeout(Duration::from_millis(10))
                .open_native()
                .map_err(|e| {
                    std::thread::sleep(REOPEN_PAUSE);
                    KktError::Open {
                        path: self.path.clone(),
                        message: e.to_string(),
                    }
                })?;
            // Bytes a previous process wrote and a serial driver has not sent yet (a killed adapter's
            // frames queued behind a stalled device) should not run in the middle of our commands.
            // On a pty the kernel has already handed them to the other side, so this does not help
            // there; the stale-answer check in `ops::fiscalize` covers both.
            if let Err(e) = port.clear(serialport::ClearBuffer::All) {
                tracing::warn!(error = %e, "could not flush the KKT port's buffers");
            }
            self.port = Some(port);
        }
        Ok(self.port.as_mut().expect("port just opened"))
    }

    /// Sends one command payload and returns its answer payload plus any stale answers drained.
    pub fn exchange(&mut self, payload: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), KktError> {
        let result = self.exchange_inner(payload);
        // After an I/O failure or a silent line, reopen on the next command: the device may have been
        // replugged, or the emulator restarted behind the same symlink.
        if matches!(
            result,
            Err(KktError::Io(_))
                | Err(KktError::Link(LinkFailure::NotDelivered(
                    kkt_proto::NotDelivered::NoLink
                )))
        ) {
            self.port = None;
        }
        result
    }

    fn exchange_inner(&mut self, payload: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), KktError> {
        let mut link = HostLink::new(self.config.clone());
        let mut pending = link
            .start(payload)
            .map_err(|e| KktError::Encode(e.to_string()))?;
        let port = self.port()?;
        let mut timer: Option<(TimerToken, Instant)> = None;
        let mut stale = Vec::new();
        let mut wrote_anything = false;
        let mut buf = [0u8; 512];
        // Every step either consumes bytes or a timer; the link bounds its own retries.
        loop {
            for output in pending.drain(..) {
                match output {
                    HostOutput::Write(bytes) => {
                        port.write_all(&bytes)
                            .map_err(|e| io_error(e, wrote_anything))?;
                        wrote_anything = true;
                    }
                    HostOutput::ArmTimer { token, after } => {
                        timer = Some((token, Instant::now() + after))
                    }
                    HostOutput::Answer(answer) => return Ok((answer, stale)),
                    HostOutput::StaleAnswer(answer) => stale.push(answer),
                    HostOutput::BadFrame(error) => {
                        tracing::debug!(%error, "bad frame from the KKT, NAKed")
                    }
                    HostOutput::Failed(failure) => return Err(link_failure(failure)),
                }
            }
            let Some((token, deadline)) = timer else {
                return Err(KktError::Protocol(
                    "the link armed no timer while waiting".into(),
                ));
            };
            let now = Instant::now();
            if now >= deadline {
                timer = None;
                pending = link.timer_expired(token);
                continue;
            }
            port.set_timeout(deadline - now)
                .map_err(|e| KktError::Io(e.to_string()))?;
            match port.read(&mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(n) => pending = link.bytes_in(&buf[..n]),
                // A signal (SIGHUP is handled, not fatal) may interrupt the wait: wait again.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(io_error(e, wrote_anything)),
            }
        }
    }
}

fn link_failure(failure: LinkFailure) -> KktError {
    KktError::Link(failure)
}

/// An I/O error before anything was written cannot have reached the device.
fn io_error(e: std::io::Error, wrote_anything: bool) -> KktError {
    if wrote_anything {
        KktError::Io(e.to_string())
    } else {
        KktError::Link(LinkFailure::NotDelivered(kkt_proto::NotDelivered::NoLink))
    }
}
