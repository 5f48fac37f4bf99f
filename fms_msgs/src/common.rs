//! Value types shared by several messages: poses, velocities, battery, modes, priorities.

use serde::{Deserialize, Serialize};

/// The frame robots report in and goals are given in, unless said otherwise.
pub const DEFAULT_FRAME: &str = "map";

fn default_frame() -> String {
    DEFAULT_FRAME.to_owned()
}

/// A planar pose: metres and radians, counter-clockwise yaw, in `frame`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub yaw: f64,
    #[serde(default = "default_frame")]
    pub frame: String,
}

impl Pose {
    pub fn new(x: f64, y: f64, yaw: f64) -> Self {
        Self {
            x,
            y,
            yaw,
            frame: default_frame(),
        }
    }

    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.yaw.is_finite()
    }

    pub fn distance_to(&self, other: &Pose) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// Body-frame velocity: m/s forward, rad/s counter-clockwise.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Velocity {
    pub linear: f64,
    pub angular: f64,
}

/// Battery as a robot reports it. `percentage` is 0-100.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Battery {
    pub percentage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voltage: Option<f64>,
    #[serde(default)]
    pub charging: bool,
}

/// What the robot is doing right now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RobotMode {
    Idle,
    Navigating,
    Paused,
    Charging,
    Estopped,
    Error,
    Teleop,
}

impl RobotMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            RobotMode::Idle => "IDLE",
            RobotMode::Navigating => "NAVIGATING",
            RobotMode::Paused => "PAUSED",
            RobotMode::Charging => "CHARGING",
            RobotMode::Estopped => "ESTOPPED",
            RobotMode::Error => "ERROR",
            RobotMode::Teleop => "TELEOP",
        }
    }
}

/// Task priority. Dispatch serves higher priorities first, FIFO within one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}
