//! Hardening: http. Errors outside the JSON envelope, an `Idempotency-Key` reused with
//! another body, a WebSocket client that never reads, and WebSocket clients at shutdown.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Sends `method path` and returns the status, the `Content-Type`, the `Allow` header and
/// the body parsed as JSON (`Null` if it is not JSON).
async fn raw(fleet: &Fleet, method: &str, path: &str) -> (u16, String, String, Value) {
    let r = fleet
        .client
        .request(method.parse().unwrap(), fleet.url(path))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, allow) = (header("content-type"), header("allow"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, content_type, allow, body)
}

fn assert_envelope(what: &str, got: &(u16, String, String, Value), status: u16, code: &str) {
    let (s, content_type, _, body) = got;
    assert_eq!(*s, status, "{what}: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content-type {content_type:?}, body {body}"
    );
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no message in {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_errors_use_the_json_envelope() {
    let fleet = Fleet::start(0).await;
    for (method, path, allowed) in [
        ("PUT", "/api/tasks", "POST"),
        ("DELETE", "/api/robots", "GET"),
        ("PATCH", "/api/tasks/t1", "GET"),
        ("POST", "/healthz", "GET"),
    ] {
        let got = raw(&fleet, method, path).await;
        assert_envelope(&format!("{method} {path}"), &got, 405, "METHOD_NOT_ALLOWED");
        assert!(
            got.2.split(',').any(|m| m.trim() == allowed),
            "{method} {path}: Allow {:?}",
            got.2
        );
    }
    for path in ["/api/robots/%FF%FE", "/api/tasks/%C3%28/cancel"] {
        let method = if path.ends_with("cancel") {
            "POST"
        } else {
            "GET"
        };
        let got = raw(&fleet, method, path).await;
        assert_envelope(path, &got, 400, "VALIDATION_ERROR");
    }
    // Outside /api too (no dashboard is served in these tests), and axum's own rejections.
    assert_envelope(
        "GET /nowhere",
        &raw(&fleet, "GET", "/nowhere").await,
        404,
        "NOT_FOUND",
    );
    let got = raw(&fleet, "GET", "/ws").await;
    assert!(got.0 >= 400, "GET /ws without upgrade: {}", got.0);
    assert_envelope("GET /ws without upgrade", &got, got.0, "VALIDATION_ERROR");
    // Successful non-JSON answers are left alone.
    let metrics = raw(&fleet, "GET", "/metrics").await;
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.starts_with("text/plain"), "{}", metrics.1);
}

async fn post_keyed(fleet: &Fleet, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let r = fleet
        .client
        .post(fleet.url("/api/tasks"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), replayed, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_reused_with_another_body_is_refused() {
    let fleet = Fleet::start(0).await;
    let first = json!({"target": {"x": 1.0, "y": 2.0}, "priority": "high", "parameters": {"a": 1}});
    let (code, replayed, task) = post_keyed(&fleet, "order-1", &first).await;
    assert_eq!((code, replayed), (201, None), "{task}");
    let id = task_id(&task);

    // The same body again: the first task, replayed.
    let (code, replayed, again) = post_keyed(&fleet, "order-1", &first).await;
    assert_eq!((code, replayed.as_deref()), (200, Some("true")), "{again}");
    assert_eq!(task_id(&again), id);
    // Defaults spelled out are the same request.
    let spelled = json!({"target": {"x": 1.0, "y": 2.0, "yaw": 0.0}, "priority": "high",
        "parameters": {"a": 1}, "retries": 0});
    let (code, _, again) = post_keyed(&fleet, "order-1", &spelled).await;
    assert_eq!((code, task_id(&again)), (200, id.clone()), "{again}");

    // Another body under the same key: refused, and no task is created or replayed.
    for other in [
        json!({"target": {"x": 1.0, "y": 2.5}, "priority": "high", "parameters": {"a": 1}}),
        json!({"target": {"x": 1.0, "y": 2.0}, "priority": "low", "parameters": {"a": 1}}),
        json!({"target": {"x": 1.0, "y": 2.0}, "priority": "high", "parameters": {"a": 2}}),
        json!({"waypoints": [{"x": 1.0, "y": 2.0}], "priority": "high", "parameters": {"a": 1}}),
    ] {
        let (code, replayed, e) = post_keyed(&fleet, "order-1", &other).await;
        assert_eq!((code, replayed), (422, None), "{other} -> {e}");
        assert_eq!(e["error"]["code"], "IDEMPOTENCY_KEY_REUSED", "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("order-1"),
            "{e}"
        );
    }
    let all = fleet.get("/api/tasks").await.1;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    // A new key is a new task.
    let (code, _, t) =
        post_keyed(&fleet, "order-2", &json!({"target": {"x": 1.0, "y": 2.5}})).await;
    assert_eq!(code, 201, "{t}");
    assert_ne!(task_id(&t), id);
}

/// A metric's value, `None` while the server does not expose it.
async fn metric(fleet: &Fleet, name: &str) -> Option<f64> {
    let text = fleet
        .client
        .get(fleet.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// The send queue bound the slow-consumer test runs the server with (bytes).
const SMALL_QUEUE: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_that_never_reads_is_dropped() {
    let dir = temp_dir("slow-ws");
    let zenoh = format!("tcp/127.0.0.1:{}", free_port());
    let args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    let queue = SMALL_QUEUE.to_string();
    let opts = ServerOpts {
        env: &[("FMS_WS_QUEUE_BYTES", &queue)],
        ..ServerOpts::default()
    };
    let (server, http) = spawn_server_with(&zenoh, &args, opts).await;
    let mut fleet = Fleet {
        server,
        http,
        zenoh,
        server_args: args,
        dir,
        agents: Vec::new(),
        client: reqwest::Client::new(),
        key: None,
    };
    // Three robots publishing 200 states a second each: ~200 KB/s of state_update frames.
    for i in 1..=3 {
        fleet.add_agent(&format!("r{i}"), &format!("{i},0,0"), &["--rate", "200"]);
    }
    fleet.wait_online(3).await;

    // A reader that keeps up stays connected throughout.
    let (mut good, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", fleet.http))
        .await
        .unwrap();
    let good_reader = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(msg)) = good.next().await {
            if let Message::Close(frame) = msg {
                return Err(format!("the reading client was closed: {frame:?}"));
            }
            n += 1;
        }
        Ok(n)
    });

    // The slow client: a small receive buffer, upgraded, then never read again.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(fleet.http.parse().unwrap()).await.unwrap();
    let (slow, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", fleet.http), stream)
        .await
        .unwrap();
    let started = Instant::now();
    let counted = |v: Option<f64>| v.is_some_and(|v| v >= 1.0);
    fleet
        .wait_up_to(
            Duration::from_secs(90),
            "the slow consumer dropped and counted",
            || async {
                let dropped = metric(&fleet, "fms_ws_slow_consumers_dropped_total").await;
                let clients = metric(&fleet, "fms_websocket_clients").await;
                (counted(dropped) && clients == Some(1.0)).then_some(())
            },
        )
        .await;
    let took = started.elapsed();
    eprintln!("slow consumer dropped {took:?} after connecting");
    assert_eq!(
        metric(&fleet, "fms_ws_slow_consumers_dropped_total").await,
        Some(1.0)
    );
    // Its socket is closed on the server side: reading what was queued ends the stream
    // (with the close frame if it could still be written, else at end of stream).
    let (ended, buffered) = tokio::time::timeout(Duration::from_secs(60), async move {
        let mut slow = slow;
        let (mut close, mut bytes) = (None, 0);
        while let Some(msg) = slow.next().await {
            match msg {
                Ok(Message::Close(frame)) => close = frame,
                Ok(m) => bytes += m.len(),
                Err(_) => break,
            }
        }
        (close, bytes)
    })
    .await
    .expect("the slow client's socket stayed open");
    // What the sockets' kernel buffers held when the server gave up on the client.
    eprintln!("the slow client could still read {buffered} bytes; close frame: {ended:?}");
    if let Some(frame) = ended {
        assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    }
    // The client that reads was never dropped.
    assert!(!good_reader.is_finished(), "{:?}", good_reader.await);
    good_reader.abort();
    fleet.assert_server_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websocket_clients_with_going_away() {
    let mut fleet = Fleet::start(1).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", fleet.http))
        .await
        .unwrap();
    let (mut batched, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?batch_ms=100", fleet.http))
            .await
            .unwrap();
    // Both are live (the snapshot holds r1's state).
    for ws in [&mut ws, &mut batched] {
        let first = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap();
        assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    }
    let pid = fleet.server.id().expect("the server runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    for ws in [&mut ws, &mut batched] {
        let close = tokio::time::timeout(DEADLINE, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return Ok(frame),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("error instead of a close frame: {e}")),
                    None => return Err("the stream ended without a close frame".into()),
                }
            }
        })
        .await
        .expect("no close frame in time")
        .unwrap();
        let frame = close.expect("a close frame with a code");
        assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    }
    let status = tokio::time::timeout(DEADLINE, fleet.server.wait())
        .await
        .expect("the server did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
