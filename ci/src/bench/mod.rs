//! `ci bench`: the adapter measured against this machine's own limits, published as ratios
//! (BENCHMARKS.md has the method and the latest figures).
//!
//! `cargo run --release -p ci -- bench [--smoke] [--compare OLD.json] [--only PREFIX]`
//!
//! Each figure is measured at least [`REPS`] times and printed as one line (`figure.rs`); the run's
//! figures go to `target/bench/<UTC timestamp>.json`, and `--compare` prints each figure's ratio
//! to an earlier run's. `--smoke` runs every figure with tiny counts, to show in CI that each one
//! runs and prints; its values mean nothing.
//!
//! The ceilings (`ceilings.rs`) run first; then the adapter's own figures on real stacks of the
//! built binaries beside `ci` (`stack.rs`: sales, drain, recovery, memory); then the scenario
//! runner's wall times and peak memory (`runner.rs`).
//!
//! Boundary: loopback only; every loop is bounded by a count, and every wait by a timeout; every
//! process started is killed by its guard, whatever happens.

mod bare;
mod ceilings;
mod drain;
pub mod figure;
mod load;
mod procs;
mod registers;
mod runner;
mod sales;
mod split;
mod stack;

use std::path::{Path, PathBuf};

use anyhow::Context;

use figure::{Figure, Machine, Ratio, Report};

/// Repetitions of each figure.
pub const REPS: usize = 3;

/// How a run measures: full or smoke, and where its files go.
pub struct Plan {
    pub smoke: bool,
    /// A scratch directory on the disk the journals would use.
    pub dir: PathBuf,
}

impl Plan {
    /// `full` in a real run, `smoke` in a smoke run.
    pub fn count(&self, full: usize, smoke: usize) -> usize {
        if self.smoke { smoke } else { full }
    }

    /// Measures `f` [`REPS`] times (`f` gets the repetition's index) into one figure, printing
    /// progress to stderr.
    pub fn repeat(
        &self,
        name: &str,
        unit: &str,
        mut f: impl FnMut(usize) -> anyhow::Result<f64>,
    ) -> anyhow::Result<Figure> {
        let mut runs = Vec::with_capacity(REPS);
        for run in 0..REPS {
            let v = f(run).with_context(|| format!("figure {name}, run {}", run + 1))?;
            eprintln!("  {name} run {}: {}", run + 1, figure::number(v));
            runs.push(v);
        }
        Ok(Figure::new(name, unit, runs))
    }
}

/// Options of `ci bench`.
#[derive(Debug, Default)]
struct Options {
    smoke: bool,
    compare: Option<PathBuf>,
    only: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => o.smoke = true,
            "--compare" => {
                o.compare = Some(PathBuf::from(
                    it.next()
                        .context("--compare needs an earlier run's JSON file")?,
                ));
            }
            "--only" => o.only = Some(it.next().context("--only needs a name prefix")?.clone()),
            other => anyhow::bail!(
                "ci bench: unknown argument `{other}`; usage: ci bench [--smoke] [--compare OLD.json] [--only PREFIX]"
            ),
        }
    }
    Ok(o)
}

/// Figure pairs whose ratio is printed: `(figure, the figure it is measured against)`.
const RATIOS: &[(&str, &str)] = &[
    ("ceiling.sqlite_commit_rows_1", "ceiling.fdatasync_append"),
    (
        "ceiling.sqlite_commit_rows_128",
        "ceiling.sqlite_commit_rows_1",
    ),
    ("reference.sales_c1", "ceiling.sqlite_commit_rows_1"),
    ("reference.sales_c64", "ceiling.sqlite_commit_rows_128"),
    ("sale.unpaced_c1_rate", "reference.sales_c1"),
    ("sale.unpaced_c8_rate", "reference.sales_c8"),
    ("sale.unpaced_c64_rate", "reference.sales_c64"),
    ("sale.paced_c1_rate", "sale.wire_limit_115200"),
    ("sale.paced_c1_rate", "sale.paced_ceiling_rate"),
    ("sale.paced_ceiling_rate", "sale.wire_limit_115200"),
    ("drain.unpaced_rate", "drain.design_ceiling"),
    ("drain.unpaced_rate", "drain.wire_limit_115200"),
    ("drain.unpaced_rate", "ceiling.ofd_bare_client"),
    ("drain.unpaced_rate", "drain.serial_ceiling"),
    ("sale.adapter_ms", "sale.adapter_floor_ms"),
    ("drain.adapter_ms", "drain.adapter_floor_ms"),
    ("drain.paced_rate", "drain.design_ceiling"),
    ("drain.paced_rate", "drain.wire_limit_115200"),
    ("drain.paced_rate", "ceiling.ofd_bare_client"),
    ("drain.paced_rate", "drain.paced_ceiling_rate"),
    ("drain.paced_ceiling_rate", "drain.wire_limit_115200"),
    ("recovery.journal_open_ms", "recovery.sqlite_open_ms"),
    (
        "recovery.shop_start_to_ready_ms",
        "recovery.start_to_ready_ms",
    ),
    ("registers.unpaced_n8_rate", "reference.sales_c64"),
    (
        "registers.unpaced_n8_adapter_cpu_bound_rate",
        "reference.sales_c64",
    ),
    ("runner.uat08_uat10c_s", "runner.uat08_uat10c_target_s"),
    ("runner.ci_set_s", "runner.ci_set_target_s"),
];

