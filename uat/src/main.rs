//! Thin binary: parses the command line and hands over to the `uat` library.

fn main() -> std::process::ExitCode {
    uat::main_entry()
}
