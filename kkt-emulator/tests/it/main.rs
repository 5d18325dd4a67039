//! Integration tests: the emulator driven over a real pty with the `serialport` crate, plus its control API.

mod golden;
mod harness;
mod ofd;
mod restart;
mod shift;
mod store;
mod wire_faults;
