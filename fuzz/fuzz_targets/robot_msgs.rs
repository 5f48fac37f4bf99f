//! What a robot publishes and the server decodes: `RobotState` (`fms/robot/{id}/state`),
//! `RobotEvent` (`.../event`) and the Python FMS's legacy split state (`.../state/pose`,
//! `.../state/battery`, `.../state/status`). Every input is tried as each type.
#![no_main]

use fms_fuzz::{json_decode, json_round_trip};
use fms_msgs::legacy::{LegacyBattery, LegacyPose, LegacyStatus};
use fms_msgs::{RobotEvent, RobotState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(state) = json_round_trip::<RobotState>(data) {
        if state.validate().is_ok() {
            assert!(state.pose.is_finite());
            assert!((0.0..=100.0).contains(&state.battery.percentage));
        }
    }
    if let Some(event) = json_round_trip::<RobotEvent>(data) {
        if event.validate().is_ok() {
            // The server stores these in signed 64-bit columns.
            assert!(i64::try_from(event.epoch).is_ok() && i64::try_from(event.seq).is_ok());
        }
        let _ = event.event.task_id();
    }
    if let Some(pose) = json_decode::<LegacyPose>(data) {
        if let Ok(p) = pose.to_pose() {
            assert!(p.is_finite(), "to_pose accepted {p:?}");
            assert!((-std::f64::consts::PI..=std::f64::consts::PI).contains(&p.yaw));
        }
    }
    if let Some(battery) = json_decode::<LegacyBattery>(data) {
        if battery.validate().is_ok() {
            assert!((0.0..=100.0).contains(&battery.percentage));
        }
    }
    if let Some(status) = json_decode::<LegacyStatus>(data) {
        let _ = status.to_mode();
    }
});
