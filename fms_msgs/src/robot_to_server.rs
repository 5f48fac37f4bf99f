//! Messages a robot's agent publishes: `RobotState` per tick and sequence-numbered `RobotEvent`s.

use serde::{Deserialize, Serialize};

use crate::common::{Battery, Pose, RobotMode, Velocity};
use crate::ids::TaskId;
use crate::invalid::InvalidMessage;

/// Published on `fms/robot/{id}/state` once per tick. The robot id is the key's, not the body's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotState {
    /// Protocol version the sender speaks.
    pub protocol: u32,
    /// Counts up by one per state message since the agent started; gaps mean loss.
    pub seq: u64,
    /// Unix time in milliseconds when the state was sampled.
    pub stamp_ms: u64,
    pub pose: Pose,
    pub velocity: Velocity,
    pub battery: Battery,
    pub mode: RobotMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskProgress>,
    /// The operator holding the teleop lease, while one does (see `TeleopCommand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teleop_operator: Option<String>,
}

/// The task a robot is executing and how far along it is (0.0-1.0).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskProgress {
    pub task_id: TaskId,
    pub progress: f64,
}

impl RobotState {
    /// Checks the values a decoder cannot: finite numbers and ranges.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if !self.pose.is_finite() {
            return Err(InvalidMessage::NonFinitePose);
        }
        if !(self.velocity.linear.is_finite() && self.velocity.angular.is_finite()) {
            return Err(InvalidMessage::NonFiniteVelocity);
        }
        if !(0.0..=100.0).contains(&self.battery.percentage) {
            return Err(InvalidMessage::BatteryPercentage(self.battery.percentage));
        }
        if let Some(t) = &self.task {
            if !(0.0..=1.0).contains(&t.progress) {
                return Err(InvalidMessage::TaskProgress(t.progress));
            }
        }
        if self
            .teleop_operator
            .as_ref()
            .is_some_and(|o| o.len() > crate::MAX_OPERATOR_LEN)
        {
            return Err(InvalidMessage::OperatorTooLong);
        }
        Ok(())
    }
}

/// Published reliably on `fms/robot/{id}/event`.
///
/// `(epoch, seq)` identifies an event: `epoch` is fixed for the life of one agent process
/// (its start time in ms) and `seq` counts from 1 within it. A receiver applies each pair once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotEvent {
    pub epoch: u64,
    pub seq: u64,
    pub stamp_ms: u64,
    pub event: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The agent took the task (also the acknowledgement of `cmd/task`).
    TaskAccepted {
        task_id: TaskId,
    },
    /// The agent refused the task, e.g. while e-stopped or busy with another.
    TaskRejected {
        task_id: TaskId,
        reason: String,
    },
    TaskStarted {
        task_id: TaskId,
    },
    TaskProgress {
        task_id: TaskId,
        progress: f64,
    },
    TaskCompleted {
        task_id: TaskId,
    },
    TaskFailed {
        task_id: TaskId,
        reason: String,
    },
    TaskCanceled {
        task_id: TaskId,
    },
    Error {
        code: String,
        message: String,
    },
    EstopEngaged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    EstopReleased,
}

/// Longest reason, code or message an event may carry.
pub const MAX_EVENT_TEXT: usize = 1024;

impl RobotEvent {
    /// Checks what a decoder cannot: counters that fit a signed 64-bit column and texts
    /// that are short and free of control characters.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if self.epoch > i64::MAX as u64
            || self.seq > i64::MAX as u64
            || self.stamp_ms > i64::MAX as u64
        {
            return Err(InvalidMessage::CounterTooLarge);
        }
        let texts: &[&str] = match &self.event {
            EventKind::TaskRejected { reason, .. } | EventKind::TaskFailed { reason, .. } => {
                &[reason]
            }
            EventKind::Error { code, message } => &[code, message],
            EventKind::EstopEngaged { reason: Some(r) } => &[r],
            _ => &[],
        };
        for t in texts {
            if t.len() > MAX_EVENT_TEXT
                || t.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return Err(InvalidMessage::EventText);
            }
        }
        if let EventKind::TaskProgress { progress, .. } = self.event {
            if !(0.0..=1.0).contains(&progress) {
                return Err(InvalidMessage::EventProgress(progress));
            }
        }
        Ok(())
    }
}

impl EventKind {
    /// The task this event is about, if any.
    pub fn task_id(&self) -> Option<&TaskId> {
        match self {
            EventKind::TaskAccepted { task_id }
            | EventKind::TaskRejected { task_id, .. }
            | EventKind::TaskStarted { task_id }
            | EventKind::TaskProgress { task_id, .. }
            | EventKind::TaskCompleted { task_id }
            | EventKind::TaskFailed { task_id, .. }
            | EventKind::TaskCanceled { task_id } => Some(task_id),
            EventKind::Error { .. } | EventKind::EstopEngaged { .. } | EventKind::EstopReleased => {
                None
            }
        }
    }
}
