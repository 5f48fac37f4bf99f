//! ROS 2 messages as plain Rust mirrors, and the pure translation between them and the agent.
//!
//! Nothing here knows about r2r or DDS: the structs below copy the fields of the ROS messages
//! the robot backends use (same names, same types), so the r2r backend (`ros2.rs`) converts its
//! generated types into them and a DDS backend can decode CDR into them. [`RosBridge`] is the
//! whole ROS-side behaviour of a robot as a state machine: it takes odometry, AMCL poses,
//! battery states and Nav2 action events, is driven by the `RobotInterface` calls, and returns
//! the [`Output`]s (goals to send, goals to cancel, `cmd_vel` to publish) for the transport to
//! perform. Every decision (pose selection, battery units, progress, outcome codes, e-stop and
//! teleop dead-man) is a plain function or method here, with unit tests.

use std::collections::VecDeque;

use fms_msgs::codec::{self, DecodeError, JsonValue};
use fms_msgs::common::DEFAULT_FRAME;
use fms_msgs::{Pose, TeleopCommand, Velocity};
use serde::Deserialize;

use super::sim::wrap_angle;
use super::{NavOutcome, RobotError, Snapshot};
use crate::executor::TELEOP_DEADMAN_MS;

pub use messages::*;

mod messages;
#[cfg(test)]
mod tests;
pub mod wire;

// ---------------------------------------------------------------------------------------------
// Geometry.
// ---------------------------------------------------------------------------------------------

/// Yaw (rotation about z, radians in -π..π) of a quaternion. Not-normalized quaternions give
/// the same yaw as their normalized form.
pub fn yaw_from_quaternion(q: &Quaternion) -> f64 {
    let siny = 2.0 * (q.w * q.z + q.x * q.y);
    let cosy = q.w * q.w + q.x * q.x - q.y * q.y - q.z * q.z;
    siny.atan2(cosy)
}

/// The quaternion of a pure rotation by `yaw` about z.
pub fn quaternion_from_yaw(yaw: f64) -> Quaternion {
    let half = yaw / 2.0;
    Quaternion {
        x: 0.0,
        y: 0.0,
        z: half.sin(),
        w: half.cos(),
    }
}

/// A planar pose in `frame` from a ROS pose (height, roll and pitch dropped).
pub fn pose_from_ros(p: &RosPose, frame: &str) -> Pose {
    Pose {
        x: p.position.x,
        y: p.position.y,
        yaw: yaw_from_quaternion(&p.orientation),
        frame: frame.to_owned(),
    }
}

/// A ROS pose from a planar one.
pub fn ros_from_pose(p: &Pose) -> RosPose {
    RosPose {
        position: Point {
            x: p.x,
            y: p.y,
            z: 0.0,
        },
        orientation: quaternion_from_yaw(p.yaw),
    }
}

/// Body velocity from a twist: forward speed and turn rate.
pub fn velocity_from_twist(t: &Twist) -> Velocity {
    Velocity {
        linear: t.linear.x,
        angular: t.angular.z,
    }
}

/// A twist for a body velocity.
pub fn twist_from_velocity(v: Velocity) -> Twist {
    Twist {
        linear: Vector3 {
            x: v.linear,
            ..Vector3::default()
        },
        angular: Vector3 {
            z: v.angular,
            ..Vector3::default()
        },
    }
}

/// `a ⊕ b`: pose `b` (relative to `a`) expressed in `a`'s frame.
fn compose(a: &Pose, b: &Pose) -> Pose {
    let (s, c) = a.yaw.sin_cos();
    Pose {
        x: a.x + c * b.x - s * b.y,
        y: a.y + s * b.x + c * b.y,
        yaw: wrap_angle(a.yaw + b.yaw),
        frame: a.frame.clone(),
    }
}

