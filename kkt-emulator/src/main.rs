//! Thin binary: parses the command line and hands over to the `kkt_emulator` library.

fn main() -> std::process::ExitCode {
    kkt_emulator::main_entry()
}
