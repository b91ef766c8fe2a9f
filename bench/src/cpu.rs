//! Where the CPU went during a run, from `/proc`: the server process, PostgreSQL's
//! processes, the bench itself (the load generator shares the two cores), and
//! everything else (other work on the machine: if that is large, the run was noisy).

use std::time::Instant;

/// Kernel clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Cumulative CPU ticks at one moment.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    at: Instant,
    server: u64,
    postgres: u64,
    bench: u64,
    busy: u64,
}

/// Average cores in use between two samples, and the server's CPU per request.
#[derive(Clone, Copy, Debug)]
pub struct CpuUse {
    pub server: f64,
    pub postgres: f64,
    pub bench: f64,
    pub other: f64,
    server_ticks: u64,
    postgres_ticks: u64,
}

impl CpuSample {
    pub fn take(server_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            server: process_ticks(&server_pid.to_string()).unwrap_or(0),
            postgres: postgres_ticks(),
            bench: process_ticks("self").unwrap_or(0),
            busy: machine_busy_ticks().unwrap_or(0),
        }
    }

    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs;
        let server = self.server.saturating_sub(earlier.server);
        let postgres = self.postgres.saturating_sub(earlier.postgres);
        let bench = self.bench.saturating_sub(earlier.bench);
        let busy = self.busy.saturating_sub(earlier.busy);
        CpuUse {
            server: cores(server),
            postgres: cores(postgres),
            bench: cores(bench),
            other: cores(busy.saturating_sub(server + postgres + bench)),
            server_ticks: server,
            postgres_ticks: postgres,
        }
    }
}

impl CpuUse {
    /// Server CPU per request, in microseconds.
    pub fn server_us_per(&self, requests: u64) -> f64 {
        self.server_ticks as f64 / TICKS_PER_SEC * 1e6 / requests.max(1) as f64
    }

    /// PostgreSQL CPU per request, in microseconds.
    pub fn postgres_us_per(&self, requests: u64) -> f64 {
        self.postgres_ticks as f64 / TICKS_PER_SEC * 1e6 / requests.max(1) as f64
    }
}

/// utime + stime of `/proc/<pid>/stat` (all threads).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file; 3 is the first after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The CPU of every process named `postgres` (the server and its backends).
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat.contains("(postgres)") {
            total += process_ticks(pid).unwrap_or(0);
        }
    }
    total
}

/// Busy ticks of all cores, from the first line of `/proc/stat`.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    Some(v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_cpu() {
        assert!(process_ticks("self").is_some());
        assert!(machine_busy_ticks().is_some());
    }
}
