//! Faults around a legacy robot: it dies mid-task, the server is killed mid-task, and
//! malformed old messages arrive.

use std::time::Duration;

use crate::legacy::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_robot_killed_mid_task_loses_it_to_another_robot() {
    let fleet = fleet(1, "legacy-offline").await;
    let mut old = spawn_legacy(&fleet, "old", -10.0, 0.2).await;
    wait_legacy_online(&fleet, "old").await;
    // 4 m from the legacy robot, 8 m from r1 (at x = 2): the legacy robot takes it.
    let id = task_id(&create(&fleet, task_body(None, -6.0, 0.0)).await);
    let t = wait_status(&fleet, &id, "ACTIVE").await;
    assert_eq!(t["assigned_robot"], "old", "{t}");
    old.start_kill().unwrap();
    old.wait().await.unwrap();
    let done = wait_status(&fleet, &id, "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "r1", "{done}");
    let history = done["history"].to_string();
    assert!(history.contains("robot offline"), "{history}");
    assert_eq!(times_in_history(&done, "COMPLETED"), 1);
    assert_eq!(runs(&fleet, &id), 2, "once on each robot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_task_ends_the_legacy_task_exactly_once() {
    let mut fleet = fleet(0, "legacy-restart").await;
    let _old = spawn_legacy(&fleet, "old", 0.0, 0.5).await;
    wait_legacy_online(&fleet, "old").await;
    // 16 s of driving: it is still running when the server is back.
    let id = task_id(&create(&fleet, task_body(Some("old"), 8.0, 0.0)).await);
    wait_status(&fleet, &id, "ACTIVE").await;
    fleet.crash_and_restart_server().await;
    let done = wait_status(&fleet, &id, "COMPLETED").await;
    assert_eq!(times_in_history(&done, "COMPLETED"), 1, "{done}");
    assert_eq!(runs(&fleet, &id), 1);
    // The robot came back to the restarted server and takes the next task.
    wait_legacy_online(&fleet, "old").await;
    let next = task_id(&create(&fleet, task_body(Some("old"), 4.0, 0.0)).await);
    wait_status(&fleet, &next, "COMPLETED").await;
    // Nothing is sent again afterwards: each task ran once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!((runs(&fleet, &id), runs(&fleet, &next)), (1, 1));
    fleet.assert_server_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_old_messages_are_counted_and_change_nothing() {
    let mut fleet = fleet(0, "legacy-malformed").await;
    let _old = spawn_legacy(&fleet, "old", 0.0, 0.5).await;
    wait_legacy_online(&fleet, "old").await;
    let id = task_id(&create(&fleet, task_body(Some("old"), 6.0, 0.0)).await);
    wait_status(&fleet, &id, "ACTIVE").await;
    let rejected = fleet.metric("fms_zenoh_messages_rejected_total").await;
    let z = zenoh_client(&fleet.zenoh).await;
    let bad: [(&str, &str); 7] = [
        ("state/status", "{not json"),
        ("state/status", r#"{"status": 5}"#),
        ("state/status", r#"{"status": "DANCING", "timestamp": 1.0}"#),
        (
            "state/status",
            r#"{"status": "COMPLETED", "timestamp": "now"}"#,
        ),
        ("state/status", r#"{"status": "COMPLETED", "message": 7}"#),
        ("state/battery", r#"{"percentage": "full"}"#),
        (
            "state/pose",
            r#"{"position": {"x": "a", "y": 0}, "orientation": {}}"#,
        ),
    ];
    for (topic, payload) in bad {
        z.put(format!("fms/robot/old/{topic}"), payload)
            .await
            .unwrap();
    }
    fleet
        .wait("the malformed messages counted", || async {
            let now = fleet.metric("fms_zenoh_messages_rejected_total").await;
            (now >= rejected + bad.len() as f64).then_some(())
        })
        .await;
    fleet.assert_server_alive();
    let t = fleet.get(&format!("/api/tasks/{id}")).await.1;
    assert_eq!(
        t["status"], "ACTIVE",
        "a malformed message changed the task: {t}"
    );
    let done = wait_status(&fleet, &id, "COMPLETED").await;
    assert_eq!(times_in_history(&done, "COMPLETED"), 1, "{done}");
    assert_eq!(runs(&fleet, &id), 1);
}