/// `a⁻¹`, so that `a ⊕ a⁻¹` is the identity.
fn invert(a: &Pose) -> Pose {
    let (s, c) = a.yaw.sin_cos();
    Pose {
        x: -c * a.x - s * a.y,
        y: s * a.x - c * a.y,
        yaw: wrap_angle(-a.yaw),
        frame: a.frame.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Pose selection: odometry and localization.
// ---------------------------------------------------------------------------------------------

/// Odometry poses kept to match AMCL stamps (several seconds at odometry rates).
const ODOM_HISTORY: usize = 256;

/// Chooses the pose to report from odometry and localization (AMCL).
///
/// - Without localization (`use_localization = false`) the odometry pose is reported, in the
///   odometry frame (`header.frame_id`, "odom" if empty).
/// - With localization, AMCL gives the map pose. AMCL publishes only after the robot moved
///   some distance, so between its messages the pose is carried forward with odometry:
///   `map ← odom` is taken from the AMCL pose and the odometry pose nearest its stamp, and
///   applied to the latest odometry. The result is in the fleet's `map` frame.
/// - With localization but before the first AMCL pose, the odometry pose is reported, tagged
///   with its odometry frame so that no one mistakes it for a map pose.
#[derive(Debug, Clone)]
pub struct PoseTracker {
    use_localization: bool,
    /// Odometry poses with their stamps (seconds), oldest first.
    odom: VecDeque<(f64, Pose)>,
    /// The last AMCL pose, in the fleet's map frame.
    amcl: Option<Pose>,
    map_from_odom: Option<Pose>,
}

impl PoseTracker {
    pub fn new(use_localization: bool) -> Self {
        Self {
            use_localization,
            odom: VecDeque::new(),
            amcl: None,
            map_from_odom: None,
        }
    }

    /// A `nav_msgs/Odometry`. Non-finite poses are ignored.
    pub fn on_odom(&mut self, msg: &Odometry) {
        let frame = if msg.header.frame_id.is_empty() {
            "odom"
        } else {
            msg.header.frame_id.trim_start_matches('/')
        };
        let pose = pose_from_ros(&msg.pose.pose, frame);
        if !pose.is_finite() {
            return;
        }
        if self.odom.len() == ODOM_HISTORY {
            self.odom.pop_front();
        }
        self.odom.push_back((msg.header.stamp.as_secs_f64(), pose));
        if self.map_from_odom.is_none() {
            // A localization pose that arrived before any odometry anchors it now.
            if let (Some(amcl), Some((_, odom))) = (&self.amcl, self.odom.back()) {
                self.map_from_odom = Some(compose(amcl, &invert(odom)));
            }
        }
    }

    /// A `geometry_msgs/PoseWithCovarianceStamped` from localization. Non-finite poses are
    /// ignored, as are all when localization is off.
    pub fn on_amcl(&mut self, msg: &PoseWithCovarianceStamped) {
        if !self.use_localization {
            return;
        }
        let pose = pose_from_ros(&msg.pose.pose, DEFAULT_FRAME);
        if !pose.is_finite() {
            return;
        }
        self.map_from_odom = self
            .odom_near(&msg.header.stamp)
            .map(|odom| compose(&pose, &invert(odom)));
        self.amcl = Some(pose);
    }

    /// The odometry pose whose stamp is nearest `stamp`; the latest one for a zero stamp.
    fn odom_near(&self, stamp: &Time) -> Option<&Pose> {
        if stamp.is_zero() {
            return self.odom.back().map(|(_, p)| p);
        }
        let t = stamp.as_secs_f64();
        self.odom
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map(|(_, p)| p)
    }

    /// The pose to report, if any source has spoken yet.
    pub fn pose(&self) -> Option<Pose> {
        let odom = self.odom.back().map(|(_, p)| p);
        if self.use_localization {
            match (&self.map_from_odom, odom, &self.amcl) {
                (Some(correction), Some(odom), _) => {
                    let mut p = compose(correction, odom);
                    p.frame = DEFAULT_FRAME.to_owned();
                    return Some(p);
                }
                (_, _, Some(amcl)) => return Some(amcl.clone()),
                _ => {}
            }
        }
        odom.cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// Battery.
// ---------------------------------------------------------------------------------------------

/// What unit a robot's `BatteryState.percentage` is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatteryScale {
    /// 0-1, as `sensor_msgs/BatteryState` defines it; values above 1 are read as 1 (full).
    #[default]
    Fraction,
    /// 0-100, for drivers that publish percent against the definition.
    Percent,
}

impl std::str::FromStr for BatteryScale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fraction" => Ok(Self::Fraction),
            "percent" => Ok(Self::Percent),
            other => Err(format!("expected fraction or percent, got {other:?}")),
        }
    }
}

