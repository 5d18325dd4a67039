//! `ci bench --smoke` runs every figure with tiny counts and prints it: the check CI makes of the
//! benchmarks. It never judges a value (benchmarks are not timed tests); it checks that each
//! figure the benchmarks promise (BENCHMARKS.md) is measured 3 times, printed in the one-line
//! format, and written to the run's JSON file.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Every figure `ci bench` prints, by name. A figure renamed or lost fails here.
const FIGURES: &[&str] = &[
    "ceiling.fdatasync_append",
    "ceiling.sqlite_commit_rows_1",
    "ceiling.sqlite_commit_rows_8",
    "ceiling.sqlite_commit_rows_32",
    "ceiling.sqlite_commit_rows_128",
    "ceiling.pty_round_trip",
    "ceiling.ofd_bare_client",
    "reference.sales_c1",
    "reference.sales_c8",
    "reference.sales_c64",
    "sale.unpaced_c1_rate",
    "sale.unpaced_c1_p50",
    "sale.unpaced_c1_p99",
    "sale.unpaced_c1_max",
    "sale.unpaced_c8_rate",
    "sale.unpaced_c64_rate",
    "sale.adapter_cpu_ms",
    "sale.adapter_system_cpu_ms",
    "sale.emulator_cpu_ms",
    "sale.paced_c1_rate",
    "sale.paced_c8_rate",
    "sale.paced_c64_rate",
    "sale.journal_commits",
    "sale.kkt_round_trips",
    "sale.bytes_to_kkt",
    "sale.bytes_from_kkt",
    "sale.device_ms",
    "sale.adapter_ms",
    "sale.wire_limit_115200",
    "sale.paced_wire_ms",
    "sale.paced_adapter_ms",
    "sale.paced_turnaround_us",
    "sale.paced_ceiling_rate",
    "sale.kkt_exchange_ms",
    "sale.commit_ms",
    "sale.adapter_floor_ms",
    "sale.adapter_beyond_floor_ms",
    "drain.unpaced_rate",
    "drain.paced_rate",
    "drain.paced_device_ms",
    "drain.paced_wire_ms",
    "drain.paced_ofd_ms",
    "drain.paced_adapter_ms",
    "drain.paced_kkt_exchange_ms",
    "drain.paced_commit_ms",
    "drain.paced_outside_kkt_ms",
    "drain.paced_turnaround_us",
    "drain.paced_ceiling_rate",
    "drain.design_ceiling",
    "drain.wire_limit_115200",
    "drain.journal_commits",
    "drain.kkt_round_trips",
    "drain.bytes_to_kkt",
    "drain.bytes_from_kkt",
    "drain.device_ms",
    "drain.ofd_ms",
    "drain.adapter_ms",
    "drain.kkt_exchange_ms",
    "drain.commit_ms",
    "drain.serial_ceiling",
    "drain.adapter_floor_ms",
    "drain.adapter_beyond_floor_ms",
    "recovery.start_to_ready_ms",
    "recovery.start_to_first_sale_ms",
    "recovery.journal_open_ms",
    "recovery.journal_check_ms",
    "recovery.sqlite_open_ms",
    "recovery.wal_mib",
    "recovery.shop_start_to_ready_ms",
    "recovery.shop_start_to_first_sale_ms",
    "recovery.shop_journal_open_ms",
    "recovery.shop_journal_check_ms",
    "recovery.shop_sqlite_open_ms",
    "recovery.shop_wal_mib",
    "memory.adapter_peak_mib",
    "memory.emulator_peak_mib",
    "registers.paced_n1_rate",
    "registers.paced_n2_rate",
    "registers.paced_n4_rate",
    "registers.paced_n8_rate",
    "registers.paced_n2_scaling",
    "registers.paced_n8_scaling",
    "registers.unpaced_n1_rate",
    "registers.unpaced_n8_rate",
    "registers.unpaced_n8_scaling",
    "registers.unpaced_n8_machine_busy",
    "registers.unpaced_n8_adapter_cpu_ms",
    "registers.unpaced_n8_emulators_cpu_ms",
    "registers.unpaced_n8_client_cpu_ms",
    "registers.unpaced_n8_other_cpu_ms",
    "registers.unpaced_n8_adapter_cpu_bound_rate",
    "registers.unpaced_n8_register_sale_ms",
    "registers.unpaced_n8_kkt_exchange_ms",
    "registers.unpaced_n8_journal_commits",
    "registers.unpaced_n8_writer_busy",
    "runner.uat08_uat10c_s",
    "runner.uat08_uat10c_target_s",
    "runner.ci_set_s",
    "runner.ci_set_target_s",
    "memory.runner_peak_mib",
];

/// A smoke run takes well under a minute; this only stops a hung one.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(600);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_smoke_run_prints_and_records_every_figure() {
    // The stack figures drive the real programs, built beside `ci` in the same profile.
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "adapter",
            "-p",
            "ofd-mock",
            "-p",
            "kkt-emulator",
            "-p",
            "uat",
            "--bins",
        ])
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(build.success(), "building the programs the bench drives");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ci"))
        .args(["bench", "--smoke"])
        .current_dir(workspace())
        .output()
        .expect("ci bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ci bench --smoke failed:\n{stdout}\n{stderr}"
    );
    assert!(started.elapsed() < SMOKE_TIMEOUT);
    // Each figure line: `name=VALUE unit [min=.. max=.. n=3]`, optionally ratios.
    let mut printed = BTreeSet::new();
    for line in stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains("="))
    {
        let Some((name, rest)) = line.split_once('=') else {
            continue;
        };
        if name.contains(' ') {
            continue;
        }
        assert!(rest.contains(" n=3]"), "three repetitions: {line}");
        let value: f64 = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a number after `=`: {line}"));
        assert!(value.is_finite(), "{line}");
        assert!(printed.insert(name.to_owned()), "printed twice: {name}");
    }
    for name in FIGURES {
        assert!(printed.contains(*name), "{name} not printed:\n{stdout}");
    }
    // The run's JSON holds the same figures, each with its three runs.
    let file = stdout
        .lines()
        .find_map(|l| l.strip_prefix("figures written to "))
        .expect("the run names its JSON file");
    let json: Value =
        serde_json::from_slice(&std::fs::read(workspace().join(file.trim())).expect("JSON file"))
            .expect("JSON parses");
    assert_eq!(json["smoke"], true);
    let recorded: BTreeSet<String> = json["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .map(|f| {
            assert_eq!(f["runs"].as_array().map(Vec::len), Some(3), "{f}");
            f["name"].as_str().expect("name").to_owned()
        })
        .collect();
    assert_eq!(recorded, printed);
}

#[test]
fn a_mistyped_argument_is_one_line_on_stderr_even_with_backtraces_on() {
    let out = Command::new(env!("CARGO_BIN_EXE_ci"))
        .args(["bench", "--smok"])
        .env("RUST_BACKTRACE", "1")
        .current_dir(workspace())
        .output()
        .expect("ci runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing measured");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(
        stderr.starts_with("ci: ci bench: unknown argument `--smok`"),
        "{stderr}"
    );
}
