//! The pseudo-terminal the emulator listens on: raw mode, a stable symlink, optional line pacing of both
//! directions, and the line counters ([`crate::counters`]), bumped here because this is where bytes cross.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::counters::{Counters, FrameScan};

/// Errors while setting up or using the pseudo-terminal.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// A system call on the pty failed.
    #[error("pty {what}: {source}")]
    Sys {
        /// Which step failed.
        what: &'static str,
        /// The errno.
        source: nix::Error,
    },
    /// Reading, writing or publishing the link failed.
    #[error("pty {what}: {source}")]
    Io {
        /// Which step failed.
        what: &'static str,
        /// The IO error.
        source: std::io::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> PtyError {
    move |source| PtyError::Sys { what, source }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> PtyError {
    move |source| PtyError::Io { what, source }
}

/// The master side of the emulator's pty plus the slave fd the emulator keeps open.
///
/// Keeping our own slave fd open matters: when every slave fd is closed (the host closed its
/// port), reads on the master fail with EIO, and the emulator must survive the host reconnecting.
pub struct Pty {
    /// Non-blocking: reads wait in [`Pty::read_blocking`]'s poll, writes in [`Pty::send_blocking`].
    master: File,
    _slave: OwnedFd,
    slave_path: PathBuf,
    link_path: PathBuf,
    byte_delay: Option<Duration>,
    /// Paced only: the receive clock of [`Pty::hear`], when the host's bytes read so far could have
    /// arrived over the line.
    rx: LineClock,
    /// Paced only: the send clock of [`Pty::send_blocking`], when our latest write has crossed the line
    /// on its ideal timeline; a write never starts while an earlier one is still on the line.
    tx: LineClock,
    counters: Arc<Counters>,
    /// Frame tracking of each direction; only the wire loop reads and writes, so the locks are uncontended.
    scan_from_host: Mutex<FrameScan>,
    scan_to_host: Mutex<FrameScan>,
}

impl std::fmt::Debug for Pty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pty")
            .field("slave_path", &self.slave_path)
            .field("link_path", &self.link_path)
            .finish_non_exhaustive()
    }
}

/// The delay one byte takes on an 8N1 line at `baud`: ten bit times.
pub fn byte_delay_for_baud(baud: u32) -> Duration {
    Duration::from_nanos(10_000_000_000 / u64::from(baud.max(1)))
}

