//! Unit tests of the ROS message translation and the bridge state machine.

use super::*;
use std::f64::consts::PI;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::{Pose, TeleopCommand, Velocity};

use crate::executor::TELEOP_DEADMAN_MS;
use crate::robot::sim::wrap_angle;
use crate::robot::{NavOutcome, RobotError};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn odom(x: f64, y: f64, yaw: f64, t: i32) -> Odometry {
    Odometry {
        header: Header {
            stamp: Time { sec: t, nanosec: 0 },
            frame_id: "odom".into(),
        },
        pose: PoseWithCovariance {
            pose: ros_from_pose(&Pose::new(x, y, yaw)),
            covariance: vec![0.0; 36],
        },
        twist: TwistWithCovariance {
            twist: twist_from_velocity(Velocity {
                linear: 0.3,
                angular: -0.1,
            }),
            covariance: vec![0.0; 36],
        },
        ..Odometry::default()
    }
}

fn amcl(x: f64, y: f64, yaw: f64, t: i32) -> PoseWithCovarianceStamped {
    PoseWithCovarianceStamped {
        header: Header {
            stamp: Time { sec: t, nanosec: 0 },
            frame_id: "map".into(),
        },
        pose: PoseWithCovariance {
            pose: ros_from_pose(&Pose::new(x, y, yaw)),
            covariance: vec![0.0; 36],
        },
    }
}

fn battery(percentage: f32, status: u8) -> BatteryState {
    BatteryState {
        voltage: 12.1,
        percentage,
        charge: f32::NAN,
        capacity: f32::NAN,
        power_supply_status: status,
        ..BatteryState::default()
    }
}

fn assert_pose(p: &Pose, x: f64, y: f64, yaw: f64, frame: &str) {
    assert!(
        close(p.x, x) && close(p.y, y) && close(wrap_angle(p.yaw - yaw), 0.0),
        "{p:?} is not ({x}, {y}, {yaw})"
    );
    assert_eq!(p.frame, frame);
}

#[test]
fn quaternion_and_yaw_round_trip() {
    for yaw in [0.0, 0.3, -1.2, PI / 2.0, -PI / 2.0, 3.0, -3.0] {
        let q = quaternion_from_yaw(yaw);
        assert!(close(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w, 1.0));
        assert!(close(yaw_from_quaternion(&q), yaw), "{yaw}");
    }
    // π and -π are the same heading.
    assert!(close(
        yaw_from_quaternion(&quaternion_from_yaw(PI)).abs(),
        PI
    ));
    // Identity, a non-normalized quaternion, and one with roll/pitch.
    assert!(close(yaw_from_quaternion(&Quaternion::default()), 0.0));
    let q = quaternion_from_yaw(0.7);
    let scaled = Quaternion {
        x: q.x * 3.0,
        y: q.y * 3.0,
        z: q.z * 3.0,
        w: q.w * 3.0,
    };
    assert!(close(yaw_from_quaternion(&scaled), 0.7));
    // 90° about z: (0, 0, sin 45°, cos 45°).
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let q = Quaternion {
        x: 0.0,
        y: 0.0,
        z: h,
        w: h,
    };
    assert!(close(yaw_from_quaternion(&q), PI / 2.0));
}

#[test]
fn poses_and_twists_translate() {
    let p = Pose::new(1.0, -2.0, 0.5);
    assert_pose(
        &pose_from_ros(&ros_from_pose(&p), "map"),
        1.0,
        -2.0,
        0.5,
        "map",
    );
    let v = Velocity {
        linear: 0.4,
        angular: -0.2,
    };
    let t = twist_from_velocity(v);
    assert_eq!((t.linear.y, t.linear.z, t.angular.x), (0.0, 0.0, 0.0));
    assert_eq!(velocity_from_twist(&t), v);
}

#[test]
fn odometry_is_the_pose_without_localization() {
    let mut t = PoseTracker::new(false);
    assert_eq!(t.pose(), None);
    t.on_odom(&odom(1.0, 2.0, 0.3, 1));
    t.on_amcl(&amcl(5.0, 5.0, 0.0, 1)); // ignored
    assert_pose(&t.pose().unwrap(), 1.0, 2.0, 0.3, "odom");
    // A non-finite odometry pose is ignored.
    t.on_odom(&odom(f64::NAN, 0.0, 0.0, 2));
    assert_pose(&t.pose().unwrap(), 1.0, 2.0, 0.3, "odom");
    // The odometry frame comes from the header.
    let mut m = odom(0.0, 0.0, 0.0, 3);
    m.header.frame_id = "/tb3_1/odom".into();
    t.on_odom(&m);
    assert_eq!(t.pose().unwrap().frame, "tb3_1/odom");
}

