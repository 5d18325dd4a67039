//! Figures: a named measurement repeated a few times, printed as one line
//! `name=MEDIAN unit [min=.. max=.. n=..] (ratio=R vs OTHER)...` and kept for the run's JSON file.
//!
//! Invariant: a ratio is only ever taken between two figures of the same run, so it travels
//! between machines where the absolute values do not.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One figure of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    /// Every repetition's value, in the order measured.
    pub runs: Vec<f64>,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// `median / other figure's median`, with the other figure's name; a figure bounded by several
    /// others has one ratio for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// What bounds this figure, in words (printed after the line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A figure's median against another's, measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    pub value: f64,
    pub vs: String,
}

impl Figure {
    /// A figure from its repetitions; `runs` must not be empty.
    pub fn new(name: &str, unit: &str, runs: Vec<f64>) -> Figure {
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        let median = if sorted.len() % 2 == 1 {
            sorted[sorted.len() / 2]
        } else {
            (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
        };
        Figure {
            name: name.to_owned(),
            unit: unit.to_owned(),
            runs,
            min,
            median,
            max,
            ratios: Vec::new(),
            note: None,
        }
    }

    /// The printed line.
    pub fn line(&self) -> String {
        let mut out = format!(
            "{}={} {} [min={} max={} n={}]",
            self.name,
            number(self.median),
            self.unit,
            number(self.min),
            number(self.max),
            self.runs.len()
        );
        for r in &self.ratios {
            let _ = write!(out, " (ratio={} vs {})", ratio(r.value), r.vs);
        }
        out
    }
}

/// A value with the digits that matter: integers above 100, three significant digits below.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".to_owned()
    } else {
        let digits = (-a.log10()).ceil() as usize + 2;
        format!("{v:.digits$}")
    }
}

fn ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// Every figure of a run, with what it ran on.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Report {
    /// UTC start of the run, RFC 3339.
    pub started: String,
    pub smoke: bool,
    pub machine: Machine,
    pub figures: Vec<Figure>,
}

/// The machine a run came from, as far as it tells.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_kib: u64,
}

impl Machine {
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map_or_else(String::new, |(_, m)| m.trim().to_owned()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            memory_kib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

impl Report {
    pub fn find(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Lines comparing this run with `old`: each figure both have, `new/old` of the medians.
    pub fn compare(&self, old: &Report) -> Vec<String> {
        let mut lines = Vec::new();
        for f in &self.figures {
            match old.find(&f.name) {
                Some(o) if o.median != 0.0 => lines.push(format!(
                    "{}: {} -> {} {} (ratio={} vs {})",
                    f.name,
                    number(o.median),
                    number(f.median),
                    f.unit,
                    ratio(f.median / o.median),
                    old.started
                )),
                Some(_) => lines.push(format!("{}: earlier run measured 0", f.name)),
                None => lines.push(format!("{}: not in the earlier run", f.name)),
            }
        }
        for o in &old.figures {
            if self.find(&o.name).is_none() {
                lines.push(format!("{}: only in the earlier run", o.name));
            }
        }
        lines
    }
}

/// Values of every repetition, by figure name, in the order first measured.
#[derive(Debug, Default)]
pub struct Samples {
    figures: Vec<(String, &'static str, Vec<f64>)>,
}

impl Samples {
    pub fn push(&mut self, name: &str, unit: &'static str, value: f64) {
        match self.figures.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, values)) => values.push(value),
            None => self.figures.push((name.to_owned(), unit, vec![value])),
        }
    }

    /// One figure a name, with its note from `notes` (`(figure, note)` pairs).
    pub fn into_figures(self, notes: &[(&str, &str)]) -> Vec<Figure> {
        self.figures
            .into_iter()
            .map(|(name, unit, runs)| {
                let mut f = Figure::new(&name, unit, runs);
                f.note = notes
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, note)| (*note).to_owned());
                f
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_prints_its_median_spread_and_ratio() {
        let mut f = Figure::new("fsync.append", "/s", vec![6400.0, 6600.0, 6512.0]);
        assert_eq!((f.min, f.median, f.max), (6400.0, 6512.0, 6600.0));
        f.ratios = vec![
            Ratio {
                value: 0.5,
                vs: "x".into(),
            },
            Ratio {
                value: 20.0,
                vs: "y".into(),
            },
        ];
        assert_eq!(
            f.line(),
            "fsync.append=6512 /s [min=6400 max=6600 n=3] (ratio=0.500 vs x) (ratio=20.0 vs y)"
        );
        let even = Figure::new("e", "ms", vec![1.0, 4.0, 2.0, 3.0]);
        assert_eq!(even.median, 2.5);
    }

    #[test]
    fn numbers_keep_three_significant_digits_below_a_hundred() {
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(5.234), "5.23");
        assert_eq!(number(0.01234), "0.0123");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn a_comparison_names_figures_on_one_side_only() {
        let old = Report {
            started: "then".into(),
            figures: vec![
                Figure::new("a", "/s", vec![100.0]),
                Figure::new("gone", "/s", vec![1.0]),
            ],
            ..Report::default()
        };
        let new = Report {
            started: "now".into(),
            figures: vec![
                Figure::new("a", "/s", vec![150.0]),
                Figure::new("b", "/s", vec![1.0]),
            ],
            ..Report::default()
        };
        let lines = new.compare(&old);
        assert_eq!(lines[0], "a: 100 -> 150 /s (ratio=1.500 vs then)");
        assert!(lines.contains(&"b: not in the earlier run".to_owned()));
        assert!(lines.contains(&"gone: only in the earlier run".to_owned()));
    }
}