impl Pty {
    /// Opens a pty in raw mode and publishes its slave path as the symlink `link`
    /// (replaced atomically, so a host never sees a half-made link). Traffic is counted in `counters`.
    pub fn open(link: &Path, baud: Option<u32>, counters: Arc<Counters>) -> Result<Self, PtyError> {
        let pair = nix::pty::openpty(None, None).map_err(sys("openpty"))?;
        let mut tio = tcgetattr(&pair.slave).map_err(sys("tcgetattr"))?;
        cfmakeraw(&mut tio);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &tio).map_err(sys("tcsetattr"))?;
        let slave_path = nix::unistd::ttyname(&pair.slave).map_err(sys("ttyname"))?;
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(sys("F_GETFL"))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pair.master, FcntlArg::F_SETFL(flags)).map_err(sys("F_SETFL"))?;
        let master = File::from(pair.master);
        publish_link(&held_slave_path(&pair.slave), link)?;
        Ok(Self {
            master,
            _slave: pair.slave,
            slave_path,
            link_path: link.to_path_buf(),
            byte_delay: baud.map(byte_delay_for_baud),
            rx: LineClock::default(),
            tx: LineClock::default(),
            counters,
            scan_from_host: Mutex::new(FrameScan::default()),
            scan_to_host: Mutex::new(FrameScan::default()),
        })
    }

    /// The `/dev/pts/N` path of the slave side.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The published symlink.
    pub fn link_path(&self) -> &Path {
        &self.link_path
    }

    /// Reads whatever bytes are available, waiting on this (blocking) thread until at least one is,
    /// `wait` passes, or `stop` becomes readable. The host's bytes reach the pty at once; a paced
    /// reader asks [`Pty::hear`] when they could have arrived before answering them.
    pub fn read_blocking(
        &self,
        buf: &mut [u8],
        wait: Option<Duration>,
        stop: &impl AsFd,
    ) -> Result<Heard, PtyError> {
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            match (&self.master).read(buf) {
                Ok(n) => {
                    self.count_from_host(&buf[..n]);
                    return Ok(Heard::Bytes(n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO means no slave is open right now; ours always is, so treat it as transient.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io("read")(e)),
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Heard::TimedOut);
                    }
                    // Whole milliseconds, rounded up so a wait never ends early.
                    let ms = left.as_micros().div_ceil(1000);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [
                PollFd::new(self.master.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(sys("poll")(e)),
            }
            if fds[1].any().unwrap_or(false) {
                return Ok(Heard::Stopped);
            }
        }
    }

    /// Paced: when the last of `n` bytes just read could have come in over the line, counted as line time;
    /// `None` unpaced. The receive clock moves by `n` byte times from the later of now and the end of the
    /// previous bytes, so a host writing at pty speed is heard no faster than a real line carries its bytes.
    ///
    /// Nothing waits here: whatever the device sends in answer starts no sooner than this instant
    /// ([`Pty::write_all`]'s `from`), which is when a real device could start it. One timed wait a reply
    /// instead of two, and a late wake-up does not push the reply's own line time later still.
    pub fn hear(&self, n: usize) -> Option<Instant> {
        let delay = self.byte_delay?;
        let now = Instant::now();
        let (_, ready) = self.rx.claim(now, n, delay);
        self.counters.wire_time(ready - now);
        Some(ready)
    }

    /// Writes all bytes from a blocking thread, no faster than the configured line speed. Paced, the
    /// first byte starts to cross at `from` (the instant [`Pty::hear`] gave for the bytes this answers)
    /// or now, never while an earlier write of ours is still on the line, and each byte is handed to the
    /// pty once it has crossed (ten bit times a byte). Returns the line time: from that start to the
    /// last byte's release (zero unpaced), also counted.
    ///
    /// The wait for the last byte ends spinning: the OS timer alone wakes 30 to 40 us late on this kind
    /// of machine, and a real UART is not late at all.
    pub fn send_blocking(&self, bytes: &[u8], from: Option<Instant>) -> Result<Duration, PtyError> {
        let Some(delay) = self.byte_delay else {
            self.write_waiting(bytes)?;
            return Ok(Duration::ZERO);
        };
        let (start, end) = self
            .tx
            .claim(from.unwrap_or_else(Instant::now), bytes.len(), delay);
        let at = |i: usize| start + byte_times(delay, i);
        let mut sent = 0usize;
        while sent < bytes.len() {
            let now = Instant::now();
            let crossed = usize::try_from(
                now.saturating_duration_since(start).as_nanos() / delay.as_nanos().max(1),
            )
            .unwrap_or(usize::MAX)
            .min(bytes.len());
            if crossed > sent {
                self.write_waiting(&bytes[sent..crossed])?;
                sent = crossed;
                continue;
            }
            // Bytes before the last go out in bunches (a host reads them as a UART's FIFO hands them
            // over); the last one's release is exact, it is what the host is waiting for.
            let next = at(sent + 1).max(now + BUNCH).min(end);
            wait_until(next, next == end);
        }
        let paced = start.elapsed();
        self.counters.wire_time(paced);
        Ok(paced)
    }

    /// Writes and counts all of `bytes` from a blocking thread. A pty the host has stopped reading
    /// is given [`FULL_PTY_LIMIT`] to make room; then the rest is dropped, as a real line drops
    /// bytes nobody listens to, so no thread waits forever on a host that went away.
    fn write_waiting(&self, mut bytes: &[u8]) -> Result<(), PtyError> {
        let since = Instant::now();
        while !bytes.is_empty() {
            match (&self.master).write(bytes) {
                Ok(n) => {
                    self.count_to_host(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if since.elapsed() > FULL_PTY_LIMIT {
                        tracing::warn!(
                            dropped = bytes.len(),
                            "the host reads nothing and the pty is full: bytes dropped"
                        );
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(io("write")(e)),
            }
        }
        Ok(())
    }

    fn count_from_host(&self, bytes: &[u8]) {
        let mut scan = self
            .scan_from_host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.counters.count_from_host(bytes, &mut scan);
    }

    fn count_to_host(&self, bytes: &[u8]) {
        let mut scan = self
            .scan_to_host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.counters.count_to_host(bytes, &mut scan);
    }
}

/// What [`Pty::read_blocking`] came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// This many bytes from the host (at least one; zero only at end of file).
    Bytes(usize),
    /// The wait passed with nothing heard.
    TimedOut,
    /// The stop descriptor became readable.
    Stopped,
}

/// One direction of the paced line: when the bytes it has carried so far finish crossing, on the
/// line's ideal timeline.
#[derive(Debug, Default)]
struct LineClock(Mutex<Option<Instant>>);

impl LineClock {
    /// Takes the line for `n` byte times from `base`, or from the end of the bytes before if that is
    /// later; returns when they start and when they have crossed.
    fn claim(&self, base: Instant, n: usize, delay: Duration) -> (Instant, Instant) {
        let mut end = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = end.map_or(base, |e| e.max(base));
        let done = start + byte_times(delay, n);
        *end = Some(done);
        (start, done)
    }
}

/// `n` byte times of `delay` each.
fn byte_times(delay: Duration, n: usize) -> Duration {
    delay * u32::try_from(n).unwrap_or(u32::MAX)
}

/// Sleeps on this (blocking) thread until `deadline`. `exact`: the last [`SPIN`] of the wait is spent
/// spinning, so the wake-up is not late by the OS timer.
fn wait_until(deadline: Instant, exact: bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    if !exact {
        std::thread::sleep(left);
        return;
    }
    if left > SPIN {
        std::thread::sleep(left - SPIN);
    }
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// How long an exact wait spins: an OS timer set for a byte time (87 us at 115200 baud) wakes 30 to
/// 40 us late at the median here, and over 100 us late at the 99th percentile; 70 us of spinning
/// leaves it exact to a microsecond at the 99th percentile.
const SPIN: Duration = Duration::from_micros(70);

/// Bytes before a write's last one are released at most this often.
const BUNCH: Duration = Duration::from_millis(1);

/// How long a blocking write waits for a host that reads nothing before dropping the bytes.
const FULL_PTY_LIMIT: Duration = Duration::from_secs(1);

/// The path the link points at: this process's own descriptor of the slave, `/proc/PID/fd/N`,
/// not `/dev/pts/N`. The kernel hands a freed pty number to the next pty opened anywhere on the
/// machine, so after this emulator dies a link to `/dev/pts/N` may lead a host that reopens it into
/// another emulator's register (seen with scenarios running side by side); the descriptor path
/// is gone with the process, and the host gets "no such file" until a new emulator republishes.
fn held_slave_path(slave: &OwnedFd) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        slave.as_raw_fd()
    ))
}