#[test]
fn localization_gives_the_map_pose_and_odometry_carries_it_forward() {
    let mut t = PoseTracker::new(true);
    // Before localization: the odometry pose, labelled as such.
    t.on_odom(&odom(0.0, 0.0, 0.0, 10));
    assert_pose(&t.pose().unwrap(), 0.0, 0.0, 0.0, "odom");
    // AMCL: the robot is at (2, 1) facing +y in the map while odometry says origin.
    t.on_amcl(&amcl(2.0, 1.0, PI / 2.0, 10));
    assert_pose(&t.pose().unwrap(), 2.0, 1.0, PI / 2.0, "map");
    // It drives 1 m forward by odometry (odom +x); in the map that is +y.
    t.on_odom(&odom(1.0, 0.0, 0.0, 11));
    assert_pose(&t.pose().unwrap(), 2.0, 2.0, PI / 2.0, "map");
    // A late AMCL pose stamped at t=10 is matched with the t=10 odometry, not the latest.
    t.on_amcl(&amcl(2.1, 1.0, PI / 2.0, 10));
    assert_pose(&t.pose().unwrap(), 2.1, 2.0, PI / 2.0, "map");
    // A non-finite AMCL pose changes nothing.
    t.on_amcl(&amcl(f64::NAN, 0.0, 0.0, 11));
    assert_pose(&t.pose().unwrap(), 2.1, 2.0, PI / 2.0, "map");
}

#[test]
fn localization_before_odometry() {
    let mut t = PoseTracker::new(true);
    t.on_amcl(&amcl(3.0, 4.0, 0.0, 0));
    assert_pose(&t.pose().unwrap(), 3.0, 4.0, 0.0, "map");
    // The first odometry anchors map ← odom; motion then carries the pose.
    t.on_odom(&odom(10.0, 0.0, 0.0, 1));
    assert_pose(&t.pose().unwrap(), 3.0, 4.0, 0.0, "map");
    t.on_odom(&odom(11.0, 0.0, 0.0, 2));
    assert_pose(&t.pose().unwrap(), 4.0, 4.0, 0.0, "map");
}

#[test]
fn battery_percentage_units_and_unknowns() {
    use BatteryScale::*;
    let b = |p: f32| battery(p, 2);
    assert_eq!(battery_percentage(&b(0.5), Fraction), Some(50.0));
    assert_eq!(battery_percentage(&b(0.0), Fraction), Some(0.0));
    assert_eq!(battery_percentage(&b(1.0), Fraction), Some(100.0));
    // Above 1 is out of the definition: read as full, never as more.
    assert_eq!(battery_percentage(&b(1.02), Fraction), Some(100.0));
    assert_eq!(battery_percentage(&b(87.0), Fraction), Some(100.0));
    // Drivers that publish percent.
    assert_eq!(battery_percentage(&b(87.0), Percent), Some(87.0));
    assert_eq!(battery_percentage(&b(120.0), Percent), Some(100.0));
    // Unknown: NaN or negative, unless charge/capacity says.
    assert_eq!(battery_percentage(&b(f32::NAN), Fraction), None);
    assert_eq!(battery_percentage(&b(-1.0), Fraction), None);
    assert_eq!(battery_percentage(&b(f32::INFINITY), Fraction), None);
    let mut m = b(f32::NAN);
    m.charge = 1.5;
    m.capacity = 2.0;
    assert_eq!(battery_percentage(&m, Fraction), Some(75.0));
    m.capacity = 0.0;
    assert_eq!(battery_percentage(&m, Fraction), None);
    // Voltage and charging.
    assert_eq!(battery_voltage(&b(0.5)), Some(12.100000381469727));
    let mut m = b(0.5);
    m.voltage = f32::NAN;
    assert_eq!(battery_voltage(&m), None);
    assert!(battery_charging(&battery(0.5, 1)));
    for status in [0, 2, 3, 4] {
        assert!(!battery_charging(&battery(0.5, status)), "{status}");
    }
}

