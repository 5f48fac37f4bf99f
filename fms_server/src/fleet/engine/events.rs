//! Robot events: which `(epoch, seq)` are applied (once each, plausible only), and what each
//! applied event does to the robot's task and e-stop.
//!
//! `epoch` is the agent process's start time (Unix ms, the robot's clock) and `seq` counts
//! its events from 1. An event is *implausible*, and refused without touching the cursor,
//! when its epoch lies more than [`EPOCH_AHEAD_MARGIN_MS`] ahead of the server's clock, or
//! its seq is larger than one event per millisecond since that epoch (plus
//! [`SEQ_SLACK`]) could reach. A stored cursor that fails the same test (left by an older
//! server) is dropped when loaded and ignored when an event arrives. A robot back from
//! OFFLINE may start a new epoch lower than its cursor (an agent restarted after its clock
//! was set back), so a cursor that was only a little ahead blocks nobody for long.

use fms_msgs::{CancelCommand, EventKind, RobotEvent, RobotId};

use super::{order, Effect, TaskEngine};
use crate::fleet::tasks::TaskStatus;
use crate::store::EventCursor;

/// How far ahead of the server's clock an agent's epoch (its start time) may be: clocks of
/// robots and server should agree within this (NTP).
pub const EPOCH_AHEAD_MARGIN_MS: u64 = 60_000;
/// Events an agent may send beyond one per millisecond since its start.
pub const SEQ_SLACK: u64 = 100_000;

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Already applied, or from an older run of the agent.
    #[error("duplicate or stale event")]
    Duplicate,
    /// No agent could have sent it: a wrong clock or a forged event.
    #[error("implausible event: {0}")]
    Implausible(#[from] Implausible),
}

/// Why `(epoch, seq)` cannot come from a real agent run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    #[error("epoch {epoch} is more than {} s ahead of the server's clock ({now})", EPOCH_AHEAD_MARGIN_MS / 1000)]
    EpochAhead { epoch: u64, now: u64 },
    #[error("seq {seq} is more than an agent started at {epoch} could have sent (at most {most})")]
    SeqTooHigh { seq: u64, epoch: u64, most: u64 },
}

/// Whether `(epoch, seq)` could come from a real agent run, judged by the server's `now`.
pub fn plausible(epoch: u64, seq: u64, now: u64) -> Result<(), Implausible> {
    let horizon = now.saturating_add(EPOCH_AHEAD_MARGIN_MS);
    if epoch > horizon {
        return Err(Implausible::EpochAhead { epoch, now });
    }
    let most = horizon - epoch + SEQ_SLACK;
    if seq > most {
        return Err(Implausible::SeqTooHigh { seq, epoch, most });
    }
    Ok(())
}

impl TaskEngine {
    /// Whether the event is new for this robot: a higher epoch, or a higher seq in the same
    /// epoch; after a new session (robot back from OFFLINE), any other epoch.
    fn fresh(&self, robot: &RobotId, ev: &RobotEvent, now: u64) -> bool {
        let cursor = self
            .cursors
            .get(robot)
            .filter(|c| plausible(c.epoch, c.seq, now).is_ok());
        match cursor {
            None => true,
            Some(c) if ev.epoch == c.epoch => ev.seq > c.seq,
            Some(c) => ev.epoch > c.epoch || self.new_session.contains(robot),
        }
    }

    /// A robot event. Each plausible `(epoch, seq)` is applied once; duplicates, stale
    /// epochs and implausible events are refused and change nothing.
    pub fn on_event(
        &mut self,
        robot: &RobotId,
        ev: &RobotEvent,
        now: u64,
    ) -> Result<Vec<Effect>, Refused> {
        plausible(ev.epoch, ev.seq, now)?;
        if !self.fresh(robot, ev, now) {
            return Err(Refused::Duplicate);
        }
        self.new_session.remove(robot);
        let cursor = EventCursor {
            epoch: ev.epoch,
            seq: ev.seq,
        };
        self.cursors.insert(robot.clone(), cursor);
        let mut fx = vec![Effect::Cursor(robot.clone(), cursor)];
        match &ev.event {
            EventKind::EstopEngaged { .. } => {
                self.robot_estops.insert(robot.clone());
            }
            EventKind::EstopReleased => {
                self.robot_estops.remove(robot);
            }
            _ => {}
        }
        self.apply_event(robot, &ev.event, now, &mut fx);
        Ok(order(fx))
    }

