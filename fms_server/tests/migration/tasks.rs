//! A legacy robot takes tasks like any robot: named or by auto-dispatch, canceled by task
//! or by robot; tasks it cannot run are refused or go to another robot.

use serde_json::json;

use crate::legacy::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completes_on_the_legacy_robot_and_on_a_mock_robot() {
    let fleet = fleet(1, "legacy-tasks").await;
    let _old = spawn_legacy(&fleet, "old", -4.0, 2.0).await;
    wait_legacy_online(&fleet, "old").await;

    let on_old = task_id(&create(&fleet, task_body(Some("old"), -2.0, 1.0)).await);
    let on_r1 = task_id(&create(&fleet, task_body(Some("r1"), 3.0, 1.0)).await);
    let done = wait_status(&fleet, &on_old, "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "old");
    assert_eq!(times_in_history(&done, "ACTIVE"), 1, "{done}");
    assert_eq!(times_in_history(&done, "COMPLETED"), 1, "{done}");
    wait_status(&fleet, &on_r1, "COMPLETED").await;
    // The legacy robot drove there.
    fleet
        .wait("the legacy robot at its target", || async {
            let pose = fleet.robot("old").await["state"]["pose"].clone();
            let (x, y) = (pose["x"].as_f64()?, pose["y"].as_f64()?);
            ((x + 2.0).abs() < 0.01 && (y - 1.0).abs() < 0.01).then_some(())
        })
        .await;
    // A second task on the same robot: it is free again after COMPLETED.
    let again = task_id(&create(&fleet, task_body(Some("old"), -3.0, 0.0)).await);
    wait_status(&fleet, &again, "COMPLETED").await;
    // The Python FMS's own task body, as its clients send it, on both kinds of robot.
    let mut old_shape = Vec::new();
    for (robot, x) in [("old", -2.5), ("r1", 2.5)] {
        let created = create(
            &fleet,
            json!({"robot_id": robot, "target_position": {"x": x, "y": 0.5, "z": 0.0}, "priority": "high"}),
        )
        .await;
        assert_eq!(created["task_id"], created["id"], "{created}");
        assert_eq!(created["robot_id"], robot, "{created}");
        old_shape.push(task_id(&created));
    }
    for id in &old_shape {
        wait_status(&fleet, id, "COMPLETED").await;
    }
    for id in [&on_old, &on_r1, &again, &old_shape[0], &old_shape[1]] {
        assert_eq!(
            runs(&fleet, id),
            1,
            "task {id} ran {} times",
            runs(&fleet, id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_dispatch_reaches_the_legacy_robot() {
    let fleet = fleet(1, "legacy-auto").await;
    let _old = spawn_legacy(&fleet, "old", -6.0, 2.0).await;
    wait_legacy_online(&fleet, "old").await;
    // r1 stands at x = 2: the task next to the legacy robot goes to it, the next one to r1.
    let near_old = task_id(&create(&fleet, task_body(None, -7.0, 0.0)).await);
    let near_r1 = task_id(&create(&fleet, task_body(None, 3.0, 0.0)).await);
    let a = wait_status(&fleet, &near_old, "COMPLETED").await;
    let b = wait_status(&fleet, &near_r1, "COMPLETED").await;
    assert_eq!(
        (&a["assigned_robot"], &b["assigned_robot"]),
        (&json!("old"), &json!("r1"))
    );
    assert_eq!((runs(&fleet, &near_old), runs(&fleet, &near_r1)), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_a_legacy_robot_cannot_run_are_refused_or_go_elsewhere() {
    let fleet = fleet(1, "legacy-refuse").await;
    let _old = spawn_legacy(&fleet, "old", -6.0, 2.0).await;
    wait_legacy_online(&fleet, "old").await;
    let waypoints = json!([{"x": -5.0, "y": 0.0}, {"x": -4.0, "y": 0.0}]);
    let (code, body) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "old", "waypoints": waypoints}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("legacy"),
        "{body}"
    );
    let (code, body) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "old", "target": {"x": -5.0, "y": 0.0}, "parameters": {"action": "charge"}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    // Without a robot named, the waypoints go to r1, although the legacy robot is closer.
    let t = task_id(&create(&fleet, json!({"waypoints": waypoints})).await);
    let done = wait_status(&fleet, &t, "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "r1", "{done}");
    assert_eq!(runs(&fleet, &t), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_task_is_canceled_by_task_and_by_robot() {
    let fleet = fleet(0, "legacy-cancel").await;
    let _old = spawn_legacy(&fleet, "old", 0.0, 0.5).await;
    wait_legacy_online(&fleet, "old").await;
    for by_robot in [false, true] {
        let id = task_id(&create(&fleet, task_body(Some("old"), 40.0, 0.0)).await);
        wait_status(&fleet, &id, "ACTIVE").await;
        let (code, body) = if by_robot {
            fleet.post("/api/robots/old/cancel", json!({})).await
        } else {
            fleet
                .post(&format!("/api/tasks/{id}/cancel"), json!({}))
                .await
        };
        assert!(code < 300, "{code} {body}");
        let t = wait_status(&fleet, &id, "CANCELED").await;
        assert_eq!(times_in_history(&t, "CANCELED"), 1, "{t}");
        assert_eq!(runs(&fleet, &id), 1);
        let log = std::fs::read_to_string(fleet.dir.join("agent-old.log")).unwrap();
        assert!(log.contains(&format!("canceled task={id}")), "{log}");
    }
}
