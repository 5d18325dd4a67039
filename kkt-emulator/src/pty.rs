//! The pseudo-terminal the emulator listens on: raw mode, a stable symlink, optional line pacing, and the
//! line counters ([`crate::counters`]), bumped here because this is where bytes cross.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
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
        publish_link(&slave_path, link)?;
        Ok(Self {
            master,
            _slave: pair.slave,
            slave_path,
            link_path: link.to_path_buf(),
            byte_delay: baud.map(byte_delay_for_baud),
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

    /// Reads whatever bytes are available, waiting until at least one is.
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

    /// Writes all bytes, no faster than the configured line speed. Returns the time pacing held them
    /// back (zero unpaced): from the start until the last byte was released.
    pub async fn write_all(&self, bytes: &[u8]) -> Result<Duration, PtyError> {
        let Some(delay) = self.byte_delay else {
            self.write_raw(bytes).await?;
            return Ok(Duration::ZERO);
        };
        // Byte i may leave no earlier than start + i * delay; bytes that are due are sent in one
        // write, because tokio's timer has millisecond resolution.
        let start = Instant::now();
        let mut sent = 0usize;
        let mut paced = Duration::ZERO;
        while sent < bytes.len() {
            let elapsed = start.elapsed();
            let due = usize::try_from(elapsed.as_nanos() / delay.as_nanos().max(1))
                .unwrap_or(usize::MAX)
                .saturating_add(1)
                .min(bytes.len());
            if due > sent {
                if due == bytes.len() {
                    // The line stays busy for the last byte's own ten bit times after its release.
                    paced = elapsed;
                    self.counters.wire_time(elapsed + delay);
                }
                self.write_raw(&bytes[sent..due]).await?;
                sent = due;
            } else {
                let next = u32::try_from(sent).unwrap_or(u32::MAX);
                tokio::time::sleep_until((start + delay * next).into()).await;
            }
        }
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
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());
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
