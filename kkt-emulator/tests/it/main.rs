//! Integration tests: the emulator driven over a real pty with the `serialport` crate, plus its control API.

mod counters;
mod golden;
mod guard;
mod harness;
mod ofd;
mod pyshtrih;
mod restart;
mod shift;
mod store;
mod text_limits;
mod wire_faults;
