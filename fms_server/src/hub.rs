//! Live updates for WebSocket clients: each message is serialized once and fanned out
//! through a broadcast channel; clients filter by robot id. Batching clients that want
//! every robot share one batcher per interval, so a batch is built and serialized once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use fms_msgs::codec::{encode_into, encode_text};
use fms_msgs::{RobotId, RobotState, SystemEvent};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::fleet::registry::Presence;
use crate::fleet::tasks::Task;

/// Frames buffered per client before a slow client starts missing (then resyncs).
const CHANNEL_CAPACITY: usize = 4096;

/// One serialized message and the robot it concerns (None: for everyone).
#[derive(Debug, Clone)]
pub struct Frame {
    pub robot: Option<RobotId>,
    pub text: Utf8Bytes,
    /// A robot's state: a newer one for the same robot replaces it in a batch.
    pub is_state: bool,
}

/// What WebSocket clients receive.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage<'a> {
    StateUpdate {
        robot_id: &'a RobotId,
        presence: Presence,
        state: &'a RobotState,
    },
    TaskUpdate {
        task: &'a Task,
    },
    SystemEvent {
        #[serde(flatten)]
        event: &'a SystemEvent,
    },
    Heartbeat {
        stamp_ms: u64,
    },
}

/// The text of `LiveMessage::StateUpdate` for a state already serialized with
/// `fms_msgs::encode` (the same bytes): the state's serialization, the costly part, can then
/// happen before the registry lock is taken.
pub fn state_update_text(robot_id: &RobotId, presence: Presence, state_json: &[u8]) -> String {
    let mut buf = Vec::with_capacity(state_json.len() + 96);
    buf.extend_from_slice(br#"{"type":"state_update","robot_id":"#);
    encode_into(&mut buf, robot_id);
    buf.extend_from_slice(br#","presence":"#);
    encode_into(&mut buf, &presence);
    buf.extend_from_slice(br#","state":"#);
    buf.extend_from_slice(state_json);
    buf.push(b'}');
    String::from_utf8(buf).expect("JSON is UTF-8")
}

/// Frames waiting for the next batch: each robot's state is kept once, at the place its
/// first state took; everything else is kept in order.
#[derive(Debug, Default)]
pub struct Batch {
    items: Vec<Utf8Bytes>,
    state_at: HashMap<RobotId, usize>,
}

impl Batch {
    pub fn push(&mut self, frame: Frame) {
        match (frame.is_state, frame.robot) {
            (true, Some(robot)) => match self.state_at.get(&robot) {
                Some(&i) => self.items[i] = frame.text,
                None => {
                    self.state_at.insert(robot, self.items.len());
                    self.items.push(frame.text);
                }
            },
            _ => self.items.push(frame.text),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The batch message, emptying the batch.
    pub fn take(&mut self) -> String {
        let len: usize = self.items.iter().map(|t| t.len() + 1).sum();
        let mut out = String::with_capacity(len + 40);
        out.push_str(r#"{"type":"batch","messages":["#);
        for (i, item) in self.items.drain(..).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item.as_str());
        }
        out.push_str("]}");
        self.state_at.clear();
        out
    }
}

/// What the shared batcher of one interval sends its clients.
#[derive(Debug, Clone)]
pub enum SharedBatch {
    /// A `{"type":"batch",…}` message, serialized once for every client.
    Text(Utf8Bytes),
    /// The batcher fell behind the hub and missed frames: resync from a snapshot.
    Lagged,
}

/// Batches in flight per client of the shared batcher: a client this far behind resyncs.
const SHARED_CAPACITY: usize = 16;

#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
    /// One batcher per interval (ms), while it has clients.
    batchers: Arc<Mutex<HashMap<u64, broadcast::Sender<SharedBatch>>>>,
    clients: Arc<AtomicUsize>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a connected client while alive (see [`Hub::client`]).
#[derive(Debug)]
pub struct ClientGuard(Arc<AtomicUsize>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            batchers: Arc::default(),
            clients: Arc::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    /// True when at least one client (or batcher) listens; lets callers skip serializing.
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Connected live clients.
    pub fn listeners(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Registers a connected client for [`Hub::listeners`] until the guard is dropped.
    pub fn client(&self) -> ClientGuard {
        self.clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard(self.clients.clone())
    }

    /// Batches of every message, at most every `every`, for clients that want all robots:
    /// one task keeps each robot's latest state and serializes each batch once, however
    /// many clients share it. The task ends when its last client has gone.
    /// Must be called within a Tokio runtime.
    pub fn shared_batches(&self, every: Duration) -> broadcast::Receiver<SharedBatch> {
        let ms = every.as_millis() as u64;
        let mut batchers = self.batchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = batchers.get(&ms) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(SHARED_CAPACITY);
        batchers.insert(ms, tx.clone());
        tokio::spawn(batcher(
            self.tx.subscribe(),
            tx,
            every,
            self.batchers.clone(),
        ));
        rx
    }

    /// Serializes and sends; a message with no listener is simply dropped.
    pub fn publish(&self, robot: Option<&RobotId>, msg: &LiveMessage<'_>) {
        if self.has_listeners() {
            let _ = self.tx.send(Frame {
                robot: robot.cloned(),
                text: encode_text(msg).into(),
                is_state: matches!(msg, LiveMessage::StateUpdate { .. }),
            });
        }
    }

    /// Sends a robot's `state_update`, already serialized.
    pub fn send_state(&self, robot: &RobotId, text: String) {
        let _ = self.tx.send(Frame {
            robot: Some(robot.clone()),
            text: text.into(),
            is_state: true,
        });
    }
}

/// The shared batcher of one interval (see [`Hub::shared_batches`]).
async fn batcher(
    mut rx: broadcast::Receiver<Frame>,
    tx: broadcast::Sender<SharedBatch>,
    every: Duration,
    batchers: Arc<Mutex<HashMap<u64, broadcast::Sender<SharedBatch>>>>,
) {
    let ms = every.as_millis() as u64;
    let mut batch = Batch::default();
    let mut flush = tokio::time::interval(every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(frame) => batch.push(frame),
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!("shared batcher lagged; skipped {n} frames");
                    let _ = tx.send(SharedBatch::Lagged);
                }
                Err(RecvError::Closed) => break,
            },
            _ = flush.tick() => {
                // Under the map's lock, so a client joining now either finds this batcher
                // alive or starts a new one.
                {
                    let mut map = batchers.lock().unwrap_or_else(|p| p.into_inner());
                    if tx.receiver_count() == 0 {
                        map.remove(&ms);
                        return;
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(SharedBatch::Text(batch.take().into()));
                }
            }
        }
    }
    batchers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fms_msgs::{Battery, Pose, RobotMode, TaskId, TaskProgress, Velocity};

    fn frame(robot: Option<&str>, text: &str, is_state: bool) -> Frame {
        Frame {
            robot: robot.map(|r| RobotId::new(r).unwrap()),
            text: text.to_owned().into(),
            is_state,
        }
    }

    #[test]
    fn batches_keep_the_latest_state_per_robot_and_every_other_message() {
        let mut b = Batch::default();
        assert!(b.is_empty());
        b.push(frame(Some("a"), r#"{"s":"a1"}"#, true));
        b.push(frame(Some("b"), r#"{"s":"b1"}"#, true));
        b.push(frame(Some("a"), r#"{"t":"task"}"#, false));
        b.push(frame(Some("a"), r#"{"s":"a2"}"#, true));
        b.push(frame(None, r#"{"e":1}"#, false));
        let text = b.take();
        assert_eq!(
            text,
            r#"{"type":"batch","messages":[{"s":"a2"},{"s":"b1"},{"t":"task"},{"e":1}]}"#
        );
        let parsed: fms_msgs::codec::JsonValue = fms_msgs::decode(text.as_bytes()).unwrap();
        assert_eq!(parsed["messages"].as_array().unwrap().len(), 4);
        assert!(b.is_empty());
        b.push(frame(Some("a"), r#"{"s":"a3"}"#, true));
        assert_eq!(b.take(), r#"{"type":"batch","messages":[{"s":"a3"}]}"#);
    }

    #[test]
    fn state_update_text_is_the_serialized_live_message() {
        let mut state = RobotState {
            protocol: 1,
            seq: 7,
            stamp_ms: 1_700_000_000_123,
            pose: Pose::new(1.25, -2.5, 0.1),
            velocity: Velocity {
                linear: 0.5,
                angular: -0.25,
            },
            battery: Battery {
                percentage: 87.5,
                voltage: Some(24.1),
                charging: false,
            },
            mode: RobotMode::Navigating,
            task: Some(TaskProgress {
                task_id: TaskId::new("t-1").unwrap(),
                progress: 0.5,
            }),
            teleop_operator: Some("op \"q\" ü".into()),
        };
        for (id, presence) in [
            ("tb3_1", Presence::Online),
            ("we\"ird\\id", Presence::Stale),
            ("ünï", Presence::Offline),
        ] {
            let robot_id = RobotId::new(id).unwrap();
            let expected = encode_text(&LiveMessage::StateUpdate {
                robot_id: &robot_id,
                presence,
                state: &state,
            });
            let got = state_update_text(&robot_id, presence, &fms_msgs::encode(&state));
            assert_eq!(got, expected);
            state.task = None;
        }
    }
}
