//! Figures: latency statistics, and the report that prints each figure as it is
//! measured and, at the end, every figure again as a machine-readable line:
//!
//! ```text
//! METRIC <backend>.<name> <value> <unit>
//! TARGET <backend>.<name> <value> <op> <goal> PASS|MISS
//! ```
//!
//! `grep '^METRIC\|^TARGET'` gives the whole result of a run.

use std::time::Duration;

use crate::cpu::CpuUse;

/// Latency percentiles of a set of requests, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From per-request latencies in microseconds (sorted in place).
    pub fn of(micros: &mut [u32]) -> Self {
        micros.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let at = |q: f64| {
            if micros.is_empty() {
                0.0
            } else {
                let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
                ms(micros[i])
            }
        };
        let sum: u64 = micros.iter().map(|&u| u64::from(u)).sum();
        Self {
            count: micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: micros.last().copied().map(ms).unwrap_or(0.0),
            mean: if micros.is_empty() {
                0.0
            } else {
                sum as f64 / micros.len() as f64 / 1000.0
            },
        }
    }
}

struct Metric {
    name: String,
    value: f64,
    unit: &'static str,
}

struct Target {
    name: String,
    value: f64,
    at_least: bool,
    goal: f64,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_least {
            self.value >= self.goal
        } else {
            self.value <= self.goal
        }
    }
}

/// Everything one run measured, for one backend.
pub struct Report {
    backend: &'static str,
    metrics: Vec<Metric>,
    targets: Vec<Target>,
}

impl Report {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            metrics: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Records a figure and prints it right away.
    pub fn metric(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        let name = name.into();
        println!("  {name:<44} {} {unit}", fmt_value(value));
        self.metrics.push(Metric { name, value, unit });
    }

    pub fn seconds(&mut self, name: impl Into<String>, took: Duration) {
        self.metric(name, took.as_secs_f64(), "s");
    }

    /// Records `<prefix>.p50_ms`, `.p99_ms` and the others of a latency set.
    pub fn latency(&mut self, prefix: &str, l: &Latency) {
        self.metric(format!("{prefix}.requests"), l.count as f64, "");
        self.metric(format!("{prefix}.p50_ms"), l.p50, "ms");
        self.metric(format!("{prefix}.p90_ms"), l.p90, "ms");
        self.metric(format!("{prefix}.p99_ms"), l.p99, "ms");
        self.metric(format!("{prefix}.max_ms"), l.max, "ms");
        self.metric(format!("{prefix}.mean_ms"), l.mean, "ms");
    }

    /// Records where the CPU went during a run of `requests` requests. PostgreSQL's
    /// processes count as other work when the backend is SQLite.
    pub fn cpu(&mut self, prefix: &str, cpu: &CpuUse, requests: u64) {
        let on_postgres = self.backend == "postgres";
        let other = cpu.other + if on_postgres { 0.0 } else { cpu.postgres };
        self.metric(format!("{prefix}.cpu.server_cores"), cpu.server, "cores");
        if on_postgres {
            self.metric(
                format!("{prefix}.cpu.postgres_cores"),
                cpu.postgres,
                "cores",
            );
        }
        self.metric(format!("{prefix}.cpu.bench_cores"), cpu.bench, "cores");
        self.metric(format!("{prefix}.cpu.other_cores"), other, "cores");
        self.metric(
            format!("{prefix}.cpu.server_us_per_request"),
            cpu.server_us_per(requests),
            "us",
        );
        if on_postgres {
            self.metric(
                format!("{prefix}.cpu.postgres_us_per_request"),
                cpu.postgres_us_per(requests),
                "us",
            );
        }
    }

    /// A target of the issue: `value >= goal` (`at_least`) or `value <= goal`.
    pub fn target(&mut self, name: impl Into<String>, value: f64, at_least: bool, goal: f64) {
        self.targets.push(Target {
            name: name.into(),
            value,
            at_least,
            goal,
        });
    }

    /// Prints every figure again, one machine-readable line each.
    pub fn print_summary(&self) {
        println!();
        println!("=== makima-bench results ({}) ===", self.backend);
        for m in &self.metrics {
            println!(
                "METRIC {}.{} {} {}",
                self.backend,
                m.name,
                fmt_value(m.value),
                m.unit
            );
        }
        for t in &self.targets {
            println!(
                "TARGET {}.{} {} {} {} {}",
                self.backend,
                t.name,
                fmt_value(t.value),
                if t.at_least { ">=" } else { "<=" },
                fmt_value(t.goal),
                if t.met() { "PASS" } else { "MISS" }
            );
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(clippy::float_cmp, reason = "whole milliseconds, exact in an f64")]
    fn percentiles_are_nearest_rank() {
        let mut us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let l = Latency::of(&mut us);
        assert_eq!(l.p50, 50.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert_eq!(Latency::of(&mut []).p50, 0.0);
    }
}
