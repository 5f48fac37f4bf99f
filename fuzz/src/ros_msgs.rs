//! fms_agent's ROS 2 message mirrors and their CDR codec (`robot::ros_msgs::{messages, wire}`),
//! compiled from the agent's own source files: they need only serde, cdr-encoding, byteorder
//! and thiserror, whereas the agent crate brings zenoh (a sanitizer build of it takes about
//! 11 CPU-minutes). The `agent` feature uses fms_agent itself instead (see lib.rs).

#[path = "../../fms_agent/src/robot/ros_msgs/messages.rs"]
mod messages;
#[path = "../../fms_agent/src/robot/ros_msgs/wire.rs"]
pub mod wire;

pub use messages::*;
