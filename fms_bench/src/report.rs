//! The benchmark's figures: a readable table and the same as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::stats::Percentiles;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub label: Option<String>,
    /// UTC, ISO 8601.
    pub date: String,
    pub commit: Option<String>,
    pub machine: Machine,
    /// 1/5/15-minute load averages before and after the run: other work on the machine.
    pub load_before: String,
    pub load_after: String,
    pub config: Config,
    pub ingest: Ingest,
    pub server: ServerFigures,
    /// CPU the benchmark process itself used (robots, clients), in cores.
    pub bench_cpu_cores: f64,
    pub dashboards: Option<WsGroup>,
    pub probe: Option<WsGroup>,
    pub api_robots: Option<ApiFigures>,
    pub tasks: Option<TaskFigures>,
    pub saturation: Option<Saturation>,
}

#[derive(Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            kernel,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Config {
    pub robots: usize,
    pub rate_hz: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub ws_clients: usize,
    pub ws_batch_ms: Option<u64>,
    pub ws_parse_clients: usize,
    pub ws_watch: usize,
    pub probe_watch: Option<usize>,
    pub tasks_per_s: f64,
    pub api_robots_rps: f64,
    pub robot_threads: usize,
    pub tokens: bool,
    pub saturation_s: f64,
    pub server: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Ingest {
    pub robots_online: u64,
    /// Seconds from the first publish until the server reported every robot ONLINE.
    pub all_online_s: f64,
    pub offered_per_s: f64,
    /// From the server's `fms_zenoh_messages_total{kind="state"}`.
    pub processed_per_s: f64,
    pub published_total: u64,
    pub processed_total: u64,
    /// Published minus processed over the whole run, after the publishers stopped and
    /// the server drained.
    pub lost: u64,
    pub loss_ratio: f64,
    pub rejected: u64,
    /// Robot-thread slots that started a whole period late (the benchmark fell behind).
    pub late_slots: u64,
    pub events_published: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ServerFigures {
    pub pid: u32,
    pub cpu_cores: f64,
    /// Runnable but not running (waiting for a CPU), in cores: the machine's other load.
    pub cpu_wait_cores: f64,
    /// Server CPU time per processed state message, microseconds (all server work counted:
    /// ingest, fan-out, HTTP): less sensitive to the machine's other load than rates.
    pub cpu_us_per_msg: f64,
    pub rss_mib: f64,
    pub rss_peak_mib: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct WsGroup {
    pub clients: usize,
    pub batch_ms: Option<u64>,
    pub parse_clients: usize,
    /// Robots each client subscribed to (0: all).
    pub watch: usize,
    pub frames_per_client_per_s: f64,
    pub bytes_per_client_per_s: f64,
    pub states_per_client_per_s: f64,
    /// Seq gaps seen by the parsing clients: loss without batching, coalescing with it.
    pub gaps: u64,
    pub gap_ratio: f64,
    pub reordered: u64,
    /// Latencies taken from `stamp_ms` (ms resolution) instead of the send-time table.
    pub coarse_latencies: u64,
    pub latency: Percentiles,
    pub errors: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ApiFigures {
    pub requests: usize,
    pub errors: usize,
    pub body_bytes: usize,
    pub robots_listed: usize,
    pub latency: Percentiles,
}

#[derive(Debug, Default, Serialize)]
pub struct TaskFigures {
    pub posted: usize,
    pub errors: usize,
    /// POST /api/tasks response time.
    pub post: Percentiles,
    /// POST sent -> cmd/task reached the robot.
    pub delivery: Percentiles,
    /// POST sent -> a dashboard saw the task ACTIVE (robot accepted, event went back).
    pub round_trip: Percentiles,
    pub delivered: usize,
    pub round_trips: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Saturation {
    pub seconds: f64,
    pub payload_bytes: usize,
    pub publisher_threads: usize,
    /// fms_server ingest (decode, validate, registry) with the flood publisher.
    pub fms_processed_per_s: f64,
    pub fms_published_per_s: f64,
    pub fms_server_cpu_cores: f64,
    pub fms_server_cpu_wait_cores: f64,
    pub fms_load: String,
    /// Publisher -> plain router process -> subscriber process.
    pub baseline_routed_per_s: Option<f64>,
    pub baseline_routed_load: Option<String>,
    /// Publisher -> router process with the subscriber inside (fms_server's shape).
    pub baseline_embedded_per_s: Option<f64>,
    pub baseline_embedded_load: Option<String>,
    pub ratio_routed: Option<f64>,
    pub ratio_embedded: Option<f64>,
}

fn ws_rows(out: &mut String, name: &str, g: &WsGroup) {
    let mode = match g.batch_ms {
        Some(ms) => format!("/ws?batch_ms={ms}"),
        None => "/ws".to_owned(),
    };
    let watch = if g.watch == 0 {
        "all robots".to_owned()
    } else {
        format!("{} robots each", g.watch)
    };
    let _ = writeln!(
        out,
        "  {name:<22} {} x {mode}, {watch}, {} parsing",
        g.clients, g.parse_clients
    );
    let _ = writeln!(
        out,
        "    per client          {:.0} frames/s  {:.0} states/s  {:.1} KiB/s",
        g.frames_per_client_per_s,
        g.states_per_client_per_s,
        g.bytes_per_client_per_s / 1024.0
    );
    let gap_what = if g.batch_ms.is_some() {
        "coalesced"
    } else {
        "lost"
    };
    let _ = writeln!(
        out,
        "    seq gaps            {} {gap_what} ({:.4} %), {} reordered",
        g.gaps,
        100.0 * g.gap_ratio,
        g.reordered
    );
    let _ = writeln!(out, "    e2e latency         {}", g.latency.show());
    for e in &g.errors {
        let _ = writeln!(out, "    error               {e}");
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut o = String::new();
        let c = &self.config;
        let _ = writeln!(
            o,
            "fms scale benchmark{}  {}  commit {}",
            self.label
                .as_deref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default(),
            self.date,
            self.commit.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            o,
            "  machine               {} cpus, {}, linux {}",
            self.machine.cpus, self.machine.model, self.machine.kernel
        );
        let _ = writeln!(
            o,
            "  load avg              before {}  after {}",
            self.load_before, self.load_after
        );
        let _ = writeln!(
            o,
            "  scenario              {} robots x {} Hz, warm-up {} s, window {} s, server {}",
            c.robots, c.rate_hz, c.warmup_s, c.duration_s, c.server
        );
        let i = &self.ingest;
        let _ = writeln!(
            o,
            "  robots online         {} (all online {:.1} s after start)",
            i.robots_online, i.all_online_s
        );
        let _ = writeln!(
            o,
            "  state msgs/s          offered {:.0}  processed {:.0}",
            i.offered_per_s, i.processed_per_s
        );
        let _ = writeln!(
            o,
            "  loss (whole run)      {} of {} ({:.4} %), rejected {}, late slots {}",
            i.lost,
            i.published_total,
            100.0 * i.loss_ratio,
            i.rejected,
            i.late_slots
        );
        let s = &self.server;
        let _ = writeln!(
            o,
            "  server                CPU {:.2} cores (waited {:.2} for a CPU), {:.2} us/msg  RSS {:.1} MiB (peak {:.1})",
            s.cpu_cores, s.cpu_wait_cores, s.cpu_us_per_msg, s.rss_mib, s.rss_peak_mib
        );
        let _ = writeln!(
            o,
            "  benchmark process     CPU {:.2} cores",
            self.bench_cpu_cores
        );
        if let Some(g) = &self.dashboards {
            ws_rows(&mut o, "dashboards", g);
        }
        if let Some(g) = &self.probe {
            ws_rows(&mut o, "latency probe", g);
        }
        if let Some(a) = &self.api_robots {
            let _ = writeln!(
                o,
                "  GET /api/robots       {}  ({} robots, {:.0} KiB, {} errors)",
                a.latency.show(),
                a.robots_listed,
                a.body_bytes as f64 / 1024.0,
                a.errors
            );
        }
        if let Some(t) = &self.tasks {
            let _ = writeln!(
                o,
                "  tasks                 {} posted, {} errors",
                t.posted, t.errors
            );
            let _ = writeln!(o, "    POST /api/tasks     {}", t.post.show());
            let _ = writeln!(o, "    POST -> robot       {}", t.delivery.show());
            let _ = writeln!(o, "    POST -> ACTIVE (ws) {}", t.round_trip.show());
        }
        if let Some(s) = &self.saturation {
            let _ = writeln!(
                o,
                "  saturation ({} s, {}-byte RobotState, {} publisher thread(s))",
                s.seconds, s.payload_bytes, s.publisher_threads
            );
            let _ = writeln!(
                o,
                "    fms_server ingest   {:.0} msg/s  (published {:.0}/s, server CPU {:.2} cores, waited {:.2}, load {})",
                s.fms_processed_per_s, s.fms_published_per_s, s.fms_server_cpu_cores, s.fms_server_cpu_wait_cores, s.fms_load
            );
            if let Some(b) = s.baseline_routed_per_s {
                let _ = writeln!(
                    o,
                    "    raw zenoh, routed   {:.0} msg/s  pub -> router process -> sub process (load {})  fms ratio {:.2}",
                    b,
                    s.baseline_routed_load.as_deref().unwrap_or(""),
                    s.ratio_routed.unwrap_or(0.0)
                );
            }
            if let Some(b) = s.baseline_embedded_per_s {
                let _ = writeln!(
                    o,
                    "    raw zenoh, embedded {:.0} msg/s  pub -> router+sub process (load {})  fms ratio {:.2}",
                    b,
                    s.baseline_embedded_load.as_deref().unwrap_or(""),
                    s.ratio_embedded.unwrap_or(0.0)
                );
            }
        }
        o
    }
}

/// `2026-05-01T12:34:56Z` from Unix seconds (proleptic Gregorian, UTC).
pub fn iso_date(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates() {
        assert_eq!(super::iso_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso_date(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::iso_date(951_782_400), "2000-02-29T00:00:00Z");
    }
}
