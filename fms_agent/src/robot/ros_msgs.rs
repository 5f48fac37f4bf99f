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

pub use battery::*;
pub use bridge::*;
pub use cmd_vel::*;
pub use geometry::*;
pub use messages::*;
pub use navigation::*;

mod battery;
mod bridge;
mod cmd_vel;
mod geometry;
mod messages;
mod navigation;
#[cfg(test)]
mod tests;
pub mod wire;
