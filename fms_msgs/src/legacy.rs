//! The Python FMS's protocol: its split state messages (`state/pose`, `state/battery`,
//! `state/status`, `heartbeat`), decoded and converted into fms values, and its commands
//! (`cmd/task` with `target_position`, `cmd/cancel`), encoded from ours, so old robots can
//! migrate one by one.

use serde::{Deserialize, Serialize};

use crate::codec::JsonMap;
use crate::common::{Pose, Priority, RobotMode, DEFAULT_FRAME};
use crate::ids::TaskId;
use crate::invalid::InvalidMessage;
use crate::server_to_robot::{Goal, TaskCommand};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub z: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Quaternion {
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
    #[serde(default)]
    pub z: f64,
    #[serde(default = "one")]
    pub w: f64,
}

fn one() -> f64 {
    1.0
}

impl Quaternion {
    /// Rotation about z, in radians (-pi, pi].
    pub fn yaw(&self) -> f64 {
        let siny = 2.0 * (self.w * self.z + self.x * self.y);
        let cosy = 1.0 - 2.0 * (self.y * self.y + self.z * self.z);
        siny.atan2(cosy)
    }
}

/// `fms/robot/{id}/state/pose`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LegacyPose {
    pub position: Vec3,
    pub orientation: Quaternion,
    #[serde(default, alias = "frame")]
    pub frame_id: Option<String>,
}

impl LegacyPose {
    pub fn to_pose(&self) -> Result<Pose, InvalidMessage> {
        let yaw = self.orientation.yaw();
        let pose = Pose {
            x: self.position.x,
            y: self.position.y,
            yaw,
            frame: self
                .frame_id
                .clone()
                .unwrap_or_else(|| DEFAULT_FRAME.to_owned()),
        };
        if pose.is_finite() {
            Ok(pose)
        } else {
            Err(InvalidMessage::LegacyNonFinitePose)
        }
    }
}

/// `fms/robot/{id}/state/battery`. `percentage` is 0-100.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct LegacyBattery {
    pub percentage: f64,
    #[serde(default)]
    pub voltage: Option<f64>,
    #[serde(default)]
    pub charging: Option<bool>,
}

impl LegacyBattery {
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if (0.0..=100.0).contains(&self.percentage) {
            Ok(())
        } else {
            Err(InvalidMessage::LegacyBatteryPercentage(self.percentage))
        }
    }
}

/// `fms/robot/{id}/state/status`: either `{"status": "IDLE", "message": "...", "timestamp":
/// 1767225600.5}` (`message` and `timestamp` optional) or a bare `"idle"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LegacyStatus {
    Object {
        status: String,
        #[serde(default)]
        message: Option<String>,
        /// Unix seconds, the robot's clock.
        #[serde(default)]
        timestamp: Option<f64>,
    },
    Bare(String),
}

/// The status words of the Python FMS's task protocol: after `cmd/task` a robot answers
/// `RUNNING`, then `COMPLETED` or `ERROR`; after `cmd/cancel`, `CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyTaskStatus {
    Idle,
    Running,
    Completed,
    Cancelled,
    Error,
}

impl LegacyStatus {
    fn word(&self) -> &str {
        match self {
            LegacyStatus::Object { status, .. } | LegacyStatus::Bare(status) => status,
        }
    }

