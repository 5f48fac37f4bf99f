//! The ROS 2 message mirrors: field names, types and order follow the .msg/.action definitions,
//! so the same structs read r2r's JSON and CDR off the wire (see `wire.rs`).
//!
//! Every struct takes `#[serde(default)]` so JSON from r2r's untyped API may omit fields. CDR
//! has no field names: order is the layout, and fixed arrays (`float64[36]`) carry no length.

use serde::{Deserialize, Deserializer, Serialize};

/// The ROS type of Nav2's navigation action, for clients that name types at run time.
pub const NAVIGATE_TO_POSE_TYPE: &str = "nav2_msgs/action/NavigateToPose";

/// `builtin_interfaces/Time`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}

impl Time {
    pub fn as_secs_f64(&self) -> f64 {
        self.sec as f64 + self.nanosec as f64 * 1e-9
    }

    pub fn is_zero(&self) -> bool {
        self.sec == 0 && self.nanosec == 0
    }
}

/// `builtin_interfaces/Duration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RosDuration {
    pub sec: i32,
    pub nanosec: u32,
}

impl RosDuration {
    pub fn as_secs_f64(&self) -> f64 {
        self.sec as f64 + self.nanosec as f64 * 1e-9
    }
}

/// `std_msgs/Header`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

/// `geometry_msgs/Point`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// `geometry_msgs/Vector3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vector3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// `geometry_msgs/Quaternion`; the default is the identity rotation (w = 1), as in the .msg.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}

impl Default for Quaternion {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            w: 1.0,
        }
    }
}

/// `geometry_msgs/Pose` (named so it is not confused with the fleet's planar [`fms_msgs::Pose`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RosPose {
    pub position: Point,
    pub orientation: Quaternion,
}

/// `geometry_msgs/PoseStamped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoseStamped {
    pub header: Header,
    pub pose: RosPose,
}

/// `geometry_msgs/PoseWithCovariance` (`covariance` is `float64[36]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoseWithCovariance {
    pub pose: RosPose,
    #[serde(with = "covariance")]
    pub covariance: Vec<f64>,
}

/// `geometry_msgs/PoseWithCovarianceStamped`: what AMCL publishes on `amcl_pose`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoseWithCovarianceStamped {
    pub header: Header,
    pub pose: PoseWithCovariance,
}

/// `geometry_msgs/Twist`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Twist {
    pub linear: Vector3,
    pub angular: Vector3,
}

/// `geometry_msgs/TwistStamped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TwistStamped {
    pub header: Header,
    pub twist: Twist,
}

/// `geometry_msgs/TwistWithCovariance` (`covariance` is `float64[36]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TwistWithCovariance {
    pub twist: Twist,
    #[serde(with = "covariance")]
    pub covariance: Vec<f64>,
}

/// `nav_msgs/Odometry`: pose in `header.frame_id` (odom), twist in `child_frame_id` (base).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Odometry {
    pub header: Header,
    pub child_frame_id: String,
    pub pose: PoseWithCovariance,
    pub twist: TwistWithCovariance,
}

/// `sensor_msgs/BatteryState`. `percentage` is 0-1 by the message's definition, NaN when
/// unmeasured; unmeasured floats are NaN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatteryState {
    pub header: Header,
    pub voltage: f32,
    pub temperature: f32,
    pub current: f32,
    pub charge: f32,
    pub capacity: f32,
    pub design_capacity: f32,
    pub percentage: f32,
    pub power_supply_status: u8,
    pub power_supply_health: u8,
    pub power_supply_technology: u8,
    pub present: bool,
    pub cell_voltage: Vec<f32>,
    pub cell_temperature: Vec<f32>,
    pub location: String,
    pub serial_number: String,
}

impl BatteryState {
    pub const POWER_SUPPLY_STATUS_UNKNOWN: u8 = 0;
    pub const POWER_SUPPLY_STATUS_CHARGING: u8 = 1;
    pub const POWER_SUPPLY_STATUS_DISCHARGING: u8 = 2;
    pub const POWER_SUPPLY_STATUS_NOT_CHARGING: u8 = 3;
    pub const POWER_SUPPLY_STATUS_FULL: u8 = 4;
}

/// `nav2_msgs/action/NavigateToPose` goal (the same in Humble and Jazzy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NavigateToPoseGoal {
    pub pose: PoseStamped,
    /// Empty: Nav2's default behaviour tree.
    pub behavior_tree: String,
}

