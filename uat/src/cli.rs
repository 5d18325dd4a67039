//! The command line of `uat run`, `uat check` and `uat up`: parsing only. What each command does
//! is `dispatch.rs`; the exit codes are `exit.rs`; what a run prints and writes is `report/`.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, Subcommand};

pub use crate::exit::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INFRA, EXIT_NOTHING_SELECTED, EXIT_OK};

#[derive(Debug, Parser)]
#[command(
    name = "uat",
    about = "Runs acceptance scenarios against the built binaries",
    after_help = "Exit codes: 0 every selected scenario passed, 1 a scenario failed, 2 invalid \
                  scenario file or command line, 3 infrastructure error, 4 `uat run` selected no \
                  scenario."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// A parsed command.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run scenarios (files or directories; default `scenarios`). Exits 4 when the selection
    /// matches no scenario.
    Run(RunArgs),
    /// Validate scenario files without running them.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start a scenario's processes (default: kkt-emulator, ofd-mock and adapter), print their
    /// URLs and keep them running until Ctrl-C.
    Up(UpArgs),
}

/// Arguments of `uat up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// A scenario file whose processes to start; without it, the default stack.
    pub scenario: Option<PathBuf>,
    /// Directory of the built binaries for `{{bin.NAME}}` (default: this executable's cargo profile dir).
    #[arg(long, env = "UAT_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the process folder (default: a fresh folder under the system temp directory).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Keep the folder (logs, databases) after Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `uat run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or directories searched for `*.toml`. A directory search leaves out
    /// scenarios tagged `nightly` unless `--tag nightly` is given; a file named here always counts.
    pub paths: Vec<PathBuf>,
    /// Run only scenarios with this tag (repeatable: any of them). A selection that matches no
    /// scenario exits 4, naming the tags that exist.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Seed for random choices (printed; replay a failed run with it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write an HTML report (`DIR/index.html`, self-contained, with a timeline per scenario) and
    /// its data (`DIR/report.json`); samples every adapter, ofd-mock and kkt-emulator while each
    /// scenario runs.
    #[arg(long = "report-html", value_name = "DIR")]
    pub report_html: Option<PathBuf>,
    /// Keep every scenario folder, not only failed ones.
    #[arg(long)]
    pub keep: bool,
    /// Directory of the built binaries for `{{bin.NAME}}` (default: this executable's cargo profile dir).
    #[arg(long, env = "UAT_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Root of the run folders (default: `<target>/uat`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Print what would run (name, tags, file), after `--tag` and `--partition`, and exit.
    #[arg(long)]
    pub list: bool,
    /// Start no scenario after one failed; those left are reported as skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run a failed scenario again, up to N more times; a later pass is reported as flaky.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Run shard K of N (`K/N`, 1 <= K <= N): the selection sorted by name, every N-th from the
    /// K-th, so N machines split a suite with no overlap and no gap.
    #[arg(long)]
    pub partition: Option<Partition>,
    /// Say so each time a scenario has run another SECONDS.
    #[arg(long = "slow-after", value_name = "SECONDS", default_value_t = 60)]
    pub slow_after_s: u64,
}

/// `--partition K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// K, from 1.
    pub shard: usize,
    /// N.
    pub total: usize,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || format!("`{s}`: give K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (shard, total): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if shard == 0 || shard > total {
            return Err(bad());
        }
        Ok(Partition { shard, total })
    }
}

/// Parses the command line: the command, or the exit code when there is none to run (`--help`
/// and `--version` print and give 0; a bad command line prints why and gives 2).
pub fn parse() -> Result<Cmd, u8> {
    match Cli::try_parse() {
        Ok(c) => Ok(c.cmd),
        Err(e) => {
            let _ = e.print();
            Err(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_k_of_n() {
        assert_eq!(
            "2/4".parse::<Partition>(),
            Ok(Partition { shard: 2, total: 4 })
        );
        for bad in ["0/4", "5/4", "2", "a/b", "2/0", "-1/3"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }
}
