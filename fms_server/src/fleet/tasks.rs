//! The task lifecycle (QUEUED -> ASSIGNED -> ACTIVE -> COMPLETED | FAILED | CANCELED) and the
//! engine that applies API requests and robot events to open tasks, returning effects.

use std::collections::HashMap;

use fms_msgs::codec::JsonMap;
use fms_msgs::{
    CancelCommand, EstopCommand, EventKind, Goal, Priority, RobotEvent, RobotId, SystemEventKind,
    TaskCommand, TaskId,
};
use serde::{Deserialize, Serialize};

use super::dispatch::{self, Candidate};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Queued,
    Assigned,
    Active,
    Completed,
    Failed,
    Canceled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Queued,
        TaskStatus::Assigned,
        TaskStatus::Active,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Canceled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Canceled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "QUEUED",
            TaskStatus::Assigned => "ASSIGNED",
            TaskStatus::Active => "ACTIVE",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Canceled => "CANCELED",
        }
    }

    /// The lifecycle's allowed moves.
    pub fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Queued, Assigned | Canceled | Failed)
                | (Assigned, Queued | Active | Completed | Failed | Canceled)
                | (Active, Completed | Failed | Canceled)
        )
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// One entry of a task's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: TaskStatus,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_id: Option<RobotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A task as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    /// The robot the client asked for, if any.
    pub robot_id: Option<RobotId>,
    /// The robot the task is (or was last) assigned to.
    pub assigned_robot: Option<RobotId>,
    pub goal: Goal,
    pub priority: Priority,
    pub timeout_s: Option<f64>,
    pub parameters: JsonMap,
    pub status: TaskStatus,
    pub progress: f64,
    /// Times the task was assigned to a robot.
    pub attempts: u32,
    /// Assignments allowed before a refused or abandoned task fails.
    pub max_attempts: u32,
    /// Navigation failures retried before the task fails.
    pub retries: u32,
    /// Navigation failures so far.
    pub failures: u32,
    /// The named location the task targets, if it was given by name.
    pub location: Option<String>,
    /// The client's `Idempotency-Key`, if any: the same key never creates a second task.
    pub idempotency_key: Option<String>,
    pub error: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub history: Vec<HistoryEntry>,
}

/// A validated request for a new task.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub robot_id: Option<RobotId>,
    pub goal: Goal,
    pub priority: Priority,
    pub timeout_s: Option<f64>,
    pub parameters: JsonMap,
    /// With a `robot_id`: queue behind the robot's current task instead of answering ROBOT_BUSY.
    pub queue_if_busy: bool,
}

/// Why the engine refused a request. Each maps to one API error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    #[error("robot {0} is not known")]
    RobotNotFound(RobotId),
    #[error("task {0} is not known")]
    TaskNotFound(TaskId),
    #[error("robot {0} is offline")]
    RobotOffline(RobotId),
    #[error("robot {0} is busy")]
    RobotBusy(RobotId),
    #[error("robot {robot} battery {battery:.0}% is below the {min:.0}% minimum")]
    LowBattery {
        robot: RobotId,
        battery: f64,
        min: f64,
    },
    #[error("task {id} is {status:?}; cannot {action}")]
    InvalidState {
        id: TaskId,
        status: TaskStatus,
        action: &'static str,
    },
}

/// What the coordinator must do after the engine decided something. `Persist` effects come
/// first in every list: a change is stored before it is sent or acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Persist(Task),
    SendTask(RobotId, TaskCommand),
    SendCancel(RobotId, CancelCommand),
    SendEstop(RobotId, EstopCommand),
    System(SystemEventKind),
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    /// A robot below this battery percentage gets no new task.
    pub min_battery: f64,
    /// A task refused this many times fails.
    pub max_attempts: u32,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            min_battery: 20.0,
            max_attempts: 3,
        }
    }
}

/// A robot as the engine needs to see it (built from the registry by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct RobotView {
    pub id: RobotId,
    pub online: bool,
    pub idle: bool,
    pub estopped: bool,
    pub battery: f64,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventCursor {
    epoch: u64,
    seq: u64,
}

/// Open tasks and the bookkeeping around them.
#[derive(Debug, Default)]
pub struct TaskEngine {
    params: EngineParams,
    open: HashMap<TaskId, Task>,
    cursors: HashMap<RobotId, EventCursor>,
    fleet_estop: bool,
}

fn transition(task: &mut Task, to: TaskStatus, now: u64, note: Option<String>) {
    debug_assert!(task.status.can_become(to), "{:?} -> {to:?}", task.status);
    task.status = to;
    task.updated_ms = now;
    task.history.push(HistoryEntry {
        status: to,
        at_ms: now,
        robot_id: task.assigned_robot.clone(),
        note,
    });
}

impl TaskEngine {
    pub fn new(params: EngineParams) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    pub fn fleet_estop(&self) -> bool {
        self.fleet_estop
    }

    pub fn open_tasks(&self) -> impl Iterator<Item = &Task> {
        self.open.values()
    }

