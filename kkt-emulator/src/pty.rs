//! The pseudo-terminal the emulator listens on: raw mode, a stable symlink, optional line pacing of both
//! directions, and the line counters ([`crate::counters`]), bumped here because this is where bytes cross.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

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
    master: AsyncFd<File>,
    _slave: OwnedFd,
    slave_path: PathBuf,
    link_path: PathBuf,
    byte_delay: Option<Duration>,
    /// Paced only: when the last byte read from the host could have arrived over the line (the receive
    /// clock of [`Pty::pace_received`]).
    rx_ready: Mutex<Option<Instant>>,
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
        // `AsyncFd::register` is the non-deprecated spelling but is `unsafe`, which this workspace forbids.
        // The deprecation is about an fd closed behind the reactor's back; here the AsyncFd owns the File,
        // so the fd lives exactly as long as its registration.
        #[allow(deprecated)]
        let master = AsyncFd::new(File::from(pair.master)).map_err(io("register"))?;
        publish_link(&held_slave_path(&pair.slave), link)?;
        Ok(Self {
            master,
            _slave: pair.slave,
            slave_path,
            link_path: link.to_path_buf(),
            byte_delay: baud.map(byte_delay_for_baud),
            rx_ready: Mutex::new(None),
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

    /// Reads whatever bytes are available, waiting until at least one is. The host's bytes reach the pty at
    /// once; a paced reader calls [`Pty::pace_received`] before acting on them.
    pub async fn read(&self, buf: &mut [u8]) -> Result<usize, PtyError> {
        loop {
            let mut guard = self.master.readable().await.map_err(io("poll"))?;
            match guard.try_io(|f| f.get_ref().read(buf)) {
                Ok(Ok(n)) => {
                    self.count_from_host(&buf[..n]);
                    return Ok(n);
                }
                // EIO means no slave is open right now; ours always is, so treat it as transient.
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(Err(e)) => return Err(io("read")(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Paced: waits until `n` bytes just read could have come in over the line, and counts that wait as
    /// line time; unpaced it returns at once. The receive clock moves by `n` byte times from the later of
    /// now and the end of the previous bytes, so a host writing at pty speed is heard no faster than a real
    /// line carries its bytes. It is a separate step from [`Pty::read`] so a read cancelled by the byte
    /// timeout never loses bytes it already took from the pty.
    pub async fn pace_received(&self, n: usize) {
        let Some(delay) = self.byte_delay else {
            return;
        };
        if n == 0 {
            return;
        }
        let now = Instant::now();
        let ready = {
            let mut rx = self
                .rx_ready
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ready =
                rx.map_or(now, |r| r.max(now)) + delay * u32::try_from(n).unwrap_or(u32::MAX);
            *rx = Some(ready);
            ready
        };
        self.counters.wire_time(ready - now);
        sleep_until_precise(ready).await;
    }

    /// Writes all bytes, no faster than the configured line speed: paced, each byte is handed to the pty
    /// once it could have crossed the line (ten bit times a byte from the start). Returns the time pacing
    /// held them back (zero unpaced), which is also counted as line time.
    pub async fn write_all(&self, bytes: &[u8]) -> Result<Duration, PtyError> {
        let Some(delay) = self.byte_delay else {
            self.write_raw(bytes).await?;
            return Ok(Duration::ZERO);
        };
        let start = Instant::now();
        let at = |i: usize| start + delay * u32::try_from(i).unwrap_or(u32::MAX);
        let end = at(bytes.len());
        let mut sent = 0usize;
        while sent < bytes.len() {
            // Bytes that are due go in one write: waits before the last one are left to tokio's timer,
            // whose millisecond rounding only bunches bytes; the last one's release is timed precisely.
            let crossed = usize::try_from(start.elapsed().as_nanos() / delay.as_nanos().max(1))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            if crossed > sent {
                self.write_raw(&bytes[sent..crossed]).await?;
                sent = crossed;
            } else if end.saturating_duration_since(Instant::now()) <= COARSE_SLEEP_MIN {
                sleep_until_precise(end).await;
            } else {
                tokio::time::sleep_until(at(sent + 1).into()).await;
            }
        }
        let paced = start.elapsed();
        self.counters.wire_time(paced);
        Ok(paced)
    }

    /// Counts `bytes` as sent, then writes them all at once.
    async fn write_raw(&self, mut bytes: &[u8]) -> Result<(), PtyError> {
        self.count_to_host(bytes);
        while !bytes.is_empty() {
            let mut guard = self.master.writable().await.map_err(io("poll"))?;
            match guard.try_io(|f| f.get_ref().write(bytes)) {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(io("write")(e)),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Discards bytes the host wrote that nobody read yet (used after a simulated power cut).
    pub fn drain_input(&self) {
        let mut buf = [0u8; 256];
        while let Ok(n) = self.master.get_ref().read(&mut buf) {
            if n == 0 {
                break;
            }
            self.count_from_host(&buf[..n]);
        }
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

/// Sleeps until `deadline`, to within the OS timer's tens of microseconds. Tokio's timer rounds up to
/// whole milliseconds, a dozen byte times at 115200 baud, so only the part of the wait beyond
/// [`COARSE_SLEEP_MIN`] is left to it and the rest is slept on the blocking pool.
async fn sleep_until_precise(deadline: Instant) {
    if deadline.saturating_duration_since(Instant::now()) > COARSE_SLEEP_MIN {
        tokio::time::sleep_until((deadline - COARSE_SLEEP_MIN).into()).await;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        // A lost blocking thread only ends the wait early; there is nothing to report.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    }
}

/// Waits longer than this go to tokio's timer for all but this much (its rounding is under a millisecond).
const COARSE_SLEEP_MIN: Duration = Duration::from_millis(2);

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

    #[tokio::test]
    async fn pty_round_trip_and_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("kkt.tty");
        let counters = Arc::new(Counters::new());
        let pty = Pty::open(&link, None, Arc::clone(&counters)).expect("open");
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
        let n = pty.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], &[0x05]);
        pty.write_all(&[0x15, 0x00, 0x0A]).await.expect("write");
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
}
