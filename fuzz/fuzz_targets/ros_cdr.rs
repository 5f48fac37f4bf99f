//! CDR of the ROS 2 messages the `ros2dds` backend reads from Zenoh (fms_agent's
//! `robot::ros_msgs::wire`): topics (odometry, AMCL pose, battery, Nav2 feedback and goal
//! status) and service replies (send_goal, cancel_goal, get_result). Every input is tried as
//! each type. Built with the `agent` feature (FMS_FUZZ_ALL=1), the decoded messages also go
//! through the agent's translation functions and a `RosBridge`, as the backend does.
#![no_main]

use std::fmt::Debug;

use fms_fuzz::ros_msgs::{
    wire, BatteryState, CancelGoalResponse, FeedbackMessage, GoalStatusArray, Odometry,
    PoseWithCovarianceStamped, SendGoalResponse,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `data` as a `T`; when it decodes, its (little-endian) encoding decodes and encodes
/// to the same bytes again. Bytes, not values, are compared: NaN is a valid CDR float.
fn cdr<T: Serialize + DeserializeOwned + Debug>(data: &[u8]) -> Option<T> {
    let msg: T = wire::decode(data).ok()?;
    check_encoding(&msg);
    Some(msg)
}

fn check_encoding<T: Serialize + DeserializeOwned + Debug>(msg: &T) {
    let bytes = wire::encode(msg).unwrap_or_else(|e| panic!("{msg:?} does not encode: {e}"));
    let again: T = wire::decode(&bytes)
        .unwrap_or_else(|e| panic!("{msg:?} encodes as {bytes:02x?}, which does not decode: {e}"));
    assert_eq!(
        wire::encode(&again).unwrap(),
        bytes,
        "{msg:?} changes through encode/decode: {again:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let odom = cdr::<Odometry>(data);
    let amcl = cdr::<PoseWithCovarianceStamped>(data);
    let battery = cdr::<BatteryState>(data);
    let feedback = cdr::<FeedbackMessage>(data);
    cdr::<SendGoalResponse>(data);
    cdr::<CancelGoalResponse>(data);
    cdr::<GoalStatusArray>(data);
    let result = wire::decode_get_result(data).ok();
    if let Some(r) = &result {
        check_encoding(r);
    }
    #[cfg(feature = "agent")]
    agent::check(odom, amcl, battery, feedback, result);
    #[cfg(not(feature = "agent"))]
    let _ = (odom, amcl, battery, feedback, result);
});

#[cfg(feature = "agent")]
mod agent {
    use fms_fuzz::ros_msgs::{
        battery_percentage, battery_voltage, outcome_from_status, pose_from_ros,
        velocity_from_twist, BatteryScale, BatteryState, BridgeSettings, FeedbackMessage,
        GetResultResponse, Odometry, Output, PoseWithCovarianceStamped, RosBridge,
    };
    use fms_msgs::Pose;

    pub fn check(
        odom: Option<Odometry>,
        amcl: Option<PoseWithCovarianceStamped>,
        battery: Option<BatteryState>,
        feedback: Option<FeedbackMessage>,
        result: Option<GetResultResponse>,
    ) {
        if let Some(m) = &odom {
            let _ = pose_from_ros(&m.pose.pose, &m.header.frame_id);
            let _ = velocity_from_twist(&m.twist.twist);
        }
        if let Some(b) = &battery {
            for scale in [BatteryScale::Fraction, BatteryScale::Percent] {
                let p = battery_percentage(b, scale);
                assert!(
                    p.is_none_or(|p| (0.0..=100.0).contains(&p)),
                    "{scale:?} percentage {p:?} from {b:?}"
                );
            }
            assert!(battery_voltage(b).is_none_or(|v| v.is_finite() && v > 0.0));
        }
        if let Some(r) = &result {
            let _ = outcome_from_status(r.status, &r.result);
        }

        // What the backend does with them: the state it then reports must be valid.
        let mut bridge = RosBridge::new(BridgeSettings::default());
        bridge.set_server_ready(true);
        bridge
            .navigate(&[Pose::new(1.0, 2.0, 0.0), Pose::new(-3.0, 4.0, 1.0)])
            .expect("a navigation starts");
        let key = match bridge.take_outputs().as_slice() {
            [Output::SendGoal { key, .. }] => *key,
            other => panic!("navigate gave {other:?}"),
        };
        if let Some(m) = &odom {
            bridge.on_odom(m);
        }
        if let Some(m) = &amcl {
            bridge.on_amcl_pose(m);
        }
        if let Some(m) = &odom {
            bridge.on_odom(m);
        }
        if let Some(m) = &battery {
            bridge.on_battery(m);
        }
        if let Some(m) = &feedback {
            bridge.on_feedback(key, &m.feedback);
        }
        let snap = bridge.snapshot();
        assert!(snap.pose.is_finite(), "non-finite pose {:?}", snap.pose);
        assert!(snap.velocity.linear.is_finite() && snap.velocity.angular.is_finite());
        assert!((0.0..=100.0).contains(&snap.battery_percentage));
        assert!(snap.nav_progress.is_some_and(|p| (0.0..=1.0).contains(&p)));
    }
}
