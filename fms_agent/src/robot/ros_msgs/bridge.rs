//! The bridge: [`RosBridge`], one robot's ROS-side state machine (with its odometry watch),
//! its [`BridgeSettings`] and the [`Output`]s it queues for the transport.

use fms_msgs::common::DEFAULT_FRAME;
use fms_msgs::{Pose, TeleopCommand, Velocity};

use super::battery::{BatteryScale, BatteryTracker};
use super::cmd_vel::CmdVelGate;
use super::geometry::{velocity_from_twist, PoseTracker};
use super::messages::{
    BatteryState, NavigateToPoseFeedback, NavigateToPoseGoal, NavigateToPoseResult, Odometry,
    PoseWithCovarianceStamped,
};
use super::navigation::{navigate_to_pose_goal, outcome_from_status, WaypointProgress};
use crate::robot::{NavOutcome, RobotError, Snapshot};

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
