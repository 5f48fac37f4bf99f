//! E-stops reach legacy robots, which have no e-stop command: they get a cancel, their task
//! ends as the agents' does under an e-stop, and nothing is dispatched to them until the
//! release.

use std::time::Duration;

use serde_json::json;

use crate::legacy::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_estop_cancels_the_legacy_task_and_holds_the_robot_until_release() {
    let fleet = fleet(0, "legacy-estop").await;
    let _old = spawn_legacy(&fleet, "old", 0.0, 0.5).await;
    wait_legacy_online(&fleet, "old").await;
    let id = task_id(&create(&fleet, task_body(Some("old"), 40.0, 0.0)).await);
    wait_status(&fleet, &id, "ACTIVE").await;
    let (code, body) = fleet
        .post("/api/robots/old/emergency-stop", json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    let t = wait_status(&fleet, &id, "FAILED").await;
    assert!(
        t["error"].as_str().unwrap().contains("emergency stop"),
        "{t}"
    );
    let log = std::fs::read_to_string(fleet.dir.join("agent-old.log")).unwrap();
    assert!(log.contains(&format!("canceled task={id}")), "{log}");

    // A new task for it waits for the release.
    let next = task_id(&create(&fleet, task_body(Some("old"), 1.0, 0.0)).await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let t = fleet.get(&format!("/api/tasks/{next}")).await.1;
    assert_eq!(
        (t["status"].as_str(), t["attempts"].as_u64()),
        (Some("QUEUED"), Some(0)),
        "{t}"
    );
    assert_eq!(runs(&fleet, &next), 0);
    let (code, _) = fleet
        .post("/api/robots/old/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200);
    wait_status(&fleet, &next, "COMPLETED").await;
    assert_eq!((runs(&fleet, &id), runs(&fleet, &next)), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_estop_stops_the_legacy_robot_beside_the_agents() {
    let fleet = fleet(1, "legacy-fleet-estop").await;
    let _old = spawn_legacy(&fleet, "old", -6.0, 0.5).await;
    wait_legacy_online(&fleet, "old").await;
    let id = task_id(&create(&fleet, task_body(Some("old"), -40.0, 0.0)).await);
    wait_status(&fleet, &id, "ACTIVE").await;
    let (code, body) = fleet.post("/api/fleet/emergency-stop", json!({})).await;
    assert_eq!(code, 200, "{body}");
    let t = wait_status(&fleet, &id, "FAILED").await;
    assert!(
        t["error"].as_str().unwrap().contains("emergency stop"),
        "{t}"
    );
    fleet
        .wait("r1 e-stopped", || async {
            (fleet.robot("r1").await["state"]["mode"] == "ESTOPPED").then_some(())
        })
        .await;
    // Nothing is dispatched while it holds, to either robot.
    let next = task_id(&create(&fleet, task_body(Some("old"), -5.0, 0.0)).await);
    let other = task_id(&create(&fleet, task_body(None, -7.0, 0.0)).await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for t in [&next, &other] {
        assert_eq!(fleet.task_status(t).await, "QUEUED");
        assert_eq!(runs(&fleet, t), 0);
    }
    let (code, _) = fleet
        .post("/api/fleet/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200);
    wait_status(&fleet, &next, "COMPLETED").await;
    wait_status(&fleet, &other, "COMPLETED").await;
    for t in [&id, &next, &other] {
        assert_eq!(runs(&fleet, t), 1, "task {t}");
    }
}
