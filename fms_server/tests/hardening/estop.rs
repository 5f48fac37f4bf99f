//! Hardening: the e-stop never waits for the store (a full disk), and a task sent right
//! after an e-stop waits for the release instead of spending its attempts.

use std::time::Duration;

use serde_json::json;

use crate::store::Tmpfs;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_right_after_an_estop_waits_for_the_release() {
    let fleet = Fleet::start(1).await;
    let (code, body) = fleet.post("/api/robots/r1/emergency-stop", json!({})).await;
    assert_eq!(code, 200, "{body}");
    // At once: the robot's state does not show the e-stop yet.
    let (code, t) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 2.0, "y": 1.0}}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    let id = task_id(&t);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, task) = fleet.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(
        (task["status"].as_str(), task["attempts"].as_u64()),
        (Some("QUEUED"), Some(0)),
        "the task burnt out on the e-stopped robot: {task}"
    );
    let why = task["history"].to_string();
    assert!(why.contains("emergency"), "no reason shown: {task}");

    let (code, _) = fleet
        .post("/api/robots/r1/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200);
    let done = fleet.wait_task(&id, "COMPLETED").await;
    assert_eq!(done["attempts"].as_u64(), Some(1), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_stop_the_estop() {
    let fs = Tmpfs::mount("estop-full-disk", 4096);
    let data = fs.path().display().to_string();
    let mut fleet =
        Fleet::start_configured(2, "estop-full", None, &[], "", &["--data-dir", &data]).await;
    let (code, t) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 40.0, "y": 10.0}}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    fleet.wait_task(&task_id(&t), "ACTIVE").await;

    fs.fill();
    // The store refuses writes now: a new task cannot be recorded.
    let (code, body) = fleet
        .post("/api/tasks", json!({"target": {"x": 1.0, "y": 1.0}}))
        .await;
    assert!(
        code >= 500,
        "a task was created on a full disk: {code} {body}"
    );

    // One robot's e-stop reaches it, and the API says it was not persisted.
    let (code, body) = fleet.post("/api/robots/r1/emergency-stop", json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["warning"].is_string(), "no warning: {body}");
    fleet
        .wait("r1 ESTOPPED on a full disk", || async {
            (fleet.robot("r1").await["state"]["mode"] == "ESTOPPED").then_some(())
        })
        .await;

    // The fleet e-stop too.
    let (code, body) = fleet.post("/api/fleet/emergency-stop", json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["warning"].is_string(), "no warning: {body}");
    fleet
        .wait("every robot ESTOPPED on a full disk", || async {
            let robots = fleet.get("/api/robots").await.1;
            robots
                .as_array()?
                .iter()
                .all(|r| r["state"]["mode"] == "ESTOPPED")
                .then_some(())
        })
        .await;
    assert_eq!(fleet.metric("fms_estop_unpersisted").await, 1.0);
    assert!(fleet.metric("fms_store_write_failures_total").await >= 1.0);
    let status = fleet.get("/api/fleet/status").await.1;
    assert_eq!(status["estop_engaged"], true, "{status}");

    // Room again: the e-stop is persisted without a restart...
    fs.free();
    fleet
        .wait("the e-stop persisted once the disk has room", || async {
            (fleet.metric("fms_estop_unpersisted").await == 0.0).then_some(())
        })
        .await;
    // ...so a restart finds it engaged.
    fleet.crash_and_restart_server().await;
    fleet
        .wait("the fleet e-stop survives the restart", || async {
            let status = fleet.get("/api/fleet/status").await.1;
            (status["estop_engaged"] == true).then_some(())
        })
        .await;
    let (code, body) = fleet
        .post("/api/fleet/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.get("warning").is_none(), "{body}");
    drop(fleet);
    drop(fs);
}