#[test]
fn battery_tracker_keeps_the_last_known_value() {
    let mut t = BatteryTracker::new(BatteryScale::Fraction, 100.0);
    assert!(!t.is_known());
    assert_eq!(
        (t.percentage(), t.voltage(), t.charging()),
        (100.0, None, false)
    );
    t.on_battery(&battery(0.42, 1));
    assert!(t.is_known());
    assert!((t.percentage() - 42.0).abs() < 1e-4);
    assert!(t.charging());
    t.on_battery(&battery(f32::NAN, 2));
    assert!((t.percentage() - 42.0).abs() < 1e-4, "kept");
    assert!(!t.charging());
    let pessimist = BatteryTracker::new(BatteryScale::Fraction, 0.0);
    assert_eq!(pessimist.percentage(), 0.0);
}

#[test]
fn goal_json_for_the_untyped_client() {
    let goal = navigate_to_pose_goal(&Pose::new(1.5, -2.0, PI / 2.0), "map");
    let json = goal_to_json(&goal);
    let pose = &json["pose"];
    assert_eq!(pose["header"]["frame_id"], "map");
    assert_eq!(pose["header"]["stamp"]["sec"], 0);
    assert_eq!(pose["header"]["stamp"]["nanosec"], 0);
    assert_eq!(pose["pose"]["position"]["x"], 1.5);
    assert_eq!(pose["pose"]["position"]["y"], -2.0);
    assert_eq!(pose["pose"]["position"]["z"], 0.0);
    let o = &pose["pose"]["orientation"];
    assert_eq!((o["x"].as_f64(), o["y"].as_f64()), (Some(0.0), Some(0.0)));
    assert!(close(o["z"].as_f64().unwrap(), (PI / 4.0).sin()));
    assert!(close(o["w"].as_f64().unwrap(), (PI / 4.0).cos()));
    assert_eq!(json["behavior_tree"], "");
    // The fleet frame maps onto the configured map frame; other frames pass through.
    let g = navigate_to_pose_goal(&Pose::new(0.0, 0.0, 0.0), "world");
    assert_eq!(g.pose.header.frame_id, "world");
    let mut p = Pose::new(0.0, 0.0, 0.0);
    p.frame = "odom".into();
    assert_eq!(
        navigate_to_pose_goal(&p, "world").pose.header.frame_id,
        "odom"
    );
    p.frame = String::new();
    assert_eq!(navigate_to_pose_goal(&p, "map").pose.header.frame_id, "map");
}

