//! The per-unit split that sales (`sales.rs`) and drain (`drain.rs`) both report: journal
//! commits, KKT commands, bytes each way, device and line time per sale or drained document, from
//! the counter deltas over a measured run.

use super::figure::Samples;
use super::load::wire_limit;
use super::procs::{BAUD, EmuCounters};

/// Where the time and traffic of one unit (a sale, a drained document) go, from the counter deltas
/// over a measured run of `units` units.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub commits: f64,
    pub commands: f64,
    pub to_kkt: f64,
    pub from_kkt: f64,
    pub device_ms: f64,
    pub wire_ms: f64,
}

impl Split {
    /// `emu` counts from its reset at the run's start; `commits` are the journal commits of the run.
    pub fn new(emu: &EmuCounters, commits: f64, units: f64) -> Split {
        Split {
            commits: commits / units,
            commands: emu.commands as f64 / units,
            to_kkt: emu.bytes_from_host as f64 / units,
            from_kkt: emu.bytes_to_host as f64 / units,
            device_ms: emu.command_time_us as f64 / 1e3 / units,
            wire_ms: emu.wire_time_us as f64 / 1e3 / units,
        }
    }
}

/// Pushes the split sales and drain both report, each figure named `{prefix}.NAME`: journal
/// commits, KKT commands, bytes each way and device time per unit; then the caller's `derived`
/// figures as `(NAME, unit, value)`; then the units per second a 115200-baud line carries.
pub fn push_split(
    out: &mut Samples,
    prefix: &str,
    split: &Split,
    derived: &[(&str, &'static str, f64)],
) {
    let shared = [
        ("journal_commits", "commits", split.commits),
        ("kkt_round_trips", "commands", split.commands),
        ("bytes_to_kkt", "B", split.to_kkt),
        ("bytes_from_kkt", "B", split.from_kkt),
        ("device_ms", "ms", split.device_ms),
    ];
    let limit = [(
        "wire_limit_115200",
        "/s",
        wire_limit(BAUD, split.to_kkt + split.from_kkt),
    )];
    for (name, unit, value) in shared.iter().chain(derived).chain(&limit) {
        out.push(&format!("{prefix}.{name}"), unit, *value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_per_unit_and_named_under_its_prefix() {
        let emu = EmuCounters {
            bytes_from_host: 400,
            bytes_to_host: 600,
            commands: 30,
            command_time_us: 50_000,
            wire_time_us: 20_000,
        };
        let split = Split::new(&emu, 20.0, 10.0);
        assert_eq!(split.commands, 3.0);
        assert_eq!(split.device_ms, 5.0);
        assert_eq!(split.wire_ms, 2.0);
        let mut s = Samples::default();
        push_split(&mut s, "drain", &split, &[("ofd_ms", "ms", 1.0)]);
        let names: Vec<String> = s.into_figures(&[]).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "drain.journal_commits",
                "drain.kkt_round_trips",
                "drain.bytes_to_kkt",
                "drain.bytes_from_kkt",
                "drain.device_ms",
                "drain.ofd_ms",
                "drain.wire_limit_115200",
            ]
        );
    }
}