/// `nav2_msgs/action/NavigateToPose` feedback (the same in Humble and Jazzy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NavigateToPoseFeedback {
    pub current_pose: PoseStamped,
    pub navigation_time: RosDuration,
    pub estimated_time_remaining: RosDuration,
    pub number_of_recoveries: i16,
    /// Metres along the current plan; 0 until Nav2 has planned. JSON has no NaN, so a NaN
    /// sent through r2r's JSON arrives as `null` and reads back as NaN.
    #[serde(deserialize_with = "f32_or_nan")]
    pub distance_remaining: f32,
}

/// `nav2_msgs/action/NavigateToPose` result: Jazzy has `error_code` and `error_msg`; Humble's
/// result is empty, which reads as code 0 and no message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NavigateToPoseResult {
    pub error_code: u16,
    pub error_msg: String,
}

/// `action_msgs/GoalStatus` status codes.
pub mod goal_status {
    pub const UNKNOWN: i8 = 0;
    pub const ACCEPTED: i8 = 1;
    pub const EXECUTING: i8 = 2;
    pub const CANCELING: i8 = 3;
    pub const SUCCEEDED: i8 = 4;
    pub const CANCELED: i8 = 5;
    pub const ABORTED: i8 = 6;
}

/// JSON (r2r) writes a NaN as `null`; CDR carries the float itself.
fn f32_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    if d.is_human_readable() {
        Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
    } else {
        f32::deserialize(d)
    }
}

/// `float64[36]`: a list in JSON (r2r), a fixed array with no length in CDR. A covariance of
/// another length is written zero-padded or cut to 36.
mod covariance {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub const LEN: usize = 36;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return v.serialize(s);
        }
        let mut t = s.serialize_tuple(LEN)?;
        for i in 0..LEN {
            t.serialize_element(&v.get(i).copied().unwrap_or(0.0))?;
        }
        t.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        if d.is_human_readable() {
            return Vec::<f64>::deserialize(d);
        }
        struct Fixed;
        impl<'de> Visitor<'de> for Fixed {
            type Value = Vec<f64>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{LEN} float64")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
                let mut out = Vec::with_capacity(LEN);
                for i in 0..LEN {
                    out.push(
                        seq.next_element()?
                            .ok_or_else(|| A::Error::invalid_length(i, &self))?,
                    );
                }
                Ok(out)
            }
        }
        d.deserialize_tuple(LEN, Fixed)
    }
}

// ---------------------------------------------------------------------------------------------
// The action protocol around a `NavigateToPose` goal, as any ROS 2 action client speaks it over
// DDS (services `_action/send_goal`, `_action/cancel_goal`, `_action/get_result`, topics
// `_action/feedback`, `_action/status`). The r2r backend never sees these: rcl does it there.
// ---------------------------------------------------------------------------------------------

/// `unique_identifier_msgs/UUID`: a goal's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GoalId {
    pub uuid: [u8; 16],
}

/// `action_msgs/GoalInfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalInfo {
    pub goal_id: GoalId,
    pub stamp: Time,
}

/// `action_msgs/GoalStatus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalStatus {
    pub goal_info: GoalInfo,
    pub status: i8,
}

/// `action_msgs/GoalStatusArray`, published on `_action/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalStatusArray {
    pub status_list: Vec<GoalStatus>,
}

/// `NavigateToPose_SendGoal` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendGoalRequest {
    pub goal_id: GoalId,
    pub goal: NavigateToPoseGoal,
}

/// `NavigateToPose_SendGoal` response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendGoalResponse {
    pub accepted: bool,
    pub stamp: Time,
}

/// `action_msgs/CancelGoal` request: a zero id and stamp cancel every goal, so we always
/// name the goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelGoalRequest {
    pub goal_info: GoalInfo,
}

/// `action_msgs/CancelGoal` response; `return_code` 0 is `ERROR_NONE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelGoalResponse {
    pub return_code: i8,
    pub goals_canceling: Vec<GoalInfo>,
}

/// `NavigateToPose_GetResult` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResultRequest {
    pub goal_id: GoalId,
}

/// `NavigateToPose_GetResult` response (Jazzy layout; see `wire::decode_get_result`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetResultResponse {
    pub status: i8,
    pub result: NavigateToPoseResult,
}

/// `NavigateToPose_FeedbackMessage`, published on `_action/feedback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackMessage {
    pub goal_id: GoalId,
    pub feedback: NavigateToPoseFeedback,
}
