//! The end-to-end harness: starts real `fms_server` and `fms_agent` processes on free
//! loopback ports, talks to them over HTTP, and tidies up after itself.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn agent_bin() -> PathBuf {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_fms_server"));
    let agent = server.with_file_name(format!("fms_agent{}", std::env::consts::EXE_SUFFIX));
    assert!(
        agent.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        agent.display()
    );
    agent
}

/// How [`spawn_server_with`] starts `fms_server`, beyond its arguments.
pub struct ServerOpts<'a> {
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// The server's `--log-level`.
    pub log_level: &'a str,
    /// Pipe the server's stderr (its log) so the test can read it from the returned `Child`;
    /// otherwise it is inherited.
    pub pipe_stderr: bool,
}

impl Default for ServerOpts<'_> {
    fn default() -> Self {
        ServerOpts {
            env: &[],
            log_level: "warn",
            pipe_stderr: false,
        }
    }
}

/// Starts `fms_server` with its embedded router on `zenoh`; returns it and its HTTP address
/// once it prints its ready line (printed after Zenoh is up).
pub async fn spawn_server(zenoh: &str, extra: &[String]) -> (Child, String) {
    spawn_server_with(zenoh, extra, ServerOpts::default()).await
}

/// As [`spawn_server`], with extra environment variables, another log level or stderr piped.
pub async fn spawn_server_with(
    zenoh: &str,
    extra: &[String],
    opts: ServerOpts<'_>,
) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fms_server"));
    command
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--zenoh-listen",
            zenoh,
        ])
        .args([
            "--frontend-dir",
            "/nonexistent",
            "--log-level",
            opts.log_level,
        ])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("ZENOH_ENDPOINT")
        .envs(opts.env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if opts.pipe_stderr {
        command.stderr(Stdio::piped());
    }
    let mut server = command.spawn().expect("start fms_server");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let http = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("fms_server listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                return url.trim_start_matches("http://").to_owned();
            }
        }
        panic!("fms_server exited before listening");
    })
    .await
    .expect("fms_server did not start");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (server, http)
}

/// A Zenoh client session connected to the router at `endpoint` only (no scouting).
pub async fn zenoh_client(endpoint: &str) -> zenoh::Session {
    let mut cfg = zenoh::Config::default();
    cfg.insert_json5("mode", "\"client\"").unwrap();
    cfg.insert_json5("connect/endpoints", &format!("[\"{endpoint}\"]"))
        .unwrap();
    cfg.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    zenoh::open(cfg).await.unwrap()
}

/// A fresh, empty directory for one test's files.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fms-e2e-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Fleet {
    pub server: Child,
    pub http: String,
    pub zenoh: String,
    /// Arguments the server is (re)started with: where its store lives, its config.
    pub server_args: Vec<String>,
    pub dir: PathBuf,
    pub agents: Vec<(String, Child)>,
    pub client: reqwest::Client,
    /// API key sent with every request (when the server requires authentication).
    pub key: Option<String>,
}