    /// The free text that came with the status, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            LegacyStatus::Object { message, .. } => message.as_deref(),
            LegacyStatus::Bare(_) => None,
        }
    }

    /// The robot's timestamp (Unix seconds), if it sent a finite one.
    pub fn timestamp(&self) -> Option<f64> {
        match self {
            LegacyStatus::Object { timestamp, .. } => timestamp.filter(|t| t.is_finite()),
            LegacyStatus::Bare(_) => None,
        }
    }

    /// Maps the Python FMS's free-text status onto a mode.
    pub fn to_mode(&self) -> Result<RobotMode, InvalidMessage> {
        let mode = match self.word().to_ascii_lowercase().as_str() {
            "idle" | "ready" | "available" | "completed" | "cancelled" | "canceled" => {
                RobotMode::Idle
            }
            "navigating" | "moving" | "busy" | "active" | "working" | "running" => {
                RobotMode::Navigating
            }
            "paused" => RobotMode::Paused,
            "charging" | "docked" => RobotMode::Charging,
            "estop" | "estopped" | "emergency_stop" | "emergency-stop" => RobotMode::Estopped,
            "error" | "fault" => RobotMode::Error,
            "teleop" | "manual" => RobotMode::Teleop,
            other => return Err(InvalidMessage::UnknownLegacyStatus(other.to_owned())),
        };
        Ok(mode)
    }

    /// The task-protocol word this status is, if it is one (case-insensitive).
    pub fn task_status(&self) -> Option<LegacyTaskStatus> {
        let status = match self.word().to_ascii_lowercase().as_str() {
            "idle" => LegacyTaskStatus::Idle,
            "running" => LegacyTaskStatus::Running,
            "completed" => LegacyTaskStatus::Completed,
            "cancelled" | "canceled" => LegacyTaskStatus::Cancelled,
            "error" => LegacyTaskStatus::Error,
            _ => return None,
        };
        Some(status)
    }
}

/// Why a task cannot be sent to a robot of the Python FMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyTaskError {
    #[error("legacy robots take one target pose; this goal has {0} waypoints")]
    Waypoints(usize),
    #[error("legacy robots take no task parameters (got {0}); charging and other actions cannot be sent to them")]
    Parameters(String),
}

/// Whether a robot of the Python FMS can run a task: one pose, no parameters.
pub fn check_task(goal: &Goal, parameters: &JsonMap) -> Result<(), LegacyTaskError> {
    if let Goal::Waypoints(ps) = goal {
        if ps.len() != 1 {
            return Err(LegacyTaskError::Waypoints(ps.len()));
        }
    }
    if !parameters.is_empty() {
        let names: Vec<&str> = parameters.keys().map(String::as_str).collect();
        return Err(LegacyTaskError::Parameters(names.join(", ")));
    }
    Ok(())
}

/// `fms/robot/{id}/cmd/task` in the Python FMS's form: where to go (`z` always 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyTaskCommand {
    pub task_id: TaskId,
    pub target_position: Vec3,
    /// 0 low, 1 normal, 2 high, 3 urgent.
    pub priority: u8,
    /// Unix seconds.
    pub timestamp: f64,
}

/// `fms/robot/{id}/cmd/cancel` in the Python FMS's form: stop whatever runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyCancelCommand {
    /// Unix seconds.
    pub timestamp: f64,
    pub reason: String,
}

