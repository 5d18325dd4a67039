//! [`FnRelay`] over the KKT driver: each step is one closure on the driver thread, so a
//! multi-block read or write is never interleaved with another caller's commands.

use kkt_proto::{Answer, Request};

use super::relay::{FnQueue, FnRelay, RelayError, RelayFuture};
use crate::kkt::{Durable, Kkt, KktError, KktHandle};

fn relay_err(e: KktError) -> RelayError {
    match e.device_error() {
        Some(error) => RelayError::Refused(error),
        None => RelayError::Unavailable(e.to_string()),
    }
}

fn unexpected(cmd: &str, answer: &Answer) -> KktError {
    KktError::Protocol(format!("unexpected answer to {cmd}: {answer:?}"))
}

async fn on_device<T: Send + 'static>(
    kkt: &KktHandle,
    f: impl FnOnce(&mut Kkt) -> Result<T, KktError> + Send + 'static,
) -> Result<T, RelayError> {
    kkt.run(f).await.map_err(relay_err)?.map_err(relay_err)
}

/// FF30 then FF31 blocks until the whole message is read. Bounded: every round adds at least
/// one byte towards a size below 64 KiB, or fails.
fn read_message(kkt: &mut Kkt) -> Result<Vec<u8>, KktError> {
    let status = match kkt.call(&Request::FnReadBufferStatus)? {
        Answer::FnBufferStatus(s) => s,
        other => return Err(unexpected("FF30", &other)),
    };
    let size = usize::from(status.size);
    let block = usize::from(status.block_size_max.max(1));
    let mut message = Vec::with_capacity(size);
    while message.len() < size {
        let len = block.min(size - message.len());
        let req = Request::FnReadBufferBlock {
            offset: u16::try_from(message.len()).unwrap_or(u16::MAX),
            len: u8::try_from(len).unwrap_or(u8::MAX),
        };
        match kkt.call(&req)? {
            Answer::FnBufferBlock(b) if !b.is_empty() && b.len() <= len => {
                message.extend_from_slice(&b);
            }
            other => return Err(unexpected("FF31", &other)),
        }
    }
    Ok(message)
}

/// FF32, then FF33 blocks once the reply is durable; `Ok(false)` when it never became durable
/// (nothing but FF32 went, which changes nothing the FN keeps).
fn write_reply(kkt: &mut Kkt, reply: &[u8], mut journaled: Durable) -> Result<bool, KktError> {
    let size = u16::try_from(reply.len())
        .map_err(|_| KktError::Encode(format!("OFD reply of {} bytes", reply.len())))?;
    let block = match kkt.call(&Request::FnStartWriteBuffer { size })? {
        Answer::FnStartWriteBuffer { block_size_max } => usize::from(block_size_max.max(1)),
        other => return Err(unexpected("FF32", &other)),
    };
    // The commit ran while FF32 was on the line; the driver thread waits for it here.
    if !journaled.wait() {
        return Ok(false);
    }
    for (i, chunk) in reply.chunks(block).enumerate() {
        let req = Request::FnWriteBufferBlock {
            offset: u16::try_from(i * block).unwrap_or(u16::MAX),
            data: chunk.to_vec(),
        };
        kkt.call(&req)?;
    }
    Ok(true)
}

impl FnRelay for KktHandle {
    fn fn_number(&self) -> RelayFuture<'_, String> {
        Box::pin(on_device(self, |kkt| {
            match kkt.call(&Request::FnStatus)? {
                Answer::FnStatus(s) => Ok(String::from_utf8_lossy(&s.fn_number).trim().to_owned()),
                other => Err(unexpected("FF01", &other)),
            }
        }))
    }

    fn queue(&self) -> RelayFuture<'_, FnQueue> {
        Box::pin(on_device(self, |kkt| {
            match kkt.call(&Request::FnExchangeStatus)? {
                Answer::FnExchangeStatus(s) => Ok(FnQueue {
                    queue_len: s.queue_len,
                    first_fd: s.first_fd,
                }),
                other => Err(unexpected("FF39", &other)),
            }
        }))
    }

    fn read_message(&self) -> RelayFuture<'_, Vec<u8>> {
        Box::pin(on_device(self, read_message))
    }

    fn write_reply(&self, reply: Vec<u8>, journaled: Durable) -> RelayFuture<'_, ()> {
        Box::pin(async move {
            match on_device(self, move |kkt| write_reply(kkt, &reply, journaled)).await? {
                true => Ok(()),
                false => Err(RelayError::NotJournaled),
            }
        })
    }

    fn read_ticket(&self, fd: u32) -> RelayFuture<'_, Vec<u8>> {
        Box::pin(on_device(self, move |kkt| {
            match kkt.call(&Request::FnReadTicket { fd_number: fd })? {
                Answer::FnReadTicket(t) => Ok(t),
                other => Err(unexpected("FF3C", &other)),
            }
        }))
    }
}