/// Creates an API key with `fms_server keys create` on the store `server_args` name.
pub fn create_key(server_args: &[String], name: &str, role: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fms_server"))
        .args(server_args)
        .args(["keys", "create", "--name", name, "--role", role])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run fms_server keys create");
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Fleet {
    /// Starts a server with its embedded router on free loopback ports, plus `n` agents
    /// `r1..rn` spaced 2 m apart, and waits until all are ONLINE.
    pub async fn start(n: usize) -> Fleet {
        Self::start_with(n, "sqlite", None, &[]).await
    }

    /// Starts a server (store: a SQLite file in a fresh directory, or the given
    /// `database_url`; optional TOML config) and `n` agents with extra agent arguments.
    pub async fn start_with(
        n: usize,
        tag: &str,
        database_url: Option<&str>,
        agent_args: &[&str],
    ) -> Fleet {
        Self::start_configured(n, tag, database_url, agent_args, "", &[]).await
    }

    /// As `start_with`, plus TOML appended to the server's config file and extra server flags.
    pub async fn start_configured(
        n: usize,
        tag: &str,
        database_url: Option<&str>,
        agent_args: &[&str],
        toml: &str,
        server_extra: &[&str],
    ) -> Fleet {
        let dir = temp_dir(tag);
        // The store lives in the fleet's directory unless the caller names a data dir.
        let mut server_args = Vec::new();
        if !server_extra.contains(&"--data-dir") {
            server_args.extend(["--data-dir".to_owned(), dir.display().to_string()]);
        }
        if let Some(url) = database_url {
            server_args.extend(["--database-url".to_owned(), url.to_owned()]);
        }
        let config = dir.join("server.toml");
        let text = format!("{toml}\n[dispatch]\noffline_grace_ms = 2000\n");
        if std::fs::write(&config, text).is_ok() {
            server_args.extend(["--config".to_owned(), config.display().to_string()]);
        }
        server_args.extend(server_extra.iter().map(|s| s.to_string()));
        // With authentication on, the harness signs in as an admin created beforehand.
        let key = server_extra
            .contains(&"--auth")
            .then(|| create_key(&server_args, "harness", "admin"));
        let zenoh = format!("tcp/127.0.0.1:{}", free_port());
        let (server, http) = spawn_server(&zenoh, &server_args).await;
        let mut fleet = Fleet {
            server,
            http,
            zenoh,
            server_args,
            dir,
            agents: Vec::new(),
            client: reqwest::Client::new(),
            key,
        };
        for i in 1..=n {
            fleet.add_agent(&format!("r{i}"), &format!("{},0,0", 2 * i), agent_args);
        }
        fleet.wait_online(n).await;
        fleet
    }

    /// Waits until `n` robots are ONLINE and have reported state.
    pub async fn wait_online(&self, n: usize) {
        self.wait(&format!("{n} robots online"), || async {
            let robots = self.get("/api/robots").await.1;
            let online = robots
                .as_array()?
                .iter()
                .filter(|r| r["presence"] == "ONLINE" && r["state"].is_object())
                .count();
            (online == n).then_some(())
        })
        .await;
    }

    pub fn add_agent(&mut self, id: &str, pose: &str, extra: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("agent-{id}.log"))).unwrap();
        let child = Command::new(agent_bin())
            .args([
                "--robot-id",
                id,
                "--zenoh-endpoint",
                &self.zenoh,
                "--start-pose",
                pose,
            ])
            .args(if extra.contains(&"--rate") {
                &["--log-level", "info"][..]
            } else {
                &["--rate", "10", "--log-level", "info"][..]
            })
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start fms_agent");
        self.agents.push((id.to_owned(), child));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn authed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.header("x-api-key", k),
            None => r,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .authed(self.client.get(self.url(path)))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .authed(self.client.post(self.url(path)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls `check` every 100 ms until it returns Some or the deadline passes.
    pub async fn wait<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        self.wait_up_to(DEADLINE, what, check).await
    }

    pub async fn wait_up_to<T, F, Fut>(&self, deadline: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(start.elapsed() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server with SIGKILL and starts it again on the same store and router port.
    pub async fn crash_and_restart_server(&mut self) {
        self.server.start_kill().unwrap();
        self.server.wait().await.unwrap();
        let (server, http) = spawn_server(&self.zenoh, &self.server_args).await;
        self.server = server;
        self.http = http;
    }

    /// How many times each task id was executed, from the agents' logs.
    pub fn executions(&self) -> std::collections::HashMap<String, usize> {
        executions_in(&self.dir)
    }

    pub async fn count_status(&self, status: &str) -> usize {
        let list = self
            .get(&format!("/api/tasks?status={status}&limit=1000"))
            .await
            .1;
        list.as_array().map_or(0, |a| a.len())
    }

    pub async fn task_status(&self, id: &str) -> String {
        self.get(&format!("/api/tasks/{id}")).await.1["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub async fn wait_task(&self, id: &str, status: &str) -> Value {
        self.wait(&format!("task {id} {status}"), || async {
            let (_, t) = self.get(&format!("/api/tasks/{id}")).await;
            (t["status"] == status).then_some(t)
        })
        .await
    }

    pub async fn robot(&self, id: &str) -> Value {
        self.get(&format!("/api/robots/{id}")).await.1
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
    }

    pub fn assert_server_alive(&mut self) {
        assert!(
            self.server.try_wait().unwrap().is_none(),
            "fms_server exited"
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Keep the logs of a failed test; tidy up after a passing one.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How many times each task ran on the robots, from the logs of the agents started with
/// their log in `dir` (`agent-{id}.log`).
pub fn executions_in(dir: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut count = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_log = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("agent-") && n.ends_with(".log"));
        if !is_log {
            continue;
        }
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("executing task")) {
            let task = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("task_id="))
                .unwrap_or_else(|| panic!("no task_id in {line:?}"));
            *count.entry(task.to_owned()).or_insert(0) += 1;
        }
    }
    count
}

/// A fresh PostgreSQL database for one test (dropped by `drop_pg_database`).
pub async fn fresh_pg_database() -> (String, String) {
    use sqlx::Connection;
    let admin = std::env::var("FMS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
    let name = format!("fms_e2e_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.split('?').next().unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    (format!("{prefix}/{name}"), name)
}

pub async fn drop_pg_database(name: &str) {
    use sqlx::Connection;
    let admin = std::env::var("FMS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

pub fn task_id(t: &Value) -> String {
    t["id"].as_str().expect("task has an id").to_owned()
}

/// Starts `fms_server phone` as a client of `zenoh`; returns it and its HTTP address.
pub async fn spawn_phone(zenoh: &str) -> (Child, String) {
    spawn_phone_with(zenoh, &[]).await
}

pub async fn spawn_phone_with(zenoh: &str, extra: &[&str]) -> (Child, String) {
    let mut phone = Command::new(env!("CARGO_BIN_EXE_fms_server"))
        .args(["phone", "--bind", "127.0.0.1", "--port", "0"])
        .args(extra)
        .args(["--zenoh-endpoint", zenoh, "--frontend-dir", "/nonexistent"])
        .args(["--max-linear", "0.5", "--log-level", "warn"])
        .env_remove("ZENOH_ENDPOINT")
        .env_remove("PORT")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start fms_server phone");
    let mut lines = BufReader::new(phone.stdout.take().unwrap()).lines();
    let http = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("fms phone server listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                return url.trim_start_matches("http://").to_owned();
            }
        }
        panic!("fms_server phone exited before listening");
    })
    .await
    .expect("fms_server phone did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (phone, http)
}
