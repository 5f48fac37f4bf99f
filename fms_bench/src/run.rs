//! `fms_bench run`: one scenario, start to finish.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::baseline::{count_reader, ChildProc};
use crate::fleet::{self, Fleet, FleetParams};
use crate::report::{
    ApiFigures, Config, Ingest, Machine, Report, Saturation, ServerFigures, TaskFigures, WsGroup,
};
use crate::stats::{loadavg, rss_mib, CpuMeter, Percentiles, SentTimes};
use crate::ws::{self, ClientParams, ClientStats};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Simulated robots.
    #[arg(long, default_value_t = 1000)]
    pub robots: usize,
    /// State messages per robot per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate_hz: f64,
    /// Seconds after every robot is ONLINE before measuring.
    #[arg(long, default_value_t = 3.0)]
    pub warmup_s: f64,
    /// Measurement window, seconds.
    #[arg(long, default_value_t = 15.0)]
    pub duration_s: f64,
    /// WebSocket dashboard clients.
    #[arg(long, default_value_t = 10)]
    pub ws_clients: usize,
    /// Dashboards use `/ws?batch_ms=N` (default: one frame per message, `/ws`).
    #[arg(long)]
    pub ws_batch_ms: Option<u64>,
    /// How many dashboards scan their frames for states (latency, gaps); the others only
    /// count frames and bytes. Default: all of them, at most 10.
    #[arg(long)]
    pub ws_parse: Option<usize>,
    /// Each dashboard subscribes to this many robots (0: all).
    #[arg(long, default_value_t = 0)]
    pub ws_watch: usize,
    /// Add one per-message `/ws` client subscribed to this many robots: end-to-end latency
    /// at full ingest without a full per-message fan-out.
    #[arg(long)]
    pub probe_watch: Option<usize>,
    /// POST /api/tasks at this rate during the window (0: no task traffic).
    #[arg(long, default_value_t = 0.0)]
    pub tasks_per_s: f64,
    /// GET /api/robots at this rate during the window (0: none).
    #[arg(long, default_value_t = 2.0)]
    pub api_robots_rps: f64,
    /// Threads running the simulated robots.
    #[arg(long, default_value_t = 2)]
    pub robot_threads: usize,
    /// Robots declare no liveliness token (legacy-style presence).
    #[arg(long)]
    pub no_tokens: bool,
    /// After the scenario, flood fms_server's ingest and the raw Zenoh baselines for this
    /// many seconds each (0: skip).
    #[arg(long, default_value_t = 0.0)]
    pub saturation_s: f64,
    /// Publisher threads for the floods.
    #[arg(long, default_value_t = 1)]
    pub flood_threads: usize,
    /// Which raw baselines to run with --saturation-s: routed, embedded or both.
    #[arg(long, default_value = "both")]
    pub baseline: String,
    /// The fms_server binary (default: next to this one).
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// Extra fms_server argument (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A name for this run in the output.
    #[arg(long)]
    pub label: Option<String>,
    /// Exit non-zero unless every state was processed and no dashboard lost one (CI smoke).
    #[arg(long)]
    pub require_no_loss: bool,
    /// Hard limit for the whole run, seconds.
    #[arg(long, default_value_t = 600)]
    pub max_s: u64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The counters this benchmark reads from `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Scrape {
    states: u64,
    rejected: u64,
    online: u64,
}

async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<Scrape> {
    let text = http
        .get(format!("http://{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    Ok(Scrape {
        states: value("fms_zenoh_messages_total{kind=\"state\"}"),
        rejected: value("fms_zenoh_messages_rejected_total"),
        online: value("fms_robots_online"),
    })
}

fn git_commit() -> Option<String> {
    if let Ok(c) = std::env::var("FMS_BENCH_COMMIT") {
        return Some(c);
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub async fn main(args: RunArgs) -> anyhow::Result<()> {
    let limit = Duration::from_secs(args.max_s);
    let report = tokio::select! {
        r = tokio::time::timeout(limit, run(&args)) => match r {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("the run took longer than --max-s {}", args.max_s),
        },
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("  json                  {}", path.display());
    }
    if args.require_no_loss {
        let ws_lost = report
            .dashboards
            .iter()
            .chain(report.probe.iter())
            .filter(|g| g.batch_ms.is_none())
            .map(|g| g.gaps)
            .sum::<u64>();
        let errors = report
            .dashboards
            .iter()
            .chain(report.probe.iter())
            .map(|g| g.errors.len())
            .sum::<usize>();
        if report.ingest.lost > 0 || ws_lost > 0 || errors > 0 || report.ingest.processed_total == 0
        {
            anyhow::bail!(
                "loss: {} states not processed, {} lost on WebSockets, {} client errors",
                report.ingest.lost,
                ws_lost,
                errors
            );
        }
    }
    Ok(())
}

struct Clients {
    handles: Vec<tokio::task::JoinHandle<ClientStats>>,
    parse: usize,
}

/// What every WebSocket client of a run shares.
struct ClientCtx {
    robots: usize,
    sent: Arc<SentTimes>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

async fn start_clients(
    ctx: &ClientCtx,
    n: usize,
    parse: usize,
    url: &str,
    watch: &[String],
) -> Clients {
    let (tx, mut rx) = tokio::sync::mpsc::channel(n.max(1));
    let handles = (0..n)
        .map(|i| {
            tokio::spawn(ws::client(
                ClientParams {
                    url: url.to_owned(),
                    parse: i < parse,
                    watch: watch.to_vec(),
                    robots: ctx.robots,
                },
                ctx.sent.clone(),
                ctx.measuring.clone(),
                ctx.stop.clone(),
                tx.clone(),
            ))
        })
        .collect();
    for _ in 0..n {
        let _ = rx.recv().await;
    }
    Clients { handles, parse }
}

async fn finish_clients(
    c: Clients,
    batch_ms: Option<u64>,
    watch: usize,
    window_s: f64,
) -> (WsGroup, Vec<ClientStats>) {
    let mut all = Vec::new();
    for h in c.handles {
        if let Ok(s) = h.await {
            all.push(s);
        }
    }
    let n = all.len().max(1) as f64;
    let parsers = &all[..c.parse.min(all.len())];
    let mut lat: Vec<u32> = parsers
        .iter()
        .flat_map(|s| s.latency_us.iter().copied())
        .collect();
    let states: u64 = parsers.iter().map(|s| s.states).sum();
    let gaps: u64 = parsers.iter().map(|s| s.gaps).sum();
    let g = WsGroup {
        clients: all.len(),
        batch_ms,
        parse_clients: parsers.len(),
        watch,
        frames_per_client_per_s: all.iter().map(|s| s.frames).sum::<u64>() as f64 / n / window_s,
        bytes_per_client_per_s: all.iter().map(|s| s.bytes).sum::<u64>() as f64 / n / window_s,
        states_per_client_per_s: states as f64 / parsers.len().max(1) as f64 / window_s,
        gaps,
        gap_ratio: gaps as f64 / (states + gaps).max(1) as f64,
        reordered: parsers.iter().map(|s| s.reordered).sum(),
        coarse_latencies: parsers.iter().map(|s| s.coarse).sum(),
        latency: Percentiles::from_us(&mut lat),
        errors: all.iter().filter_map(|s| s.error.clone()).collect(),
    };
    (g, all)
}

/// GET /api/robots at `rps` until `stop`.
async fn api_sampler(
    http: reqwest::Client,
    base: String,
    rps: f64,
    stop: Arc<AtomicBool>,
) -> ApiFigures {
    let mut lat = Vec::new();
    let mut f = ApiFigures::default();
    let mut tick = tokio::time::interval(secs(1.0 / rps));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let t = Instant::now();
        let r = async {
            let body = http
                .get(format!("http://{base}/api/robots"))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok::<_, reqwest::Error>(body)
        }
        .await;
        match r {
            Ok(body) => {
                lat.push(t.elapsed().as_micros() as u32);
                f.body_bytes = body.len();
                f.robots_listed =
                    serde_json::from_slice::<Vec<serde_json::Value>>(&body).map_or(0, |v| v.len());
            }
            Err(_) => f.errors += 1,
        }
    }
    f.requests = lat.len() + f.errors;
    f.latency = Percentiles::from_us(&mut lat);
    f
}

/// POST /api/tasks at `rate` until `stop`; returns (task id, sent at) and figures.
async fn task_driver(
    http: reqwest::Client,
    base: String,
    rate: f64,
    area: f64,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, Instant)>, usize, Vec<u32>) {
    let mut posted = Vec::new();
    let mut errors = 0;
    let mut lat = Vec::new();
    let mut tick = tokio::time::interval(secs(1.0 / rate));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let body = serde_json::json!({"target": {"x": area * rnd(), "y": area * rnd()}});
        let t = Instant::now();
        let r = async {
            http.post(format!("http://{base}/api/tasks"))
                .json(&body)
                .send()
                .await?
                .error_for_status()?
                .json::<serde_json::Value>()
                .await
        }
        .await;
        match r {
            Ok(v) => {
                lat.push(t.elapsed().as_micros() as u32);
                match v["id"].as_str() {
                    Some(id) => posted.push((id.to_owned(), t)),
                    None => errors += 1,
                }
            }
            Err(_) => errors += 1,
        }
    }
    (posted, errors, lat)
}

/// Floods `endpoint` for warm-up + `seconds`; `received` reads the receiver's counter.
async fn flood_measure<F, Fut>(
    endpoint: &str,
    robots: usize,
    threads: usize,
    seconds: f64,
    received: F,
    cpu_pid: Option<u32>,
) -> anyhow::Result<(f64, f64, (f64, f64), String)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let session = fleet::client_session(endpoint).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (published, handles) = fleet::flood(&session, robots, threads, stop.clone()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (r0, p0, t0) = (
        received().await?,
        published.load(Ordering::Relaxed),
        Instant::now(),
    );
    let cpu = cpu_pid.map(CpuMeter::start);
    tokio::time::sleep(secs(seconds)).await;
    let (r1, p1, dt) = (
        received().await?,
        published.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let cores = cpu.map_or((0.0, 0.0), |c| (c.cores(), c.waiting_cores()));
    let load = loadavg();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
    let _ = session.close().await;
    Ok(((r1 - r0) as f64 / dt, (p1 - p0) as f64 / dt, cores, load))
}

async fn baseline(args: &RunArgs, embedded: bool) -> anyhow::Result<(f64, String)> {
    let me = std::env::current_exe()?;
    let endpoint = format!("tcp/127.0.0.1:{}", free_port()?);
    let max = (args.saturation_s as u64 + 60).to_string();
    let count = Arc::new(AtomicU64::new(0));
    let ready = |l: &str| (l == "ready").then_some(());
    let mut _router = None;
    let sub_args: Vec<String> = if embedded {
        vec!["zenoh-sub".into(), "--listen".into(), endpoint.clone()]
    } else {
        let (r, ()) = ChildProc::spawn(
            &me,
            &[
                "zenoh-router".into(),
                "--listen".into(),
                endpoint.clone(),
                "--max-s".into(),
                max.clone(),
            ],
            Duration::from_secs(20),
            ready,
            |_| {},
        )
        .await?;
        _router = Some(r);
        vec!["zenoh-sub".into(), "--connect".into(), endpoint.clone()]
    };
    let mut sub_args = sub_args;
    sub_args.extend(["--max-s".into(), max]);
    let (_sub, ()) = ChildProc::spawn(
        &me,
        &sub_args,
        Duration::from_secs(20),
        ready,
        count_reader(count.clone()),
    )
    .await?;
    // Let the subscriber's declaration reach the router.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rate, _, _, load) = flood_measure(
        &endpoint,
        args.robots,
        args.flood_threads,
        args.saturation_s,
        || {
            let c = count.clone();
            async move {
                // The child prints every 50 ms: wait one print for a fresh figure.
                tokio::time::sleep(Duration::from_millis(60)).await;
                Ok(c.load(Ordering::Relaxed))
            }
        },
        None,
    )
    .await?;
    Ok((rate, load))
}

async fn run(args: &RunArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.robots > 0, "--robots must be at least 1");
    anyhow::ensure!(args.rate_hz > 0.0, "--rate-hz must be positive");
    let load_before = loadavg();
    let server_bin = args.server.clone().unwrap_or_else(|| sibling("fms_server"));
    let data = std::env::temp_dir().join(format!("fms-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let mut server_args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--frontend-dir",
        "/nonexistent",
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    server_args.extend(["--data-dir".into(), data.display().to_string()]);
    server_args.extend(args.server_args.iter().cloned());
    // A free port can be taken by someone else before the server binds it: retry.
    let mut attempt = 0;
    let (server, http_addr, zenoh) = loop {
        let zenoh = format!("tcp/127.0.0.1:{}", free_port()?);
        let mut argv = server_args.clone();
        argv.extend(["--zenoh-listen".into(), zenoh.clone()]);
        match ChildProc::spawn(
            &server_bin,
            &argv,
            Duration::from_secs(60),
            |line| {
                line.strip_prefix("fms_server listening on http://")
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_owned)
            },
            |_| {},
        )
        .await
        {
            Ok((server, http)) => break (server, http, zenoh),
            Err(e) if attempt < 3 => {
                attempt += 1;
                eprintln!("fms_bench: {e}; retrying");
            }
            Err(e) => return Err(e),
        }
    };
    let result = scenario(args, &server, &http_addr, &zenoh, &server_bin, load_before).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    let mut report = result?;
    if args.saturation_s > 0.0 {
        let sat = report.saturation.as_mut().expect("set by scenario");
        if matches!(args.baseline.as_str(), "routed" | "both") {
            let (r, load) = baseline(args, false).await?;
            sat.baseline_routed_per_s = Some(r);
            sat.baseline_routed_load = Some(load);
            sat.ratio_routed = Some(sat.fms_processed_per_s / r.max(1.0));
        }
        if matches!(args.baseline.as_str(), "embedded" | "both") {
            let (r, load) = baseline(args, true).await?;
            sat.baseline_embedded_per_s = Some(r);
            sat.baseline_embedded_load = Some(load);
            sat.ratio_embedded = Some(sat.fms_processed_per_s / r.max(1.0));
        }
    }
    report.load_after = loadavg();
    Ok(report)
}

async fn scenario(
    args: &RunArgs,
    server: &ChildProc,
    base: &str,
    zenoh: &str,
    server_bin: &std::path::Path,
    load_before: String,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::new();
    let sent = Arc::new(SentTimes::new(args.robots));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop_clients = Arc::new(AtomicBool::new(false));
    let ws_url = match args.ws_batch_ms {
        Some(ms) => format!("ws://{base}/ws?batch_ms={ms}"),
        None => format!("ws://{base}/ws"),
    };
    let pick = |m: usize| -> Vec<String> {
        let m = m.min(args.robots);
        if m == 0 {
            return Vec::new();
        }
        let stride = (args.robots / m).max(1);
        (0..m)
            .map(|k| fleet::robot_id(k * stride).to_string())
            .collect()
    };
    let parse = args.ws_parse.unwrap_or(args.ws_clients.min(10));
    let ctx = ClientCtx {
        robots: args.robots,
        sent: sent.clone(),
        measuring: measuring.clone(),
        stop: stop_clients.clone(),
    };
    let dashboards =
        start_clients(&ctx, args.ws_clients, parse, &ws_url, &pick(args.ws_watch)).await;
    let probe = match args.probe_watch {
        Some(m) => Some(start_clients(&ctx, 1, 1, &format!("ws://{base}/ws"), &pick(m)).await),
        None => None,
    };

    let s0 = scrape(&http, base).await?;
    let session = fleet::client_session(zenoh).await?;
    let started = Instant::now();
    let mut fleet = Fleet::start(
        &session,
        &FleetParams {
            robots: args.robots,
            rate_hz: args.rate_hz,
            threads: args.robot_threads,
            tokens: !args.no_tokens,
        },
        sent.clone(),
    )
    .await?;
    // Wait until the server has every robot ONLINE (at most two minutes), then warm up.
    let mut online = 0;
    while started.elapsed() < Duration::from_secs(120) {
        online = scrape(&http, base).await?.online;
        if online >= args.robots as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_online_s = started.elapsed().as_secs_f64();
    eprintln!("fms_bench: {online} robots online after {all_online_s:.1} s");
    tokio::time::sleep(secs(args.warmup_s)).await;

    // The measurement window.
    let stop_side = Arc::new(AtomicBool::new(false));
    let api = (args.api_robots_rps > 0.0).then(|| {
        tokio::spawn(api_sampler(
            http.clone(),
            base.to_owned(),
            args.api_robots_rps,
            stop_side.clone(),
        ))
    });
    let area = 2.0 * (args.robots as f64).sqrt();
    let tasks = (args.tasks_per_s > 0.0).then(|| {
        tokio::spawn(task_driver(
            http.clone(),
            base.to_owned(),
            args.tasks_per_s,
            area,
            stop_side.clone(),
        ))
    });
    let rss_peak = Arc::new(AtomicU64::new(0));
    let rss_task = {
        let (stop, peak, pid) = (stop_side.clone(), rss_peak.clone(), server.pid);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, _)) = rss_mib(pid) {
                    peak.fetch_max((rss * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let m1 = scrape(&http, base).await?;
    let p1 = fleet.published();
    let server_cpu = CpuMeter::start(server.pid);
    let own_cpu = CpuMeter::start(std::process::id());
    let t1 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    // Profiling scripts wait for this line (scripts/bench_profile.sh).
    eprintln!(
        "fms_bench: measuring for {} s (server pid {})",
        args.duration_s, server.pid
    );
    tokio::time::sleep(secs(args.duration_s)).await;
    measuring.store(false, Ordering::Relaxed);
    let window = t1.elapsed().as_secs_f64();
    let m2 = scrape(&http, base).await?;
    let p2 = fleet.published();
    let server_cores = server_cpu.cores();
    let server_wait = server_cpu.waiting_cores();
    let bench_cores = own_cpu.cores();
    let (rss_now, rss_hwm) = rss_mib(server.pid).unwrap_or_default();
    stop_side.store(true, Ordering::Relaxed);
    let _ = rss_task.await;
    let api = match api {
        Some(h) => Some(h.await?),
        None => None,
    };
    let tasks = match tasks {
        Some(h) => Some(h.await?),
        None => None,
    };

    // Stop publishing, let the server drain, then count the loss over the whole run.
    fleet.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m3 = scrape(&http, base).await?;
    let published_total = fleet.published();
    let processed_total = m3.states - s0.states;
    let lost = published_total.saturating_sub(processed_total);
    stop_clients.store(true, Ordering::Relaxed);
    let (dash, dash_stats) =
        finish_clients(dashboards, args.ws_batch_ms, args.ws_watch, window).await;
    let probe = match probe {
        Some(p) => Some(
            finish_clients(p, None, args.probe_watch.unwrap_or(0), window)
                .await
                .0,
        ),
        None => None,
    };
    let tasks = tasks.map(|(posted, errors, mut post_lat)| {
        let arrivals = fleet.arrivals.lock().map(|a| a.clone()).unwrap_or_default();
        let mut delivery: Vec<u32> = Vec::new();
        let mut round: Vec<u32> = Vec::new();
        for (id, t) in &posted {
            if let Some(a) = arrivals.get(id) {
                delivery.push(a.saturating_duration_since(*t).as_micros() as u32);
            }
            if let Some(a) = dash_stats.iter().find_map(|s| s.task_active.get(id)) {
                round.push(a.saturating_duration_since(*t).as_micros() as u32);
            }
        }
        TaskFigures {
            posted: posted.len(),
            errors,
            post: Percentiles::from_us(&mut post_lat),
            delivered: delivery.len(),
            round_trips: round.len(),
            delivery: Percentiles::from_us(&mut delivery),
            round_trip: Percentiles::from_us(&mut round),
        }
    });
    let late = fleet.counters.late_slots.load(Ordering::Relaxed);
    let events = fleet.counters.events.load(Ordering::Relaxed);
    drop(fleet);

    let saturation = if args.saturation_s > 0.0 {
        // Robots are gone; wait for the server to settle, then flood its ingest.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rate, published, cores, load) = flood_measure(
            zenoh,
            args.robots,
            args.flood_threads,
            args.saturation_s,
            || {
                let (http, base) = (http.clone(), base.to_owned());
                async move { Ok(scrape(&http, &base).await?.states) }
            },
            Some(server.pid),
        )
        .await?;
        Some(Saturation {
            seconds: args.saturation_s,
            payload_bytes: fleet::sample_payloads(1)[0].len(),
            publisher_threads: args.flood_threads,
            fms_processed_per_s: rate,
            fms_published_per_s: published,
            fms_server_cpu_cores: cores.0,
            fms_server_cpu_wait_cores: cores.1,
            fms_load: load,
            ..Saturation::default()
        })
    } else {
        None
    };
    let _ = session.close().await;

    Ok(Report {
        bench: "fms_scale",
        label: args.label.clone(),
        date: crate::report::iso_date(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        commit: git_commit(),
        machine: Machine::read(),
        load_before,
        load_after: String::new(),
        config: Config {
            robots: args.robots,
            rate_hz: args.rate_hz,
            warmup_s: args.warmup_s,
            duration_s: args.duration_s,
            ws_clients: args.ws_clients,
            ws_batch_ms: args.ws_batch_ms,
            ws_parse_clients: parse.min(args.ws_clients),
            ws_watch: args.ws_watch,
            probe_watch: args.probe_watch,
            tasks_per_s: args.tasks_per_s,
            api_robots_rps: args.api_robots_rps,
            robot_threads: args.robot_threads,
            tokens: !args.no_tokens,
            saturation_s: args.saturation_s,
            server: server_bin.display().to_string(),
        },
        ingest: Ingest {
            robots_online: online,
            all_online_s,
            offered_per_s: (p2 - p1) as f64 / window,
            processed_per_s: (m2.states - m1.states) as f64 / window,
            published_total,
            processed_total,
            lost,
            loss_ratio: lost as f64 / published_total.max(1) as f64,
            rejected: m3.rejected - s0.rejected,
            late_slots: late,
            events_published: events,
        },
        server: ServerFigures {
            pid: server.pid,
            cpu_cores: server_cores,
            cpu_wait_cores: server_wait,
            cpu_us_per_msg: server_cores * window * 1e6 / (m2.states - m1.states).max(1) as f64,
            rss_mib: rss_now,
            rss_peak_mib: rss_hwm.max(rss_peak.load(Ordering::Relaxed) as f64 / 1024.0),
        },
        bench_cpu_cores: bench_cores,
        dashboards: (args.ws_clients > 0).then_some(dash),
        probe,
        api_robots: api,
        tasks,
        saturation,
    })
}