/// Runs `ci bench` with its arguments (after `bench`).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let bench_dir = workspace_target().join("bench");
    let started = jiff::Timestamp::now();
    let scratch = bench_dir.join(format!("scratch-{}", started.as_second()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("create {}", scratch.display()))?;
    let plan = Plan {
        smoke: options.smoke,
        dir: scratch.clone(),
    };
    let machine = Machine::this();
    println!(
        "bench{} on {} CPUs ({}), kernel {}, {} MiB",
        if plan.smoke {
            " --smoke (values mean nothing)"
        } else {
            ""
        },
        machine.cpus,
        machine.cpu_model,
        machine.kernel,
        machine.memory_kib / 1024
    );
    let mut figures = Vec::new();
    let wanted = |group: &str| {
        options
            .only
            .as_deref()
            .is_none_or(|p| group.starts_with(p) || p.starts_with(group))
    };
    let result = if wanted("ceiling") || wanted("reference") {
        ceilings::all(&plan, &mut figures)
    } else {
        Ok(())
    }
    .and_then(|()| stack::all(&plan, &wanted, &mut figures))
    .and_then(|()| registers::all(&plan, &wanted, &mut figures))
    .and_then(|()| runner::all(&plan, &wanted, &mut figures));
    match &result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&scratch);
        }
        // The processes' logs are there.
        Err(_) => eprintln!("bench: scratch directory kept: {}", relative(&scratch)),
    }
    result?;
    derive_floors(&mut figures);
    derive_paced_ceiling(&mut figures);
    // Ratios first: a figure kept by `--only` may be measured against one it filters out.
    apply_ratios(&mut figures);
    if let Some(prefix) = &options.only {
        figures.retain(|f| f.name.starts_with(prefix.as_str()));
    }
    for f in &figures {
        println!("{}", f.line());
        if let Some(note) = &f.note {
            println!("    {note}");
        }
    }
    let report = Report {
        started: started.to_string(),
        smoke: plan.smoke,
        machine,
        figures,
    };
    let file = bench_dir.join(format!("{}.json", started.strftime("%Y%m%dT%H%M%SZ")));
    std::fs::write(&file, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("write {}", file.display()))?;
    println!("figures written to {}", relative(&file));
    if let Some(old) = &options.compare {
        let old: Report = serde_json::from_slice(
            &std::fs::read(old).with_context(|| format!("read {}", old.display()))?,
        )
        .with_context(|| format!("{} is not a bench run's JSON", old.display()))?;
        println!("compared with the run of {}:", old.started);
        for line in report.compare(&old) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// For the sale and the drained document: the part of `{unit}.adapter_ms` the machine alone
/// already costs, `{unit}.adapter_floor_ms` (each journal commit at the rate of
/// `ceiling.sqlite_commit_rows_1`, each KKT command as two `ceiling.pty_round_trip`s: ENQ -> NAK,
/// frame -> ACK and answer), and the rest, `{unit}.adapter_beyond_floor_ms`: HTTP, JSON, SQL
/// and the adapter's own hand-offs. Derived repetition by repetition (the i-th of each figure),
/// so each keeps its spread; absent when a figure it needs was not measured (`--only`).
fn derive_floors(figures: &mut Vec<Figure>) {
    for unit in ["sale", "drain"] {
        let Some(([commit_rate, pty_us, adapter, commits, commands], n)) = aligned_runs(
            figures,
            [
                "ceiling.sqlite_commit_rows_1",
                "ceiling.pty_round_trip",
                &format!("{unit}.adapter_ms"),
                &format!("{unit}.journal_commits"),
                &format!("{unit}.kkt_round_trips"),
            ],
        ) else {
            continue;
        };
        let floor: Vec<f64> = (0..n)
            .map(|i| {
                commits[i] * 1e3 / commit_rate[i].max(f64::MIN_POSITIVE)
                    + commands[i] * 2.0 * pty_us[i] / 1e3
            })
            .collect();
        let beyond = (0..n).map(|i| adapter[i] - floor[i]).collect();
        let mut f = Figure::new(&format!("{unit}.adapter_floor_ms"), "ms", floor);
        f.note = Some(format!(
            "derived: {unit}.journal_commits / ceiling.sqlite_commit_rows_1 + {unit}.kkt_round_trips x 2 x ceiling.pty_round_trip: what the journal's fsyncs and the pty cost at best, inside {unit}.adapter_ms"
        ));
        figures.push(f);
        let mut f = Figure::new(&format!("{unit}.adapter_beyond_floor_ms"), "ms", beyond);
        f.note = Some(format!(
            "derived: {unit}.adapter_ms minus {unit}.adapter_floor_ms: HTTP, JSON, SQL and the adapter's hand-offs between its tasks and threads"
        ));
        figures.push(f);
    }
}

/// `sale.paced_ceiling_rate` and `drain.paced_ceiling_rate`: what a host costing nothing of its
/// own could reach paced, with the unit's own bytes on the line (`*.wire_limit_115200`), its
/// device time (`*.paced_device_ms`) and, for each of its commands, the turnaround a bare host
/// measured (`*.paced_turnaround_us`). Derived repetition by repetition; absent when a figure it
/// needs was not measured.
fn derive_paced_ceiling(figures: &mut Vec<Figure>) {
    for unit in ["sale", "drain"] {
        let names = [
            "wire_limit_115200",
            "paced_device_ms",
            "kkt_round_trips",
            "paced_turnaround_us",
        ]
        .map(|name| format!("{unit}.{name}"));
        let Some(([limit, device, commands, turnaround], n)) =
            aligned_runs(figures, names.each_ref().map(String::as_str))
        else {
            continue;
        };
        let ceiling = (0..n)
            .map(|i| {
                let line_ms = 1e3 / limit[i].max(f64::MIN_POSITIVE);
                1e3 / (line_ms + device[i] + commands[i] * turnaround[i] / 1e3)
            })
            .collect();
        let mut f = Figure::new(&format!("{unit}.paced_ceiling_rate"), "/s", ceiling);
        f.note = Some(format!(
            "derived: 1 / (the {unit}'s line time at 115200 baud + {unit}.paced_device_ms + {unit}.kkt_round_trips x {unit}.paced_turnaround_us): a host with no cost of its own"
        ));
        figures.push(f);
    }
}

/// The runs of each named figure and the count of repetitions they all have, for a figure derived
/// repetition by repetition (the i-th of each); `None` when one of them was not measured (`--only`)
/// or has no runs.
fn aligned_runs<const N: usize>(
    figures: &[Figure],
    names: [&str; N],
) -> Option<([Vec<f64>; N], usize)> {
    let mut runs = [const { Vec::new() }; N];
    for (slot, name) in runs.iter_mut().zip(names) {
        *slot = figures.iter().find(|f| f.name == name)?.runs.clone();
    }
    let n = runs.iter().map(Vec::len).min().unwrap_or(0);
    (n > 0).then_some((runs, n))
}

fn apply_ratios(figures: &mut [Figure]) {
    for (name, vs) in RATIOS {
        let Some(other) = figures.iter().find(|f| f.name == *vs).map(|f| f.median) else {
            continue;
        };
        if let Some(f) = figures.iter_mut().find(|f| f.name == *name)
            && other != 0.0
        {
            let value = f.median / other;
            f.ratios.push(Ratio {
                value,
                vs: (*vs).to_owned(),
            });
        }
    }
}

/// The workspace's `target` directory (`CARGO_TARGET_DIR` when set).
fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A path as the user would type it from the workspace root, where it lies below it.
fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (Ok(root), Ok(p)) = (root.canonicalize(), path.canonicalize()) else {
        return path.display().to_string();
    };
    p.strip_prefix(&root)
        .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_of_a_sale_is_derived_repetition_by_repetition() {
        let mut figures = vec![
            Figure::new(
                "ceiling.sqlite_commit_rows_1",
                "rows/s",
                vec![4000.0, 5000.0, 2000.0],
            ),
            Figure::new("ceiling.pty_round_trip", "us", vec![50.0, 100.0, 50.0]),
            Figure::new("sale.adapter_ms", "ms", vec![2.0, 3.0, 2.5]),
            Figure::new("sale.journal_commits", "commits", vec![3.0, 3.0, 3.0]),
            Figure::new("sale.kkt_round_trips", "commands", vec![6.0, 6.0, 6.0]),
        ];
        derive_floors(&mut figures);
        let runs = |name: &str| {
            figures
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} derived"))
                .runs
                .iter()
                .map(|v| (v * 1e6).round() / 1e6)
                .collect::<Vec<_>>()
        };
        // 3 commits at 4,000/s = 0.75 ms, 6 commands x 2 x 50 us = 0.6 ms.
        assert_eq!(runs("sale.adapter_floor_ms"), vec![1.35, 1.8, 2.1]);
        assert_eq!(runs("sale.adapter_beyond_floor_ms"), vec![0.65, 1.2, 0.4]);
        // The drain's figures were not measured: nothing is made up for it.
        assert!(!figures.iter().any(|f| f.name.starts_with("drain.")));
    }

    #[test]
    fn the_paced_ceiling_adds_each_commands_turnaround_to_the_line_and_the_device() {
        let mut figures = vec![
            Figure::new("sale.wire_limit_115200", "/s", vec![20.0, 25.0]),
            Figure::new("sale.paced_device_ms", "ms", vec![2.0, 3.0]),
            Figure::new("sale.kkt_round_trips", "commands", vec![6.0, 6.0]),
            Figure::new("sale.paced_turnaround_us", "us", vec![500.0, 1000.0]),
        ];
        derive_paced_ceiling(&mut figures);
        let ceiling = figures
            .iter()
            .find(|f| f.name == "sale.paced_ceiling_rate")
            .expect("derived");
        // 50 ms of line + 2 ms of device + 6 x 0.5 ms = 55 ms; 40 + 3 + 6 = 49 ms.
        let rounded: Vec<f64> = ceiling
            .runs
            .iter()
            .map(|v| (v * 1e6).round() / 1e6)
            .collect();
        assert_eq!(rounded, vec![18.181818, 20.408163]);
        assert!(
            !figures.iter().any(|f| f.name.starts_with("drain.")),
            "the drain's figures were not measured: nothing is made up for it"
        );
        // The drain's, from its own figures: 50 ms of line + 1 ms of device + 5 x 0.2 ms = 52 ms.
        let mut drain = vec![
            Figure::new("drain.wire_limit_115200", "/s", vec![20.0]),
            Figure::new("drain.paced_device_ms", "ms", vec![1.0]),
            Figure::new("drain.kkt_round_trips", "commands", vec![5.0]),
            Figure::new("drain.paced_turnaround_us", "us", vec![200.0]),
        ];
        derive_paced_ceiling(&mut drain);
        let ceiling = drain
            .iter()
            .find(|f| f.name == "drain.paced_ceiling_rate")
            .expect("derived");
        assert!(
            (ceiling.runs[0] - 1e3 / 52.0).abs() < 1e-9,
            "{:?}",
            ceiling.runs
        );
        // Without the bare host's figure nothing is derived.
        let mut partial = vec![Figure::new("sale.wire_limit_115200", "/s", vec![20.0])];
        derive_paced_ceiling(&mut partial);
        assert_eq!(partial.len(), 1);
    }

    #[test]
    fn options_are_parsed_and_unknown_ones_refused() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(&args(&[
            "--smoke",
            "--compare",
            "old.json",
            "--only",
            "ceiling",
        ]))
        .unwrap();
        assert!(o.smoke);
        assert_eq!(o.compare, Some(PathBuf::from("old.json")));
        assert_eq!(o.only.as_deref(), Some("ceiling"));
        let e = parse(&args(&["--fast"])).unwrap_err().to_string();
        assert!(e.contains("unknown argument `--fast`"), "{e}");
        assert!(parse(&args(&["--compare"])).is_err());
    }

    #[test]
    fn ratios_are_taken_between_figures_of_the_same_run() {
        let mut figures = vec![
            Figure::new("ceiling.fdatasync_append", "/s", vec![1000.0]),
            Figure::new("ceiling.sqlite_commit_rows_1", "rows/s", vec![250.0]),
        ];
        apply_ratios(&mut figures);
        let r = &figures[1].ratios[0];
        assert_eq!((r.value, r.vs.as_str()), (0.25, "ceiling.fdatasync_append"));
        assert!(figures[0].ratios.is_empty());
    }
}
