//! The engine's periodic work: resends, lost robots, timeouts, reconciliation with what
//! robots report, e-stop acknowledgements, charging, and dispatch with preemption.

use std::collections::{HashMap, HashSet};

use fms_msgs::{CancelCommand, Goal, Priority, RobotId, TaskId};

use super::{
    fleet_estop_cmd, is_charge, order, robot_estop_cmd, Effect, Retry, RobotView, TaskEngine,
};
use crate::fleet::dispatch::{self, Candidate};
use crate::fleet::tasks::{HistoryEntry, Task, TaskStatus};

impl TaskEngine {
    /// Periodic work: resends, lost robots, timeouts, reconciliation, e-stop acks,
    /// charging, dispatch.
    pub fn tick(&mut self, robots: &[RobotView], now: u64) -> Vec<Effect> {
        let mut fx = Vec::new();
        let max = self.params.resend_max_ms;

        // The registry is the truth about who is online.
        for r in robots.iter().filter(|r| r.online) {
            self.offline_since.remove(&r.id);
        }

        // Robots gone too long lose their tasks; tasks past their timeout fail.
        let mut lost = Vec::new();
        let mut expired = Vec::new();
        for t in self.open.values() {
            let Some(robot) = &t.assigned_robot else {
                continue;
            };
            if self
                .offline_since
                .get(robot)
                .is_some_and(|since| now.saturating_sub(*since) >= self.params.offline_grace_ms)
            {
                lost.push(t.id.clone());
            } else if let (Some(limit), Some(since)) = (t.timeout_s, t.active_since()) {
                if now > since + (limit * 1000.0) as u64 + self.params.timeout_grace_ms {
                    expired.push((t.id.clone(), robot.clone()));
                }
            }
        }
        for id in lost {
            self.requeue(&id, now, "robot offline".into(), true, &mut fx);
        }
        for (id, robot) in expired {
            fx.push(Effect::SendCancel(
                robot,
                CancelCommand {
                    task_id: Some(id.clone()),
                },
            ));
            self.finish(
                &id,
                TaskStatus::Failed,
                now,
                Some("task timed out".into()),
                &mut fx,
            );
        }

        self.reconcile(robots, now, &mut fx);

        // Resend unacknowledged commands (of tasks still open after the steps above), to
        // robots the registry knows (after a restart, it learns which protocol each speaks);
        // legacy robots, whose RUNNING is the only acknowledgement, less often.
        let views: HashMap<&RobotId, &RobotView> = robots.iter().map(|r| (&r.id, r)).collect();
        let legacy_min = self
            .params
            .reconcile_grace_ms
            .max(self.params.resend_initial_ms);
        let mut resend: Vec<TaskId> = Vec::new();
        for (id, r) in self.task_sends.iter_mut() {
            let view = self
                .open
                .get(id)
                .and_then(|t| t.assigned_robot.as_ref())
                .and_then(|robot| views.get(robot));
            let Some(view) = view else { continue };
            if view.legacy {
                r.backoff = r.backoff.max(legacy_min);
            }
            if Self::due(r, now, max) {
                resend.push(id.clone());
            }
        }
        for id in resend {
            if let Some(t) = self.open.get(&id) {
                if let Some(robot) = &t.assigned_robot {
                    fx.push(Effect::SendTask(robot.clone(), t.command()));
                }
            }
        }
        let mut recancel = Vec::new();
        for (id, r) in self.cancels.iter_mut() {
            if Self::due(r, now, max) {
                recancel.push(id.clone());
            }
        }
        for id in recancel {
            if let Some(robot) = self.open.get(&id).and_then(|t| t.assigned_robot.clone()) {
                fx.push(Effect::SendCancel(
                    robot,
                    CancelCommand { task_id: Some(id) },
                ));
            }
        }

        // The fleet e-stop is resent until every online robot shows it. A legacy robot has
        // no e-stop (it is sent a cancel): it shows one, its own or the fleet's, by running
        // nothing.
        for r in robots.iter().filter(|r| r.online) {
            let held = self.fleet_estop || (r.legacy && self.robot_estops.contains(&r.id));
            if !held {
                continue;
            }
            if r.estopped || (r.legacy && r.idle) {
                self.estop_sends.remove(&r.id);
                continue;
            }
            let retry = self.retry(now);
            let entry = self.estop_sends.entry(r.id.clone()).or_insert(retry);
            if Self::due(entry, now, max) {
                let cmd = if self.fleet_estop {
                    fleet_estop_cmd(true)
                } else {
                    robot_estop_cmd(true)
                };
                fx.push(Effect::SendEstop(r.id.clone(), cmd));
            }
        }

        self.send_to_chargers(robots, now, &mut fx);
        fx.extend(self.dispatch(robots, now));
        order(fx)
    }

