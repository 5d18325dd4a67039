//! The runner's exit codes, one home for `uat run`, `uat check` and `uat up`.

/// Every selected scenario passed.
pub const EXIT_OK: u8 = 0;
/// At least one scenario failed.
pub const EXIT_FAILED: u8 = 1;
/// A scenario file (or the command line) is invalid.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The runner could not do its job: directories, ports, leftover processes, report files.
pub const EXIT_INFRA: u8 = 3;
/// `uat run` selected no scenario (a `--tag` no scenario carries, a directory without scenario
/// files, only `nightly` scenarios in a directory, an empty partition): nothing ran, so nothing
/// can have passed.
pub const EXIT_NOTHING_SELECTED: u8 = 4;
