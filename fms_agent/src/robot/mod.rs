//! The robot-interface trait every backend implements (simulated, r2r, DDS), and what it reports.

#[cfg(feature = "ros2")]
pub mod ros2;
#[cfg(feature = "ros2dds")]
pub mod ros2dds;
pub mod ros_msgs;
pub mod ros_names;
pub mod sim;

use fms_msgs::{Pose, TeleopCommand, Velocity};

/// What a backend reports each time it is polled.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub pose: Pose,
    pub velocity: Velocity,
    /// 0-100.
    pub battery_percentage: f64,
    pub battery_voltage: Option<f64>,
    pub charging: bool,
    /// Progress of the current navigation goal, 0.0-1.0.
    pub nav_progress: Option<f64>,
    /// How the last navigation goal ended; reported by exactly one poll.
    pub nav_outcome: Option<NavOutcome>,
    /// Why the robot's data cannot be trusted (e.g. no odometry), if so: it is reported in
    /// ERROR and gets no task until this clears.
    pub fault: Option<String>,
}

/// How a navigation goal ended.
#[derive(Debug, Clone, PartialEq)]
pub enum NavOutcome {
    Succeeded,
    Failed(String),
    Canceled,
}

/// Why a backend refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RobotError {
    #[error("goal rejected: {0}")]
    GoalRejected(String),
    #[error("robot backend unavailable: {0}")]
    Unavailable(String),
}

/// A robot as the agent sees it. Calls never block; `now_ms` is passed in so that
/// simulated backends run in simulated time.
pub trait RobotInterface: Send {
    /// Starts navigating through `poses` in order, replacing any current goal.
    fn navigate(&mut self, poses: &[Pose], now_ms: u64) -> Result<(), RobotError>;
    /// Cancels the current goal, if any; its outcome is reported as `Canceled`.
    fn cancel(&mut self, now_ms: u64);
    /// Engaged: stop at once, cancel goals, hold zero velocity. Released: accept motion again.
    fn set_estop(&mut self, engaged: bool, now_ms: u64);
    /// Drives at a body velocity until `until_ms` (the dead-man deadline).
    fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64);
    /// The robot reached a charger as asked (`parameters.action = "charge"`): start
    /// charging. Robots that dock by themselves keep the default, which does nothing.
    fn dock(&mut self, _now_ms: u64) {}
    /// Reports the robot's current state (and, for simulated robots, advances time to `now_ms`).
    fn poll(&mut self, now_ms: u64) -> Snapshot;
}