/// Battery charge in percent (0-100) from a `BatteryState`, or `None` when the message does
/// not say: `percentage` when it is a number ≥ 0 (scaled by `scale`, clamped to 100), else
/// `charge / capacity` when both are known.
pub fn battery_percentage(msg: &BatteryState, scale: BatteryScale) -> Option<f64> {
    let p = msg.percentage as f64;
    if p.is_finite() && p >= 0.0 {
        let percent = match scale {
            BatteryScale::Fraction => p.min(1.0) * 100.0,
            BatteryScale::Percent => p.min(100.0),
        };
        return Some(percent);
    }
    let (charge, capacity) = (msg.charge as f64, msg.capacity as f64);
    (charge.is_finite() && capacity.is_finite() && charge >= 0.0 && capacity > 0.0)
        .then(|| (charge / capacity).min(1.0) * 100.0)
}

/// Pack voltage, when the message gives a positive number.
pub fn battery_voltage(msg: &BatteryState) -> Option<f64> {
    let v = msg.voltage as f64;
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Whether the robot is charging: `power_supply_status` is CHARGING. FULL (on a charger but
/// not charging) counts as not charging, so a full robot stays available for tasks.
pub fn battery_charging(msg: &BatteryState) -> bool {
    msg.power_supply_status == BatteryState::POWER_SUPPLY_STATUS_CHARGING
}

/// The battery as last reported.
///
/// An unknown percentage (NaN and no charge/capacity) keeps the last known value. Until a
/// first known value arrives, or when the robot publishes no battery state at all (most
/// simulators), `unknown_percentage` is reported (100 by default, so that a robot without a
/// battery topic still gets tasks; see docs/ros2.md).
#[derive(Debug, Clone)]
pub struct BatteryTracker {
    scale: BatteryScale,
    unknown_percentage: f64,
    percentage: Option<f64>,
    voltage: Option<f64>,
    charging: bool,
}

impl BatteryTracker {
    pub fn new(scale: BatteryScale, unknown_percentage: f64) -> Self {
        Self {
            scale,
            unknown_percentage,
            percentage: None,
            voltage: None,
            charging: false,
        }
    }

    pub fn on_battery(&mut self, msg: &BatteryState) {
        if let Some(p) = battery_percentage(msg, self.scale) {
            self.percentage = Some(p);
        }
        self.voltage = battery_voltage(msg);
        self.charging = battery_charging(msg);
    }

    /// Whether a percentage has been received.
    pub fn is_known(&self) -> bool {
        self.percentage.is_some()
    }

    pub fn percentage(&self) -> f64 {
        self.percentage.unwrap_or(self.unknown_percentage)
    }

    pub fn voltage(&self) -> Option<f64> {
        self.voltage
    }

    pub fn charging(&self) -> bool {
        self.charging
    }
}

// ---------------------------------------------------------------------------------------------
// Nav2 goals, feedback and results.
// ---------------------------------------------------------------------------------------------

/// The `NavigateToPose` goal for a fleet pose.
///
/// The fleet's `map` frame (and an empty frame) becomes `map_frame`; any other frame is
/// passed through. The stamp is zero, which Nav2 and tf read as "the latest transform": it
/// is right with and without simulated time, where a wall-clock stamp would not be.
pub fn navigate_to_pose_goal(pose: &Pose, map_frame: &str) -> NavigateToPoseGoal {
    let frame_id = if pose.frame.is_empty() || pose.frame == DEFAULT_FRAME {
        map_frame
    } else {
        pose.frame.as_str()
    };
    NavigateToPoseGoal {
        pose: PoseStamped {
            header: Header {
                stamp: Time::default(),
                frame_id: frame_id.to_owned(),
            },
            pose: ros_from_pose(pose),
        },
        behavior_tree: String::new(),
    }
}

/// A goal as the JSON r2r's untyped action client takes.
pub fn goal_to_json(goal: &NavigateToPoseGoal) -> JsonValue {
    codec::to_value(goal)
}

/// Feedback from r2r's untyped action client.
pub fn feedback_from_json(value: JsonValue) -> Result<NavigateToPoseFeedback, DecodeError> {
    codec::from_value(value)
}

/// A result from r2r's untyped action client; anything unreadable reads as an empty result.
pub fn result_from_json(value: JsonValue) -> NavigateToPoseResult {
    codec::from_value(value).unwrap_or_default()
}

/// How a goal that ended with `status` went, or `None` for a status that is not terminal
/// (unknown, accepted, executing, canceling).
pub fn outcome_from_status(status: i8, result: &NavigateToPoseResult) -> Option<NavOutcome> {
    match status {
        goal_status::SUCCEEDED => Some(NavOutcome::Succeeded),
        goal_status::CANCELED => Some(NavOutcome::Canceled),
        goal_status::ABORTED => {
            let mut reason = "Nav2 aborted the goal".to_owned();
            if !result.error_msg.is_empty() {
                reason = format!("{reason}: {}", result.error_msg);
            }
            if result.error_code != 0 {
                reason = format!("{reason} (error code {})", result.error_code);
            }
            Some(NavOutcome::Failed(reason))
        }
        goal_status::UNKNOWN
        | goal_status::ACCEPTED
        | goal_status::EXECUTING
        | goal_status::CANCELING => None,
        other => Some(NavOutcome::Failed(format!(
            "navigation ended with unknown goal status {other}"
        ))),
    }
}

/// Progress (0-1) of a navigation through waypoints, each sent as one `NavigateToPose` goal.
///
/// Each leg weighs its straight-line length (from the start pose to the first waypoint, then
/// between waypoints). Within a leg, progress is `1 - distance_remaining / initial`, where
/// `initial` is the largest `distance_remaining` Nav2 reported for the leg (Nav2 reports 0
/// until it has a plan; those are skipped). The overall value never goes down and stays in 0-1.
#[derive(Debug, Clone, PartialEq)]
pub struct WaypointProgress {
    weights: Vec<f64>,
    leg: usize,
    leg_initial: Option<f64>,
    leg_fraction: f64,
    progress: f64,
}

/// A leg shorter than this (metres) weighs this much, so that no leg weighs nothing.
const MIN_LEG_WEIGHT: f64 = 0.05;

impl WaypointProgress {
    pub fn new(start: Option<&Pose>, poses: &[Pose]) -> Self {
        let mut weights: Vec<f64> = Vec::with_capacity(poses.len());
        for (i, p) in poses.iter().enumerate() {
            let from = if i == 0 { start } else { poses.get(i - 1) };
            weights.push(from.map_or(f64::NAN, |f| f.distance_to(p).max(MIN_LEG_WEIGHT)));
        }
        // Without a start pose, the first leg weighs as much as an average other leg.
        let known: Vec<f64> = weights.iter().copied().filter(|w| w.is_finite()).collect();
        let fill = if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        for w in &mut weights {
            if !w.is_finite() {
                *w = fill;
            }
        }
        Self {
            weights,
            leg: 0,
            leg_initial: None,
            leg_fraction: 0.0,
            progress: 0.0,
        }
    }

    /// Index of the waypoint being driven to.
    pub fn leg(&self) -> usize {
        self.leg
    }

    pub fn legs(&self) -> usize {
        self.weights.len()
    }

    pub fn progress(&self) -> f64 {
        self.progress
    }

    /// Nav2 feedback for the current leg; returns the overall progress.
    pub fn on_distance_remaining(&mut self, distance: f64) -> f64 {
        if !(distance.is_finite() && distance >= 0.0) {
            return self.progress;
        }
        let initial = match self.leg_initial {
            Some(i) if i >= distance => i,
            _ if distance > 0.0 => {
                self.leg_initial = Some(distance);
                distance
            }
            // No plan yet (0 before any positive value).
            _ => return self.progress,
        };
        let fraction = (1.0 - distance / initial).clamp(0.0, 1.0);
        self.leg_fraction = self.leg_fraction.max(fraction);
        self.update()
    }

    /// The current leg reached its waypoint. Returns whether another leg follows.
    pub fn leg_done(&mut self) -> bool {
        self.leg_fraction = 1.0;
        self.update();
        if self.leg + 1 < self.weights.len() {
            self.leg += 1;
            self.leg_initial = None;
            self.leg_fraction = 0.0;
            true
        } else {
            false
        }
    }

    fn update(&mut self) -> f64 {
        let total: f64 = self.weights.iter().sum();
        if total > 0.0 {
            let done: f64 = self.weights[..self.leg].iter().sum::<f64>()
                + self.weights.get(self.leg).copied().unwrap_or(0.0) * self.leg_fraction;
            self.progress = self.progress.max((done / total).clamp(0.0, 1.0));
        }
        self.progress
    }
}

// ---------------------------------------------------------------------------------------------
// cmd_vel: e-stop hold and teleop dead-man.
// ---------------------------------------------------------------------------------------------

/// Decides what to publish on `cmd_vel`, and when.
///
/// - E-stop engaged: zero, at once and then every period, until released.
/// - Teleop: the commanded velocity, at once and then every period, until its deadline,
///   which is at most [`TELEOP_DEADMAN_MS`] after the command arrived; then one zero.
/// - Otherwise nothing, so that Nav2's controller owns `cmd_vel`.
#[derive(Debug, Clone)]
pub struct CmdVelGate {
    period_ms: u64,
    estop: bool,
    teleop: Option<(Velocity, u64)>,
    last_sent_ms: Option<u64>,
    /// Publish at the next tick whatever the period (state changed).
    due: bool,
    /// One zero to publish (teleop ended or was cleared).
    stop: bool,
}

impl CmdVelGate {
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms: period_ms.max(1),
            estop: false,
            teleop: None,
            last_sent_ms: None,
            due: false,
            stop: false,
        }
    }

    pub fn set_estop(&mut self, engaged: bool) {
        if engaged {
            self.teleop = None;
            self.due = true;
        }
        self.estop = engaged;
    }

    /// Drive at `cmd` until `until_ms` (capped at `now_ms` + the dead-man timeout). Ignored
    /// while the e-stop is engaged or for a non-finite command.
    pub fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        if self.estop || !(cmd.linear.is_finite() && cmd.angular.is_finite()) {
            return;
        }
        let until = until_ms.min(now_ms + TELEOP_DEADMAN_MS);
        let v = Velocity {
            linear: cmd.linear,
            angular: cmd.angular,
        };
        self.teleop = Some((v, until));
        self.due = true;
    }

    /// Ends teleop (navigation takes over): one zero follows.
    pub fn clear_teleop(&mut self) {
        if self.teleop.take().is_some() {
            self.stop = true;
        }
    }

    pub fn is_teleop(&self) -> bool {
        self.teleop.is_some()
    }

    /// What to publish now, if anything. Call it often (at least every period).
    pub fn tick(&mut self, now_ms: u64) -> Option<Velocity> {
        let period_over = self
            .last_sent_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= self.period_ms);
        let out = if self.estop {
            (self.due || period_over).then(Velocity::default)
        } else if let Some((v, until)) = self.teleop {
            if now_ms >= until {
                self.teleop = None;
                Some(Velocity::default())
            } else {
                (self.due || period_over).then_some(v)
            }
        } else if self.stop {
            Some(Velocity::default())
        } else {
            None
        };
        self.due = false;
        if out.is_some() {
            self.stop = false;
            self.last_sent_ms = Some(now_ms);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge: one robot's ROS-side state machine.
// ---------------------------------------------------------------------------------------------

/// What the bridge needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSettings {
    pub use_localization: bool,
    /// ROS name of the fleet's `map` frame, used in goals.
    pub map_frame: String,
    pub battery_scale: BatteryScale,
    pub unknown_battery_percentage: f64,
    /// How often `cmd_vel` is repeated while e-stopped or teleoperated.
    pub cmd_vel_period_ms: u64,
    /// Without odometry for this long the robot is reported faulty and its goal given up;
    /// 0: never (and no fault before the first odometry either).
    pub odom_timeout_ms: u64,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            use_localization: true,
            map_frame: DEFAULT_FRAME.to_owned(),
            battery_scale: BatteryScale::Fraction,
            unknown_battery_percentage: 100.0,
            cmd_vel_period_ms: 100,
            odom_timeout_ms: 2_000,
        }
    }
}

