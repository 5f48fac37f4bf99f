//! Live updates for WebSocket clients: each message is serialized once and fanned out
//! through a broadcast channel; clients filter by robot id.

use axum::extract::ws::Utf8Bytes;
use fms_msgs::codec::encode_text;
use fms_msgs::{RobotId, RobotState, SystemEvent};
use serde::Serialize;
use tokio::sync::broadcast;

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

#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    /// True when at least one client listens; lets callers skip serializing.
    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
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
