//! Robots of the Python FMS send no events, only a status word when it changes (`RUNNING`,
//! `COMPLETED`, `ERROR`, `CANCELLED`, `IDLE`), without a task id. This translates one such
//! report into the robot event it stands for, about the task the engine has assigned to
//! that robot, so the engine's lifecycle drives legacy robots too. Pure.
//!
//! The rules keep every task ending once, and only the right task:
//! - `RUNNING` acknowledges the assigned task (ASSIGNED -> ACTIVE).
//! - `COMPLETED` and `ERROR` end the task only once the robot was seen `RUNNING` it (ACTIVE),
//!   or when the engine has heard no report from the robot since it (or the robot) started:
//!   then the robot's `RUNNING` may have reached the server's previous run. Otherwise the
//!   report is about an earlier task and is ignored.
//! - `CANCELLED` ends a task whose cancel was asked, or an ACTIVE one (canceled on the
//!   robot). Under an e-stop it stands for the agent's "emergency stop engaged": an ACTIVE
//!   task fails, an ASSIGNED one goes back to the queue until the release.
//! - `IDLE` while the engine believes the robot runs a task means the robot lost it: the
//!   task is sent again (the robot runs nothing, so this cannot restart it).
//! - `RUNNING` when the robot has no task of ours: it runs something that is not (or no
//!   longer) its task, which is canceled.
//!
//! Reports equal to the last one (a re-delivery), or older than it by the robot's clock, are
//! dropped by the engine before they get here.

use fms_msgs::legacy::LegacyTaskStatus;
use fms_msgs::{EventKind, TaskId};

use super::tasks::TaskStatus;

/// The reason a task fails or is requeued when a legacy robot cancels it under an e-stop
/// (the engine treats it as the agents' e-stop).
pub const ESTOP_REASON: &str = "emergency stop engaged (the legacy robot canceled its task)";

/// One status report of a legacy robot.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyReport {
    pub status: LegacyTaskStatus,
    /// The robot's free text.
    pub message: Option<String>,
    /// Unix seconds, the robot's clock.
    pub timestamp: Option<f64>,
}

impl LegacyReport {
    /// Whether this report adds nothing to `last`: the same report again, or one the robot
    /// stamped earlier.
    pub fn is_stale(&self, last: &LegacyReport) -> bool {
        if self == last {
            return true;
        }
        matches!((self.timestamp, last.timestamp), (Some(t), Some(l)) if t < l)
    }
}

/// The engine's task for the robot, as the translation needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assigned<'a> {
    pub id: &'a TaskId,
    /// ASSIGNED or ACTIVE.
    pub status: TaskStatus,
    /// A cancel of this task was asked and not answered yet.
    pub cancel_requested: bool,
}