/// Something the transport must do on the ROS side.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a `NavigateToPose` goal; report its events with `key`.
    SendGoal { key: u64, goal: NavigateToPoseGoal },
    /// Cancel the goal sent with `key` (nothing to do if it is unknown or already over).
    CancelGoal { key: u64 },
    /// Publish on `cmd_vel`.
    CmdVel(Velocity),
}

#[derive(Debug, Clone)]
struct ActiveNav {
    /// Key of the goal for the current leg.
    key: u64,
    poses: Vec<Pose>,
    progress: WaypointProgress,
}

/// One robot's ROS-side behaviour; see the module documentation.
///
/// Waypoint tasks are run as a sequence of `NavigateToPose` goals, one per waypoint, the next
/// sent when the previous one succeeded (works the same on every Nav2 release, unlike
/// `NavigateThroughPoses`, whose goal type changed between distributions).
#[derive(Debug)]
pub struct RosBridge {
    settings: BridgeSettings,
    pose: PoseTracker,
    battery: BatteryTracker,
    velocity: Velocity,
    gate: CmdVelGate,
    nav: Option<ActiveNav>,
    outcome: Option<NavOutcome>,
    next_key: u64,
    server_ready: bool,
    estop: bool,
    last_pose: Pose,
    outputs: Vec<Output>,
    odometry: OdometryWatch,
}

