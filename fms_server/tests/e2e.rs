//! End-to-end tests: a real `fms_server` process and real `fms_agent --interface mock`
//! processes talking over Zenoh on loopback, driven through the HTTP and WebSocket API.
//!
//! The agent binary must be built first (`cargo build --workspace --bins`, as the README's
//! test command does).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_posted_over_http_reaches_completed() {
    let fleet = Fleet::start(3).await;
    assert_eq!(
        fleet.get("/api/robots").await.1.as_array().unwrap().len(),
        3
    );

    // Named robot.
    let (code, t) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r2", "target": {"x": 4.0, "y": 1.5}}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    let done = fleet.wait_task(&task_id(&t), "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "r2");
    let history: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["QUEUED", "ASSIGNED", "ACTIVE", "COMPLETED"]);
    let r2 = fleet.robot("r2").await;
    let (x, y) = (
        r2["state"]["pose"]["x"].as_f64().unwrap(),
        r2["state"]["pose"]["y"].as_f64().unwrap(),
    );
    assert!((x - 4.0).hypot(y - 1.5) < 0.2, "r2 ended at ({x}, {y})");

    // Auto-dispatched waypoint task goes to the nearest robot (r3 starts at x=6).
    let (code, t) = fleet
        .post(
            "/api/tasks",
            json!({"waypoints": [{"x": 7.0, "y": 0.0}, {"x": 7.0, "y": 1.0}], "priority": "high"}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    let done = fleet.wait_task(&task_id(&t), "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "r3");

    let status = fleet.get("/api/fleet/status").await.1;
    assert_eq!(status["total"], 3);
    assert_eq!(status["online"], 3);
    assert!(status["completed_today"].as_u64().unwrap() >= 2, "{status}");
    assert!(fleet.metric("fms_tasks_total{status=\"COMPLETED\"}").await >= 2.0);
    assert!(
        fleet
            .metric("fms_zenoh_messages_total{kind=\"state\"}")
            .await
            > 0.0
    );
    let listed = fleet.get("/api/tasks?status=COMPLETED&robot=r2").await.1;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_task_and_a_queued_one() {
    let fleet = Fleet::start(1).await;
    let (_, long) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 60.0, "y": 0.0}}),
        )
        .await;
    let long = task_id(&long);
    fleet.wait_task(&long, "ACTIVE").await;
    // A second task for the same robot queues behind the first.
    let (code, queued) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 0.0, "y": 5.0}}),
        )
        .await;
    assert_eq!((code, queued["status"].as_str()), (201, Some("QUEUED")));
    let (code, c) = fleet
        .post(
            &format!("/api/tasks/{}/cancel", task_id(&queued)),
            json!({}),
        )
        .await;
    assert_eq!((code, c["status"].as_str()), (200, Some("CANCELED")), "{c}");

    let (code, _) = fleet.post("/api/robots/r1/cancel", json!({})).await;
    assert_eq!(code, 200);
    let canceled = fleet.wait_task(&long, "CANCELED").await;
    assert!(canceled["progress"].as_f64().unwrap() < 1.0);
    fleet
        .wait("r1 idle and still", || async {
            let s = fleet.robot("r1").await["state"].clone();
            (s["mode"] == "IDLE" && s["velocity"]["linear"] == 0.0).then_some(())
        })
        .await;
    // Cancelling a finished task is an invalid state, not a crash.
    let (code, e) = fleet
        .post(&format!("/api/tasks/{long}/cancel"), json!({}))
        .await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("INVALID_STATE")),
        "{e}"
    );
    assert_eq!(fleet.task_status(&task_id(&queued)).await, "CANCELED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_stop_stops_every_robot_until_released() {
    let fleet = Fleet::start(3).await;
    let mut running = Vec::new();
    for r in ["r1", "r2"] {
        let (_, t) = fleet
            .post(
                "/api/tasks",
                json!({"robot_id": r, "target": {"x": 40.0, "y": 10.0}}),
            )
            .await;
        running.push(task_id(&t));
    }
    for t in &running {
        fleet.wait_task(t, "ACTIVE").await;
    }
    let (code, r) = fleet.post("/api/fleet/emergency-stop", json!({})).await;
    assert_eq!((code, r["robots"].as_u64()), (200, Some(3)));
    let stopped_at = fleet
        .wait("every robot ESTOPPED and still", || async {
            let robots = fleet.get("/api/robots").await.1;
            let all = robots.as_array()?.iter().all(|r| {
                r["state"]["mode"] == "ESTOPPED" && r["state"]["velocity"]["linear"] == 0.0
            });
            all.then_some(robots)
        })
        .await;
    for t in &running {
        let task = fleet.wait_task(t, "FAILED").await;
        assert!(
            task["error"].as_str().unwrap().contains("emergency stop"),
            "{task}"
        );
    }
    // New work waits while the fleet is stopped, and nobody moves.
    let (_, waiting) = fleet
        .post("/api/tasks", json!({"target": {"x": 1.0, "y": 1.0}}))
        .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(fleet.task_status(&task_id(&waiting)).await, "QUEUED");
    for before in stopped_at.as_array().unwrap() {
        let after = fleet.robot(before["id"].as_str().unwrap()).await;
        assert_eq!(
            before["state"]["pose"], after["state"]["pose"],
            "a robot moved while e-stopped"
        );
    }
    let status = fleet.get("/api/fleet/status").await.1;
    assert_eq!(
        (
            status["estop_engaged"].as_bool(),
            status["estopped"].as_u64()
        ),
        (Some(true), Some(3))
    );
    // One robot cannot be released while the fleet stop holds.
    let (code, e) = fleet
        .post("/api/robots/r1/emergency-stop/release", json!({}))
        .await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("INVALID_STATE")),
        "{e}"
    );

    let (code, _) = fleet
        .post("/api/fleet/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200);
    fleet.wait_task(&task_id(&waiting), "COMPLETED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_is_offline_within_3s_and_websocket_sees_it() {
    let mut fleet = Fleet::start(2).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", fleet.http))
        .await
        .unwrap();
    // The snapshot arrives first: a state_update per robot.
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "state_update", "{first}");

    let (_, agent) = fleet.agents.iter_mut().find(|(id, _)| id == "r1").unwrap();
    agent.start_kill().unwrap();
    let killed = Instant::now();
    let saw_event = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["type"] == "system_event" && v["event"] == "robot_offline" && v["robot_id"] == "r1"
            {
                return killed.elapsed();
            }
        }
        panic!("websocket closed");
    })
    .await
    .expect("no robot_offline on the WebSocket within 3 s");
    assert_eq!(fleet.robot("r1").await["presence"], "OFFLINE");
    assert!(killed.elapsed() < Duration::from_secs(3));
    eprintln!("robot_offline seen {saw_event:?} after kill");
    assert_eq!(fleet.robot("r2").await["presence"], "ONLINE");
    fleet.assert_server_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_zenoh_payloads_are_counted_and_bad_http_gets_4xx() {
    let mut fleet = Fleet::start(1).await;
    let z = zenoh_client(&fleet.zenoh).await;
    let garbage: [(&str, &[u8]); 9] = [
        ("fms/robot/evil/state", b"not json"),
        ("fms/robot/evil/state", b"{\"protocol\":1}"),
        ("fms/robot/evil/state", br#"{"protocol":1,"seq":1,"stamp_ms":1,"pose":{"x":0,"y":0},"velocity":{"linear":0,"angular":0},"battery":{"percentage":250},"mode":"IDLE"}"#),
        ("fms/robot/evil/state", br#"{"protocol":1,"seq":1,"stamp_ms":1,"pose":{"x":1e999,"y":0},"velocity":{"linear":0,"angular":0},"battery":{"percentage":50},"mode":"IDLE"}"#),
        ("fms/robot/evil/event", b"\xff\xfe"),
        ("fms/robot/evil/event", br#"{"epoch":1,"seq":1,"stamp_ms":1,"event":{"type":"task_teleported"}}"#),
        ("fms/robot/evil/state/pose", br#"{"position":{"x":"a"}}"#),
        ("fms/robot/evil/state/battery", br#"{"percentage":-5}"#),
        ("fms/robot/evil/state/status", br#"{"status":"dancing"}"#),
    ];
    for (key, payload) in garbage {
        z.put(key, payload.to_vec()).await.unwrap();
    }
    // Legacy robots speaking the split form are accepted.
    z.put(
        "fms/robot/old1/state/pose",
        br#"{"position":{"x":1.5,"y":2.5,"z":0},"orientation":{"x":0,"y":0,"z":0,"w":1}}"#.to_vec(),
    )
    .await
    .unwrap();
    z.put(
        "fms/robot/old1/state/battery",
        br#"{"percentage":64}"#.to_vec(),
    )
    .await
    .unwrap();
    z.put(
        "fms/robot/old1/state/status",
        br#"{"status":"charging"}"#.to_vec(),
    )
    .await
    .unwrap();
    z.put("fms/robot/old1/heartbeat", b"{}".to_vec())
        .await
        .unwrap();
    fleet
        .wait("9 rejected messages counted", || async {
            (fleet.metric("fms_zenoh_messages_rejected_total").await >= 9.0).then_some(())
        })
        .await;
    let old = fleet
        .wait("legacy robot merged", || async {
            let r = fleet.robot("old1").await;
            (r["state"]["mode"] == "CHARGING" && r["state"]["battery"]["percentage"] == 64.0)
                .then_some(r)
        })
        .await;
    assert_eq!(
        (old["legacy"].as_bool(), old["presence"].as_str()),
        (Some(true), Some("ONLINE"))
    );
    assert_eq!(old["state"]["pose"]["x"], 1.5);
    assert_eq!(
        fleet.robot("evil").await["error"]["code"],
        "ROBOT_NOT_FOUND"
    );

    let cases: Vec<(&str, &str, u16, &str)> = vec![
        ("/api/tasks", "{not json", 400, "VALIDATION_ERROR"),
        ("/api/tasks", "[]", 400, "VALIDATION_ERROR"),
        (
            "/api/tasks",
            r#"{"target":{"x":1,"y":2},"colour":"red"}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"target":{"x":1e400,"y":2}}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"target":{"x":5e6,"y":2}}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"target":{"x":1,"y":2},"waypoints":[{"x":1,"y":2}]}"#,
            400,
            "VALIDATION_ERROR",
        ),
        ("/api/tasks", r#"{"waypoints":[]}"#, 400, "VALIDATION_ERROR"),
        ("/api/tasks", r#"{}"#, 400, "VALIDATION_ERROR"),
        (
            "/api/tasks",
            r#"{"target":{"x":1,"y":2},"timeout_s":-1}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"target":{"x":1,"y":2},"priority":"whenever"}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"robot_id":"fms/**","target":{"x":1,"y":2}}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/tasks",
            r#"{"robot_id":"ghost","target":{"x":1,"y":2}}"#,
            404,
            "ROBOT_NOT_FOUND",
        ),
        ("/api/tasks/nope/cancel", "{}", 404, "TASK_NOT_FOUND"),
        ("/api/robots/ghost/cancel", "{}", 404, "ROBOT_NOT_FOUND"),
    ];
    for (path, body, code, err) in cases {
        let (got, v) = fleet.post_raw(path, body).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (code, Some(err)),
            "{path} {body}: {v}"
        );
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    for (path, code, err) in [
        ("/api/tasks/does-not-exist", 404, "TASK_NOT_FOUND"),
        ("/api/tasks?status=SLEEPING", 400, "VALIDATION_ERROR"),
        ("/api/tasks?limit=0", 400, "VALIDATION_ERROR"),
        ("/api/tasks?limit=lots", 400, "VALIDATION_ERROR"),
        ("/api/robots/a%20b", 400, "VALIDATION_ERROR"),
        ("/api/nothing-here", 404, "NOT_FOUND"),
    ] {
        let (got, v) = fleet.get(path).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (code, Some(err)),
            "{path}: {v}"
        );
    }
    // A robot that stops talking: ROBOT_OFFLINE for a task naming it.
    let (_, agent) = fleet.agents.iter_mut().find(|(id, _)| id == "r1").unwrap();
    agent.start_kill().unwrap();
    fleet
        .wait("r1 offline", || async {
            (fleet.robot("r1").await["presence"] == "OFFLINE").then_some(())
        })
        .await;
    let (code, v) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 1.0, "y": 1.0}}),
        )
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (409, Some("ROBOT_OFFLINE"))
    );

    let (code, health) = fleet.get("/healthz").await;
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
    fleet.assert_server_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_reconnect_and_the_fleet_estop_survives_a_server_restart() {
    let mut fleet = Fleet::start(2).await;
    let (code, _) = fleet.post("/api/fleet/emergency-stop", json!({})).await;
    assert_eq!(code, 200);
    fleet.crash_and_restart_server().await;
    // The agents find the router again by themselves, and the e-stop is still engaged.
    fleet.wait_online(2).await;
    assert_eq!(
        fleet.get("/api/fleet/status").await.1["estop_engaged"],
        true
    );
    let (_, t) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 1.0, "y": 1.0}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(fleet.task_status(&task_id(&t)).await, "QUEUED");
    for r in ["r1", "r2"] {
        assert_eq!(fleet.robot(r).await["state"]["mode"], "ESTOPPED");
    }
    let (code, _) = fleet
        .post("/api/fleet/emergency-stop/release", json!({}))
        .await;
    assert_eq!(code, 200);
    fleet.wait_task(&task_id(&t), "COMPLETED").await;
}

/// 5 agents, 50 tasks; the server is killed with SIGKILL mid-run and restarted on the same
/// store. Every task must end COMPLETED exactly once and run exactly once on the robots.
async fn crash_and_recover(database_url: Option<&str>, tag: &str) {
    let mut fleet = Fleet::start_with(5, tag, database_url, &["--max-speed", "3"]).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let body = json!({"target": {"x": 1.0 + (i % 7) as f64, "y": (i / 7) as f64 * 0.8}});
        let r = fleet
            .client
            .post(fleet.url("/api/tasks"))
            .header("Idempotency-Key", format!("crash-{i}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        ids.push(task_id(&r.json::<Value>().await.unwrap()));
    }
    fleet
        .wait_up_to(Duration::from_secs(90), "12 tasks completed", || async {
            (fleet.count_status("COMPLETED").await >= 12).then_some(())
        })
        .await;
    fleet.crash_and_restart_server().await;

    // The idempotency key outlives the crash: no second task for the same key.
    let r = fleet
        .client
        .post(fleet.url("/api/tasks"))
        .header("Idempotency-Key", "crash-0")
        .json(&json!({"target": {"x": 1.0, "y": 0.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(task_id(&r.json::<Value>().await.unwrap()), ids[0]);

    fleet
        .wait_up_to(
            Duration::from_secs(180),
            "all 50 tasks completed after the crash",
            || async { (fleet.count_status("COMPLETED").await == 50).then_some(()) },
        )
        .await;
    let all = fleet.get("/api/tasks?limit=1000").await.1;
    assert_eq!(all.as_array().unwrap().len(), 50, "a task was duplicated");
    for id in &ids {
        let t = fleet.get(&format!("/api/tasks/{id}")).await.1;
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
    }
    let runs = fleet.executions();
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "task {id} ran {:?} times on the robots",
            runs.get(id)
        );
    }
    assert_eq!(runs.values().sum::<usize>(), 50, "{runs:?}");
    fleet.assert_server_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_loses_and_duplicates_nothing_sqlite() {
    crash_and_recover(None, "crash-sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_loses_and_duplicates_nothing_postgres() {
    let (url, name) = fresh_pg_database().await;
    crash_and_recover(Some(&url), "crash-pg").await;
    drop_pg_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agents_task_is_requeued_to_another_robot() {
    let mut fleet = Fleet::start(3).await; // offline grace: 2 s
    let (_, t) = fleet
        .post("/api/tasks", json!({"target": {"x": 14.0, "y": 0.0}}))
        .await;
    let id = task_id(&t);
    let first = fleet.wait_task(&id, "ACTIVE").await["assigned_robot"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, agent) = fleet.agents.iter_mut().find(|(a, _)| *a == first).unwrap();
    agent.start_kill().unwrap();
    let done = fleet
        .wait_up_to(
            Duration::from_secs(60),
            "requeued task completed",
            || async {
                let (_, t) = fleet.get(&format!("/api/tasks/{id}")).await;
                (t["status"] == "COMPLETED").then_some(t)
            },
        )
        .await;
    assert_ne!(done["assigned_robot"].as_str(), Some(first.as_str()));
    assert_eq!(done["attempts"], 2);
    let notes: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["note"].as_str())
        .collect();
    assert!(notes.contains(&"robot offline"), "{notes:?}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn teleop_socket(phone: &str, operator: &str) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{phone}/ws/teleop?operator={operator}"))
            .await
            .unwrap();
    let hello: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["operator"], operator);
    ws
}

async fn drive(ws: &mut Ws, robot: &str, linear: f64) {
    use futures_util::SinkExt;
    let msg = json!({"type": "teleop", "robot_id": robot, "linear": linear, "angular": 0.0});
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        msg.to_string().into(),
    ))
    .await
    .unwrap();
}

/// The phone server turns a WebSocket joystick into `cmd/teleop`: the robot moves, one
/// operator at a time holds it, it stops by itself within 500 ms when input stops, and at
/// once when the phone's link drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_teleop_moves_a_robot_under_a_lease_and_it_stops_when_input_stops() {
    let fleet = Fleet::start(1).await;
    let (_phone, phone) = spawn_phone(&fleet.zenoh).await;
    let client = reqwest::Client::new();
    fleet
        .wait("the phone server lists r1", || async {
            let list: Value = client
                .get(format!("http://{phone}/api/robots"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (list.as_array()?.iter().any(|r| r["id"] == "r1")).then_some(())
        })
        .await;
    let x0 = fleet.robot("r1").await["state"]["pose"]["x"]
        .as_f64()
        .unwrap();

    // Alice drives r1 forward at 10 Hz for 1.5 s (asking 2 m/s: clamped to 0.5).
    let mut alice = teleop_socket(&phone, "alice").await;
    let mut bob = teleop_socket(&phone, "bob").await;
    let mut last_cmd_ms = 0;
    for i in 0..15 {
        drive(&mut alice, "r1", 2.0).await;
        last_cmd_ms = fms_msgs::unix_ms();
        if i == 5 {
            // Bob's commands are ignored while Alice holds the lease: he would reverse.
            drive(&mut bob, "r1", -0.5).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = fleet.robot("r1").await;
    assert_eq!(r["state"]["mode"], "TELEOP", "{r}");
    assert_eq!(r["state"]["teleop_operator"], "alice", "{r}");
    let speed = r["state"]["velocity"]["linear"].as_f64().unwrap();
    assert!(speed > 0.0 && speed <= 0.5 + 1e-9, "speed {speed}");
    let moved = r["state"]["pose"]["x"].as_f64().unwrap() - x0;
    assert!(moved > 0.3, "moved only {moved} m");

    // Input stops (no release): the robot stops by itself (400 ms dead-man).
    let stopped_at = fleet
        .wait("r1 stopped", || async {
            let r = fleet.robot("r1").await;
            (r["state"]["velocity"]["linear"].as_f64()? == 0.0)
                .then(|| r["state"]["stamp_ms"].as_u64())
                .flatten()
        })
        .await;
    let stop_ms = stopped_at.saturating_sub(last_cmd_ms);
    eprintln!("teleop: moved {moved:.2} m; stopped {stop_ms} ms after the last command");
    // 400 ms dead-man, plus at most one 100 ms state period before it shows: 500 ms.
    assert!(
        stop_ms <= 500,
        "stopped {stop_ms} ms after the last command"
    );

    // Alice drives again, then her link drops: the phone server releases r1 at once.
    drive(&mut alice, "r1", 0.3).await;
    fleet
        .wait("alice driving again", || async {
            let r = fleet.robot("r1").await;
            (r["state"]["mode"] == "TELEOP").then_some(())
        })
        .await;
    drop(alice);
    let dropped = Instant::now();
    fleet
        .wait_up_to(Duration::from_secs(2), "the lease freed", || async {
            let r = fleet.robot("r1").await;
            (r["state"]["teleop_operator"].is_null()
                && r["state"]["velocity"]["linear"].as_f64()? == 0.0)
                .then_some(())
        })
        .await;
    eprintln!(
        "teleop: link dropped, lease freed and stopped within {:?}",
        dropped.elapsed()
    );

    // Now Bob may drive.
    drive(&mut bob, "r1", 0.3).await;
    fleet
        .wait("bob holds r1", || async {
            let r = fleet.robot("r1").await;
            (r["state"]["teleop_operator"] == "bob").then_some(())
        })
        .await;

    // A robot that reports only twice a second still stops at the dead-man deadline: the
    // agent polls it then, not at its next state tick.
    let mut fleet = fleet;
    fleet.add_agent("slow", "0,4,0", &["--rate", "2"]);
    fleet.wait_online(2).await;
    let mut last = 0;
    for _ in 0..10 {
        drive(&mut bob, "slow", 0.4).await;
        last = fms_msgs::unix_ms();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = fleet
        .wait("slow stopped", || async {
            let r = fleet.robot("slow").await;
            (r["state"]["velocity"]["linear"].as_f64()? == 0.0
                && r["state"]["stamp_ms"].as_u64()? > last)
                .then(|| r["state"]["stamp_ms"].as_u64())
                .flatten()
        })
        .await;
    let stop_ms = stopped - last;
    eprintln!("teleop at 2 Hz state: stopped {stop_ms} ms after the last command");
    assert!(
        stop_ms <= 500,
        "stopped {stop_ms} ms after the last command"
    );
}

/// With authentication on: 401 without or with bad credentials, 403 for the wrong role,
/// JWT expiry enforced, every command audited with who did it, per-client rate limits with
/// headers and 429, 413 over the body limit, security headers, and a production config
/// that refuses to start without auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_roles_rate_limits_and_audit() {
    const SECRET: &str = "e2e-jwt-secret-that-is-long-enough-0123456789";
    let fleet = Fleet::start_configured(
        1,
        "auth",
        None,
        &[],
        "[rate_limit]\ntasks_per_min = 5\nfleet_per_min = 20\n",
        &["--auth", "true", "--jwt-secret", SECRET],
    )
    .await;
    let viewer = create_key(&fleet.server_args, "wall-screen", "viewer");
    let operator = create_key(&fleet.server_args, "op-anna", "operator");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, key: Option<(&str, &str)>| {
        let mut r = http.request(method, fleet.url(path));
        if let Some((header, value)) = key {
            r = r.header(header, value);
        }
        r
    };
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_owned();
    let send = |r: reqwest::RequestBuilder| async move {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    };
    use reqwest::Method;

    // No credentials, a wrong key, a malformed header: 401 in the envelope.
    let (s, h, b) = send(call(Method::GET, "/api/robots", None)).await;
    assert_eq!((s, code(&b).as_str()), (401, "UNAUTHORIZED"), "{b}");
    assert!(h.contains_key("www-authenticate"));
    let bad = "fms_0123456789ab_0123456789abcdef0123456789abcdef";
    let (s, _, b) = send(call(Method::GET, "/api/robots", Some(("x-api-key", bad)))).await;
    assert_eq!((s, code(&b).as_str()), (401, "UNAUTHORIZED"));
    let (s, _, _) = send(call(
        Method::GET,
        "/api/robots",
        Some(("authorization", "Basic eDp5")),
    ))
    .await;
    assert_eq!(s, 401);
    // Public endpoints stay open.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/info",
        "/api/openapi.json",
    ] {
        let (s, _, _) = send(call(Method::GET, path, None)).await;
        assert_eq!(s, 200, "{path}");
    }
    let (_, _, info) = send(call(Method::GET, "/api/info", None)).await;
    assert_eq!(info["auth_required"], true);

    // Viewer: reads, but no commands (403).
    let v = Some(("x-api-key", viewer.as_str()));
    let (s, h, b) = send(call(Method::GET, "/api/robots", v)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["x-ratelimit-limit"], "1200");
    let (s, _, b) =
        send(call(Method::POST, "/api/tasks", v).json(&json!({"target": {"x": 1, "y": 1}}))).await;
    assert_eq!((s, code(&b).as_str()), (403, "FORBIDDEN"), "{b}");
    let (_, _, me) = send(call(Method::GET, "/api/whoami", v)).await;
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("wall-screen"), Some("viewer"))
    );

    // Operator (as a bearer token): tasks yes, fleet e-stop no.
    let bearer = format!("Bearer {operator}");
    let o = Some(("authorization", bearer.as_str()));
    let (s, _, task) =
        send(call(Method::POST, "/api/tasks", o).json(&json!({"target": {"x": 2, "y": 1}}))).await;
    assert_eq!(s, 201, "{task}");
    let (s, _, b) = send(call(Method::POST, "/api/fleet/emergency-stop", o)).await;
    assert_eq!((s, code(&b).as_str()), (403, "FORBIDDEN"));

    // JWTs: a valid admin token works; an expired one is 401; a wrong secret is 401.
    let token = |ttl: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fms_server"))
            .args([
                "--jwt-secret",
                SECRET,
                "token",
                "--sub",
                "boss",
                "--role",
                "admin",
                "--ttl-s",
                ttl,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let admin = format!("Bearer {}", token("600"));
    let a = Some(("authorization", admin.as_str()));
    let (s, _, b) = send(call(Method::POST, "/api/fleet/emergency-stop", a)).await;
    assert_eq!(s, 200, "{b}");
    let (s, _, _) = send(call(Method::POST, "/api/fleet/emergency-stop/release", a)).await;
    assert_eq!(s, 200);
    let expired = format!("Bearer {}", token("0"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _, b) = send(call(
        Method::GET,
        "/api/robots",
        Some(("authorization", expired.as_str())),
    ))
    .await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (401, Some("the token has expired"))
    );

    // Every command is audited with who gave it.
    let (s, _, audit) = send(call(Method::GET, "/api/audit?limit=20", a)).await;
    assert_eq!(s, 200);
    let entries: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (actor, action) in [
        ("op-anna", "task.create"),
        ("boss", "fleet.estop"),
        ("boss", "fleet.release"),
        ("cli", "key.create"),
    ] {
        assert!(
            entries.iter().any(|(a, c)| a == actor && c == action),
            "{actor} {action} missing from {entries:?}"
        );
    }
    let (s, _, _) = send(call(Method::GET, "/api/audit", o)).await;
    assert_eq!(s, 403, "the audit is for admins");

    // Keys through the API: create, use, revoke, refused.
    let (s, _, created) =
        send(call(Method::POST, "/api/keys", a).json(&json!({"name": "tmp", "role": "viewer"})))
            .await;
    assert_eq!(s, 201, "{created}");
    let tmp = created["key"].as_str().unwrap().to_owned();
    let (s, _, _) = send(call(
        Method::GET,
        "/api/robots",
        Some(("x-api-key", tmp.as_str())),
    ))
    .await;
    assert_eq!(s, 200);
    let id = created["id"].as_str().unwrap();
    let (s, _, _) = send(call(Method::DELETE, &format!("/api/keys/{id}"), a)).await;
    assert_eq!(s, 200);
    let (s, _, _) = send(call(
        Method::GET,
        "/api/robots",
        Some(("x-api-key", tmp.as_str())),
    ))
    .await;
    assert_eq!(s, 401, "a revoked key is refused at once");
    let (_, _, listed) = send(call(Method::GET, "/api/keys", a)).await;
    assert!(listed.to_string().contains("wall-screen") && !listed.to_string().contains("argon2"));

    // Rate limit: 5 task requests a minute for this operator; the sixth gets 429.
    let mut statuses = Vec::new();
    let mut last_headers = None;
    for i in 0..6 {
        let (s, h, _) = send(
            call(Method::POST, "/api/tasks", o).json(&json!({"target": {"x": 1 + i, "y": 2}})),
        )
        .await;
        statuses.push(s);
        last_headers = Some(h);
    }
    // One task request was spent above: 4 more pass, then 429s.
    assert_eq!(statuses, vec![201, 201, 201, 201, 429, 429], "{statuses:?}");
    let h = last_headers.unwrap();
    assert_eq!(h["x-ratelimit-limit"], "5");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(h.contains_key("retry-after") && h.contains_key("x-ratelimit-reset"));
    // Another client's budget is untouched.
    let (s, _, _) =
        send(call(Method::POST, "/api/tasks", a).json(&json!({"target": {"x": 3, "y": 3}}))).await;
    assert_eq!(s, 201);

    // Body limit: 413 in the envelope.
    let big = format!(
        "{{\"target\":{{\"x\":1,\"y\":1}},\"parameters\":{{\"p\":\"{}\"}}}}",
        "x".repeat(70_000)
    );
    let (s, _, b) = send(
        call(Method::POST, "/api/tasks", a)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (413, "PAYLOAD_TOO_LARGE"), "{b}");

    // Security headers on every response.
    let (_, h, _) = send(call(Method::GET, "/api/robots", a)).await;
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));

    // The WebSocket needs credentials too (access_token for browsers).
    let url = format!("ws://{}/ws", fleet.http);
    assert!(tokio_tungstenite::connect_async(url.clone()).await.is_err());
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={viewer}"))
        .await
        .unwrap();
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "state_update");

    // Metrics count what happened.
    assert!(fleet.metric("fms_http_rate_limited_total").await >= 2.0);
    assert!(fleet.metric("fms_auth_failures_total").await >= 5.0);

    // A production config without auth refuses to start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fms_server"))
        .args(["--production", "true", "--port", "0", "--data-dir"])
        .arg(&fleet.dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("production mode needs authentication"));
}

/// With auth on, the phone server admits only operator tokens, and drives as the token's
/// subject whatever name the page asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_teleop_needs_an_operator_token_when_auth_is_on() {
    const SECRET: &str = "phone-e2e-secret-long-enough-0123456789abcd";
    let fleet = Fleet::start(1).await;
    let (_phone, phone) =
        spawn_phone_with(&fleet.zenoh, &["--auth", "true", "--jwt-secret", SECRET]).await;
    let token = |role: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fms_server"))
            .args([
                "--jwt-secret",
                SECRET,
                "token",
                "--sub",
                "carol",
                "--role",
                role,
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let url = format!("ws://{phone}/ws/teleop?operator=mallory");
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(url.clone())
                .await
                .map(|_| ())
        ),
        401
    );
    let viewer = format!("{url}&access_token={}", token("viewer"));
    assert_eq!(
        status(tokio_tungstenite::connect_async(viewer).await.map(|_| ())),
        403
    );
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{url}&access_token={}", token("operator")))
            .await
            .unwrap();
    let hello: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["operator"], "carol", "{hello}");
    drive(&mut ws, "r1", 0.3).await;
    fleet
        .wait("carol holds r1", || async {
            let r = fleet.robot("r1").await;
            (r["state"]["teleop_operator"] == "carol").then_some(())
        })
        .await;
    // The lease is in the audit with who took it.
    fleet
        .wait("the lease audited", || async {
            let audit = fleet.get("/api/audit?limit=50").await.1;
            audit
                .as_array()?
                .iter()
                .any(|e| {
                    e["action"] == "teleop.lease" && e["actor"] == "carol" && e["robot_id"] == "r1"
                })
                .then_some(())
        })
        .await;
}

