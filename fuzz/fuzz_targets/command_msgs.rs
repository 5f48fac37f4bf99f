//! What the server (or the phone server) publishes and the agents decode: `TaskCommand`,
//! `CancelCommand`, `EstopCommand`, `TeleopCommand` (`fms/robot/{id}/cmd/...`) and
//! `SystemEvent` (`fms/system/event`). Every input is tried as each type.
#![no_main]

use fms_fuzz::json_round_trip;
use fms_msgs::server_to_robot::is_charge;
use fms_msgs::{CancelCommand, EstopCommand, SystemEvent, TaskCommand, TeleopCommand};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(task) = json_round_trip::<TaskCommand>(data) {
        let poses = task.goal.poses();
        assert_eq!(task.goal.final_pose(), poses.last());
        let _ = is_charge(&task.parameters);
    }
    json_round_trip::<CancelCommand>(data);
    json_round_trip::<EstopCommand>(data);
    json_round_trip::<TeleopCommand>(data);
    json_round_trip::<SystemEvent>(data);
});