/// Whether the robot is talking: odometry is its heartbeat (every driver publishes it
/// continuously, moving or not). Messages are counted as they arrive and timed at `tick`,
/// which is the only place the bridge learns the time.
#[derive(Debug, Default)]
struct OdometryWatch {
    received: u64,
    seen_at_tick: u64,
    /// When `tick` first saw the latest message; None before any.
    heard_ms: Option<u64>,
    silent: bool,
}

impl RosBridge {
    pub fn new(settings: BridgeSettings) -> Self {
        Self {
            pose: PoseTracker::new(settings.use_localization),
            battery: BatteryTracker::new(
                settings.battery_scale,
                settings.unknown_battery_percentage,
            ),
            gate: CmdVelGate::new(settings.cmd_vel_period_ms),
            settings,
            velocity: Velocity::default(),
            nav: None,
            outcome: None,
            next_key: 1,
            server_ready: false,
            estop: false,
            // Never reported as such: until odometry arrives the robot is reported faulty
            // (see `fault`), and this pose carries no frame that could pass for the map.
            last_pose: Pose {
                frame: String::new(),
                ..Pose::new(0.0, 0.0, 0.0)
            },
            outputs: Vec::new(),
            odometry: OdometryWatch::default(),
        }
    }

    // --- from ROS ---

