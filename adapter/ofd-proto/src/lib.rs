//! FFD 1.05 TLV codec, typed fiscal documents and the FN-to-OFD session/container envelope, with no IO.
//!
//! **Boundary:** this crate is pure data in, data out. It does no IO, has no tokio or other runtime, and keeps
//! no state between calls. serde appears only in [`json`], which renders decoded documents as
//! `serde_json::Value`; the typed documents ([`Receipt`], [`ShiftOpen`], [`ShiftClose`], [`OperatorAck`])
//! carry no serde derives. Callers (the adapter, the KKT emulator, the mock OFD) own sockets and timing;
//! [`envelope::bytes_needed`] lets a TCP reader read exactly one message under a size bound.
//!
//! **Invariant:** decoding never panics on any input: every decoder returns a typed error instead, and STLV
//! nesting is bounded by [`tlv::MAX_DEPTH`]. Encoding checks every value against the tag table (type,
//! maximum length, cp866 representability) and returns a typed error rather than writing a bad TLV.
//!
//! Modules:
//! - [`tags`]: the tag table (`tag_info`) and document codes;
//! - [`tlv`]: the generic `Tlv { tag, value }` tree, decode and encode;
//! - [`receipt`], [`reports`]: typed receipt, shift reports and operator acknowledgement;
//! - [`json`]: the JSON rendering (yandex/ofd key names);
//! - [`envelope`]: session and container headers, CRC, message build/parse, reply build/parse, and the
//!   A-protocol versions ([`AppVersion::ALL`], the set yandex/ofd accepts); a reply mirrors its request's version;
//! - [`fpd`](mod@fpd): a keyed stand-in for the fiscal sign, explicitly not GOST.

pub mod envelope;
pub mod error;
mod fields;
pub mod fpd;
pub mod json;
pub mod receipt;
pub mod reports;
pub mod tags;
pub mod tlv;

pub use envelope::{
    AppVersion, Frame, Message, Need, build_message, build_message_in, build_reply, bytes_needed,
    parse_message, parse_reply,
};
pub use error::{DocError, EnvelopeError, TlvError};
pub use fpd::fpd;
pub use json::to_json;
pub use receipt::{OperationType, Receipt, ReceiptItem};
pub use reports::{
    FFD_1_05, FiscalData, OperatorAck, RESPONSE_FLK_ERROR, RESPONSE_OK, ShiftClose, ShiftOpen,
};
pub use tags::{DocCode, TagInfo, TagType, tag_info};
pub use tlv::{Fvln, Tlv, Value, decode_all, decode_document, decode_one};
