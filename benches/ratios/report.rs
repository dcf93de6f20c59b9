//! Summaries of repeated rounds and the one-line result that each benchmark prints.

use std::fmt;

/// The median and quartiles of a set of samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
}

impl Summary {
    /// Summarizes `samples`, interpolating quartiles linearly between the sorted samples.
    ///
    /// # Panics
    ///
    /// Panics when `samples` is empty.
    pub fn of(samples: &[f64]) -> Summary {
        assert!(!samples.is_empty(), "a summary needs at least one sample");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Summary {
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
        }
    }

    pub fn interquartile_range(&self) -> f64 {
        self.q3 - self.q1
    }
}

fn quantile(sorted: &[f64], fraction: f64) -> f64 {
    let position = fraction * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

/// A quantity with its unit, printed with a unit prefix that suits its size.
#[derive(Debug, Clone, Copy)]
pub enum Quantity {
    Nanoseconds(f64),
    Bytes(f64),
    PerMinute(f64),
    Text(&'static str),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quantity::Nanoseconds(ns) if ns >= 1e9 => write!(f, "{:.3} s", ns / 1e9),
            Quantity::Nanoseconds(ns) if ns >= 1e6 => write!(f, "{:.2} ms", ns / 1e6),
            Quantity::Nanoseconds(ns) if ns >= 1e3 => write!(f, "{:.2} us", ns / 1e3),
            Quantity::Nanoseconds(ns) => write!(f, "{ns:.1} ns"),
            Quantity::Bytes(bytes) if bytes.abs() >= 1024.0 * 1024.0 => {
                write!(f, "{:.2} MiB", bytes / (1024.0 * 1024.0))
            }
            Quantity::Bytes(bytes) => write!(f, "{bytes:.0} B"),
            Quantity::PerMinute(rate) => write!(f, "{rate:.1}/min"),
            Quantity::Text(text) => f.write_str(text),
        }
    }
}

/// Whether a benchmark met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Above the target, but by less than the spread measured in the same run.
    WithinNoise,
    Fail,
}

impl Verdict {
    /// Compares `value` with `target`, allowing `spread` of measured noise above it.
    pub fn judge(value: f64, target: f64, spread: f64) -> Verdict {
        if value <= target {
            Verdict::Pass
        } else if value <= target + spread {
            Verdict::WithinNoise
        } else {
            Verdict::Fail
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::WithinNoise => "PASS (within noise)",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One printed result: the library beside its baseline, and how the compared figure fared.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub library: Quantity,
    pub baseline: Quantity,
    /// The figure compared with the target: a ratio, or a quantity for the benchmarks
    /// without a baseline.
    pub compared: String,
    pub spread: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Line {
    /// Builds the line for a library-to-baseline ratio, judged on the median ratio of the rounds.
    pub fn ratio(
        name: impl Into<String>,
        library: Quantity,
        baseline: Quantity,
        ratios: &Summary,
        target: f64,
    ) -> Line {
        let spread = ratios.interquartile_range();
        Line {
            name: name.into(),
            library,
            baseline,
            compared: format!("{:.3}", ratios.median),
            spread: format!("{spread:.3}"),
            target: format!("<= {target:.2}x"),
            verdict: Verdict::judge(ratios.median, target, spread),
        }
    }

    pub fn header() -> String {
        format!(
            "{:<22} {:>14} {:>16} {:>9} {:>9} {:>14}  {}",
            "benchmark", "library", "baseline", "ratio", "spread", "target", "verdict"
        )
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<22} {:>14} {:>16} {:>9} {:>9} {:>14}  {}",
            self.name,
            self.library.to_string(),
            self.baseline.to_string(),
            self.compared,
            self.spread,
            self.target,
            self.verdict
        )
    }
}
