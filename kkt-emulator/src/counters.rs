//! Traffic counters (`GET /_emu/counters`): bytes, control bytes and frames each way on the serial line,
//! commands executed, the device's own time and the line time when paced. Plain atomics, bumped by the pty
//! and the wire loop as bytes cross, so counting never waits for a lock the control API holds.
//!
//! **Invariant:** a byte is counted before it is handed to the pty (device to host) or as soon as it is read
//! from it (host to device), so a host that has seen a byte and then asks for the counters sees it counted.
//! The fields are read one by one, not as a snapshot: read them while the line is quiet for exact figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kkt_proto::{ACK, ENQ, NAK, STX};
use serde::Serialize;

/// A partial frame from the host is forgotten after this gap between two bytes, as the link forgets it,
/// so a cut-off frame never swallows the bytes that follow it.
const FROM_HOST_GAP_MAX: Duration = crate::link::BYTE_TIMEOUT;

/// `GET /_emu/counters`: every figure since `since_unix_ms` (start or the last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CountersView {
    /// Every byte the host wrote to the pty (ENQ, ACK and NAK included).
    pub bytes_from_host: u64,
    /// Every byte the device wrote to the pty (control bytes, frames and line noise).
    pub bytes_to_host: u64,
    /// Complete STX frames from the host (a bad LRC still makes a complete frame).
    pub frames_from_host: u64,
    /// Complete STX frames to the host.
    pub frames_to_host: u64,
    /// ENQ, ACK and NAK bytes from the host outside a frame (also counted in `bytes_from_host`).
    pub control_bytes_from_host: u64,
    /// ENQ, ACK and NAK bytes to the host outside a frame (also counted in `bytes_to_host`).
    pub control_bytes_to_host: u64,
    /// Commands executed by the device (the same commands `GET /_emu/commands` counts).
    pub commands: u64,
    /// Time from the last byte of a request frame to the first byte of its answer, summed over the
    /// answers sent at once; the pacing of bytes in between (ACK, noise) is left out.
    pub command_time_us: u64,
    /// Line time of both directions when paced (`--baud`): for each write of the device, the measured time
    /// until its last byte was released, no sooner than ten bit times a byte after the start; for each read of the host's
    /// bytes, the time the receive clock held them back (ten bit times a byte when the line was idle).
    /// 0 unpaced.
    pub wire_time_us: u64,
    /// When counting started: process start or the last `POST /_emu/counters/reset`, Unix milliseconds.
    pub since_unix_ms: u64,
}

/// The live counters, shared by the pty, the wire loop and the control API.
#[derive(Debug)]
pub struct Counters {
    bytes_from_host: AtomicU64,
    bytes_to_host: AtomicU64,
    frames_from_host: AtomicU64,
    frames_to_host: AtomicU64,
    control_bytes_from_host: AtomicU64,
    control_bytes_to_host: AtomicU64,
    commands: AtomicU64,
    command_time_ns: AtomicU64,
    wire_time_ns: AtomicU64,
    since_unix_ms: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Relaxed is enough: each counter is independent and nothing is published through them.
fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Counters {
    /// All zero, counting from now.
    pub fn new() -> Self {
        Self {
            bytes_from_host: AtomicU64::new(0),
            bytes_to_host: AtomicU64::new(0),
            frames_from_host: AtomicU64::new(0),
            frames_to_host: AtomicU64::new(0),
            control_bytes_from_host: AtomicU64::new(0),
            control_bytes_to_host: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            command_time_ns: AtomicU64::new(0),
            wire_time_ns: AtomicU64::new(0),
            since_unix_ms: AtomicU64::new(unix_ms_now()),
        }
    }

    /// The current figures.
    pub fn view(&self) -> CountersView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersView {
            bytes_from_host: get(&self.bytes_from_host),
            bytes_to_host: get(&self.bytes_to_host),
            frames_from_host: get(&self.frames_from_host),
            frames_to_host: get(&self.frames_to_host),
            control_bytes_from_host: get(&self.control_bytes_from_host),
            control_bytes_to_host: get(&self.control_bytes_to_host),
            commands: get(&self.commands),
            command_time_us: get(&self.command_time_ns) / 1_000,
            wire_time_us: get(&self.wire_time_ns) / 1_000,
            since_unix_ms: get(&self.since_unix_ms),
        }
    }