    /// What an applied event (or a legacy robot's translated report) does to the robot's
    /// task.
    pub(super) fn apply_event(
        &mut self,
        robot: &RobotId,
        event: &EventKind,
        now: u64,
        fx: &mut Vec<Effect>,
    ) {
        // Events without a task (errors, e-stop) show in the robot's state.
        let Some(task_id) = event.task_id().cloned() else {
            return;
        };
        let mine = self
            .open
            .get(&task_id)
            .is_some_and(|t| t.assigned_robot.as_ref() == Some(robot));
        if !mine {
            // The robot works on a task that is over or belongs to another robot: stop it.
            let running = matches!(
                event,
                EventKind::TaskAccepted { .. }
                    | EventKind::TaskStarted { .. }
                    | EventKind::TaskProgress { .. }
            );
            if running {
                fx.push(Effect::SendCancel(
                    robot.clone(),
                    CancelCommand {
                        task_id: Some(task_id.clone()),
                    },
                ));
            }
            return;
        }
        // Any event about the task from its robot acknowledges the command.
        self.task_sends.remove(&task_id);
        let status = self.open[&task_id].status;
        match event {
            EventKind::TaskAccepted { .. } => {}
            EventKind::TaskStarted { .. } => {
                if status == TaskStatus::Assigned {
                    let t = self.open.get_mut(&task_id).expect("open");
                    t.transition(TaskStatus::Active, now, None);
                    fx.push(Effect::Persist(t.clone()));
                }
            }
            EventKind::TaskProgress { progress, .. } => {
                let t = self.open.get_mut(&task_id).expect("open");
                if status == TaskStatus::Assigned {
                    t.transition(TaskStatus::Active, now, Some("progress reported".into()));
                }
                if progress.is_finite() && *progress > t.progress {
                    t.progress = progress.min(1.0);
                    t.updated_ms = now;
                }
                fx.push(Effect::Persist(t.clone()));
            }
            EventKind::TaskCompleted { .. } => {
                self.finish(&task_id, TaskStatus::Completed, now, None, fx)
            }
            EventKind::TaskCanceled { .. } => {
                if self.preempting.contains(&task_id) {
                    self.requeue(
                        &task_id,
                        now,
                        "preempted by an urgent task".into(),
                        false,
                        fx,
                    );
                } else {
                    self.finish(&task_id, TaskStatus::Canceled, now, None, fx);
                }
            }
            EventKind::TaskFailed { reason, .. } => {
                let t = &self.open[&task_id];
                let retry = !self.cancels.contains_key(&task_id)
                    && !is_estop(reason)
                    && t.failures < t.retries;
                if retry {
                    let t = self.open.get_mut(&task_id).expect("open");
                    t.failures += 1;
                    let note = format!(
                        "navigation failed ({reason}); retry {} of {}",
                        t.failures, t.retries
                    );
                    self.requeue(&task_id, now, note, true, fx);
                } else {
                    self.finish(&task_id, TaskStatus::Failed, now, Some(reason.clone()), fx);
                }
            }
            EventKind::TaskRejected { reason, .. } if is_estop(reason) => {
                // Not the task's fault: it waits for the release without spending an
                // attempt, and the robot gets no task until then.
                self.robot_estops.insert(robot.clone());
                let note = format!(
                    "rejected by robot: {reason}; waiting for the release (attempt not counted)"
                );
                if let Some(t) = self.open.get_mut(&task_id) {
                    t.attempts = t.attempts.saturating_sub(1);
                }
                self.requeue(&task_id, now, note, false, fx);
            }
            EventKind::TaskRejected { reason, .. } => {
                self.requeue(
                    &task_id,
                    now,
                    format!("rejected by robot: {reason}"),
                    true,
                    fx,
                );
            }
            EventKind::Error { .. } | EventKind::EstopEngaged { .. } | EventKind::EstopReleased => {
            }
        }
    }
}

/// Whether a robot's reason for failing or refusing a task is its emergency stop.
fn is_estop(reason: &str) -> bool {
    reason.contains("emergency stop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_accepts_real_runs_and_refuses_the_future() {
        let now = 1_767_225_600_000;
        assert!(plausible(now - 3_600_000, 1, now).is_ok());
        assert!(plausible(now + EPOCH_AHEAD_MARGIN_MS, 1, now).is_ok());
        assert!(plausible(now + EPOCH_AHEAD_MARGIN_MS + 1, 1, now).is_err());
        assert!(plausible(9_000_000_000_000_000_000, 1, now).is_err());
        assert!(plausible(u64::MAX, u64::MAX, now).is_err());
        // One event per millisecond for an hour is plausible, a billion more is not.
        assert!(plausible(now - 3_600_000, 3_600_000, now).is_ok());
        assert!(plausible(now - 3_600_000, 1_000_000_000_000, now).is_err());
    }
}
