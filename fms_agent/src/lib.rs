//! fms robot agent: one robot's bridge to the fleet over Zenoh.
//!
//! `robot` holds the robot-interface trait and its backends, `executor` the pure task logic,
//! `agent` the loop that joins them to Zenoh (`link`).

pub mod agent;
pub mod config;
pub mod executor;
pub mod link;
pub mod robot;

pub use agent::{run, AgentError};
pub use config::{AgentConfig, Interface};

use robot::sim::SimRobot;
use robot::RobotInterface;

/// Why the robot backend the config asks for could not start.
#[derive(Debug, thiserror::Error)]
pub enum MakeRobotError {
    #[cfg(feature = "ros2")]
    #[error(transparent)]
    Ros2(#[from] robot::ros2::Ros2Error),
    #[cfg(feature = "ros2dds")]
    #[error(transparent)]
    Ros2dds(#[from] robot::ros2dds::Ros2ddsError),
    /// The backend of that interface is not in this build.
    #[error(
        "this fms_agent was built without the `{feature}` feature (see docs/ros2.md: {build})"
    )]
    NotBuilt {
        feature: &'static str,
        build: &'static str,
    },
}

/// Builds the robot backend the config asks for.
pub fn make_robot(config: &AgentConfig) -> Result<Box<dyn RobotInterface>, MakeRobotError> {
    match config.interface {
        Interface::Mock => Ok(Box::new(SimRobot::new(
            config.sim.clone(),
            config.start_pose.clone(),
        ))),
        #[cfg(feature = "ros2")]
        Interface::Ros2 => Ok(Box::new(robot::ros2::Ros2Robot::start(&config.ros2)?)),
        #[cfg(not(feature = "ros2"))]
        Interface::Ros2 => Err(MakeRobotError::NotBuilt {
            feature: "ros2",
            build: "colcon build --packages-select fms_agent --cargo-args --features ros2",
        }),
        #[cfg(feature = "ros2dds")]
        Interface::Ros2dds => Ok(Box::new(robot::ros2dds::Ros2ddsRobot::start(
            &config.ros2,
            &config.ros2dds,
            &config.ros.remaps,
        )?)),
        #[cfg(not(feature = "ros2dds"))]
        Interface::Ros2dds => Err(MakeRobotError::NotBuilt {
            feature: "ros2dds",
            build: "cargo build -p fms_agent --features ros2dds",
        }),
    }
}

/// `["a","b"]` as JSON5 for a Zenoh config list.
pub(crate) fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(","))
}