    /// Zeroes every counter and restarts `since_unix_ms`; returns the zeroed figures. Whatever crosses the
    /// line after a counter was zeroed counts in the new period.
    pub fn reset(&self) -> CountersView {
        for c in [
            &self.bytes_from_host,
            &self.bytes_to_host,
            &self.frames_from_host,
            &self.frames_to_host,
            &self.control_bytes_from_host,
            &self.control_bytes_to_host,
            &self.commands,
            &self.command_time_ns,
            &self.wire_time_ns,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let since_unix_ms = unix_ms_now();
        self.since_unix_ms.store(since_unix_ms, Ordering::Relaxed);
        CountersView {
            since_unix_ms,
            ..CountersView::default()
        }
    }

    /// Bytes the host wrote, as read from the pty.
    pub(crate) fn count_from_host(&self, bytes: &[u8], scan: &mut FrameScan) {
        let (frames, control) = scan.feed(bytes, Some(Instant::now()));
        add(&self.bytes_from_host, bytes.len() as u64);
        add(&self.frames_from_host, frames);
        add(&self.control_bytes_from_host, control);
    }

    /// Bytes the device is about to hand to the pty.
    pub(crate) fn count_to_host(&self, bytes: &[u8], scan: &mut FrameScan) {
        let (frames, control) = scan.feed(bytes, None);
        add(&self.bytes_to_host, bytes.len() as u64);
        add(&self.frames_to_host, frames);
        add(&self.control_bytes_to_host, control);
    }

    /// One command executed.
    pub(crate) fn command(&self) {
        add(&self.commands, 1);
    }

    /// Device time of one answered request.
    pub(crate) fn command_time(&self, d: Duration) {
        add(&self.command_time_ns, nanos(d));
    }

    /// Line time of one paced write or read.
    pub(crate) fn wire_time(&self, d: Duration) {
        add(&self.wire_time_ns, nanos(d));
    }
}

/// Where a [`FrameScan`] is in the byte stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ScanState {
    /// Between frames: a byte here is STX, a control byte or noise.
    #[default]
    Between,
    /// STX seen; the next byte is LEN.
    Len,
    /// Inside a frame: this many bytes (payload and LRC) still to come.
    Body { left: u16 },
}

/// Follows STX frames (`STX LEN payload LRC`) through one direction of the line without buffering them,
/// to tell frames and control bytes apart: an ACK byte inside a payload is data, not a control byte.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameScan {
    state: ScanState,
    last_byte: Option<Instant>,
}

impl FrameScan {
    /// Feeds bytes; returns the frames completed and the control bytes seen outside frames. With `now`,
    /// a partial frame is forgotten when more than [`FROM_HOST_GAP_MAX`] passed since the previous byte.
    fn feed(&mut self, bytes: &[u8], now: Option<Instant>) -> (u64, u64) {
        if let (Some(now), Some(last)) = (now, self.last_byte)
            && now.duration_since(last) > FROM_HOST_GAP_MAX
        {
            self.state = ScanState::Between;
        }
        if now.is_some() && !bytes.is_empty() {
            self.last_byte = now;
        }
        let (mut frames, mut control) = (0, 0);
        for &b in bytes {
            self.state = match self.state {
                ScanState::Between if b == STX => ScanState::Len,
                ScanState::Between => {
                    if [ENQ, ACK, NAK].contains(&b) {
                        control += 1;
                    }
                    ScanState::Between
                }
                // LEN 0 is no frame (the decoder refuses it); scanning resumes after it.
                ScanState::Len if b == 0 => ScanState::Between,
                ScanState::Len => ScanState::Body {
                    left: u16::from(b) + 1,
                },
                ScanState::Body { left: 1 } => {
                    frames += 1;
                    ScanState::Between
                }
                ScanState::Body { left } => ScanState::Body { left: left - 1 },
            };
        }
        (frames, control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_tells_frames_from_control_bytes_across_chunks() {
        let mut scan = FrameScan::default();
        // ENQ, then a frame whose payload holds ACK, NAK, ENQ and STX bytes, split mid-frame.
        let frame = kkt_proto::encode_frame(&[0x10, ACK, NAK, ENQ, STX]).expect("frame");
        let mut stream = vec![ENQ];
        stream.extend_from_slice(&frame);
        stream.extend_from_slice(&[ACK, 0x77, NAK]);
        let (a, b) = stream.split_at(4);
        let (f1, c1) = scan.feed(a, None);
        let (f2, c2) = scan.feed(b, None);
        assert_eq!((f1 + f2, c1 + c2), (1, 3));
        // LEN 0 is not a frame; the ENQ after it is a control byte.
        assert_eq!(scan.feed(&[STX, 0, ENQ], None), (0, 1));
    }

    #[test]
    fn a_gap_forgets_a_partial_frame_from_the_host() {
        let mut scan = FrameScan::default();
        let t0 = Instant::now();
        assert_eq!(scan.feed(&[STX, 5, 0x10], Some(t0)), (0, 0));
        let later = t0 + FROM_HOST_GAP_MAX + Duration::from_millis(1);
        assert_eq!(scan.feed(&[ENQ], Some(later)), (0, 1));
    }

    #[test]
    fn reset_zeroes_and_restarts_the_period() {
        let c = Counters::new();
        c.count_to_host(&[NAK], &mut FrameScan::default());
        c.command();
        c.wire_time(Duration::from_micros(5));
        let zero = c.reset();
        assert_eq!(
            zero,
            CountersView {
                since_unix_ms: zero.since_unix_ms,
                ..CountersView::default()
            }
        );
        assert_eq!(c.view(), zero);
    }
}