    /// Compares what robots report with what the engine believes.
    fn reconcile(&mut self, robots: &[RobotView], now: u64, fx: &mut Vec<Effect>) {
        let grace = self.params.reconcile_grace_ms;
        let max = self.params.resend_max_ms;
        let mut reported: HashSet<&TaskId> = HashSet::new();
        let mut still_stray = HashSet::new();
        for r in robots.iter().filter(|r| r.online) {
            let Some(x) = &r.current_task else { continue };
            reported.insert(x);
            let mine = self
                .open
                .get(x)
                .is_some_and(|t| t.assigned_robot.as_ref() == Some(&r.id));
            if mine {
                // The robot runs it: that is an acknowledgement, and it is active.
                self.task_sends.remove(x);
                let t = self.open.get_mut(x).expect("open");
                if t.status == TaskStatus::Assigned {
                    t.transition(
                        TaskStatus::Active,
                        now,
                        Some("reported running by the robot".into()),
                    );
                    fx.push(Effect::Persist(t.clone()));
                }
                continue;
            }
            let key = (r.id.clone(), x.clone());
            still_stray.insert(key.clone());
            let entry = self.strays.entry(key).or_insert(Retry {
                next_at: now + grace,
                backoff: self.params.resend_initial_ms,
            });
            if Self::due(entry, now, max) {
                fx.push(Effect::SendCancel(
                    r.id.clone(),
                    CancelCommand {
                        task_id: Some(x.clone()),
                    },
                ));
            }
        }
        self.strays.retain(|k, _| still_stray.contains(k));

        // Active tasks their robot (online, idle) does not report: resend after a grace.
        // Legacy robots never report a task: their status reports say when one is lost.
        let idle_online: HashSet<&RobotId> = robots
            .iter()
            .filter(|r| r.online && r.idle && !r.legacy)
            .map(|r| &r.id)
            .collect();
        let mut resend = Vec::new();
        for t in self.open.values() {
            let Some(robot) = &t.assigned_robot else {
                continue;
            };
            let missing = t.status == TaskStatus::Active
                && !reported.contains(&t.id)
                && idle_online.contains(robot)
                && !self.task_sends.contains_key(&t.id)
                && !self.cancels.contains_key(&t.id);
            if !missing {
                continue;
            }
            let since = *self.unreported_since.entry(t.id.clone()).or_insert(now);
            if now.saturating_sub(since) >= grace {
                resend.push(t.id.clone());
            }
        }
        self.unreported_since.retain(|id, _| {
            self.open
                .get(id)
                .is_some_and(|t| t.status == TaskStatus::Active)
                && !reported.contains(id)
        });
        for id in resend {
            self.unreported_since.remove(&id);
            let t = &self.open[&id];
            if let Some(robot) = &t.assigned_robot {
                fx.push(Effect::SendTask(robot.clone(), t.command()));
                let retry = self.retry(now);
                self.task_sends.insert(id, retry);
            }
        }
    }

    /// Sends idle robots below the battery threshold to the nearest free charger.
    fn send_to_chargers(&mut self, robots: &[RobotView], now: u64, fx: &mut Vec<Effect>) {
        if self.chargers.is_empty() || self.fleet_estop {
            return;
        }
        let mut taken: HashSet<String> = self
            .open
            .values()
            .filter_map(|t| t.location.clone())
            .collect();
        let low: Vec<&RobotView> = robots
            .iter()
            .filter(|r| {
                r.online
                    && r.idle
                    && !r.legacy
                    && !self.stopped(r)
                    && !r.charging
                    && r.battery < self.params.min_battery
            })
            .filter(|r| self.task_of(&r.id).is_none())
            .filter(|r| {
                !self
                    .open
                    .values()
                    .any(|t| is_charge(t) && t.robot_id.as_ref() == Some(&r.id))
            })
            .collect();
        for r in low {
            let nearest = self
                .chargers
                .iter()
                .filter(|c| !taken.contains(&c.name))
                .min_by(|a, b| {
                    let da = (a.pose.x - r.x).hypot(a.pose.y - r.y);
                    let db = (b.pose.x - r.x).hypot(b.pose.y - r.y);
                    da.total_cmp(&db)
                });
            let Some(charger) = nearest.cloned() else {
                return;
            };
            taken.insert(charger.name.clone());
            let parameters = fms_msgs::server_to_robot::charge_parameters();
            let id = TaskId::new(format!("charge-{}-{now}", r.id)).unwrap_or_else(|_| {
                TaskId::new(format!("charge-{now}")).expect("a short ascii id is valid")
            });
            let task = Task {
                id: id.clone(),
                robot_id: Some(r.id.clone()),
                assigned_robot: None,
                goal: Goal::Pose(charger.pose.clone()),
                priority: Priority::High,
                timeout_s: None,
                parameters,
                status: TaskStatus::Queued,
                progress: 0.0,
                attempts: 0,
                max_attempts: self.params.max_attempts,
                retries: 1,
                failures: 0,
                location: Some(charger.name.clone()),
                idempotency_key: None,
                error: None,
                created_ms: now,
                updated_ms: now,
                history: vec![HistoryEntry {
                    status: TaskStatus::Queued,
                    at_ms: now,
                    robot_id: None,
                    note: Some(format!(
                        "battery {:.0}%: going to charger {}",
                        r.battery, charger.name
                    )),
                }],
            };
            fx.push(Effect::Persist(task.clone()));
            self.open.insert(id, task);
        }
    }

