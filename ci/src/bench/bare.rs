//! A host that costs nothing of its own: status commands (10) sent straight over the paced
//! emulator's pty by one thread, with no journal, no HTTP and no driver behind it. Its time a
//! command beyond the command's bytes on the line and the device's own time is the turnaround
//! the pty and the emulator cost any host, `sale.paced_turnaround_us`; `sale.paced_ceiling_rate`
//! (`mod.rs`) is the sale such a host could reach with the sale's own bytes and commands.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kkt_proto::{ACK, ENQ, NAK, Request, STX};
use nix::sys::termios::{SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr};

/// The longest wait for one byte (a whole status answer takes under 3 ms at 115200 baud).
const BYTE_LIMIT_DECISECONDS: u8 = 20;

/// Sends `count` status commands through the protocol's full exchange (ENQ, NAK, frame, ACK,
/// answer, ACK) and returns the wall time of all of them.
pub fn status_commands(link: &Path, count: usize) -> anyhow::Result<Duration> {
    let mut port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(link)
        .with_context(|| format!("open {}", link.display()))?;
    // Reads return what is there, or nothing after the limit: a dead emulator ends the run.
    let mut tio = tcgetattr(&port).context("tcgetattr")?;
    tio.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    tio.control_chars[SpecialCharacterIndices::VTIME as usize] = BYTE_LIMIT_DECISECONDS;
    tcsetattr(&port, SetArg::TCSANOW, &tio).context("tcsetattr")?;
    let frame = Request::ShortStatus
        .to_frame(30)
        .map_err(|e| anyhow::anyhow!("status frame: {e}"))?;
    let started = Instant::now();
    for i in 0..count {
        port.write_all(&[ENQ])?;
        expect(&mut port, NAK, i)?;
        port.write_all(&frame)?;
        expect(&mut port, ACK, i)?;
        expect(&mut port, STX, i)?;
        let len = byte(&mut port)?;
        // The payload and its LRC.
        for _ in 0..=len {
            byte(&mut port)?;
        }
        port.write_all(&[ACK])?;
    }
    Ok(started.elapsed())
}

fn expect(port: &mut File, want: u8, command: usize) -> anyhow::Result<()> {
    let got = byte(port)?;
    if got != want {
        bail!("status command {command}: expected 0x{want:02X} from the emulator, got 0x{got:02X}");
    }
    Ok(())
}

fn byte(port: &mut File) -> anyhow::Result<u8> {
    let mut b = [0u8; 1];
    match port.read(&mut b).context("read the pty")? {
        1 => Ok(b[0]),
        _ => bail!("the emulator sent nothing for {BYTE_LIMIT_DECISECONDS}00 ms"),
    }
}
