//! Past one machine: `fms_server` replicas on one PostgreSQL database, behind a Zenoh router
//! that is not ours (eclipse-zenoh from PyPI): the leader killed with SIGKILL mid-run, the
//! leader cut off from PostgreSQL, and a mesh of two routers with robots split across them.
//!
//! Needs `cargo build --workspace --bins` and `scripts/zenoh_venv.sh` first (the test
//! command, scripts/test.sh, does both), and PostgreSQL on 127.0.0.1:5432.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

// Shared with the other end-to-end tests, which use the rest of it.
#[allow(dead_code)]
mod support;

use support::*;

/// The Python with eclipse-zenoh (scripts/zenoh_venv.sh makes it).
fn zenoh_python() -> PathBuf {
    let python = std::env::var_os("FMS_ZENOH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/zenoh-venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} is missing: run scripts/zenoh_venv.sh (or set FMS_ZENOH_PYTHON)",
        python.display()
    );
    python
}

/// An eclipse-zenoh router process listening on a free loopback port.
struct Router {
    _child: Child,
    endpoint: String,
}

/// A router on a free port, connecting to `connect`; started from the shipped mesh
/// configuration when `mesh_config` is set.
async fn spawn_router(connect: &[&str], mesh_config: bool) -> Router {
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(zenoh_python());
    cmd.arg(root.join("tests/support/zenoh_router.py"));
    if mesh_config {
        cmd.arg("--config")
            .arg(root.join("../config/zenoh/router-mesh.json5"));
    }
    let mut child = cmd
        .arg(&endpoint)
        .args(connect)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python Zenoh router");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("router ready") {
                return;
            }
        }
        panic!("the Zenoh router exited before it was ready");
    })
    .await
    .expect("the Zenoh router did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Router {
        _child: child,
        endpoint,
    }
}

/// An agent connected to `endpoint`, logging to `dir/agent-{id}.log`.
fn spawn_agent(dir: &Path, id: &str, endpoint: &str, pose: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("agent-{id}.log"))).unwrap();
    Command::new(agent_bin())
        .args(["--robot-id", id, "--zenoh-endpoint", endpoint])
        .args(["--start-pose", pose, "--rate", "10", "--max-speed", "3"])
        .args(["--log-level", "info"])
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start fms_agent")
}

/// One `fms_server --replicas` process, a Zenoh client of `router`.
struct Replica {
    child: Child,
    http: String,
    client: reqwest::Client,
}