#[test]
fn feedback_and_result_json_decode() {
    let fb = feedback_from_json(serde_json_like(
        r#"{"current_pose":{"header":{"stamp":{"sec":3,"nanosec":5},"frame_id":"map"},
            "pose":{"position":{"x":1.0,"y":2.0,"z":0.0},
                    "orientation":{"x":0.0,"y":0.0,"z":0.0,"w":1.0}}},
           "navigation_time":{"sec":4,"nanosec":0},
           "estimated_time_remaining":{"sec":7,"nanosec":500000000},
           "number_of_recoveries":2,"distance_remaining":3.25}"#,
    ))
    .unwrap();
    assert_eq!(fb.distance_remaining, 3.25);
    assert_eq!(fb.number_of_recoveries, 2);
    assert_eq!(fb.estimated_time_remaining.as_secs_f64(), 7.5);
    assert_eq!(fb.current_pose.pose.position.y, 2.0);
    // NaN travels through JSON as null.
    let fb = feedback_from_json(serde_json_like(r#"{"distance_remaining":null}"#)).unwrap();
    assert!(fb.distance_remaining.is_nan());
    // Jazzy result; Humble's empty one; garbage.
    let r = result_from_json(serde_json_like(
        r#"{"error_code":9002,"error_msg":"timed out"}"#,
    ));
    assert_eq!((r.error_code, r.error_msg.as_str()), (9002, "timed out"));
    let r = result_from_json(serde_json_like(
        r#"{"result":{"structure_needs_at_least_one_member":0}}"#,
    ));
    assert_eq!(r, NavigateToPoseResult::default());
    assert_eq!(
        result_from_json(serde_json_like("17")),
        NavigateToPoseResult::default()
    );
}

/// JSON text as a value, through the codec.
fn serde_json_like(text: &str) -> JsonValue {
    codec::decode(text.as_bytes()).unwrap()
}

#[test]
fn goal_status_codes_map_to_outcomes() {
    let empty = NavigateToPoseResult::default();
    assert_eq!(
        outcome_from_status(goal_status::SUCCEEDED, &empty),
        Some(NavOutcome::Succeeded)
    );
    assert_eq!(outcome_from_status(4, &empty), Some(NavOutcome::Succeeded));
    assert_eq!(outcome_from_status(5, &empty), Some(NavOutcome::Canceled));
    assert_eq!(
        outcome_from_status(6, &empty),
        Some(NavOutcome::Failed("Nav2 aborted the goal".into()))
    );
    let jazzy = NavigateToPoseResult {
        error_code: 9002,
        error_msg: "timed out".into(),
    };
    assert_eq!(
        outcome_from_status(6, &jazzy),
        Some(NavOutcome::Failed(
            "Nav2 aborted the goal: timed out (error code 9002)".into()
        ))
    );
    for s in 0..=3 {
        assert_eq!(outcome_from_status(s, &empty), None, "{s}");
    }
    assert!(matches!(
        outcome_from_status(9, &empty),
        Some(NavOutcome::Failed(_))
    ));
}

#[test]
fn progress_from_distance_remaining_is_monotone_and_clamped() {
    let mut p = WaypointProgress::new(Some(&Pose::new(0.0, 0.0, 0.0)), &[Pose::new(4.0, 0.0, 0.0)]);
    // No plan yet: Nav2 reports 0, which says nothing.
    assert_eq!(p.on_distance_remaining(0.0), 0.0);
    assert_eq!(p.on_distance_remaining(f64::NAN), 0.0);
    assert_eq!(p.on_distance_remaining(-1.0), 0.0);
    assert_eq!(p.on_distance_remaining(5.0), 0.0); // path longer than the straight line
    assert!(close(p.on_distance_remaining(4.0), 0.2));
    assert!(close(p.on_distance_remaining(2.5), 0.5));
    // A replan that looks longer never takes progress back.
    assert!(close(p.on_distance_remaining(4.5), 0.5));
    assert!(close(p.on_distance_remaining(1.0), 1.0 - 1.0 / 5.0));
    assert!(close(p.on_distance_remaining(0.0), 1.0));
    assert!(!p.leg_done());
    assert_eq!(p.progress(), 1.0);
}

#[test]
fn waypoint_progress_weighs_legs_by_length() {
    let poses = [Pose::new(3.0, 0.0, 0.0), Pose::new(3.0, 1.0, 0.0)];
    let mut p = WaypointProgress::new(Some(&Pose::new(0.0, 0.0, 0.0)), &poses);
    assert_eq!((p.leg(), p.legs()), (0, 2));
    p.on_distance_remaining(3.0);
    assert!(close(p.on_distance_remaining(1.5), 1.5 / 4.0));
    assert!(p.leg_done());
    assert_eq!(p.leg(), 1);
    assert!(close(p.progress(), 3.0 / 4.0));
    // The new leg's first feedback starts from its own distance.
    assert!(close(p.on_distance_remaining(1.0), 3.0 / 4.0));
    assert!(close(p.on_distance_remaining(0.5), 3.5 / 4.0));
    assert!(!p.leg_done());
    assert_eq!(p.progress(), 1.0);
    // Without a start pose the first leg weighs like an average other leg (here 1 m).
    let mut p = WaypointProgress::new(None, &poses);
    assert!(p.leg_done());
    assert!(close(p.progress(), 0.5));
    // Zero-length legs still count.
    let mut p = WaypointProgress::new(Some(&Pose::new(0.0, 0.0, 0.0)), &[Pose::new(0.0, 0.0, 0.0)]);
    assert!(!p.leg_done());
    assert_eq!(p.progress(), 1.0);
}

#[test]
fn teleop_dead_man_and_rate() {
    let mut g = CmdVelGate::new(100);
    assert_eq!(g.tick(0), None);
    let cmd = TeleopCommand::drive(0.2, 0.1, None);
    let v = Velocity {
        linear: 0.2,
        angular: 0.1,
    };
    // The deadline the executor gives is capped at the dead-man timeout.
    g.teleop(cmd.clone(), 10_000, 1_000);
    assert_eq!(g.tick(1_000), Some(v), "published at once");
    assert_eq!(g.tick(1_050), None, "not faster than the rate");
    assert_eq!(g.tick(1_100), Some(v), "repeated every period");
    assert_eq!(g.tick(1_000 + TELEOP_DEADMAN_MS - 1), Some(v));
    assert_eq!(
        g.tick(1_000 + TELEOP_DEADMAN_MS),
        Some(Velocity::default()),
        "zero at the deadline"
    );
    assert_eq!(
        g.tick(1_100 + TELEOP_DEADMAN_MS),
        None,
        "then silence: Nav2 owns cmd_vel"
    );
    // A follow-up command extends the deadline.
    g.teleop(cmd.clone(), 2_300, 2_000);
    assert_eq!(g.tick(2_000), Some(v));
    g.teleop(cmd.clone(), 2_500, 2_200);
    assert_eq!(g.tick(2_200), Some(v), "a new command is sent at once");
    assert_eq!(g.tick(2_400), Some(v));
    assert_eq!(g.tick(2_500), Some(Velocity::default()));
    // Non-finite commands are ignored.
    g.teleop(TeleopCommand::drive(f64::NAN, 0.0, None), 4_000, 3_000);
    assert_eq!(g.tick(3_000), None);
    // Clearing teleop (navigation starts) sends one zero.
    g.teleop(cmd.clone(), 5_400, 5_000);
    assert_eq!(g.tick(5_000), Some(v));
    g.clear_teleop();
    assert_eq!(g.tick(5_010), Some(Velocity::default()));
    assert_eq!(g.tick(5_200), None);
}

#[test]
fn estop_holds_zero_at_a_steady_rate_until_released() {
    let mut g = CmdVelGate::new(100);
    let cmd = TeleopCommand::drive(0.5, 0.0, None);
    g.teleop(cmd.clone(), 1_500, 1_000);
    assert!(g.tick(1_000).is_some());
    g.set_estop(true);
    assert!(!g.is_teleop(), "e-stop ends teleop");
    assert_eq!(g.tick(1_010), Some(Velocity::default()), "at once");
    let sent: Vec<u64> = (1_011..3_000)
        .step_by(10)
        .filter(|&t| g.tick(t).is_some())
        .collect();
    assert!(sent.len() >= 18 && sent.len() <= 20, "{} zeros", sent.len());
    g.teleop(cmd.clone(), 3_400, 3_000);
    assert_eq!(g.tick(3_100), Some(Velocity::default()), "teleop ignored");
    g.set_estop(false);
    assert_eq!(g.tick(3_300), None, "released: silence");
}

/// Settings for the tests that are not about the odometry watch (whose own tests follow):
/// their ticks jump through time without odometry.
fn unwatched() -> BridgeSettings {
    BridgeSettings {
        odom_timeout_ms: 0,
        ..BridgeSettings::default()
    }
}

fn ready_bridge() -> RosBridge {
    let mut b = RosBridge::new(unwatched());
    b.set_server_ready(true);
    b.on_odom(&odom(0.0, 0.0, 0.0, 1));
    b.on_amcl_pose(&amcl(0.0, 0.0, 0.0, 1));
    b
}

fn sent_goal(outputs: &[Output]) -> (u64, NavigateToPoseGoal) {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::SendGoal { key, goal } => Some((*key, goal.clone())),
            _ => None,
        })
        .expect("a goal")
}