/// A client of the Python FMS, unchanged: its task body, its fields in the answers, its
/// robot list (`jq length`), cancel of an unknown robot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_fms_client_works_unchanged() {
    let fleet = Fleet::start(1).await;
    let old = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", fleet.http);

    let r = old
        .post(url("/api/tasks"))
        .json(&json!({"robot_id": "r1", "target_position": {"x": 3.0, "y": 1.0, "z": 0.0}, "priority": "high"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["task_id"].as_str().expect("task_id").to_owned();
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["robot_id"], "r1");
    assert!(
        matches!(created["status"].as_str(), Some("QUEUED" | "ASSIGNED")),
        "{created}"
    );
    assert_eq!(created["priority"], "high");
    let done = fleet.wait_task(&id, "COMPLETED").await;
    assert_eq!(done["assigned_robot"], "r1");
    assert_eq!(
        (
            done["goal"]["pose"]["x"].as_f64(),
            done["goal"]["pose"]["y"].as_f64()
        ),
        (Some(3.0), Some(1.0)),
        "{done}"
    );

    // z other than 0, both shapes, an unknown field: VALIDATION_ERROR.
    for body in [
        json!({"robot_id": "r1", "target_position": {"x": 3.0, "y": 1.0, "z": 2.0}}),
        json!({"robot_id": "r1", "target_position": {"x": 3.0, "y": 1.0}, "target": {"x": 3.0, "y": 1.0}}),
        json!({"robot_id": "r1", "target_position": {"x": 3.0, "y": 1.0}, "speed": 2}),
    ] {
        let (code, b) = fleet.post("/api/tasks", body.clone()).await;
        assert_eq!(
            (code, b["error"]["code"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{body}: {b}"
        );
    }

    // The robot list: an array, items with the old fields beside ours.
    let robots: Value = old
        .get(url("/api/robots"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let robots = robots.as_array().expect("an array (jq length)");
    assert_eq!(robots.len(), 1);
    let r1 = &robots[0];
    assert_eq!(r1["robot_id"], "r1");
    assert_eq!(r1["id"], "r1");
    let battery = r1["battery"].as_f64().expect("battery is a number");
    assert_eq!(Some(battery), r1["state"]["battery"]["percentage"].as_f64());
    assert_eq!(r1["status"], "idle", "{r1}");
    let last_seen = r1["last_seen"].as_f64().expect("last_seen in seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - last_seen).abs() < 30.0,
        "last_seen {last_seen}, now {now}"
    );
    let x = r1["pose"]["position"]["x"].as_f64().unwrap();
    assert!((x - 3.0).abs() < 0.2, "{r1}");
    assert!(r1["pose"]["orientation"]["w"].is_number(), "{r1}");
    let one: Value = fleet.robot("r1").await;
    assert_eq!(
        (&one["robot_id"], &one["status"]),
        (&r1["robot_id"], &r1["status"])
    );

    // Cancel: a known robot is acknowledged, an unknown one is 404 ROBOT_NOT_FOUND.
    let (code, b) = fleet.post("/api/robots/r1/cancel", json!({})).await;
    assert_eq!((code, &b["robot_id"]), (200, &json!("r1")), "{b}");
    let r = old
        .post(url("/api/robots/nope/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "ROBOT_NOT_FOUND", "{b}");
}