    /// The open task a robot is working on (assigned or active).
    pub fn task_of(&self, robot: &RobotId) -> Option<&Task> {
        self.open.values().find(|t| {
            t.assigned_robot.as_ref() == Some(robot)
                && matches!(t.status, TaskStatus::Assigned | TaskStatus::Active)
        })
    }

    /// Creates a task (QUEUED), then dispatches.
    pub fn create(
        &mut self,
        id: TaskId,
        new: NewTask,
        robots: &[RobotView],
        now: u64,
    ) -> Result<(Task, Vec<Effect>), TaskError> {
        if let Some(rid) = &new.robot_id {
            let r = robots
                .iter()
                .find(|r| &r.id == rid)
                .ok_or_else(|| TaskError::RobotNotFound(rid.clone()))?;
            if !r.online {
                return Err(TaskError::RobotOffline(rid.clone()));
            }
            if r.battery < self.params.min_battery {
                return Err(TaskError::LowBattery {
                    robot: rid.clone(),
                    battery: r.battery,
                    min: self.params.min_battery,
                });
            }
            if !new.queue_if_busy && (!r.idle || self.task_of(rid).is_some()) {
                return Err(TaskError::RobotBusy(rid.clone()));
            }
        }
        let task = Task {
            id: id.clone(),
            robot_id: new.robot_id,
            assigned_robot: None,
            goal: new.goal,
            priority: new.priority,
            timeout_s: new.timeout_s,
            parameters: new.parameters,
            status: TaskStatus::Queued,
            progress: 0.0,
            attempts: 0,
            max_attempts: self.params.max_attempts,
            retries: 0,
            failures: 0,
            location: None,
            idempotency_key: None,
            error: None,
            created_ms: now,
            updated_ms: now,
            history: vec![HistoryEntry {
                status: TaskStatus::Queued,
                at_ms: now,
                robot_id: None,
                note: None,
            }],
        };
        self.open.insert(id.clone(), task);
        let mut fx = vec![Effect::Persist(self.open[&id].clone())];
        fx.extend(self.dispatch(robots, now));
        // Dispatch assigns but never finishes a task, so it is still open here.
        let task = self.open[&id].clone();
        Ok((task, order(fx)))
    }

    /// Cancels one task: a queued task ends at once; an assigned or active one is asked
    /// of its robot and ends when the robot reports it canceled.
    pub fn cancel(&mut self, id: &TaskId, now: u64) -> Result<(Task, Vec<Effect>), TaskError> {
        let task = self
            .open
            .get_mut(id)
            .ok_or_else(|| TaskError::TaskNotFound(id.clone()))?;
        match task.status {
            TaskStatus::Queued => {
                transition(
                    task,
                    TaskStatus::Canceled,
                    now,
                    Some("canceled before dispatch".into()),
                );
                let task = self.open.remove(id).expect("present");
                Ok((task.clone(), vec![Effect::Persist(task)]))
            }
            TaskStatus::Assigned | TaskStatus::Active => {
                let robot = task
                    .assigned_robot
                    .clone()
                    .expect("assigned task has a robot");
                let cmd = CancelCommand {
                    task_id: Some(id.clone()),
                };
                Ok((task.clone(), vec![Effect::SendCancel(robot, cmd)]))
            }
            status => Err(TaskError::InvalidState {
                id: id.clone(),
                status,
                action: "cancel",
            }),
        }
    }

    /// Cancels whatever the robot is doing.
    pub fn cancel_robot(&mut self, robot: &RobotId, now: u64) -> Result<Vec<Effect>, TaskError> {
        match self.task_of(robot).map(|t| t.id.clone()) {
            Some(id) => self.cancel(&id, now).map(|(_, fx)| fx),
            None => Ok(vec![Effect::SendCancel(
                robot.clone(),
                CancelCommand { task_id: None },
            )]),
        }
    }

    /// Engages or releases the fleet e-stop for every known robot.
    pub fn set_fleet_estop(&mut self, engage: bool, robots: &[RobotView], now: u64) -> Vec<Effect> {
        self.fleet_estop = engage;
        let mut fx: Vec<Effect> = robots
            .iter()
            .map(|r| {
                Effect::SendEstop(
                    r.id.clone(),
                    EstopCommand {
                        engage,
                        reason: Some("fleet emergency stop".into()),
                    },
                )
            })
            .collect();
        fx.push(Effect::System(SystemEventKind::Estop {
            robot_id: None,
            engaged: engage,
        }));
        if !engage {
            fx.extend(self.dispatch(robots, now));
        }
        order(fx)
    }

    /// Engages or releases one robot's e-stop.
    pub fn set_robot_estop(&mut self, robot: &RobotId, engage: bool) -> Vec<Effect> {
        vec![
            Effect::SendEstop(
                robot.clone(),
                EstopCommand {
                    engage,
                    reason: Some("operator emergency stop".into()),
                },
            ),
            Effect::System(SystemEventKind::Estop {
                robot_id: Some(robot.clone()),
                engaged: engage,
            }),
        ]
    }