#[test]
fn bridge_runs_waypoints_as_a_sequence_of_goals() {
    let mut b = ready_bridge();
    b.navigate(&[Pose::new(2.0, 0.0, 0.0), Pose::new(2.0, 2.0, PI / 2.0)])
        .unwrap();
    let (k1, g1) = sent_goal(&b.take_outputs());
    assert_eq!(g1.pose.pose.position.x, 2.0);
    b.on_goal_accepted(k1);
    assert!(b.take_outputs().is_empty());
    let fb = |d: f32| NavigateToPoseFeedback {
        distance_remaining: d,
        ..Default::default()
    };
    b.on_feedback(k1, &fb(2.0));
    b.on_feedback(k1, &fb(1.0));
    let s = b.snapshot();
    assert!(close(s.nav_progress.unwrap(), 0.25));
    assert_eq!(s.nav_outcome, None);
    b.on_result(k1, goal_status::SUCCEEDED, &Default::default());
    let (k2, g2) = sent_goal(&b.take_outputs());
    assert_ne!(k1, k2);
    assert_eq!(g2.pose.pose.position.y, 2.0);
    assert!(close(b.snapshot().nav_progress.unwrap(), 0.5));
    // Late feedback of the first goal is ignored.
    b.on_feedback(k1, &fb(0.0));
    assert!(close(b.snapshot().nav_progress.unwrap(), 0.5));
    b.on_result(k2, goal_status::SUCCEEDED, &Default::default());
    let s = b.snapshot();
    assert_eq!(s.nav_outcome, Some(NavOutcome::Succeeded));
    assert_eq!(s.nav_progress, None);
    assert_eq!(b.snapshot().nav_outcome, None, "reported once");
}