/// Points `link` at `target` atomically: a temporary symlink renamed over the old one.
fn publish_link(target: &Path, link: &Path) -> Result<(), PtyError> {
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io("symlink"))?;
    std::fs::rename(&tmp, link).map_err(io("rename link"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_delay_matches_8n1() {
        assert_eq!(byte_delay_for_baud(115_200), Duration::from_nanos(86_805));
        assert_eq!(byte_delay_for_baud(9600), Duration::from_nanos(1_041_666));
    }

    /// Reads at least one byte, failing after a second.
    fn read_some(pty: &Pty, buf: &mut [u8]) -> usize {
        let (never, _keep) = std::io::pipe().expect("pipe");
        match pty
            .read_blocking(buf, Some(Duration::from_secs(1)), &never)
            .expect("read")
        {
            Heard::Bytes(n) => n,
            other => panic!("nothing read: {other:?}"),
        }
    }

    #[test]
    fn a_blocking_read_ends_when_its_wait_passes_or_when_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pty =
            Pty::open(&dir.path().join("kkt.tty"), None, Arc::new(Counters::new())).expect("open");
        let (stop, mut stopper) = std::io::pipe().expect("pipe");
        let mut buf = [0u8; 8];
        let wait = Duration::from_millis(30);
        let asked = Instant::now();
        let got = pty
            .read_blocking(&mut buf, Some(wait), &stop)
            .expect("read");
        assert_eq!(got, Heard::TimedOut);
        assert!(asked.elapsed() >= wait, "the wait ended early");
        stopper.write_all(&[1]).expect("stop");
        let got = pty.read_blocking(&mut buf, None, &stop).expect("read");
        assert_eq!(got, Heard::Stopped);
    }

    #[test]
    fn pty_round_trip_and_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("kkt.tty");
        let counters = Arc::new(Counters::new());
        let pty = Arc::new(Pty::open(&link, None, Arc::clone(&counters)).expect("open"));
        let target = std::fs::read_link(&link).expect("link");
        assert!(
            target.starts_with(format!("/proc/{}/fd/", std::process::id())),
            "{target:?}"
        );
        assert_eq!(
            std::fs::canonicalize(&link).expect("resolves"),
            pty.slave_path()
        );
        let mut host = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&link)
            .expect("open slave");
        host.write_all(&[0x05]).expect("write");
        let mut buf = [0u8; 8];
        let n = read_some(&pty, &mut buf);
        assert_eq!(&buf[..n], &[0x05]);
        pty.send_blocking(&[0x15, 0x00, 0x0A], None).expect("write");
        let mut got = [0u8; 3];
        host.read_exact(&mut got).expect("read back");
        // Raw mode: 0x0A must not become 0x0D 0x0A and 0x00 must survive.
        assert_eq!(got, [0x15, 0x00, 0x0A]);
        let c = counters.view();
        assert_eq!(
            (
                c.bytes_from_host,
                c.control_bytes_from_host,
                c.bytes_to_host
            ),
            (1, 1, 3)
        );
    }

    #[test]
    fn a_paced_reply_starts_when_the_bytes_it_answers_were_heard_and_never_overlaps() {
        // 1200 baud: 8.33 ms a byte. The host's 3 bytes are heard 3 byte times after they were read;
        // a 1-byte reply from then cannot reach the host before 4 byte times, and a 2-byte write
        // asked for right after it starts only when the reply has crossed: 6 byte times in all.
        // Lower bounds only: a late scheduler makes the figures larger, never smaller.
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("kkt.tty");
        let counters = Arc::new(Counters::new());
        let pty = Arc::new(Pty::open(&link, Some(1200), Arc::clone(&counters)).expect("open"));
        let byte = byte_delay_for_baud(1200);
        let mut host = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&link)
            .expect("open slave");
        host.write_all(&[0x05, 0x05, 0x05]).expect("write");
        let mut buf = [0u8; 8];
        let mut n = 0;
        while n < 3 {
            n += read_some(&pty, &mut buf[n..]);
        }
        let read_at = Instant::now();
        let heard = pty.hear(n).expect("paced");
        assert!(heard >= read_at + byte * 3, "heard too soon");
        let reader = std::thread::spawn(move || {
            let mut got = [0u8; 3];
            let mut at = Vec::new();
            for b in &mut got {
                host.read_exact(std::slice::from_mut(b)).expect("read back");
                at.push(Instant::now());
            }
            (got, at)
        });
        let reply = pty.send_blocking(&[0x15], Some(heard)).expect("reply");
        assert!(
            reply >= byte,
            "the reply's line time {reply:?} is under a byte time"
        );
        let next = pty.send_blocking(&[0x06, 0x02], None).expect("next");
        assert!(next >= byte * 2, "{next:?}");
        let (got, at) = reader.join().expect("reader");
        assert_eq!(got, [0x15, 0x06, 0x02]);
        assert!(
            at[0] >= read_at + byte * 4,
            "the reply left before the line carried it"
        );
        assert!(
            at[2] >= read_at + byte * 6,
            "the second write overlapped the first"
        );
        assert_eq!(counters.view().bytes_to_host, 3);
    }
}