    /// Assigns queued tasks to available robots, and preempts for urgent ones if allowed.
    pub fn dispatch(&mut self, robots: &[RobotView], now: u64) -> Vec<Effect> {
        if self.fleet_estop {
            return Vec::new();
        }
        let busy: HashSet<&RobotId> = self
            .open
            .values()
            .filter(|t| matches!(t.status, TaskStatus::Assigned | TaskStatus::Active))
            .filter_map(|t| t.assigned_robot.as_ref())
            .collect();
        let min = self.params.min_battery;
        let candidates: Vec<Candidate> = robots
            .iter()
            .filter(|r| {
                r.online
                    && r.idle
                    && !self.stopped(r)
                    && r.current_task.is_none()
                    && !busy.contains(&r.id)
            })
            .filter(|r| {
                r.battery >= min
                    || self
                        .open
                        .values()
                        .any(|t| is_charge(t) && t.robot_id.as_ref() == Some(&r.id))
            })
            .map(|r| Candidate {
                id: r.id.clone(),
                x: r.x,
                y: r.y,
                battery: r.battery,
                low_battery: r.battery < min,
                legacy: r.legacy,
            })
            .collect();
        let mut queue: Vec<&Task> = self
            .open
            .values()
            .filter(|t| t.status == TaskStatus::Queued)
            .collect();
        queue.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_ms.cmp(&b.created_ms))
                .then(a.id.cmp(&b.id))
        });
        let legacy: HashSet<RobotId> = candidates
            .iter()
            .filter(|c| c.legacy)
            .map(|c| c.id.clone())
            .collect();
        let plan = dispatch::assign(&queue, candidates, is_charge, |t| {
            fms_msgs::legacy::check_task(&t.goal, &t.parameters).is_ok()
        });
        let assigned: HashSet<TaskId> = plan.iter().map(|(t, _)| t.clone()).collect();
        let waiting_urgent: Vec<TaskId> = queue
            .iter()
            .filter(|t| {
                t.priority == Priority::Urgent && !assigned.contains(&t.id) && t.robot_id.is_none()
            })
            .map(|t| t.id.clone())
            .collect();
        let mut fx = Vec::new();
        for (task_id, robot) in plan {
            let t = self.open.get_mut(&task_id).expect("planned task is open");
            t.assigned_robot = Some(robot.clone());
            t.attempts += 1;
            t.transition(TaskStatus::Assigned, now, None);
            fx.push(Effect::Persist(t.clone()));
            fx.push(Effect::SendTask(robot.clone(), t.command()));
            let retry = if legacy.contains(&robot) {
                self.legacy_retry(now)
            } else {
                self.retry(now)
            };
            self.task_sends.insert(task_id, retry);
        }
        if self.params.preempt {
            for _ in waiting_urgent {
                let victim = self
                    .open
                    .values()
                    .filter(|t| {
                        t.status == TaskStatus::Active
                            && t.priority == Priority::Low
                            && !is_charge(t)
                    })
                    .filter(|t| {
                        !self.preempting.contains(&t.id) && !self.cancels.contains_key(&t.id)
                    })
                    .min_by_key(|t| t.created_ms)
                    .map(|t| (t.id.clone(), t.assigned_robot.clone()));
                let Some((id, Some(robot))) = victim else {
                    break;
                };
                self.preempting.insert(id.clone());
                self.cancels.insert(id.clone(), self.retry(now));
                fx.push(Effect::SendCancel(
                    robot,
                    CancelCommand { task_id: Some(id) },
                ));
            }
        }
        order(fx)
    }
}