impl Replica {
    async fn start(id: &str, router: &str, database_url: &str, dir: &Path) -> Replica {
        let config = dir.join(format!("server-{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "[dispatch]\noffline_grace_ms = 2000\n[rate_limit]\nenabled = false\n[replicas]\nenabled = true\nid = \"{id}\"\n"
            ),
        )
        .unwrap();
        let args: Vec<String> = [
            "--zenoh-endpoint",
            router,
            "--database-url",
            database_url,
            "--data-dir",
            &dir.display().to_string(),
            "--config",
            &config.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The listen endpoint is unused: an endpoint to connect to makes it a client.
        let (child, http) = spawn_server("tcp/127.0.0.1:0", &args).await;
        Replica {
            child,
            http,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn get(&self, path: &str) -> Value {
        match self.client.get(self.url(path)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// POSTs a task; `None` if the replica did not answer.
    async fn post_task(&self, key: &str, body: &Value) -> Option<(u16, Value)> {
        let r = self
            .client
            .post(self.url("/api/tasks"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// A metric's value, `None` if the replica did not answer.
    async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.url("/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    async fn leads(&self) -> bool {
        self.metric("fms_leader").await == Some(1.0)
    }

    async fn online(&self) -> usize {
        self.get("/api/robots").await.as_array().map_or(0, |a| {
            a.iter()
                .filter(|r| r["presence"] == "ONLINE" && r["state"].is_object())
                .count()
        })
    }

    async fn tasks(&self) -> Vec<Value> {
        self.get("/api/tasks?limit=1000")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        self.child.start_kill().unwrap();
    }
}

/// Agents r1..rN on `router`, 1 m apart; returns once every replica shows them all online.
async fn spawn_robots(
    dir: &Path,
    router: &Router,
    n: usize,
    replicas: [&Replica; 2],
) -> Vec<Child> {
    let agents = (1..=n)
        .map(|i| spawn_agent(dir, &format!("r{i}"), &router.endpoint, &format!("{i},0,0")))
        .collect();
    for r in replicas {
        wait_for(DEADLINE, "every robot online on both replicas", || async {
            r.online().await == n
        })
        .await;
    }
    agents
}

async fn wait_for<F, Fut>(deadline: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every task COMPLETED once in its history, and run once on the robots.
fn assert_each_completed_once(tasks: &[Value], runs: &HashMap<String, usize>, n: usize) {
    assert_eq!(tasks.len(), n, "a task was lost or duplicated");
    for t in tasks {
        let id = t["id"].as_str().unwrap();
        let completions = t["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["status"] == "COMPLETED")
            .count();
        assert_eq!(
            (t["status"].as_str(), completions),
            (Some("COMPLETED"), 1),
            "{t}"
        );
        assert_eq!(
            runs.get(id),
            Some(&1),
            "task {id} ran {:?} times on the robots",
            runs.get(id)
        );
    }
    assert_eq!(runs.values().sum::<usize>(), n, "{runs:?}");
}

/// Polls a replica's `fms_leader` every 20 ms; the time from `since` until it reads 1
/// (gives up after 15 s).
async fn time_to_lead(http: String, since: Instant) -> Duration {
    let client = reqwest::Client::new();
    while since.elapsed() < Duration::from_secs(15) {
        let text = async {
            client
                .get(format!("http://{http}/metrics"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        };
        if text
            .await
            .is_some_and(|t| t.lines().any(|l| l == "fms_leader 1"))
        {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    since.elapsed()
}

fn target(i: usize) -> Value {
    json!({"target": {"x": 1.0 + (i % 8) as f64, "y": (i % 5) as f64 * 0.8}})
}

/// Arrival times of `state_update` frames on one WebSocket client.
async fn watch_states(http: String, stop: Arc<AtomicBool>) -> Vec<Instant> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("websocket");
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(msg))) => {
                if msg.to_text().is_ok_and(|t| t.contains("\"state_update\"")) {
                    seen.push(Instant::now());
                }
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_run_loses_and_duplicates_nothing() {
    const TASKS: usize = 200;
    const ROBOTS: usize = 10;
    let (url, db) = fresh_pg_database().await;
    let dir = temp_dir("replicas-kill");
    let router = spawn_router(&[], false).await;
    let mut a = Replica::start("a", &router.endpoint, &url, &dir).await;
    wait_for(DEADLINE, "replica a to lead", || a.leads()).await;
    let b = Replica::start("b", &router.endpoint, &url, &dir).await;
    let _agents = spawn_robots(&dir, &router, ROBOTS, [&a, &b]).await;
    assert!(!b.leads().await, "two leaders");

    // A task created on the follower is dispatched by the leader.
    let created = Instant::now();
    let (status, t) = b.post_task("rep-0", &target(0)).await.expect("b answers");
    assert_eq!(status, 201, "{t}");
    let first = task_id(&t);
    let dispatched = wait_for(
        Duration::from_secs(10),
        "the follower's task dispatched",
        || {
            let (b, first) = (&b, &first);
            async move { b.get(&format!("/api/tasks/{first}")).await["status"] != "QUEUED" }
        },
    )
    .await;
    println!(
        "follower-created task assigned by the leader after {} ms",
        created.elapsed().max(dispatched).as_millis()
    );

    // A dashboard on the surviving replica, from before the kill to well after it.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_states(b.http.clone(), stop.clone()));

    // The rest, alternating between the replicas; the leader dies halfway. A client whose
    // replica is gone retries on the other one with the same idempotency key.
    let mut killed_at = None;
    let mut election = None;
    for i in 1..TASKS {
        if i == TASKS / 2 {
            a.kill();
            a.child.wait().await.unwrap();
            let at = Instant::now();
            killed_at = Some(at);
            election = Some(tokio::spawn(time_to_lead(b.http.clone(), at)));
        }
        let key = format!("rep-{i}");
        let first_try = if i % 2 == 0 && killed_at.is_none() {
            &a
        } else {
            &b
        };
        let answer = match first_try.post_task(&key, &target(i)).await {
            Some(a) => a,
            None => b.post_task(&key, &target(i)).await.expect("b answers"),
        };
        assert!(matches!(answer.0, 200 | 201), "task {i}: {answer:?}");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let killed_at = killed_at.unwrap();
    let took_over = election.unwrap().await.unwrap();
    println!(
        "failover: replica b leads {} ms after replica a was killed",
        took_over.as_millis()
    );
    assert!(
        took_over < Duration::from_secs(5),
        "a new leader took {took_over:?} (over 5 s)"
    );

    wait_for(Duration::from_secs(300), "every task completed", || async {
        b.get("/api/tasks?status=COMPLETED&limit=1000")
            .await
            .as_array()
            .map_or(0, |a| a.len())
            == TASKS
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.await.unwrap();
    let window_end = killed_at + Duration::from_secs(10);
    let mut gaps: Vec<Duration> = seen
        .windows(2)
        .filter(|w| w[1] > killed_at && w[0] < window_end)
        .map(|w| w[1] - w[0])
        .collect();
    gaps.sort();
    let worst = gaps.last().copied().unwrap_or(Duration::MAX);
    println!(
        "dashboard on the survivor: {} state updates, worst gap {} ms in the 10 s after the kill",
        seen.len(),
        worst.as_millis()
    );
    assert!(
        !gaps.is_empty() && worst < Duration::from_secs(1),
        "the surviving replica's dashboard stalled: worst gap {worst:?}"
    );

    let tasks = b.tasks().await;
    assert_each_completed_once(&tasks, &executions_in(&dir), TASKS);
    assert!(b.leads().await);
    drop(a);
    drop(b);
    drop_pg_database(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones.
struct PgProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl PgProxy {
    async fn start(upstream: &str) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let upstream = upstream.to_owned();
        let (cut2, live2) = (cut.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                live2.lock().unwrap().push(task.abort_handle());
            }
        });
        PgProxy { port, cut, live }
    }

    /// Closes every proxied connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_cut_off_from_postgres_steps_down_and_sends_nothing_after() {
    const ROBOTS: usize = 4;
    let (url, db) = fresh_pg_database().await;
    let proxy = PgProxy::start("127.0.0.1:5432").await;
    // The same database, reached through the proxy.
    let (scheme_host, name) = url.rsplit_once('/').unwrap();
    let (scheme, _) = scheme_host.split_once('@').unwrap();
    let proxied = format!("{scheme}@127.0.0.1:{}/{name}", proxy.port);
    let dir = temp_dir("replicas-cut");
    let router = spawn_router(&[], false).await;
    let a = Replica::start("a", &router.endpoint, &proxied, &dir).await;
    wait_for(DEADLINE, "replica a to lead", || a.leads()).await;
    let b = Replica::start("b", &router.endpoint, &url, &dir).await;
    let _agents = spawn_robots(&dir, &router, ROBOTS, [&a, &b]).await;
    for i in 0..8 {
        let (status, t) = a.post_task(&format!("cut-{i}"), &target(i)).await.unwrap();
        assert_eq!(status, 201, "{t}");
    }
    wait_for(Duration::from_secs(60), "tasks running", || async {
        a.get("/api/tasks?status=ACTIVE")
            .await
            .as_array()
            .map_or(0, |v| v.len())
            > 0
    })
    .await;
    assert!(a.metric("fms_zenoh_commands_sent_total").await.unwrap() > 0.0);

    // Cut the leader off from PostgreSQL.
    proxy.cut();
    let cut_at = Instant::now();
    let (mut a_down, mut b_up, mut sent_when_down) = (None, None, None);
    while a_down.is_none() || b_up.is_none() {
        assert!(
            cut_at.elapsed() < Duration::from_secs(15),
            "no takeover: a stepped down {a_down:?}, b leads {b_up:?}"
        );
        if a_down.is_none() && a.metric("fms_leader").await == Some(0.0) {
            a_down = Some(cut_at.elapsed());
            sent_when_down = a.metric("fms_zenoh_commands_sent_total").await;
        }
        if b_up.is_none() && b.leads().await {
            b_up = Some(cut_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a_down, b_up) = (a_down.unwrap(), b_up.unwrap());
    println!(
        "cut off: replica a stepped down after {} ms, replica b leads after {} ms",
        a_down.as_millis(),
        b_up.as_millis()
    );
    assert!(
        a_down <= b_up,
        "replica b led ({b_up:?}) before replica a stepped down ({a_down:?})"
    );
    assert!(b_up < Duration::from_secs(5), "takeover took {b_up:?}");
    let sent_when_down = sent_when_down.expect("a answered /metrics");

    // The new leader finishes the work and takes new tasks; the old one sends nothing.
    for i in 8..16 {
        let (status, t) = b.post_task(&format!("cut-{i}"), &target(i)).await.unwrap();
        assert_eq!(status, 201, "{t}");
    }
    wait_for(Duration::from_secs(120), "every task completed", || async {
        b.get("/api/tasks?status=COMPLETED&limit=100")
            .await
            .as_array()
            .map_or(0, |v| v.len())
            == 16
    })
    .await;
    assert_eq!(
        a.metric("fms_zenoh_commands_sent_total").await,
        Some(sent_when_down),
        "replica a sent commands after losing its lease"
    );

    // Back on the network, the old leader follows.
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.metric("fms_leader").await, Some(0.0));
    assert!(b.leads().await);
    assert_eq!(a.metric("fms_leader_terms_total").await, Some(1.0));
    assert_eq!(
        a.metric("fms_zenoh_commands_sent_total").await,
        Some(sent_when_down)
    );
    let tasks = b.tasks().await;
    assert_each_completed_once(&tasks, &executions_in(&dir), 16);
    drop(a);
    drop(b);
    drop_pg_database(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_router_mesh_serves_robots_on_either_router() {
    // The server embeds one router; an eclipse-zenoh router connects to it; robots r1, r2
    // use the embedded one and r3, r4 the other.
    let mut fleet = Fleet::start(2).await;
    let second = spawn_router(&[&fleet.zenoh], true).await;
    for (id, pose) in [("r3", "6,0,0"), ("r4", "8,0,0")] {
        let child = spawn_agent(&fleet.dir, id, &second.endpoint, pose);
        fleet.agents.push((id.to_owned(), child));
    }
    fleet.wait_online(4).await;
    let mut ids = Vec::new();
    for robot in ["r1", "r2", "r3", "r4"] {
        let (status, t) = fleet
            .post(
                "/api/tasks",
                json!({"robot_id": robot, "target": {"x": 3.0, "y": 2.0}}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        ids.push(task_id(&t));
    }
    for id in &ids {
        fleet.wait_task(id, "COMPLETED").await;
    }
    // Commands cross the mesh too: the fleet e-stop reaches the far robots.
    let (status, body) = fleet.post("/api/fleet/emergency-stop", json!({})).await;
    assert_eq!(status, 200, "{body}");
    fleet
        .wait("every robot e-stopped", || async {
            let robots = fleet.get("/api/robots").await.1;
            let stopped = robots
                .as_array()?
                .iter()
                .filter(|r| r["state"]["mode"] == "ESTOPPED")
                .count();
            (stopped == 4).then_some(())
        })
        .await;
    let runs = fleet.executions();
    assert_eq!(runs.len(), 4, "{runs:?}");
    fleet.assert_server_alive();
}

/// Waits on a WebSocket until a `task_update` shows task `id` in `status`.
async fn wait_ws_task_status(
    http: &str,
    id: &str,
    status: &str,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("websocket");
    let _ = ready.send(());
    tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if v["type"] == "task_update" && v["task"]["id"] == id && v["task"]["status"] == status
            {
                return;
            }
        }
        panic!("websocket closed");
    })
    .await
    .unwrap_or_else(|_| panic!("no task_update {status} for {id} on the follower's websocket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_commands_are_carried_out_by_the_leader() {
    let (url, db) = fresh_pg_database().await;
    let dir = temp_dir("replicas-follower");
    let router = spawn_router(&[], false).await;
    let a = Replica::start("a", &router.endpoint, &url, &dir).await;
    wait_for(DEADLINE, "replica a to lead", || a.leads()).await;
    let b = Replica::start("b", &router.endpoint, &url, &dir).await;
    let _agents = spawn_robots(&dir, &router, 2, [&a, &b]).await;
    let post = |r: &Replica, path: &str| {
        let req = r.client.post(r.url(path)).json(&json!({}));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A long task created on the follower, canceled on the follower.
    let (status, t) = b
        .post_task(
            "far",
            &json!({"robot_id": "r1", "target": {"x": 40.0, "y": 10.0}}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{t}");
    let id = task_id(&t);
    wait_for(DEADLINE, "the task running", || async {
        b.get(&format!("/api/tasks/{id}")).await["status"] == "ACTIVE"
    })
    .await;
    // The follower's dashboard sees the leader's changes to it.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let seen = tokio::spawn({
        let (http, id) = (b.http.clone(), id.clone());
        async move { wait_ws_task_status(&http, &id, "CANCELED", ready_tx).await }
    });
    ready_rx.await.unwrap();
    let (status, body) = post(&b, &format!("/api/tasks/{id}/cancel")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    wait_for(DEADLINE, "the task canceled", || async {
        b.get(&format!("/api/tasks/{id}")).await["status"] == "CANCELED"
    })
    .await;
    seen.await.unwrap();
    // Refusals come back from the leader as the leader would give them.
    let (status, body) = post(&b, &format!("/api/tasks/{id}/cancel")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("INVALID_STATE")),
        "{body}"
    );
    let (status, body) = post(&b, "/api/tasks/no-such-task/cancel").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("TASK_NOT_FOUND")),
        "{body}"
    );

    // The fleet e-stop through the follower: it stops the robots itself, the leader keeps it.
    let sent_before = b.metric("fms_zenoh_commands_sent_total").await.unwrap();
    let (status, body) = post(&b, "/api/fleet/emergency-stop").await;
    assert_eq!((status, body["robots"].as_u64()), (200, Some(2)), "{body}");
    wait_for(DEADLINE, "both robots e-stopped", || async {
        b.get("/api/robots").await.as_array().is_some_and(|v| {
            v.iter()
                .filter(|r| r["state"]["mode"] == "ESTOPPED")
                .count()
                == 2
        })
    })
    .await;
    for r in [&a, &b] {
        wait_for(DEADLINE, "the e-stop shown by both replicas", || async {
            r.get("/api/fleet/status").await["estop_engaged"] == true
        })
        .await;
    }
    let (status, body) = post(&b, "/api/robots/r1/emergency-stop/release").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("INVALID_STATE")),
        "{body}"
    );
    let (status, body) = post(&b, "/api/fleet/emergency-stop/release").await;
    assert_eq!(status, 200, "{body}");
    wait_for(DEADLINE, "both robots released", || async {
        b.get("/api/robots").await.as_array().is_some_and(|v| {
            v.iter()
                .filter(|r| r["state"]["mode"] == "ESTOPPED")
                .count()
                == 0
        })
    })
    .await;
    // The follower itself sent only the e-stop, one per robot; the leader did the rest.
    assert_eq!(
        b.metric("fms_zenoh_commands_sent_total").await,
        Some(sent_before + 2.0)
    );
    let audit = a.get("/api/audit?limit=50").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in ["task.create", "task.cancel", "fleet.estop", "fleet.release"] {
        assert!(
            actions.contains(&want),
            "{want} missing from the audit: {actions:?}"
        );
    }
    assert!(a.leads().await && !b.leads().await);
    drop(a);
    drop(b);
    drop_pg_database(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}
