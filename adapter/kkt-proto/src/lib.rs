//! Shtrih-M protocol v1: frames, typed commands and answers, and the link state machine, with no IO.
//!
//! # Boundary
//!
//! This crate is pure computation. It never opens a port, reads a clock, sleeps or spawns: bytes go in as
//! slices, and what to write, when to wake up and what was received come out as values. The adapter's
//! driver and the KKT emulator own the serial port (or pty) and the timers, feed this crate, and act on its
//! outputs. That keeps every protocol rule testable byte for byte and deterministic, and lets one codec
//! serve both ends of the wire.
//!
//! - [`frame`]: control bytes, [`CommandCode`], LRC, [`encode_request`]/[`encode_answer`] and the streaming
//!   [`FrameDecoder`] (skips 0xFF filler, reports bad LRC and truncated frames as [`FrameError`]).
//! - [`request`]: [`Request`], the typed host commands (encode in the adapter, decode in the emulator).
//! - [`answer`]: [`Reply`] / [`Answer`], the typed device answers (encode in the emulator, decode in the
//!   adapter), and [`DeviceMode`].
//! - [`error`]: [`DeviceError`] for the answer's error byte, with [`DeviceError::is_definite`], plus the
//!   codec's [`DecodeError`] / [`EncodeError`].
//! - [`link`]: the ENQ/ACK/NAK link as explicit state machines, [`HostLink`] (adapter side) and
//!   [`DeviceLink`] (emulator side), configured by [`LinkConfig`].
//!
//! **Invariant:** no decoder panics on any input; every buffer and retry loop is bounded (a frame by its
//! one-byte LEN, retries by [`LinkConfig::retries_max`]).
//!
//! **Deliberately not here:** protocol v2 (`8F`-framed, used over TCP), table read/write commands,
//! serde on any type (the adapter converts at its HTTP edge), and any notion of wall-clock time.

pub mod answer;
pub mod code;
pub mod error;
pub mod frame;
pub mod link;
pub mod request;
pub mod wire;

pub use answer::{
    Answer, BufferStatus, DeviceInfo, DeviceMode, DocumentHeader, ExchangeStatus, FnStatus,
    FoundDocument, FullStatus, ReceiptDocument, Reply, ShiftDocument, ShiftParams, ShortStatus,
};
pub use error::{DecodeError, DeviceError, EncodeError, ErrorClass};
pub use frame::{
    ACK, CommandCode, ENQ, FILLER, FrameDecoder, FrameError, NAK, STX, Token, decode_frame,
    encode_answer, encode_frame, encode_request, lrc,
};
pub use link::{
    DeviceLink, DeviceOutput, HostLink, HostOutput, Indeterminate, LinkConfig, LinkFailure,
    NotDelivered, StartError, TimerToken,
};
pub use request::{
    CloseCheck, CloseReceipt, FnOperation, LegacyItem, PrintString, ReceiptType, Request,
};
pub use wire::{MONEY_MAX, Text};
