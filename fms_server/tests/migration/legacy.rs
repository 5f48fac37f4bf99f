//! Starting the Python legacy robot beside a fleet, and what the tests ask of it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

/// Deadline for what waits on the presence timeouts or a server restart.
pub const SLOW: Duration = Duration::from_secs(90);

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

/// A fleet of `agents` mock robots with the presence timeouts shortened (a legacy robot
/// that stops talking is OFFLINE after 4 s, its task requeued 2 s later).
pub async fn fleet(agents: usize, tag: &str) -> Fleet {
    Fleet::start_configured(
        agents,
        tag,
        None,
        &[],
        "[presence]\noffline_after_ms = 4000\n",
        &[],
    )
    .await
}

/// Starts the Python legacy robot `id` at (x, 0) driving at `speed` m/s, publishing at 5 Hz;
/// it logs the tasks it runs to `agent-{id}.log` in the fleet's directory, where
/// `Fleet::executions` counts them. Returns once it is subscribed.
pub async fn spawn_legacy(fleet: &Fleet, id: &str, x: f64, speed: f64) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/legacy_robot.py");
    let log = fleet.dir.join(format!("agent-{id}.log"));
    let mut child = Command::new(zenoh_python())
        .arg(script)
        .args(["--id", id, "--connect", &fleet.zenoh, "--rate", "5"])
        .args(["--x", &x.to_string(), "--speed", &speed.to_string()])
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python legacy robot");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("legacy robot ready") {
                return;
            }
        }
        panic!("the legacy robot exited before it was ready");
    })
    .await
    .expect("the legacy robot did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Waits until the server lists `id` as an ONLINE legacy robot whose battery it has heard.
/// The split keys arrive separately: until `state/battery` comes in, the synthesized
/// state says 0 % and a task for the robot is refused as LOW_BATTERY.
pub async fn wait_legacy_online(fleet: &Fleet, id: &str) {
    fleet
        .wait_up_to(SLOW, &format!("legacy robot {id} online"), || async {
            let r = fleet.robot(id).await;
            let battery = r["state"]["battery"]["percentage"].as_f64().unwrap_or(0.0);
            (r["presence"] == "ONLINE" && r["legacy"] == true && battery > 0.0).then_some(())
        })
        .await;
}

/// Creates a task (our API shape) and returns it; panics unless it was created.
pub async fn create(fleet: &Fleet, body: Value) -> Value {
    let (code, t) = fleet.post("/api/tasks", body).await;
    assert_eq!(code, 201, "{t}");
    t
}

/// A task for `robot` (or any robot, with None) to (x, y).
pub fn task_body(robot: Option<&str>, x: f64, y: f64) -> Value {
    match robot {
        Some(r) => json!({"robot_id": r, "target": {"x": x, "y": y}}),
        None => json!({"target": {"x": x, "y": y}}),
    }
}

/// Waits (up to `SLOW`) until the task has `status`.
pub async fn wait_status(fleet: &Fleet, id: &str, status: &str) -> Value {
    fleet
        .wait_up_to(SLOW, &format!("task {id} {status}"), || async {
            let (_, t) = fleet.get(&format!("/api/tasks/{id}")).await;
            (t["status"] == status).then_some(t)
        })
        .await
}

/// How many times the task's history reached `status`.
pub fn times_in_history(task: &Value, status: &str) -> usize {
    task["history"]
        .as_array()
        .map_or(0, |h| h.iter().filter(|e| e["status"] == status).count())
}

/// How many times the robots ran the task (their logs).
pub fn runs(fleet: &Fleet, id: &str) -> usize {
    fleet.executions().get(id).copied().unwrap_or(0)
}