#[test]
fn bridge_failures_cancel_and_refusals() {
    let mut b = RosBridge::new(unwatched());
    assert!(matches!(
        b.navigate(&[Pose::new(1.0, 0.0, 0.0)]),
        Err(RobotError::Unavailable(_))
    ));
    b.set_server_ready(true);
    assert!(matches!(b.navigate(&[]), Err(RobotError::GoalRejected(_))));
    // Aborted.
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k, _) = sent_goal(&b.take_outputs());
    b.on_result(k, goal_status::ABORTED, &Default::default());
    assert!(matches!(
        b.snapshot().nav_outcome,
        Some(NavOutcome::Failed(_))
    ));
    // Rejected.
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k, _) = sent_goal(&b.take_outputs());
    b.on_goal_failed(k, "goal rejected".into());
    assert_eq!(
        b.snapshot().nav_outcome,
        Some(NavOutcome::Failed("goal rejected".into()))
    );
    // Canceled by us: outcome at once, the cancel goes out, the late result is ignored.
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k, _) = sent_goal(&b.take_outputs());
    b.cancel();
    assert_eq!(b.take_outputs(), vec![Output::CancelGoal { key: k }]);
    assert_eq!(b.snapshot().nav_outcome, Some(NavOutcome::Canceled));
    b.on_result(k, goal_status::CANCELED, &Default::default());
    assert_eq!(b.snapshot().nav_outcome, None);
    // A goal accepted after we dropped it is canceled then.
    b.on_goal_accepted(k);
    assert_eq!(b.take_outputs(), vec![Output::CancelGoal { key: k }]);
    // Canceled by someone else.
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k, _) = sent_goal(&b.take_outputs());
    b.on_result(k, goal_status::CANCELED, &Default::default());
    assert_eq!(b.snapshot().nav_outcome, Some(NavOutcome::Canceled));
    // A new navigation replaces the old one: the old goal is canceled, no outcome.
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k1, _) = sent_goal(&b.take_outputs());
    b.navigate(&[Pose::new(2.0, 0.0, 0.0)]).unwrap();
    let out = b.take_outputs();
    assert_eq!(out[0], Output::CancelGoal { key: k1 });
    assert!(matches!(out[1], Output::SendGoal { .. }));
    assert_eq!(b.snapshot().nav_outcome, None);
}

#[test]
fn bridge_estop_cancels_and_holds_zero() {
    let mut b = ready_bridge();
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
    let (k, _) = sent_goal(&b.take_outputs());
    b.set_estop(true);
    b.tick(1_000);
    assert_eq!(
        b.take_outputs(),
        vec![
            Output::CancelGoal { key: k },
            Output::CmdVel(Velocity::default())
        ]
    );
    assert_eq!(b.snapshot().nav_outcome, Some(NavOutcome::Canceled));
    assert!(matches!(
        b.navigate(&[Pose::new(1.0, 0.0, 0.0)]),
        Err(RobotError::GoalRejected(_))
    ));
    b.tick(1_100);
    assert_eq!(b.take_outputs(), vec![Output::CmdVel(Velocity::default())]);
    b.set_estop(false);
    b.tick(1_200);
    assert!(b.take_outputs().is_empty());
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
}