    pub fn on_odom(&mut self, msg: &Odometry) {
        self.odometry.received += 1;
        self.pose.on_odom(msg);
        let v = velocity_from_twist(&msg.twist.twist);
        if v.linear.is_finite() && v.angular.is_finite() {
            self.velocity = v;
        }
    }

    pub fn on_amcl_pose(&mut self, msg: &PoseWithCovarianceStamped) {
        self.pose.on_amcl(msg);
    }

    pub fn on_battery(&mut self, msg: &BatteryState) {
        self.battery.on_battery(msg);
    }

    /// Whether the `NavigateToPose` action server is there; goals are refused until it is.
    pub fn set_server_ready(&mut self, ready: bool) {
        self.server_ready = ready;
    }

    pub fn is_server_ready(&self) -> bool {
        self.server_ready
    }

    /// Whether `key` is the goal of the navigation in progress.
    pub fn is_goal_current(&self, key: u64) -> bool {
        self.is_current(key)
    }

    fn is_current(&self, key: u64) -> bool {
        self.nav.as_ref().is_some_and(|n| n.key == key)
    }

    /// Nav2 accepted the goal sent with `key`. A goal we no longer want is canceled.
    pub fn on_goal_accepted(&mut self, key: u64) {
        if !self.is_current(key) {
            self.outputs.push(Output::CancelGoal { key });
        }
    }

