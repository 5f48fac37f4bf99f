//! Status reports of legacy robots (the Python FMS's protocol): each new report is
//! translated (`fleet::legacy`) into the event it stands for about the robot's task, and
//! applied like an agent's event. Legacy robots have no `(epoch, seq)`: a report equal to
//! the last one, or older by the robot's clock, is a duplicate.

use fms_msgs::{CancelCommand, RobotId};

use super::{order, Effect, Refused, Retry, TaskEngine};
use crate::fleet::legacy::{translate, Assigned, LegacyReport, Translation};

impl TaskEngine {
    /// A legacy robot's status report. Duplicates change nothing; every other report moves
    /// the robot's task at most one step (see `fleet::legacy` for the rules).
    pub fn on_legacy_status(
        &mut self,
        robot: &RobotId,
        report: LegacyReport,
        now: u64,
    ) -> Result<Vec<Effect>, Refused> {
        let last = self.legacy_last.get(robot);
        if last.is_some_and(|last| report.is_stale(last)) {
            return Err(Refused::Duplicate);
        }
        let heard_before = last.is_some();
        let stopped = self.fleet_estop || self.robot_estops.contains(robot);
        let translation = {
            let task = self.task_of(robot).map(|t| Assigned {
                id: &t.id,
                status: t.status,
                cancel_requested: self.cancels.contains_key(&t.id),
            });
            translate(&report, task, heard_before, stopped)
        };
        self.legacy_last.insert(robot.clone(), report);
        let mut fx = Vec::new();
        match translation {
            Translation::Event(kind) => self.apply_event(robot, &kind, now, &mut fx),
            Translation::Resend(id) => {
                if let Some(t) = self.open.get(&id) {
                    fx.push(Effect::SendTask(robot.clone(), t.command()));
                    let retry = self.legacy_retry(now);
                    self.task_sends.insert(id, retry);
                }
            }
            Translation::CancelStray => fx.push(Effect::SendCancel(
                robot.clone(),
                CancelCommand { task_id: None },
            )),
            Translation::Ignore(_) => {}
        }
        Ok(order(fx))
    }

    /// The first resend of a command to a legacy robot waits longer: its `RUNNING` is the
    /// only acknowledgement, and a resend it gets while it runs the task may restart it.
    pub(super) fn legacy_retry(&self, now: u64) -> Retry {
        let first = self
            .params
            .reconcile_grace_ms
            .max(self.params.resend_initial_ms);
        Retry {
            next_at: now + first,
            backoff: (first * 2).min(self.params.resend_max_ms.max(first)),
        }
    }
}
