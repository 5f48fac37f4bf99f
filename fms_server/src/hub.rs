//! Live updates for WebSocket clients: each message is serialized once and fanned out
//! through a broadcast channel; clients filter by robot id. Batching clients that want
//! every robot share one batcher per interval, so a batch is built and serialized once.
//! At shutdown the hub tells every client to close ([`Hub::close_all`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use fms_msgs::codec::{encode_into, encode_text};
use fms_msgs::{RobotId, RobotState, SystemEvent};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

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
pub struct FrameBatch {
    items: Vec<Utf8Bytes>,
    state_at: HashMap<RobotId, usize>,
}

impl FrameBatch {
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

/// Batches in flight per client of a shared batcher: a client this far behind resyncs.
const SHARED_CAPACITY: usize = 16;

/// The batch shared by every unfiltered client of one interval. Frames are added as they
/// are published (no task wakes up per message); a task sends the batch at each tick.
#[derive(Debug)]
struct Batcher {
    every_ms: u64,
    pending: Mutex<FrameBatch>,
    tx: broadcast::Sender<Utf8Bytes>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
    batchers: Arc<RwLock<Vec<Arc<Batcher>>>>,
    clients: Arc<AtomicUsize>,
    /// True once the server is going away: clients close with 1001.
    closing: watch::Sender<bool>,
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
            closing: watch::Sender::new(false),
        }
    }

    /// Tells every live client, and those still connecting, that the server is going away.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes true when [`Hub::close_all`] is called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Waits until no client is connected, for at most `grace`; true if none is left.
    pub async fn clients_gone(&self, grace: Duration) -> bool {
        let until = tokio::time::Instant::now() + grace;
        while self.listeners() > 0 {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    fn batchers(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Batcher>>> {
        self.batchers.read().unwrap_or_else(|p| p.into_inner())
    }

    /// True when at least one client (or shared batch) listens; lets callers skip serializing.
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0 || !self.batchers().is_empty()
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
    /// each robot's latest state is kept as it is published and each batch is serialized
    /// once, however many clients share it. The batch's task ends once no client is left.
    /// Must be called within a Tokio runtime.
    pub fn shared_batches(&self, every: Duration) -> broadcast::Receiver<Utf8Bytes> {
        let every_ms = every.as_millis() as u64;
        let mut list = self.batchers.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = list.iter().find(|b| b.every_ms == every_ms) {
            return b.tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(SHARED_CAPACITY);
        let b = Arc::new(Batcher {
            every_ms,
            pending: Mutex::default(),
            tx,
        });
        list.push(b.clone());
        tokio::spawn(run_batcher(b, every, self.batchers.clone()));
        rx
    }

    fn send(&self, frame: Frame) {
        for b in self.batchers().iter() {
            lock(&b.pending).push(frame.clone());
        }
        let _ = self.tx.send(frame);
    }

    /// Serializes and sends; a message with no listener is simply dropped.
    pub fn publish(&self, robot: Option<&RobotId>, msg: &LiveMessage<'_>) {
        if self.has_listeners() {
            self.send(Frame {
                robot: robot.cloned(),
                text: encode_text(msg).into(),
                is_state: matches!(msg, LiveMessage::StateUpdate { .. }),
            });
        }
    }

    /// Sends a robot's `state_update`, already serialized.
    pub fn send_state(&self, robot: &RobotId, text: String) {
        self.send(Frame {
            robot: Some(robot.clone()),
            text: text.into(),
            is_state: true,
        });
    }
}

/// Sends `b`'s batch at each tick until it has no client left.
async fn run_batcher(b: Arc<Batcher>, every: Duration, batchers: Arc<RwLock<Vec<Arc<Batcher>>>>) {
    let mut flush = tokio::time::interval(every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        flush.tick().await;
        {
            // Under the list's lock, so a client joining now either finds this batcher
            // alive or starts a new one.
            let mut list = batchers.write().unwrap_or_else(|p| p.into_inner());
            if b.tx.receiver_count() == 0 {
                list.retain(|x| !Arc::ptr_eq(x, &b));
                return;
            }
        }
        // Swap the batch out so publishers wait only for the swap, not the serialization.
        let mut batch = std::mem::take(&mut *lock(&b.pending));
        if !batch.is_empty() {
            let _ = b.tx.send(batch.take().into());
        }
    }
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
        let mut b = FrameBatch::default();
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

    #[tokio::test]
    async fn shared_batches_keep_latest_states_and_stop_without_clients() {
        let hub = Hub::new();
        assert!(!hub.has_listeners());
        let mut a = hub.shared_batches(Duration::from_millis(20));
        let mut b = hub.shared_batches(Duration::from_millis(20));
        assert!(hub.has_listeners());
        let r = RobotId::new("r1").unwrap();
        hub.send_state(&r, r#"{"s":1}"#.into());
        hub.send_state(&r, r#"{"s":2}"#.into());
        let want = r#"{"type":"batch","messages":[{"s":2}]}"#;
        for rx in [&mut a, &mut b] {
            let text = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(text.as_str(), want);
        }
        drop((a, b));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while hub.has_listeners() {
            assert!(
                std::time::Instant::now() < deadline,
                "the batcher did not stop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A new client starts a new batcher.
        let mut c = hub.shared_batches(Duration::from_millis(20));
        hub.send_state(&r, r#"{"s":3}"#.into());
        let text = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text.as_str(), r#"{"type":"batch","messages":[{"s":3}]}"#);
    }

    #[tokio::test]
    async fn close_all_reaches_clients_and_clients_gone_waits_for_them() {
        let hub = Hub::new();
        let mut early = hub.closing();
        let guard = hub.client();
        assert!(!*early.borrow());
        let waiter = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.clients_gone(Duration::from_secs(10)).await })
        };
        hub.close_all();
        tokio::time::timeout(Duration::from_secs(5), early.wait_for(|c| *c))
            .await
            .unwrap()
            .unwrap();
        // A client that connects after the call sees it at once.
        assert!(*hub.closing().borrow());
        assert!(!waiter.is_finished());
        drop(guard);
        assert!(waiter.await.unwrap());
        let _stuck = hub.client();
        assert!(!hub.clients_gone(Duration::from_millis(50)).await);
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
