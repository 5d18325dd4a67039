//! Integration tests of the adapter binary against the real kkt-emulator (over a pty) and the real
//! ofd-mock, both hosted in-process; the adapter runs as a child process so it can be SIGKILLed.

mod atol;
mod auth;
mod backup;
mod contract;
mod crash_loop;
mod deploy;
mod generated;
mod harness;
mod inputs;
mod limits;
mod metrics;
mod openapi;
mod operations;
mod page;
mod phase1;
mod phase2;
mod registers;
