//! Hardening: ids anyone can make up (a one-off message under a new robot id) cost one log
//! line a minute and are forgotten when quiet; audit details are structured JSON.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

fn state(seq: u64) -> Vec<u8> {
    json!({
        "protocol": 1, "seq": seq, "stamp_ms": fms_msgs::unix_ms(),
        "pose": {"x": 0.0, "y": 0.0}, "velocity": {"linear": 0.0, "angular": 0.0},
        "battery": {"percentage": 50.0}, "mode": "IDLE"
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_robot_ids_are_logged_sparingly_and_forgotten_when_quiet() {
    let dir = temp_dir("unknown-ids");
    std::fs::write(
        dir.join("server.toml"),
        "[presence]\nstale_after_ms = 1000\noffline_after_ms = 2000\n",
    )
    .unwrap();
    let zenoh = format!("tcp/127.0.0.1:{}", free_port());
    let args = [
        "--data-dir".to_owned(),
        dir.display().to_string(),
        "--config".to_owned(),
        dir.join("server.toml").display().to_string(),
    ];
    let opts = ServerOpts {
        log_level: "info",
        pipe_stderr: true,
        ..ServerOpts::default()
    };
    let (mut server, http) = spawn_server_with(&zenoh, &args, opts).await;
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = logs.clone();
    let mut err = BufReader::new(server.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let req = client.get(format!("http://{http}{path}"));
        async move {
            let r = req.send().await.unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let z = zenoh_client(&zenoh).await;
    // Two one-off messages under the same made-up id, 4 s apart: each makes it ONLINE,
    // STALE, OFFLINE, and then it is forgotten.
    for round in 1..=2 {
        z.put("fms/robot/ghost/state", state(round)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while get("/api/robots/ghost").await.0 != 200 {
            assert!(tokio::time::Instant::now() < deadline, "ghost never seen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (code, _) = get("/api/robots/ghost").await;
            if code == 404 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a made-up id is still listed long after it went quiet"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, status) = get("/api/fleet/status").await;
        assert_eq!(status["total"].as_u64(), Some(0), "{status}");
    }
    let lines: Vec<String> = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("ghost"))
        .cloned()
        .collect();
    assert!(
        lines.len() <= 1,
        "a made-up id logged {} lines within a minute:\n{}",
        lines.len(),
        lines.join("\n")
    );

    // Audit details are JSON a tool can read, not Rust debug text.
    let fleet_http = http.clone();
    let (code, t) = {
        let r = client
            .post(format!("http://{fleet_http}/api/tasks"))
            .json(&json!({"target": {"x": 1.0, "y": 2.0}, "priority": "high"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(code, 201, "{t}");
    let (_, audit) = get("/api/audit").await;
    let row = audit
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["action"] == "task.create"))
        .unwrap_or_else(|| panic!("no task.create row: {audit}"))
        .clone();
    assert_eq!(row["detail"]["goal"]["pose"]["x"], 1.0, "{row}");
    assert_eq!(row["detail"]["priority"], "high", "{row}");
    server.start_kill().unwrap();
}
