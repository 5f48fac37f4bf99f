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

/// Reads batches until their union holds `want` (a robot may sit out one batch window
/// when the machine is busy), failing after many batches. Returns the union seen.
async fn batches_until_union(ws: &mut Ws, want: &HashSet<String>) -> HashSet<String> {
    let mut seen = HashSet::new();
    for _ in 0..50 {
        seen.extend(next_batch_robots(ws).await);
        if seen.is_superset(want) {
            return seen;
        }
    }
    panic!("after 50 batches saw only {seen:?}, wanted {want:?}");
}

/// Drains batches for `d`, so that a filter change sent before has surely been applied.
async fn drain_for(ws: &mut Ws, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < until {
        next_batch_robots(ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_clients_share_batches_and_filter_their_own() {
    let mut fleet = Fleet::start(2).await;
    let url = format!("ws://{}/ws?batch_ms=100", fleet.http);
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let both = set(&["r1", "r2"]);
    // Each gets the snapshot (every robot), then the shared batches with every robot.
    for ws in [&mut a, &mut b] {
        assert_eq!(next_batch_robots(ws).await, both, "snapshot");
        assert_eq!(batches_until_union(ws, &both).await, both);
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

    // Narrowing to r1: once the filter is in place, r2 never shows up again.
    a.send(Message::Text(
        r#"{"type":"subscribe","robot_ids":["r1"]}"#.into(),
    ))
    .await
    .unwrap();
    drain_for(&mut a, Duration::from_secs(1)).await;
    let mut seen = HashSet::new();
    for _ in 0..15 {
        let batch = next_batch_robots(&mut a).await;
        assert!(!batch.contains("r2"), "the filtered client still gets r2");
        seen.extend(batch);
    }
    assert_eq!(seen, set(&["r1"]), "the filtered client lost r1");
    // The other client still shares every robot.
    drain_for(&mut b, Duration::from_millis(200)).await;
    assert_eq!(batches_until_union(&mut b, &both).await, both);

    // Back to everything: the shared batches again.
    a.send(Message::Text(r#"{"type":"subscribe"}"#.into()))
        .await
        .unwrap();
    drain_for(&mut a, Duration::from_secs(1)).await;
    assert_eq!(batches_until_union(&mut a, &both).await, both);
    tokio::time::sleep(Duration::from_millis(50)).await;
    fleet.assert_server_alive();
}
