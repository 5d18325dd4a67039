//! Thin binary: parses the command line and hands over to the `adapter` library.

fn main() -> std::process::ExitCode {
    adapter::main_entry()
}
