//! Every Zenoh key expression fms uses, built and parsed here and nowhere else.
//!
//! ```text
//! fms/robot/{id}/state                 robot -> server, one RobotState per tick
//! fms/robot/{id}/event                 robot -> server, sequence-numbered RobotEvent (reliable)
//! fms/robot/{id}/alive                 liveliness token held by the robot's agent
//! fms/robot/{id}/cmd/task              server -> robot, TaskCommand (legacy robots: LegacyTaskCommand)
//! fms/robot/{id}/cmd/cancel            server -> robot, CancelCommand (legacy robots: LegacyCancelCommand)
//! fms/robot/{id}/cmd/emergency_stop    server -> robot, EstopCommand
//! fms/robot/{id}/cmd/teleop            server/phone -> robot, TeleopCommand
//! fms/robot/{id}/state/pose            legacy split form (Python FMS), robot -> server
//! fms/robot/{id}/state/battery         legacy
//! fms/robot/{id}/state/status          legacy
//! fms/robot/{id}/heartbeat             legacy
//! fms/system/event                     server -> anyone, SystemEvent
//! ```

use crate::ids::{IdError, RobotId};

/// Root of every robot key.
pub const ROBOT_PREFIX: &str = "fms/robot";
/// System events published by the server.
pub const SYSTEM_EVENT: &str = "fms/system/event";

/// The per-robot topics, i.e. what follows `fms/robot/{id}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RobotTopic {
    State,
    Event,
    Alive,
    CmdTask,
    CmdCancel,
    CmdEstop,
    CmdTeleop,
    LegacyPose,
    LegacyBattery,
    LegacyStatus,
    LegacyHeartbeat,
}

impl RobotTopic {
    pub const ALL: [RobotTopic; 11] = [
        RobotTopic::State,
        RobotTopic::Event,
        RobotTopic::Alive,
        RobotTopic::CmdTask,
        RobotTopic::CmdCancel,
        RobotTopic::CmdEstop,
        RobotTopic::CmdTeleop,
        RobotTopic::LegacyPose,
        RobotTopic::LegacyBattery,
        RobotTopic::LegacyStatus,
        RobotTopic::LegacyHeartbeat,
    ];

    /// The part of the key after `fms/robot/{id}/`.
    pub const fn suffix(self) -> &'static str {
        match self {
            RobotTopic::State => "state",
            RobotTopic::Event => "event",
            RobotTopic::Alive => "alive",
            RobotTopic::CmdTask => "cmd/task",
            RobotTopic::CmdCancel => "cmd/cancel",
            RobotTopic::CmdEstop => "cmd/emergency_stop",
            RobotTopic::CmdTeleop => "cmd/teleop",
            RobotTopic::LegacyPose => "state/pose",
            RobotTopic::LegacyBattery => "state/battery",
            RobotTopic::LegacyStatus => "state/status",
            RobotTopic::LegacyHeartbeat => "heartbeat",
        }
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.suffix() == s)
    }
}

/// Why a key did not parse as one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {0:?} is not under {ROBOT_PREFIX}/")]
    NotRobotKey(String),
    #[error("key {key:?} has an invalid robot id: {source}")]
    BadRobotId { key: String, source: IdError },
    #[error("key {0:?} names no fms topic")]
    UnknownTopic(String),
}

/// `fms/robot/{id}/{topic}`.
pub fn robot_key(id: &RobotId, topic: RobotTopic) -> String {
    format!("{ROBOT_PREFIX}/{id}/{}", topic.suffix())
}

/// `fms/robot/*/{topic}`: the topic for every robot.
pub fn all_robots(topic: RobotTopic) -> String {
    format!("{ROBOT_PREFIX}/*/{}", topic.suffix())
}

/// `fms/robot/*/state/*`: the three legacy state keys of every robot.
pub fn all_robots_legacy_state() -> String {
    format!("{ROBOT_PREFIX}/*/state/*")
}

/// `fms/robot/{id}/cmd/*`: every command for one robot.
pub fn robot_commands(id: &RobotId) -> String {
    format!("{ROBOT_PREFIX}/{id}/cmd/*")
}

/// Splits `fms/robot/{id}/{topic}` into its robot id and topic.
pub fn parse_robot_key(key: &str) -> Result<(RobotId, RobotTopic), KeyError> {
    let (id, topic) = parse_robot_key_ref(key)?;
    let id = RobotId::from_ref(id).map_err(|source| KeyError::BadRobotId {
        key: key.to_owned(),
        source,
    })?;
    Ok((id, topic))
}

/// [`parse_robot_key`] without allocating: the id is borrowed from `key` and checked
/// (a valid [`RobotId`]) but not copied. For the ingest hot path.
pub fn parse_robot_key_ref(key: &str) -> Result<(&str, RobotTopic), KeyError> {
    let rest = key
        .strip_prefix(ROBOT_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| KeyError::NotRobotKey(key.to_owned()))?;
    let (id, suffix) = rest
        .split_once('/')
        .ok_or_else(|| KeyError::UnknownTopic(key.to_owned()))?;
    crate::ids::validate(id).map_err(|source| KeyError::BadRobotId {
        key: key.to_owned(),
        source,
    })?;
    let topic =
        RobotTopic::from_suffix(suffix).ok_or_else(|| KeyError::UnknownTopic(key.to_owned()))?;
    Ok((id, topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RobotId {
        RobotId::new(s).unwrap()
    }

    #[test]
    fn every_topic_round_trips() {
        for robot in ["tb3_1", "r", "robot-dev-001"] {
            for topic in RobotTopic::ALL {
                let key = robot_key(&id(robot), topic);
                assert_eq!(parse_robot_key(&key), Ok((id(robot), topic)), "{key}");
                assert_eq!(parse_robot_key_ref(&key), Ok((robot, topic)), "{key}");
            }
        }
    }

    #[test]
    fn known_keys_have_the_documented_shape() {
        assert_eq!(
            robot_key(&id("tb3_1"), RobotTopic::State),
            "fms/robot/tb3_1/state"
        );
        assert_eq!(
            robot_key(&id("tb3_1"), RobotTopic::CmdEstop),
            "fms/robot/tb3_1/cmd/emergency_stop"
        );
        assert_eq!(
            robot_key(&id("a"), RobotTopic::LegacyPose),
            "fms/robot/a/state/pose"
        );
        assert_eq!(all_robots(RobotTopic::Event), "fms/robot/*/event");
        assert_eq!(robot_commands(&id("a")), "fms/robot/a/cmd/*");
    }

    #[test]
    fn rejects_foreign_and_malformed_keys() {
        assert!(matches!(
            parse_robot_key("fms/system/event"),
            Err(KeyError::NotRobotKey(_))
        ));
        assert!(matches!(
            parse_robot_key("fms/robotx/a/state"),
            Err(KeyError::NotRobotKey(_))
        ));
        assert!(matches!(
            parse_robot_key("fms/robot/a"),
            Err(KeyError::UnknownTopic(_))
        ));
        assert!(matches!(
            parse_robot_key("fms/robot/a/nope"),
            Err(KeyError::UnknownTopic(_))
        ));
        assert!(matches!(
            parse_robot_key("fms/robot/a/state/x"),
            Err(KeyError::UnknownTopic(_))
        ));
        assert!(matches!(
            parse_robot_key("fms/robot/*/state"),
            Err(KeyError::BadRobotId { .. })
        ));
        assert!(matches!(
            parse_robot_key("fms/robot//state"),
            Err(KeyError::BadRobotId { .. })
        ));
    }
}