    /// The goal sent with `key` was rejected, or could not be sent or followed.
    pub fn on_goal_failed(&mut self, key: u64, reason: String) {
        if self.is_current(key) {
            self.finish(NavOutcome::Failed(reason));
        }
    }

    pub fn on_feedback(&mut self, key: u64, feedback: &NavigateToPoseFeedback) {
        if let Some(nav) = self.nav.as_mut().filter(|n| n.key == key) {
            nav.progress
                .on_distance_remaining(feedback.distance_remaining as f64);
        }
    }

    /// The goal sent with `key` ended with `status` (an `action_msgs/GoalStatus` code).
    pub fn on_result(&mut self, key: u64, status: i8, result: &NavigateToPoseResult) {
        if !self.is_current(key) {
            return;
        }
        let outcome = outcome_from_status(status, result).unwrap_or_else(|| {
            NavOutcome::Failed(format!(
                "navigation ended with non-terminal status {status}"
            ))
        });
        if outcome != NavOutcome::Succeeded {
            self.finish(outcome);
            return;
        }
        let key = self.next_key;
        let Some(nav) = self.nav.as_mut() else {
            return;
        };
        if nav.progress.leg_done() {
            self.next_key += 1;
            nav.key = key;
            let goal =
                navigate_to_pose_goal(&nav.poses[nav.progress.leg()], &self.settings.map_frame);
            self.outputs.push(Output::SendGoal { key, goal });
        } else {
            self.finish(NavOutcome::Succeeded);
        }
    }

    /// Call often (every few tens of milliseconds): queues `cmd_vel` output, and gives up
    /// the goal of a robot that stopped publishing odometry.
    pub fn tick(&mut self, now_ms: u64) {
        self.watch_odometry(now_ms);
        if let Some(v) = self.gate.tick(now_ms) {
            self.outputs.push(Output::CmdVel(v));
        }
    }

    fn watch_odometry(&mut self, now_ms: u64) {
        let w = &mut self.odometry;
        if w.received != w.seen_at_tick {
            w.seen_at_tick = w.received;
            w.heard_ms = Some(now_ms);
        }
        let timeout = self.settings.odom_timeout_ms;
        let silent = timeout > 0
            && w.heard_ms
                .is_some_and(|heard| now_ms.saturating_sub(heard) >= timeout);
        let fell_silent = silent && !w.silent;
        w.silent = silent;
        if fell_silent {
            if let Some(nav) = &self.nav {
                // Nav2 may be gone with the robot: its result would never come.
                self.outputs.push(Output::CancelGoal { key: nav.key });
                self.finish(NavOutcome::Failed(format!(
                    "the robot stopped publishing odometry for {:.1} s: navigation given up",
                    timeout as f64 / 1000.0
                )));
            }
        }
    }

