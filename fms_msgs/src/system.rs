//! Fleet-level events the server publishes on `fms/system/event` (and to WebSocket clients).

use serde::{Deserialize, Serialize};

use crate::ids::RobotId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemEvent {
    pub stamp_ms: u64,
    #[serde(flatten)]
    pub kind: SystemEventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SystemEventKind {
    RobotOnline {
        robot_id: RobotId,
    },
    RobotStale {
        robot_id: RobotId,
    },
    RobotOffline {
        robot_id: RobotId,
    },
    /// Fleet (no `robot_id`) or one robot's e-stop was engaged.
    Estop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        robot_id: Option<RobotId>,
        engaged: bool,
    },
}
