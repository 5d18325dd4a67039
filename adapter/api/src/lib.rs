//! The adapter's public HTTP contract: request and response types and stable error codes.
//!
//! Boundary: this crate is a leaf. It knows serde, exact decimals and `utoipa`'s derives (the
//! adapter's OpenAPI document is generated from these types), nothing else: no tokio, no axum, no
//! SQLite. Only `adapter/src/http` converts between these types and the adapter's inner
//! types, so a rename here shows up as a compile error there, and scenario files spell out the
//! literal wire JSON, so a rename cannot pass silently on both sides at once.

mod admin;
mod atol;
mod buffer;
mod device;
mod error;
mod health;
mod money;
mod receipt;

pub use admin::*;
pub use atol::*;
pub use buffer::*;
pub use device::*;
pub use error::*;
pub use health::*;
pub use money::{Money, Quantity};
pub use receipt::*;
