//! Commands the server (or the phone teleop server) sends to one robot under `fms/robot/{id}/cmd/...`.

use serde::{Deserialize, Serialize};

use crate::codec::JsonMap;
use crate::common::{Pose, Priority};
use crate::ids::TaskId;

/// `cmd/task`: go somewhere. Sending the same `task_id` twice never runs the task twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCommand {
    pub task_id: TaskId,
    pub goal: Goal,
    #[serde(default)]
    pub priority: Priority,
    /// Give up (TaskFailed) after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Free-form parameters passed through to the robot.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub parameters: JsonMap,
}

/// `parameters.action` of a task that sends the robot to a charger: on arrival the robot
/// docks and charges.
pub const CHARGE_ACTION: &str = "charge";

/// Task parameters that mark a charging task.
pub fn charge_parameters() -> JsonMap {
    let mut p = JsonMap::new();
    p.insert("action".into(), CHARGE_ACTION.into());
    p
}

/// True for the parameters of a charging task.
pub fn is_charge(parameters: &JsonMap) -> bool {
    parameters.get("action").and_then(|a| a.as_str()) == Some(CHARGE_ACTION)
}

/// Where a task goes: one pose, or several in order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    Pose(Pose),
    Waypoints(Vec<Pose>),
}

impl Goal {
    /// The poses to visit, in order.
    pub fn poses(&self) -> &[Pose] {
        match self {
            Goal::Pose(p) => std::slice::from_ref(p),
            Goal::Waypoints(ps) => ps,
        }
    }

    /// The last pose of the goal.
    pub fn final_pose(&self) -> Option<&Pose> {
        self.poses().last()
    }
}

/// `cmd/cancel`: stop the given task, or whatever runs when `task_id` is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelCommand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
}

/// `cmd/emergency_stop`: engage stops at once and refuses tasks until a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstopCommand {
    pub engage: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `cmd/teleop`: drive at this body velocity. The robot stops by itself when commands
/// stop arriving (dead-man timeout, 400 ms).
///
/// Teleop runs under a lease: the first command from an `operator` takes it, each command
/// renews it, and it lapses [`TELEOP_LEASE_MS`] after the holder's last command (or at once
/// with `release`). While one operator holds it, the robot ignores everybody else's commands.
/// Commands without an operator count as one anonymous operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeleopCommand {
    pub linear: f64,
    pub angular: f64,
    /// Who drives (at most [`MAX_OPERATOR_LEN`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Stop now and give the lease up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub release: bool,
}

/// How long a teleop lease outlives its holder's last command.
pub const TELEOP_LEASE_MS: u64 = 3000;
/// Longest operator name in a teleop command or a robot state.
pub const MAX_OPERATOR_LEN: usize = 64;

impl TeleopCommand {
    /// A drive command from `operator`.
    pub fn drive(linear: f64, angular: f64, operator: Option<String>) -> Self {
        Self {
            linear,
            angular,
            operator,
            release: false,
        }
    }
}