    /// Why the robot cannot be trusted right now (no odometry yet, or none for
    /// `odom_timeout_ms`), if so: it is then reported in ERROR and refuses goals.
    pub fn fault(&self) -> Option<String> {
        if self.settings.odom_timeout_ms == 0 {
            return None;
        }
        let w = &self.odometry;
        if w.heard_ms.is_none() {
            Some("no odometry received from the robot yet".into())
        } else if w.silent {
            Some(format!(
                "no odometry from the robot for {:.1} s",
                self.settings.odom_timeout_ms as f64 / 1000.0
            ))
        } else {
            None
        }
    }

    /// The outputs queued since the last call, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    // --- from the agent (RobotInterface) ---

    /// Starts a navigation through `poses`, replacing (and canceling) any current one.
    pub fn navigate(&mut self, poses: &[Pose]) -> Result<(), RobotError> {
        if self.estop {
            return Err(RobotError::GoalRejected("emergency stop engaged".into()));
        }
        if poses.is_empty() || poses.iter().any(|p| !p.is_finite()) {
            return Err(RobotError::GoalRejected(
                "goal has no poses or a non-finite pose".into(),
            ));
        }
        if !self.server_ready {
            return Err(RobotError::Unavailable(
                "the Nav2 navigate_to_pose action server is not available".into(),
            ));
        }
        if let Some(fault) = self.fault() {
            return Err(RobotError::Unavailable(fault));
        }
        if let Some(old) = self.nav.take() {
            self.outputs.push(Output::CancelGoal { key: old.key });
        }
        self.outcome = None;
        self.gate.clear_teleop();
        let key = self.next_key;
        self.next_key += 1;
        let goal = navigate_to_pose_goal(&poses[0], &self.settings.map_frame);
        self.nav = Some(ActiveNav {
            key,
            poses: poses.to_vec(),
            progress: WaypointProgress::new(self.pose.pose().as_ref(), poses),
        });
        self.outputs.push(Output::SendGoal { key, goal });
        Ok(())
    }

    /// Cancels the current navigation; its outcome is `Canceled`.
    pub fn cancel(&mut self) {
        if let Some(nav) = &self.nav {
            self.outputs.push(Output::CancelGoal { key: nav.key });
            self.finish(NavOutcome::Canceled);
        }
    }

    /// Engaged: cancels navigation and teleop and holds zero velocity. Released: stops that.
    pub fn set_estop(&mut self, engaged: bool) {
        self.estop = engaged;
        self.gate.set_estop(engaged);
        if engaged {
            self.cancel();
        }
    }

    pub fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        if self.nav.is_none() {
            self.gate.teleop(cmd, until_ms, now_ms);
        }
    }

    fn finish(&mut self, outcome: NavOutcome) {
        self.nav = None;
        self.outcome = Some(outcome);
    }

    /// The robot's state; a finished navigation's outcome is reported once.
    pub fn snapshot(&mut self) -> Snapshot {
        // Finite inputs can still compose to a non-finite pose (found by fuzzing): keep the
        // last good one rather than report a pose the fleet would reject.
        if let Some(p) = self.pose.pose().filter(Pose::is_finite) {
            self.last_pose = p;
        }
        Snapshot {
            pose: self.last_pose.clone(),
            velocity: self.velocity,
            battery_percentage: self.battery.percentage(),
            battery_voltage: self.battery.voltage(),
            charging: self.battery.charging(),
            nav_progress: self.nav.as_ref().map(|n| n.progress.progress()),
            nav_outcome: self.outcome.take(),
            fault: self.fault(),
        }
    }

    pub fn battery_known(&self) -> bool {
        self.battery.is_known()
    }
}
