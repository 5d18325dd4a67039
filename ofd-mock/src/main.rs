//! Thin binary: parses the command line and hands over to the `ofd_mock` library.

fn main() -> std::process::ExitCode {
    ofd_mock::main_entry()
}
