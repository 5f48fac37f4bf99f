//! The Python FMS's split state messages (`state/pose`, `state/battery`, `state/status`,
//! `heartbeat`), decoded and converted into fms values so old robots can migrate one by one.

use serde::Deserialize;

use crate::common::{Pose, RobotMode, DEFAULT_FRAME};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
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
    pub fn to_pose(&self) -> Result<Pose, String> {
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
            Err("legacy pose has a non-finite value".into())
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
    pub fn validate(&self) -> Result<(), String> {
        if (0.0..=100.0).contains(&self.percentage) {
            Ok(())
        } else {
            Err(format!(
                "legacy battery percentage {} is outside 0-100",
                self.percentage
            ))
        }
    }
}

/// `fms/robot/{id}/state/status`: either `{"status": "idle"}` or a bare `"idle"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LegacyStatus {
    Object { status: String },
    Bare(String),
}

impl LegacyStatus {
    /// Maps the Python FMS's free-text status onto a mode.
    pub fn to_mode(&self) -> Result<RobotMode, String> {
        let s = match self {
            LegacyStatus::Object { status } | LegacyStatus::Bare(status) => status,
        };
        let mode = match s.to_ascii_lowercase().as_str() {
            "idle" | "ready" | "available" => RobotMode::Idle,
            "navigating" | "moving" | "busy" | "active" | "working" => RobotMode::Navigating,
            "paused" => RobotMode::Paused,
            "charging" | "docked" => RobotMode::Charging,
            "estop" | "estopped" | "emergency_stop" | "emergency-stop" => RobotMode::Estopped,
            "error" | "fault" => RobotMode::Error,
            "teleop" | "manual" => RobotMode::Teleop,
            other => return Err(format!("unknown legacy status {other:?}")),
        };
        Ok(mode)
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
    fn battery_range_checked() {
        let b: LegacyBattery = decode(br#"{"percentage":150}"#).unwrap();
        assert!(b.validate().is_err());
    }
}
