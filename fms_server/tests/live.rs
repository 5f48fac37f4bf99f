//! `/ws?batch_ms=…` end to end: unfiltered clients share one batch per interval, a client
//! that subscribes to some robots switches to batches of its own and back.
//!
//! Needs `cargo build --workspace --bins` first, like the other end-to-end tests.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

// Shared with e2e.rs, which uses the rest of it.
#[allow(dead_code)]
mod support;

use support::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The robots whose states the next batch carries (heartbeats are skipped).
async fn next_batch_robots(ws: &mut Ws) -> HashSet<String> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let msg = ws.next().await.expect("open").expect("frame");
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["type"] == "heartbeat" {
                continue;
            }
            assert_eq!(v["type"], "batch", "{v}");
            return v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["type"] == "state_update")
                .map(|m| m["robot_id"].as_str().unwrap().to_owned())
                .collect();
        }
    })
    .await
    .expect("no batch in time")
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_clients_share_batches_and_filter_their_own() {
    let mut fleet = Fleet::start(2).await;
    let url = format!("ws://{}/ws?batch_ms=100", fleet.http);
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // Each gets the snapshot, then the shared batches: every robot, once per batch.
    for ws in [&mut a, &mut b] {
        assert_eq!(next_batch_robots(ws).await, set(&["r1", "r2"]));
        assert_eq!(next_batch_robots(ws).await, set(&["r1", "r2"]));
    }
    let text = fleet
        .client
        .get(fleet.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("fms_websocket_clients 2"), "{text}");

    // Narrowing to r1: only r1 from then on (after the batch already on its way).
    a.send(Message::Text(
        r#"{"type":"subscribe","robot_ids":["r1"]}"#.into(),
    ))
    .await
    .unwrap();
    let mut only_r1 = false;
    for _ in 0..10 {
        if next_batch_robots(&mut a).await == set(&["r1"]) {
            only_r1 = true;
            break;
        }
    }
    assert!(only_r1, "the filtered client still gets every robot");
    for _ in 0..3 {
        assert_eq!(next_batch_robots(&mut a).await, set(&["r1"]));
    }
    // The other client still shares every robot.
    assert_eq!(next_batch_robots(&mut b).await, set(&["r1", "r2"]));

    // Back to everything: the shared batches again.
    a.send(Message::Text(r#"{"type":"subscribe"}"#.into()))
        .await
        .unwrap();
    let mut all = false;
    for _ in 0..10 {
        if next_batch_robots(&mut a).await == set(&["r1", "r2"]) {
            all = true;
            break;
        }
    }
    assert!(all, "the client did not return to every robot");
    tokio::time::sleep(Duration::from_millis(50)).await;
    fleet.assert_server_alive();
}
