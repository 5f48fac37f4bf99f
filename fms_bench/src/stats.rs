//! Percentiles, `/proc` readings (CPU time, RSS, load) and the send-time table used for
//! microsecond end-to-end latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From samples in microseconds (sorted in place).
    pub fn from_us(samples: &mut [u32]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            f64::from(samples[i]) / 1000.0
        };
        Self {
            n: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: f64::from(*samples.last().expect("not empty")) / 1000.0,
        }
    }

    pub fn show(&self) -> String {
        if self.n == 0 {
            return "-".into();
        }
        format!(
            "p50 {:.2}  p99 {:.2}  max {:.2} ms  (n={})",
            self.p50_ms, self.p99_ms, self.max_ms, self.n
        )
    }
}

/// Linux reports process times in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Nanoseconds the process's threads have spent runnable but waiting for a CPU
/// (`/proc/<pid>/task/*/schedstat`, second field): how much the machine's other work held
/// it back.
pub fn run_delay_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

/// Resident set size and its peak (VmHWM), in MiB.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU use of a process between two readings.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    cpu0: f64,
    wait0: u64,
    t0: Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            cpu0: cpu_seconds(pid).unwrap_or(0.0),
            wait0: run_delay_ns(pid).unwrap_or(0),
            t0: Instant::now(),
        }
    }

    /// Threads waiting for a CPU since `start`, on average (0.5: half a core's worth of
    /// runnable time went unserved). High values mean other work on the machine skews
    /// the figures.
    pub fn waiting_cores(&self) -> f64 {
        let wait = run_delay_ns(self.pid).unwrap_or(self.wait0) - self.wait0;
        wait as f64 / 1e9 / self.t0.elapsed().as_secs_f64().max(1e-9)
    }

    /// Cores used on average since `start` (1.0 = one core busy all the time).
    pub fn cores(&self) -> f64 {
        let cpu = cpu_seconds(self.pid).unwrap_or(self.cpu0) - self.cpu0;
        cpu / self.t0.elapsed().as_secs_f64().max(1e-9)
    }
}

/// Slots per robot in [`SentTimes`]: a state older than this many periods falls back to
/// its millisecond `stamp_ms`.
const RING: usize = 32;
const SEQ_BITS: u32 = 24;
const TIME_BITS: u32 = 64 - SEQ_BITS;

/// When each robot sent each recent state, in microseconds since the benchmark started,
/// keyed by (robot, seq). The protocol has no spare field for a finer timestamp, so the
/// benchmark keeps the send times itself: robot threads write, WebSocket clients read.
pub struct SentTimes {
    start: Instant,
    slots: Vec<AtomicU64>,
}

impl SentTimes {
    pub fn new(robots: usize) -> Self {
        Self {
            start: Instant::now(),
            slots: (0..robots * RING).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn pack(seq: u64, us: u64) -> u64 {
        ((seq & ((1 << SEQ_BITS) - 1)) << TIME_BITS) | (us & ((1 << TIME_BITS) - 1))
    }

    pub fn record(&self, robot: usize, seq: u64) {
        if let Some(slot) = self.slots.get(robot * RING + seq as usize % RING) {
            slot.store(Self::pack(seq, self.now_us()), Ordering::Relaxed);
        }
    }

    /// Microseconds since (robot, seq) was sent, if it is still in the table.
    pub fn age_us(&self, robot: usize, seq: u64, now_us: u64) -> Option<u64> {
        let v = self
            .slots
            .get(robot * RING + seq as usize % RING)?
            .load(Ordering::Relaxed);
        if v == 0 || v >> TIME_BITS != seq & ((1 << SEQ_BITS) - 1) {
            return None;
        }
        Some(now_us.saturating_sub(v & ((1 << TIME_BITS) - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let p = Percentiles::from_us(&mut v);
        assert_eq!(
            (p.n, p.p50_ms, p.p99_ms, p.max_ms),
            (1000, 500.0, 990.0, 1000.0)
        );
        assert_eq!(Percentiles::from_us(&mut []).n, 0);
    }

    #[test]
    fn sent_times_match_seq() {
        let t = SentTimes::new(3);
        t.record(2, 77);
        let now = t.now_us() + 50;
        assert!(t.age_us(2, 77, now).is_some_and(|a| a >= 50));
        assert_eq!(t.age_us(2, 77 + RING as u64, now), None);
        assert_eq!(t.age_us(1, 77, now), None);
        assert_eq!(t.age_us(9, 77, now), None);
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(run_delay_ns(pid).is_some());
        let (rss, peak) = rss_mib(pid).unwrap();
        assert!(rss > 0.0 && peak >= rss);
    }
}