    /// A robot came online: re-assert the fleet e-stop on it if engaged.
    pub fn on_robot_online(&mut self, robot: &RobotId) -> Vec<Effect> {
        if self.fleet_estop {
            vec![Effect::SendEstop(
                robot.clone(),
                EstopCommand {
                    engage: true,
                    reason: Some("fleet emergency stop".into()),
                },
            )]
        } else {
            Vec::new()
        }
    }

    /// A robot event. Each `(epoch, seq)` is applied once; duplicates and stale epochs are
    /// ignored (returns `None`).
    pub fn on_event(&mut self, robot: &RobotId, ev: &RobotEvent, now: u64) -> Option<Vec<Effect>> {
        let cur = self.cursors.get(robot).copied();
        let fresh = match cur {
            None => true,
            Some(c) => ev.epoch > c.epoch || (ev.epoch == c.epoch && ev.seq > c.seq),
        };
        if !fresh {
            return None;
        }
        self.cursors.insert(
            robot.clone(),
            EventCursor {
                epoch: ev.epoch,
                seq: ev.seq,
            },
        );
        let mut fx = Vec::new();
        // Events without a task (errors, e-stop) show in the robot's state; no task changes.
        let Some(task_id) = ev.event.task_id() else {
            return Some(fx);
        };
        let Some(task) = self.open.get_mut(task_id) else {
            return Some(fx); // finished or unknown: an echo of a replay
        };
        if task.assigned_robot.as_ref() != Some(robot) {
            return Some(fx);
        }
        let target = match &ev.event {
            EventKind::TaskAccepted { .. } => None,
            EventKind::TaskStarted { .. } => Some((TaskStatus::Active, None)),
            EventKind::TaskProgress { progress, .. } => {
                if progress.is_finite() && *progress > task.progress {
                    task.progress = progress.min(1.0);
                    task.updated_ms = now;
                    fx.push(Effect::Persist(task.clone()));
                }
                None
            }
            EventKind::TaskCompleted { .. } => Some((TaskStatus::Completed, None)),
            EventKind::TaskFailed { reason, .. } => {
                Some((TaskStatus::Failed, Some(reason.clone())))
            }
            EventKind::TaskCanceled { .. } => Some((TaskStatus::Canceled, None)),
            EventKind::TaskRejected { reason, .. } => {
                if task.attempts >= self.params.max_attempts {
                    Some((
                        TaskStatus::Failed,
                        Some(format!("rejected {} times; last: {reason}", task.attempts)),
                    ))
                } else {
                    Some((
                        TaskStatus::Queued,
                        Some(format!("rejected by robot: {reason}")),
                    ))
                }
            }
            EventKind::Error { .. } | EventKind::EstopEngaged { .. } | EventKind::EstopReleased => {
                None
            }
        };
        if let Some((to, note)) = target {
            if task.status == to || !task.status.can_become(to) {
                return Some(fx);
            }
            if to == TaskStatus::Completed {
                task.progress = 1.0;
            }
            if matches!(to, TaskStatus::Failed) {
                task.error = note.clone();
            }
            if to == TaskStatus::Queued {
                task.assigned_robot = None;
            }
            transition(task, to, now, note);
            fx.push(Effect::Persist(task.clone()));
            if to.is_terminal() {
                self.open.remove(task_id);
            }
        }
        Some(fx)
    }

    /// Assigns queued tasks to available robots; returns persist + send effects.
    pub fn dispatch(&mut self, robots: &[RobotView], now: u64) -> Vec<Effect> {
        if self.fleet_estop {
            return Vec::new();
        }
        let busy: Vec<&RobotId> = self
            .open
            .values()
            .filter(|t| matches!(t.status, TaskStatus::Assigned | TaskStatus::Active))
            .filter_map(|t| t.assigned_robot.as_ref())
            .collect();
        let candidates: Vec<Candidate> = robots
            .iter()
            .filter(|r| r.online && r.idle && !r.estopped && r.battery >= self.params.min_battery)
            .filter(|r| !busy.contains(&&r.id))
            .map(|r| Candidate {
                id: r.id.clone(),
                x: r.x,
                y: r.y,
                battery: r.battery,
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
        let plan = dispatch::assign(&queue, candidates);
        let mut fx = Vec::new();
        for (task_id, robot) in plan {
            let task = self.open.get_mut(&task_id).expect("planned task is open");
            task.assigned_robot = Some(robot.clone());
            task.attempts += 1;
            transition(task, TaskStatus::Assigned, now, None);
            fx.push(Effect::Persist(task.clone()));
            fx.push(Effect::SendTask(
                robot,
                TaskCommand {
                    task_id: task.id.clone(),
                    goal: task.goal.clone(),
                    priority: task.priority,
                    timeout_s: task.timeout_s,
                    parameters: task.parameters.clone(),
                },
            ));
        }
        order(fx)
    }
}

/// Puts every `Persist` first, keeping the relative order within each group.
fn order(fx: Vec<Effect>) -> Vec<Effect> {
    let (mut persist, rest): (Vec<_>, Vec<_>) = fx
        .into_iter()
        .partition(|e| matches!(e, Effect::Persist(_)));
    persist.extend(rest);
    persist
}

#[cfg(test)]
mod tests;
