//! tool-http, for the TEST TOOLS only (`ofd-mock`, `kkt-emulator`): the plumbing of their HTTP control
//! APIs that is the same in both, kept in one place so a fix to one tool reaches the other.
//!
//! - [`mod@serve`]: the accept loop, hyper's HTTP/1 server with a header read timeout and a graceful
//!   shutdown bounded by a deadline.
//! - [`secret`]: a secret (the control token, the mock's FPD key) from the command line, a file or the
//!   environment, one source only, a file readable by its owner only.
//! - [`bearer`]: every route behind `Authorization: Bearer TOKEN` when a control token is set.
//! - [`mod@signals`]: SIGTERM and SIGINT registered before the start line is printed.
//! - [`testing`]: small fixtures for the tools' integration tests (a secret file, a bounded wait for exit).
//!
//! **Invariant:** nothing here names a tool. Flags, environment variable names, the refusal body and the
//! messages that name a tool are the caller's arguments, so each tool keeps its own command line and its
//! own error contract.
//!
//! **Boundary:** a leaf library: no workspace crate, no clap, no serde. It does not choose addresses,
//! bind sockets, decide the loopback-only rule or parse command lines; the tools do. The adapter has its
//! own, richer accept loop (`adapter/src/http/serve.rs`, with connection limits) and does not use this
//! crate. Log lines from here carry the `tool_http` target, so a `RUST_LOG` that names only the tool's
//! crate hides them.

pub mod bearer;
pub mod secret;
pub mod serve;
pub mod signals;
pub mod testing;

pub use bearer::{Refused, require_bearer};
pub use secret::{Secret, SecretError, Sources};
pub use serve::{ServeConfig, serve};
pub use signals::stop_signals;
