//! A host that costs nothing of its own: commands sent straight over the paced emulator's pty by
//! one thread, with no journal, no HTTP and no driver behind it. Its time a command beyond the
//! command's bytes on the line and the device's own time is the turnaround the pty and the
//! emulator cost any host: `sale.paced_turnaround_us` from status commands (10), and
//! `drain.paced_turnaround_us` from the reads of the FN's outgoing message (FF30, FF31 blocks),
//! whose answers are the drain's long ones. `{sale,drain}.paced_ceiling_rate` (`mod.rs`) is what
//! such a host could reach with the unit's own bytes and commands.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kkt_proto::{ACK, Answer, ENQ, NAK, Reply, Request, STX};
use nix::sys::termios::{SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr};

use super::load::wire_limit;
use super::procs::{BAUD, Stack};

/// The longest wait for one byte (a whole FF31 answer takes under 25 ms at 115200 baud).
const BYTE_LIMIT_DECISECONDS: u8 = 20;

/// What a paced command costs any host beyond its bytes' line time and the device's time: `host`
/// (one of the runs below, given the pty) over the stack's paced emulator, per command. The
/// adapter must be stopped, so the bare host is alone on the line.
pub async fn turnaround(
    stack: &Stack,
    host: impl FnOnce(&Path) -> anyhow::Result<(Duration, usize)> + Send + 'static,
) -> anyhow::Result<f64> {
    stack.reset_emu_counters().await?;
    let link = stack.pty_link();
    let (elapsed, commands) = tokio::task::spawn_blocking(move || host(&link)).await??;
    let emu = stack.emu_counters().await?;
    anyhow::ensure!(
        emu.commands == commands as u64,
        "the emulator ran {} of the bare host's {commands} commands",
        emu.commands
    );
    let n = commands as f64;
    let line_us = 1e6 / wire_limit(BAUD, (emu.bytes_from_host + emu.bytes_to_host) as f64 / n);
    let device_us = emu.command_time_us as f64 / n;
    Ok(elapsed.as_secs_f64() * 1e6 / n - line_us - device_us)
}

/// Sends `count` status commands through the protocol's full exchange (ENQ, NAK, frame, ACK,
/// answer, ACK) and returns the wall time of all of them and the commands sent.
pub fn status_commands(link: &Path, count: usize) -> anyhow::Result<(Duration, usize)> {
    let mut port = open(link)?;
    let frame = encode(&Request::ShortStatus)?;
    let started = Instant::now();
    for i in 0..count {
        exchange(&mut port, &frame, i)?;
    }
    Ok((started.elapsed(), count))
}

/// Reads the FN's outgoing message `count` times as the relay does (FF30 for its size, then FF31
/// blocks; reading changes nothing in the FN) and returns the wall time and the commands sent.
pub fn message_reads(link: &Path, count: usize) -> anyhow::Result<(Duration, usize)> {
    let mut port = open(link)?;
    let status = encode(&Request::FnReadBufferStatus)?;
    let mut commands = 0usize;
    let started = Instant::now();
    for _ in 0..count {
        let answer = exchange(&mut port, &status, commands)?;
        commands += 1;
        let (size, block) = match Reply::from_payload(&answer) {
            Ok(Reply::Ok(Answer::FnBufferStatus(s))) if s.size > 0 => {
                (usize::from(s.size), usize::from(s.block_size_max.max(1)))
            }
            other => bail!("FF30: the FN offers no message to read: {other:?}"),
        };
        let mut offset = 0usize;
        while offset < size {
            let len = block.min(size - offset);
            let read = encode(&Request::FnReadBufferBlock {
                offset: u16::try_from(offset)?,
                len: u8::try_from(len)?,
            })?;
            match Reply::from_payload(&exchange(&mut port, &read, commands)?) {
                Ok(Reply::Ok(Answer::FnBufferBlock(b))) if b.len() == len => offset += len,
                other => bail!("FF31 at {offset}: {other:?}"),
            }
            commands += 1;
        }
    }
    Ok((started.elapsed(), commands))
}

/// The pty, its reads returning what is there, or nothing after the limit: a dead emulator ends
/// the run.
fn open(link: &Path) -> anyhow::Result<File> {
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(link)
        .with_context(|| format!("open {}", link.display()))?;
    let mut tio = tcgetattr(&port).context("tcgetattr")?;
    tio.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    tio.control_chars[SpecialCharacterIndices::VTIME as usize] = BYTE_LIMIT_DECISECONDS;
    tcsetattr(&port, SetArg::TCSANOW, &tio).context("tcsetattr")?;
    Ok(port)
}

fn encode(request: &Request) -> anyhow::Result<Vec<u8>> {
    request
        .to_frame(30)
        .map_err(|e| anyhow::anyhow!("{:?} frame: {e}", request.code()))
}

/// One command's full exchange (ENQ, NAK, frame, ACK, answer, ACK); the answer's payload.
fn exchange(port: &mut File, frame: &[u8], command: usize) -> anyhow::Result<Vec<u8>> {
    port.write_all(&[ENQ])?;
    expect(port, NAK, command)?;
    port.write_all(frame)?;
    expect(port, ACK, command)?;
    expect(port, STX, command)?;
    let len = byte(port)?;
    let mut payload = Vec::with_capacity(usize::from(len));
    for _ in 0..len {
        payload.push(byte(port)?);
    }
    // The LRC: the emulator's own frames are not checked here.
    byte(port)?;
    port.write_all(&[ACK])?;
    Ok(payload)
}

fn expect(port: &mut File, want: u8, command: usize) -> anyhow::Result<()> {
    let got = byte(port)?;
    if got != want {
        bail!("command {command}: expected 0x{want:02X} from the emulator, got 0x{got:02X}");
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