/// What a report means.
#[derive(Debug, Clone, PartialEq)]
pub enum Translation {
    /// Apply this event, as if the robot had sent it.
    Event(EventKind),
    /// The robot lost its task: send it again.
    Resend(TaskId),
    /// The robot runs something that is not its task: cancel it.
    CancelStray,
    /// Nothing to do, and why.
    Ignore(&'static str),
}

/// Translates a report. `heard_before`: the engine has had a report from this robot since
/// it (or the robot) started; `stopped`: the robot is e-stopped (its own or the fleet's).
pub fn translate(
    report: &LegacyReport,
    task: Option<Assigned<'_>>,
    heard_before: bool,
    stopped: bool,
) -> Translation {
    use LegacyTaskStatus::*;
    let Some(t) = task else {
        return match report.status {
            Running => Translation::CancelStray,
            _ => Translation::Ignore("the robot has no task"),
        };
    };
    let task_id = t.id.clone();
    let active = t.status == TaskStatus::Active;
    // An end report counts for this task only if the robot was seen running it, or if
    // nothing the robot said since the start could have been missed.
    let ends_this = active || !heard_before;
    match report.status {
        Running => Translation::Event(EventKind::TaskStarted { task_id }),
        Completed if ends_this => Translation::Event(EventKind::TaskCompleted { task_id }),
        Error if ends_this => Translation::Event(EventKind::TaskFailed {
            task_id,
            reason: match report.message.as_deref().map(str::trim) {
                Some(m) if !m.is_empty() => m.to_owned(),
                _ => "the robot reported ERROR".to_owned(),
            },
        }),
        Completed | Error => Translation::Ignore("an end report before RUNNING: not this task's"),
        Cancelled if stopped && active => Translation::Event(EventKind::TaskFailed {
            task_id,
            reason: ESTOP_REASON.into(),
        }),
        Cancelled if stopped => Translation::Event(EventKind::TaskRejected {
            task_id,
            reason: ESTOP_REASON.into(),
        }),
        Cancelled if t.cancel_requested || active => {
            Translation::Event(EventKind::TaskCanceled { task_id })
        }
        Cancelled => Translation::Ignore("CANCELLED before RUNNING and no cancel asked"),
        Idle if t.cancel_requested => Translation::Event(EventKind::TaskCanceled { task_id }),
        Idle if active => Translation::Resend(task_id),
        Idle => Translation::Ignore("IDLE: the task is still being sent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: LegacyTaskStatus, ts: f64) -> LegacyReport {
        LegacyReport {
            status,
            message: None,
            timestamp: Some(ts),
        }
    }

    fn tid() -> TaskId {
        TaskId::new("t1").unwrap()
    }

    fn task(id: &TaskId, status: TaskStatus, cancel: bool) -> Option<Assigned<'_>> {
        Some(Assigned {
            id,
            status,
            cancel_requested: cancel,
        })
    }

    use LegacyTaskStatus::*;
    use TaskStatus::{Active, Assigned as Sent};

    #[test]
    fn running_then_completed_drive_the_task() {
        let id = tid();
        assert_eq!(
            translate(&report(Running, 1.0), task(&id, Sent, false), true, false),
            Translation::Event(EventKind::TaskStarted {
                task_id: id.clone()
            })
        );
        assert_eq!(
            translate(
                &report(Completed, 2.0),
                task(&id, Active, false),
                true,
                false
            ),
            Translation::Event(EventKind::TaskCompleted {
                task_id: id.clone()
            })
        );
        let mut err = report(Error, 3.0);
        err.message = Some("path blocked".into());
        assert_eq!(
            translate(&err, task(&id, Active, false), true, false),
            Translation::Event(EventKind::TaskFailed {
                task_id: id.clone(),
                reason: "path blocked".into()
            })
        );
        err.message = None;
        assert!(matches!(
            translate(&err, task(&id, Active, false), true, false),
            Translation::Event(EventKind::TaskFailed { reason, .. }) if reason.contains("ERROR")
        ));
    }

    #[test]
    fn an_end_report_before_running_is_not_for_the_new_task() {
        let id = tid();
        for status in [Completed, Error] {
            assert!(matches!(
                translate(&report(status, 1.0), task(&id, Sent, false), true, false),
                Translation::Ignore(_)
            ));
            // Nothing heard since the start (a server restart): the robot's RUNNING may
            // have reached the previous run, so the end counts.
            assert!(matches!(
                translate(&report(status, 1.0), task(&id, Sent, false), false, false),
                Translation::Event(_)
            ));
        }
    }

    #[test]
    fn cancelled_ends_only_a_canceled_or_running_task() {
        let id = tid();
        let c = report(Cancelled, 1.0);
        assert_eq!(
            translate(&c, task(&id, Sent, true), true, false),
            Translation::Event(EventKind::TaskCanceled {
                task_id: id.clone()
            })
        );
        assert_eq!(
            translate(&c, task(&id, Active, false), true, false),
            Translation::Event(EventKind::TaskCanceled {
                task_id: id.clone()
            })
        );
        assert!(matches!(
            translate(&c, task(&id, Sent, false), true, false),
            Translation::Ignore(_)
        ));
        // Under an e-stop: the agents' "emergency stop engaged".
        assert!(matches!(
            translate(&c, task(&id, Active, false), true, true),
            Translation::Event(EventKind::TaskFailed { reason, .. }) if reason == ESTOP_REASON
        ));
        assert!(matches!(
            translate(&c, task(&id, Sent, false), true, true),
            Translation::Event(EventKind::TaskRejected { .. })
        ));
    }

    #[test]
    fn idle_resends_a_lost_task_and_running_without_a_task_is_stray() {
        let id = tid();
        let idle = report(Idle, 1.0);
        assert_eq!(
            translate(&idle, task(&id, Active, false), true, false),
            Translation::Resend(id.clone())
        );
        assert!(matches!(
            translate(&idle, task(&id, Sent, false), true, false),
            Translation::Ignore(_)
        ));
        assert_eq!(
            translate(&idle, task(&id, Active, true), true, false),
            Translation::Event(EventKind::TaskCanceled {
                task_id: id.clone()
            })
        );
        assert_eq!(
            translate(&report(Running, 1.0), None, true, false),
            Translation::CancelStray
        );
        for status in [Idle, Completed, Cancelled, Error] {
            assert!(matches!(
                translate(&report(status, 1.0), None, true, false),
                Translation::Ignore(_)
            ));
        }
    }

    #[test]
    fn repeats_and_older_reports_are_stale() {
        let last = report(Completed, 10.0);
        assert!(report(Completed, 10.0).is_stale(&last));
        assert!(report(Running, 9.5).is_stale(&last));
        assert!(!report(Running, 10.5).is_stale(&last));
        let untimed = LegacyReport {
            status: Cancelled,
            message: None,
            timestamp: None,
        };
        assert!(untimed.is_stale(&untimed.clone()));
        assert!(!untimed.is_stale(&last));
    }
}
