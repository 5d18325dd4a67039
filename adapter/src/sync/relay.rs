//! The boundary between the sync worker and the FN: the four exchange-through-the-host steps
//! (FF39 queue status, FF30/FF31 read the outgoing message, FF32/FF33 write the OFD's reply,
//! FF3C read a stored ticket) plus FF01 for the FN number.
//!
//! The trait exists so the relay logic can be tested against a model FN; production uses the
//! implementation for [`crate::kkt::KktHandle`] in `kkt_relay.rs`. Futures are boxed so the
//! worker can hold an `Arc<dyn FnRelay>` and stay non-generic for the HTTP layer.

use std::future::Future;
use std::pin::Pin;

use kkt_proto::DeviceError;

use crate::kkt::Durable;

/// A boxed future of a relay step.
pub type RelayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RelayError>> + Send + 'a>>;

/// The FN's unsent queue (FF39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FnQueue {
    /// Documents waiting for an OFD ticket.
    pub queue_len: u16,
    /// FD number of the first of them (0 when the queue is empty).
    pub first_fd: u32,
}

/// How a relay step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The FN answered with an error: it certainly did not take the step.
    #[error("FN refused: {0:?}")]
    Refused(DeviceError),
    /// The KKT could not be reached or its answer was not understood: the outcome is unknown.
    #[error("KKT unavailable: {0}")]
    Unavailable(String),
    /// The OFD's reply did not become durable in the journal, so it was not written to the FN
    /// (only its size was announced, which the next FF32 replaces).
    #[error("the OFD's reply was not journaled, so it was not written to the FN")]
    NotJournaled,
}

/// The FN as the sync worker sees it. Each method is one serialized device operation.
pub trait FnRelay: Send + Sync + 'static {
    /// FF01: the FN's serial number.
    fn fn_number(&self) -> RelayFuture<'_, String>;
    /// FF39: the unsent queue.
    fn queue(&self) -> RelayFuture<'_, FnQueue>;
    /// FF30 + FF31: the whole outgoing message for the first unsent document (empty if none).
    fn read_message(&self) -> RelayFuture<'_, Vec<u8>>;
    /// FF32 + FF33: hands the OFD's reply to the FN for the first unsent document. FF32 only
    /// announces the reply's size; the reply itself (FF33) goes once `journaled` says it is
    /// durable. When it is not, nothing but FF32 went (which the next FF32 replaces) and the step
    /// fails as [`RelayError::NotJournaled`].
    fn write_reply(&self, reply: Vec<u8>, journaled: Durable) -> RelayFuture<'_, ()>;
    /// FF3C: the ticket (operator acknowledgement TLV) the FN stored for `fd`.
    fn read_ticket(&self, fd: u32) -> RelayFuture<'_, Vec<u8>>;
}
