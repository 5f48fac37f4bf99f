//! The one place that decides in which protocol a command goes to a robot: ours, or the
//! Python FMS's for legacy robots (`RobotEntry.legacy`). Both use the keys `cmd/task` and
//! `cmd/cancel`, with different payloads; legacy robots have no e-stop command, so an
//! e-stop becomes a cancel (the engine holds their e-stop) and a release sends nothing.

use std::sync::Arc;

use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::legacy::{LegacyCancelCommand, LegacyTaskCommand, LegacyTaskError};
use fms_msgs::{encode, CancelCommand, EstopCommand, RobotId, TaskCommand};
use tokio::sync::mpsc;

use super::Outgoing;
use crate::state::ServerState;

/// A command for one robot.
#[derive(Debug, Clone, Copy)]
pub(super) enum Command<'a> {
    Task(&'a TaskCommand),
    Cancel(&'a CancelCommand),
    Estop(&'a EstopCommand),
}

/// The message that carries `cmd` to `robot`, in its protocol; None when there is nothing
/// to send (a legacy robot's e-stop release). `now_ms` stamps legacy messages.
pub(super) fn encode_command(
    robot: &RobotId,
    legacy: bool,
    cmd: Command<'_>,
    now_ms: u64,
) -> Result<Option<Outgoing>, LegacyTaskError> {
    let out = |topic, payload| {
        Some(Outgoing {
            key: keys::robot_key(robot, topic),
            payload,
        })
    };
    if !legacy {
        return Ok(match cmd {
            Command::Task(c) => out(RobotTopic::CmdTask, encode(c)),
            Command::Cancel(c) => out(RobotTopic::CmdCancel, encode(c)),
            Command::Estop(c) => out(RobotTopic::CmdEstop, encode(c)),
        });
    }
    Ok(match cmd {
        Command::Task(c) => out(
            RobotTopic::CmdTask,
            encode(&LegacyTaskCommand::from_command(c, now_ms)?),
        ),
        Command::Cancel(c) => {
            let reason = match &c.task_id {
                Some(id) => format!("canceled by the fleet manager (task {id})"),
                None => "canceled by the fleet manager".to_owned(),
            };
            out(
                RobotTopic::CmdCancel,
                encode(&LegacyCancelCommand::new(reason, now_ms)),
            )
        }
        Command::Estop(c) if c.engage => {
            let reason = format!(
                "emergency stop: {}",
                c.reason.as_deref().unwrap_or("engaged")
            );
            out(
                RobotTopic::CmdCancel,
                encode(&LegacyCancelCommand::new(reason, now_ms)),
            )
        }
        Command::Estop(_) => None,
    })
}

/// Where commands go out to the robots (the Zenoh publisher), each counted as sent.
#[derive(Clone)]
pub(super) struct Outbox {
    out: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<ServerState>,
}

impl Outbox {
    pub(super) fn new(out: mpsc::UnboundedSender<Outgoing>, shared: Arc<ServerState>) -> Self {
        Self { out, shared }
    }

    /// The message that carries `cmd` to `robot` in its protocol, as the registry knows
    /// it; None when there is nothing to send.
    pub(super) fn command(&self, robot: &RobotId, cmd: Command<'_>) -> Option<Outgoing> {
        let legacy = self.shared.registry().get(robot).is_some_and(|e| e.legacy);
        match encode_command(robot, legacy, cmd, fms_msgs::unix_ms()) {
            Ok(msg) => msg,
            // The engine never assigns such a task to a legacy robot.
            Err(e) => {
                tracing::error!(robot_id = %robot, "command not sent to a legacy robot: {e}");
                None
            }
        }
    }

    /// Publishes a message, whatever this replica's role.
    pub(super) fn send(&self, msg: Outgoing) {
        self.shared.metrics.command_sent();
        let _ = self.out.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fms_msgs::codec::JsonValue;
    use fms_msgs::{decode, Goal, Pose, Priority, TaskId};

    fn json(msg: &Outgoing) -> JsonValue {
        decode(&msg.payload).unwrap()
    }

    #[test]
    fn each_robot_gets_its_own_dialect() {
        let robot = RobotId::new("old").unwrap();
        let task = TaskCommand {
            task_id: TaskId::new("t1").unwrap(),
            goal: Goal::Pose(Pose::new(2.0, 3.0, 0.5)),
            priority: Priority::Urgent,
            timeout_s: None,
            parameters: Default::default(),
        };
        let ours = encode_command(&robot, false, Command::Task(&task), 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(ours.key, "fms/robot/old/cmd/task");
        assert_eq!(json(&ours)["goal"]["pose"]["x"], 2.0);
        let old = encode_command(&robot, true, Command::Task(&task), 1_500)
            .unwrap()
            .unwrap();
        assert_eq!(old.key, "fms/robot/old/cmd/task");
        let j = json(&old);
        assert_eq!(
            (
                &j["task_id"],
                &j["target_position"]["x"],
                &j["target_position"]["y"]
            ),
            (
                &JsonValue::from("t1"),
                &JsonValue::from(2.0),
                &JsonValue::from(3.0)
            )
        );
        assert_eq!(
            (&j["priority"], &j["timestamp"]),
            (&JsonValue::from(3), &JsonValue::from(1.5))
        );

        let cancel = CancelCommand {
            task_id: Some(TaskId::new("t1").unwrap()),
        };
        let old = encode_command(&robot, true, Command::Cancel(&cancel), 2_000)
            .unwrap()
            .unwrap();
        assert_eq!(old.key, "fms/robot/old/cmd/cancel");
        assert!(json(&old)["reason"].as_str().unwrap().contains("t1"));

        // No e-stop in the old protocol: engaging cancels, releasing sends nothing.
        let engage = fms_msgs::EstopCommand {
            engage: true,
            reason: Some("operator emergency stop".into()),
        };
        let old = encode_command(&robot, true, Command::Estop(&engage), 0)
            .unwrap()
            .unwrap();
        assert_eq!(old.key, "fms/robot/old/cmd/cancel");
        assert!(json(&old)["reason"]
            .as_str()
            .unwrap()
            .starts_with("emergency stop"));
        let release = fms_msgs::EstopCommand {
            engage: false,
            reason: None,
        };
        assert_eq!(
            encode_command(&robot, true, Command::Estop(&release), 0).unwrap(),
            None
        );
        let ours = encode_command(&robot, false, Command::Estop(&release), 0)
            .unwrap()
            .unwrap();
        assert_eq!(ours.key, "fms/robot/old/cmd/emergency_stop");
    }

    #[test]
    fn waypoints_are_never_sent_to_a_legacy_robot() {
        let robot = RobotId::new("old").unwrap();
        let task = TaskCommand {
            task_id: TaskId::new("t1").unwrap(),
            goal: Goal::Waypoints(vec![Pose::new(1.0, 0.0, 0.0), Pose::new(2.0, 0.0, 0.0)]),
            priority: Priority::Normal,
            timeout_s: None,
            parameters: Default::default(),
        };
        assert!(encode_command(&robot, true, Command::Task(&task), 0).is_err());
    }
}