#[test]
fn bridge_snapshot_reports_pose_velocity_and_battery() {
    let mut b = RosBridge::new(BridgeSettings {
        unknown_battery_percentage: 55.0,
        ..unwatched()
    });
    let s = b.snapshot();
    // Before any pose: no frame, so it never passes for a map pose.
    assert_pose(&s.pose, 0.0, 0.0, 0.0, "");
    assert_eq!(s.battery_percentage, 55.0);
    assert!(!b.battery_known());
    b.on_odom(&odom(1.0, 0.0, 0.0, 1));
    b.on_battery(&battery(0.25, 1));
    let s = b.snapshot();
    assert_pose(&s.pose, 1.0, 0.0, 0.0, "odom");
    assert_eq!(
        s.velocity,
        Velocity {
            linear: 0.3,
            angular: -0.1
        }
    );
    assert!((s.battery_percentage - 25.0).abs() < 1e-4);
    assert!(s.charging);
    assert!(s.battery_voltage.is_some());
    // Teleop only when not navigating; navigation ends teleop.
    b.set_server_ready(true);
    let cmd = TeleopCommand::drive(0.1, 0.0, None);
    b.teleop(cmd.clone(), 10_400, 10_000);
    b.tick(10_000);
    assert_eq!(
        b.take_outputs(),
        vec![Output::CmdVel(Velocity {
            linear: 0.1,
            angular: 0.0
        })]
    );
    b.navigate(&[Pose::new(3.0, 0.0, 0.0)]).unwrap();
    b.tick(10_050);
    let out = b.take_outputs();
    assert!(
        out.contains(&Output::CmdVel(Velocity::default())),
        "{out:?}"
    );
    b.teleop(cmd.clone(), 10_500, 10_100);
    b.tick(10_100);
    assert!(b.take_outputs().is_empty(), "no teleop while navigating");
}

#[test]
fn bridge_without_odometry_yet_is_faulty_and_refuses_goals() {
    let mut b = RosBridge::new(BridgeSettings::default());
    b.set_server_ready(true);
    b.tick(1_000);
    let s = b.snapshot();
    assert!(s.fault.unwrap().contains("no odometry"));
    assert!(matches!(
        b.navigate(&[Pose::new(1.0, 0.0, 0.0)]),
        Err(RobotError::Unavailable(why)) if why.contains("no odometry")
    ));
    // The AMCL pose alone does not prove the robot is alive.
    b.on_amcl_pose(&amcl(2.0, 1.0, 0.0, 1));
    b.tick(1_100);
    assert!(b.snapshot().fault.is_some());
    b.on_odom(&odom(0.0, 0.0, 0.0, 1));
    b.tick(1_120);
    let s = b.snapshot();
    assert_eq!(s.fault, None);
    assert_pose(&s.pose, 2.0, 1.0, 0.0, "map");
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
}

#[test]
fn bridge_gives_up_the_goal_of_a_robot_that_fell_silent_and_recovers() {
    let mut b = RosBridge::new(BridgeSettings::default());
    b.set_server_ready(true);
    b.on_odom(&odom(0.0, 0.0, 0.0, 1));
    b.tick(1_000);
    b.navigate(&[Pose::new(3.0, 0.0, 0.0)]).unwrap();
    let (key, _) = sent_goal(&b.take_outputs());
    b.on_goal_accepted(key);
    // Odometry keeps the robot alive however long the goal runs.
    for t in (1_100..=5_000).step_by(100) {
        b.on_odom(&odom(0.0, 0.0, 0.0, 1));
        b.tick(t);
    }
    assert_eq!(b.snapshot().fault, None);
    assert!(b.take_outputs().is_empty());
    // Then nothing: just short of the timeout all is well, at it the goal is given up.
    b.tick(6_999);
    assert_eq!(b.snapshot().fault, None);
    assert!(b.take_outputs().is_empty());
    b.tick(7_000);
    assert_eq!(b.take_outputs(), vec![Output::CancelGoal { key }]);
    let s = b.snapshot();
    assert!(
        matches!(&s.nav_outcome, Some(NavOutcome::Failed(why)) if why.contains("odometry")),
        "{s:?}"
    );
    assert!(s.fault.unwrap().contains("2.0 s"));
    assert!(matches!(
        b.navigate(&[Pose::new(1.0, 0.0, 0.0)]),
        Err(RobotError::Unavailable(_))
    ));
    // The goal's late result changes nothing; the robot is back with its odometry.
    b.on_result(key, goal_status::SUCCEEDED, &Default::default());
    b.tick(9_000);
    assert_eq!(b.snapshot().nav_outcome, None);
    b.on_odom(&odom(1.0, 0.0, 0.0, 9));
    b.tick(9_020);
    assert_eq!(b.snapshot().fault, None);
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
}

#[test]
fn bridge_with_the_watch_off_never_reports_a_fault() {
    let mut b = RosBridge::new(unwatched());
    b.set_server_ready(true);
    b.tick(1_000);
    assert_eq!(b.snapshot().fault, None);
    b.on_odom(&odom(0.0, 0.0, 0.0, 1));
    b.tick(1_020);
    b.tick(100_000);
    assert_eq!(b.snapshot().fault, None);
    b.navigate(&[Pose::new(1.0, 0.0, 0.0)]).unwrap();
}