/// The Python FMS's number for a priority.
pub fn priority_number(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

impl LegacyTaskCommand {
    /// Our task command in the old form, at `now_ms` (Unix ms).
    pub fn from_command(cmd: &TaskCommand, now_ms: u64) -> Result<Self, LegacyTaskError> {
        check_task(&cmd.goal, &cmd.parameters)?;
        let pose = cmd.goal.final_pose().ok_or(LegacyTaskError::Waypoints(0))?;
        Ok(Self {
            task_id: cmd.task_id.clone(),
            target_position: Vec3 {
                x: pose.x,
                y: pose.y,
                z: 0.0,
            },
            priority: priority_number(cmd.priority),
            timestamp: unix_s(now_ms),
        })
    }
}

impl LegacyCancelCommand {
    pub fn new(reason: impl Into<String>, now_ms: u64) -> Self {
        Self {
            timestamp: unix_s(now_ms),
            reason: reason.into(),
        }
    }
}

/// Unix milliseconds as the Python FMS's float seconds.
pub fn unix_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A log level as the Python FMS wrote it (`DEBUG`, `INFO`, `WARNING`, `CRITICAL`, in its
/// config.json or `LOG_LEVEL`) in our words; any other filter is kept as it is.
pub fn log_level(s: &str) -> String {
    let word = s.trim().to_ascii_lowercase();
    match word.as_str() {
        "warning" => "warn".into(),
        "critical" | "fatal" => "error".into(),
        "notset" => "trace".into(),
        "trace" | "debug" | "info" | "warn" | "error" | "off" => word,
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    #[test]
    fn pose_with_quaternion_becomes_yaw() {
        let p: LegacyPose = decode(
            br#"{"position":{"x":1.5,"y":-2,"z":0},"orientation":{"x":0,"y":0,"z":0.7071068,"w":0.7071068}}"#,
        )
        .unwrap();
        let pose = p.to_pose().unwrap();
        assert_eq!((pose.x, pose.y, pose.frame.as_str()), (1.5, -2.0, "map"));
        assert!((pose.yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-6);
    }

    #[test]
    fn status_both_shapes() {
        let a: LegacyStatus = decode(br#"{"status":"Charging"}"#).unwrap();
        let b: LegacyStatus = decode(br#""moving""#).unwrap();
        assert_eq!(a.to_mode(), Ok(RobotMode::Charging));
        assert_eq!(b.to_mode(), Ok(RobotMode::Navigating));
        let c: LegacyStatus = decode(br#"{"status":"dancing"}"#).unwrap();
        assert!(c.to_mode().is_err());
    }

    #[test]
    fn task_protocol_words_and_their_details() {
        let s: LegacyStatus = decode(
            br#"{"status":"RUNNING","message":"task t1 started","timestamp":1767225600.25}"#,
        )
        .unwrap();
        assert_eq!(s.task_status(), Some(LegacyTaskStatus::Running));
        assert_eq!(s.to_mode(), Ok(RobotMode::Navigating));
        assert_eq!(s.message(), Some("task t1 started"));
        assert_eq!(s.timestamp(), Some(1767225600.25));
        for (word, status, mode) in [
            ("IDLE", LegacyTaskStatus::Idle, RobotMode::Idle),
            ("COMPLETED", LegacyTaskStatus::Completed, RobotMode::Idle),
            ("CANCELLED", LegacyTaskStatus::Cancelled, RobotMode::Idle),
            ("ERROR", LegacyTaskStatus::Error, RobotMode::Error),
        ] {
            let s = LegacyStatus::Bare(word.into());
            assert_eq!(
                (s.task_status(), s.to_mode()),
                (Some(status), Ok(mode)),
                "{word}"
            );
        }
        assert_eq!(LegacyStatus::Bare("moving".into()).task_status(), None);
        // Wrong types do not decode.
        assert!(decode::<LegacyStatus>(br#"{"status":5}"#).is_err());
        assert!(decode::<LegacyStatus>(br#"{"status":"IDLE","timestamp":"noon"}"#).is_err());
    }

    #[test]
    fn task_command_in_the_old_form() {
        use crate::server_to_robot::charge_parameters;
        let mut cmd = TaskCommand {
            task_id: TaskId::new("t1").unwrap(),
            goal: Goal::Pose(Pose::new(3.0, -1.5, 1.0)),
            priority: Priority::High,
            timeout_s: Some(30.0),
            parameters: JsonMap::new(),
        };
        let old = LegacyTaskCommand::from_command(&cmd, 1_767_225_600_500).unwrap();
        let json: crate::codec::JsonValue = decode(&crate::encode(&old)).unwrap();
        assert_eq!(
            json,
            json_of(
                r#"{"task_id":"t1","target_position":{"x":3.0,"y":-1.5,"z":0.0},"priority":2,"timestamp":1767225600.5}"#
            )
        );
        cmd.goal = Goal::Waypoints(vec![Pose::new(1.0, 0.0, 0.0), Pose::new(2.0, 0.0, 0.0)]);
        assert_eq!(
            LegacyTaskCommand::from_command(&cmd, 0),
            Err(LegacyTaskError::Waypoints(2))
        );
        cmd.goal = Goal::Waypoints(vec![Pose::new(1.0, 0.0, 0.0)]);
        assert!(LegacyTaskCommand::from_command(&cmd, 0).is_ok());
        cmd.parameters = charge_parameters();
        assert!(matches!(
            LegacyTaskCommand::from_command(&cmd, 0),
            Err(LegacyTaskError::Parameters(_))
        ));
        let cancel = LegacyCancelCommand::new("operator", 2_000);
        assert_eq!(
            crate::encode(&cancel),
            br#"{"timestamp":2.0,"reason":"operator"}"#.to_vec()
        );
    }

    fn json_of(text: &str) -> crate::codec::JsonValue {
        decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn battery_range_checked() {
        let b: LegacyBattery = decode(br#"{"percentage":150}"#).unwrap();
        assert!(b.validate().is_err());
    }
}
