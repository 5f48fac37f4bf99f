//! The task lifecycle (QUEUED -> ASSIGNED -> ACTIVE -> COMPLETED | FAILED | CANCELED): the
//! task record, its history, the allowed moves, and the errors requests can meet.

use fms_msgs::codec::JsonMap;
use fms_msgs::{Goal, Priority, RobotId, TaskCommand, TaskId};
use serde::{Deserialize, Serialize};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Queued,
    Assigned,
    Active,
    Completed,
    Failed,
    Canceled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Queued,
        TaskStatus::Assigned,
        TaskStatus::Active,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Canceled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Canceled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "QUEUED",
            TaskStatus::Assigned => "ASSIGNED",
            TaskStatus::Active => "ACTIVE",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Canceled => "CANCELED",
        }
    }

    /// The lifecycle's allowed moves. Back to QUEUED from ASSIGNED or ACTIVE is a requeue
    /// (refused, robot lost, preempted, navigation retry).
    pub fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Queued, Assigned | Canceled | Failed)
                | (Assigned, Queued | Active | Completed | Failed | Canceled)
                | (Active, Queued | Completed | Failed | Canceled)
        )
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// One entry of a task's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub status: TaskStatus,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_id: Option<RobotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A task as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    pub id: TaskId,
    /// The robot the client asked for, if any.
    pub robot_id: Option<RobotId>,
    /// The robot the task is (or was last) assigned to.
    pub assigned_robot: Option<RobotId>,
    pub goal: Goal,
    pub priority: Priority,
    pub timeout_s: Option<f64>,
    #[schema(value_type = Object)]
    pub parameters: JsonMap,
    pub status: TaskStatus,
    pub progress: f64,
    /// Times the task was assigned to a robot.
    pub attempts: u32,
    /// Assignments allowed before a refused or abandoned task fails.
    pub max_attempts: u32,
    /// Navigation failures retried before the task fails.
    pub retries: u32,
    /// Navigation failures so far.
    pub failures: u32,
    /// The named location the task targets, if it was given by name.
    pub location: Option<String>,
    /// The client's `Idempotency-Key`, if any: the same key never creates a second task.
    pub idempotency_key: Option<String>,
    pub error: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub history: Vec<HistoryEntry>,
}

/// A validated request for a new task.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub robot_id: Option<RobotId>,
    pub goal: Goal,
    pub priority: Priority,
    pub timeout_s: Option<f64>,
    pub parameters: JsonMap,
    /// With a `robot_id`: queue behind the robot's current task instead of answering ROBOT_BUSY.
    pub queue_if_busy: bool,
    /// Navigation failures to retry before failing.
    pub retries: u32,
    /// The named location the goal came from, if any.
    pub location: Option<String>,
    pub idempotency_key: Option<String>,
}

impl Task {
    /// The command that sends this task to its robot.
    pub fn command(&self) -> TaskCommand {
        TaskCommand {
            task_id: self.id.clone(),
            goal: self.goal.clone(),
            priority: self.priority,
            timeout_s: self.timeout_s,
            parameters: self.parameters.clone(),
        }
    }

    /// When the task last became ACTIVE.
    pub fn active_since(&self) -> Option<u64> {
        self.history
            .iter()
            .rev()
            .find(|h| h.status == TaskStatus::Active)
            .map(|h| h.at_ms)
    }

    /// Moves the task to `to`, recording it in the history. Callers check `can_become`.
    pub fn transition(&mut self, to: TaskStatus, now: u64, note: Option<String>) {
        debug_assert!(self.status.can_become(to), "{:?} -> {to:?}", self.status);
        self.status = to;
        self.updated_ms = now;
        self.history.push(HistoryEntry {
            status: to,
            at_ms: now,
            robot_id: self.assigned_robot.clone(),
            note,
        });
    }
}

/// Why the engine refused a request. Each maps to one API error code. Serializable so a
/// leader can hand a refusal back to the follower that asked (through the store).
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TaskError {
    #[error("robot {0} is not known")]
    RobotNotFound(RobotId),
    #[error("task {0} is not known")]
    TaskNotFound(TaskId),
    #[error("robot {0} is offline")]
    RobotOffline(RobotId),
    #[error("robot {0} is busy")]
    RobotBusy(RobotId),
    #[error("robot {robot} battery {battery:.0}% is below the {min:.0}% minimum")]
    LowBattery {
        robot: RobotId,
        battery: f64,
        min: f64,
    },
    #[error("the fleet emergency stop is engaged; release it first")]
    FleetEstopEngaged,
    /// The task asks for something a robot of the Python FMS cannot do.
    #[error("robot {robot} speaks the legacy protocol and cannot run this task: {reason}")]
    LegacyUnsupported { robot: RobotId, reason: String },
    #[error("task {id} is {status:?}; cannot {action}")]
    InvalidState {
        id: TaskId,
        status: TaskStatus,
        action: std::borrow::Cow<'static, str>,
    },
}
