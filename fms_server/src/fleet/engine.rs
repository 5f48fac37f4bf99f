//! The task engine: applies API requests, robot events, presence changes and ticks to the
//! open tasks and returns effects — store writes first, then commands. It resends commands
//! with backoff until robots acknowledge them, requeues tasks of lost robots, reconciles
//! what robots report with what it believes, and dispatches. Pure: `now` is passed in.

use std::collections::{HashMap, HashSet};

use fms_msgs::codec::JsonValue;
use fms_msgs::{CancelCommand, EstopCommand, Pose, RobotId, SystemEventKind, TaskCommand, TaskId};

use super::registry::PresenceChange;
use super::tasks::{HistoryEntry, NewTask, Task, TaskError, TaskStatus};
use crate::fleet::registry::Presence;
use crate::store::EventCursor;

/// The setting that persists the fleet e-stop.
pub const FLEET_ESTOP_SETTING: &str = "fleet_estop";

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    /// A robot below this battery percentage gets no new task (and goes to a charger, if any).
    pub min_battery: f64,
    /// Assignments allowed before a refused or abandoned task fails.
    pub max_attempts: u32,
    /// How long a robot may be OFFLINE before its task is requeued.
    pub offline_grace_ms: u64,
    /// First resend delay of an unacknowledged command; doubles up to `resend_max_ms`.
    pub resend_initial_ms: u64,
    pub resend_max_ms: u64,
    /// How long a robot may report something other than what the engine believes before
    /// the engine acts (resend the task, or cancel a stray one).
    pub reconcile_grace_ms: u64,
    /// Extra time past `timeout_s` before the server fails a task the robot did not end.
    pub timeout_grace_ms: u64,
    /// Let an urgent task preempt a running low-priority one when no robot is free.
    pub preempt: bool,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            min_battery: 20.0,
            max_attempts: 3,
            offline_grace_ms: 10_000,
            resend_initial_ms: 500,
            resend_max_ms: 8_000,
            reconcile_grace_ms: 3_000,
            timeout_grace_ms: 5_000,
            preempt: false,
        }
    }
}

/// A named place tasks may target; chargers are where low robots are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub name: String,
    pub pose: Pose,
    pub charger: bool,
}

/// A robot as the engine needs to see it (built from the registry by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct RobotView {
    pub id: RobotId,
    /// ONLINE with a state received.
    pub online: bool,
    /// Mode IDLE or CHARGING and no task reported.
    pub idle: bool,
    pub estopped: bool,
    pub charging: bool,
    pub battery: f64,
    pub x: f64,
    pub y: f64,
    /// The task the robot says it is executing.
    pub current_task: Option<TaskId>,
    /// Speaks the legacy protocol (the Python FMS's): one pose, no parameters, no e-stop,
    /// status reports instead of events.
    pub legacy: bool,
}

/// What the coordinator must do. Store writes (`Persist`, `Cursor`, `Setting`) are
/// committed together, before any send.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Persist(Task),
    Cursor(RobotId, EventCursor),
    Setting(String, JsonValue),
    SendTask(RobotId, TaskCommand),
    SendCancel(RobotId, CancelCommand),
    SendEstop(RobotId, EstopCommand),
    System(SystemEventKind),
}

impl Effect {
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Effect::Persist(_) | Effect::Cursor(..) | Effect::Setting(..)
        )
    }
}

/// A command awaiting acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    next_at: u64,
    backoff: u64,
}

/// Open tasks and everything needed to drive them to an end.
#[derive(Debug, Default)]
pub struct TaskEngine {
    params: EngineParams,
    chargers: Vec<Location>,
    open: HashMap<TaskId, Task>,
    cursors: HashMap<RobotId, EventCursor>,
    fleet_estop: bool,
    /// `cmd/task` sent, no event about the task from its robot yet.
    task_sends: HashMap<TaskId, Retry>,
    /// Cancel requested, the robot has not ended the task yet.
    cancels: HashMap<TaskId, Retry>,
    /// Canceled to make room for an urgent task: requeue instead of ending.
    preempting: HashSet<TaskId>,
    /// Robots running a task that is not theirs (any more).
    strays: HashMap<(RobotId, TaskId), Retry>,
    /// Robots that have not shown the fleet e-stop yet.
    estop_sends: HashMap<RobotId, Retry>,
    offline_since: HashMap<RobotId, u64>,
    /// ACTIVE tasks their robot does not report, since when.
    unreported_since: HashMap<TaskId, u64>,
    /// Robots e-stopped on their own (by an operator, or as they reported): no task is
    /// dispatched to them until they are released.
    robot_estops: HashSet<RobotId>,
    /// Robots back from OFFLINE: their next event may start a new epoch in any order
    /// (see [`events`]).
    new_session: HashSet<RobotId>,
    /// The last status report of each legacy robot since it (or the engine) started.
    legacy_last: HashMap<RobotId, crate::fleet::legacy::LegacyReport>,
}

fn is_charge(task: &Task) -> bool {
    fms_msgs::server_to_robot::is_charge(&task.parameters)
}

/// Persists first, keeping relative order.
fn order(fx: Vec<Effect>) -> Vec<Effect> {
    let (mut writes, rest): (Vec<_>, Vec<_>) = fx.into_iter().partition(Effect::is_write);
    writes.extend(rest);
    writes
}

impl TaskEngine {
    pub fn new(params: EngineParams, locations: &[Location]) -> Self {
        Self {
            params,
            chargers: locations.iter().filter(|l| l.charger).cloned().collect(),
            ..Self::default()
        }
    }

    /// Rebuilds the engine after a restart from what the store holds. Assigned tasks are
    /// resent at once; robots with tasks count as offline until they show up.
    pub fn restore(
        params: EngineParams,
        locations: &[Location],
        tasks: Vec<Task>,
        cursors: HashMap<RobotId, EventCursor>,
        fleet_estop: bool,
        now: u64,
    ) -> Self {
        let mut e = Self::new(params, locations);
        // A cursor no agent could have produced (a forged or clock-skewed event stored by an
        // older server) is dropped: the robot's next event sets it again.
        e.cursors = cursors
            .into_iter()
            .filter(|(_, c)| events::plausible(c.epoch, c.seq, now).is_ok())
            .collect();
        e.fleet_estop = fleet_estop;
        for t in tasks.into_iter().filter(|t| !t.status.is_terminal()) {
            if let Some(r) = &t.assigned_robot {
                e.offline_since.entry(r.clone()).or_insert(now);
            }
            if t.status == TaskStatus::Assigned {
                e.task_sends.insert(
                    t.id.clone(),
                    Retry {
                        next_at: now,
                        backoff: params.resend_initial_ms,
                    },
                );
            }
            e.open.insert(t.id.clone(), t);
        }
        e
    }

    /// Replaces all state with what the store holds, keeping the settings (after a failed
    /// commit, the store is the truth).
    pub fn reload(
        &mut self,
        tasks: Vec<Task>,
        cursors: HashMap<RobotId, EventCursor>,
        fleet_estop: bool,
        now: u64,
    ) {
        let chargers = std::mem::take(&mut self.chargers);
        *self = Self::restore(self.params, &chargers, tasks, cursors, fleet_estop, now);
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

    pub fn open_task(&self, id: &TaskId) -> Option<&Task> {
        self.open.get(id)
    }

    /// Whether `dispatch` could do anything: a task waits in the queue and the fleet is not
    /// e-stopped. Lets callers skip building the robot views (the whole fleet) for nothing.
    pub fn has_queued(&self) -> bool {
        !self.fleet_estop && self.open.values().any(|t| t.status == TaskStatus::Queued)
    }

    /// The open task a robot is working on (assigned or active).
    pub fn task_of(&self, robot: &RobotId) -> Option<&Task> {
        self.open.values().find(|t| {
            t.assigned_robot.as_ref() == Some(robot)
                && matches!(t.status, TaskStatus::Assigned | TaskStatus::Active)
        })
    }

    fn retry(&self, now: u64) -> Retry {
        Retry {
            next_at: now + self.params.resend_initial_ms,
            backoff: (self.params.resend_initial_ms * 2).min(self.params.resend_max_ms),
        }
    }

    /// True (and schedules the next one) when a resend is due.
    fn due(r: &mut Retry, now: u64, max: u64) -> bool {
        if now < r.next_at {
            return false;
        }
        r.next_at = now + r.backoff;
        r.backoff = (r.backoff * 2).min(max);
        true
    }

    fn forget(&mut self, id: &TaskId) {
        self.task_sends.remove(id);
        self.cancels.remove(id);
        self.preempting.remove(id);
        self.unreported_since.remove(id);
    }

    /// Ends an open task.
    fn finish(
        &mut self,
        id: &TaskId,
        to: TaskStatus,
        now: u64,
        note: Option<String>,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(mut t) = self.open.remove(id) {
            if to == TaskStatus::Completed {
                t.progress = 1.0;
            }
            if to == TaskStatus::Failed {
                t.error = note.clone();
            }
            t.transition(to, now, note);
            fx.push(Effect::Persist(t));
        }
        self.forget(id);
    }

    /// Puts an assigned or active task back in the queue, or fails it when its attempts are
    /// used up (`count_attempt` false: preemption, which is not the task's fault).
    fn requeue(
        &mut self,
        id: &TaskId,
        now: u64,
        note: String,
        count_attempt: bool,
        fx: &mut Vec<Effect>,
    ) {
        let Some(t) = self.open.get_mut(id) else {
            return;
        };
        if count_attempt && t.attempts >= t.max_attempts {
            let reason = format!("{note}; gave up after {} attempts", t.attempts);
            self.finish(id, TaskStatus::Failed, now, Some(reason), fx);
            return;
        }
        t.transition(TaskStatus::Queued, now, Some(note));
        t.assigned_robot = None;
        t.progress = 0.0;
        fx.push(Effect::Persist(t.clone()));
        self.forget(id);
    }

    /// Creates a task (QUEUED), then dispatches.
    pub fn create(
        &mut self,
        id: TaskId,
        new: NewTask,
        robots: &[RobotView],
        now: u64,
    ) -> Result<(Task, Vec<Effect>), TaskError> {
        check_new(&self.params, &new, robots, |rid| {
            self.task_of(rid).is_some() || self.robot_estops.contains(rid)
        })?;
        let mut task = new_task(&self.params, id.clone(), new, now);
        task.history[0].note = self.waiting_reason(&task, robots);
        self.open.insert(id.clone(), task.clone());
        let mut fx = vec![Effect::Persist(task)];
        fx.extend(self.dispatch(robots, now));
        // Dispatch assigns but never ends a task, so it is still open here.
        let task = self.open[&id].clone();
        Ok((task, order(fx)))
    }

    /// Why a new task cannot be dispatched at once, if an e-stop holds it back (shown in its
    /// history while it waits).
    fn waiting_reason(&self, task: &Task, robots: &[RobotView]) -> Option<String> {
        if self.fleet_estop {
            return Some("waiting: the fleet emergency stop is engaged".into());
        }
        let rid = task.robot_id.as_ref()?;
        let view = robots.iter().find(|r| &r.id == rid);
        (self.robot_estops.contains(rid) || view.is_some_and(|r| r.estopped)).then(|| {
            format!("waiting: robot {rid} is emergency-stopped; the task starts after its release")
        })
    }

    /// Whether a robot is e-stopped, as it reports or as the engine knows (an e-stop sent a
    /// moment ago shows in the robot's state only later).
    fn stopped(&self, r: &RobotView) -> bool {
        r.estopped || self.robot_estops.contains(&r.id)
    }

    /// Takes in an open task this engine does not know, created in the store by another
    /// replica (a follower). Returns whether it was new.
    pub fn adopt(&mut self, task: Task) -> bool {
        if task.status.is_terminal() || self.open.contains_key(&task.id) {
            return false;
        }
        self.open.insert(task.id.clone(), task);
        true
    }
}

/// Checks a new task against the robots: the requested robot must exist, be online,
/// charged and (unless it may queue) free; `has_task` says whether a robot has an open
/// task the caller knows of.
pub fn check_new(
    params: &EngineParams,
    new: &NewTask,
    robots: &[RobotView],
    has_task: impl Fn(&RobotId) -> bool,
) -> Result<(), TaskError> {
    if let Some(rid) = &new.robot_id {
        let r = robots
            .iter()
            .find(|r| &r.id == rid)
            .ok_or_else(|| TaskError::RobotNotFound(rid.clone()))?;
        if !r.online {
            return Err(TaskError::RobotOffline(rid.clone()));
        }
        if r.battery < params.min_battery {
            return Err(TaskError::LowBattery {
                robot: rid.clone(),
                battery: r.battery,
                min: params.min_battery,
            });
        }
        if r.legacy {
            fms_msgs::legacy::check_task(&new.goal, &new.parameters).map_err(|e| {
                TaskError::LegacyUnsupported {
                    robot: rid.clone(),
                    reason: e.to_string(),
                }
            })?;
        }
        if !new.queue_if_busy && (!r.idle || has_task(rid)) {
            return Err(TaskError::RobotBusy(rid.clone()));
        }
    }
    Ok(())
}

/// A new task, QUEUED at `now`.
pub fn new_task(params: &EngineParams, id: TaskId, new: NewTask, now: u64) -> Task {
    Task {
        id,
        robot_id: new.robot_id,
        assigned_robot: None,
        goal: new.goal,
        priority: new.priority,
        timeout_s: new.timeout_s,
        parameters: new.parameters,
        status: TaskStatus::Queued,
        progress: 0.0,
        attempts: 0,
        max_attempts: params.max_attempts,
        retries: new.retries,
        failures: 0,
        location: new.location,
        idempotency_key: new.idempotency_key,
        error: None,
        created_ms: now,
        updated_ms: now,
        history: vec![HistoryEntry {
            status: TaskStatus::Queued,
            at_ms: now,
            robot_id: None,
            note: None,
        }],
    }
}

impl TaskEngine {
    /// Cancels one task: a queued task ends at once; an assigned or active one is asked of
    /// its robot (resent until the robot ends it).
    pub fn cancel(&mut self, id: &TaskId, now: u64) -> Result<(Task, Vec<Effect>), TaskError> {
        let task = self
            .open
            .get(id)
            .ok_or_else(|| TaskError::TaskNotFound(id.clone()))?;
        match task.status {
            TaskStatus::Queued => {
                let mut fx = Vec::new();
                self.finish(
                    id,
                    TaskStatus::Canceled,
                    now,
                    Some("canceled before dispatch".into()),
                    &mut fx,
                );
                let Some(Effect::Persist(t)) = fx.first().cloned() else {
                    unreachable!("finish persists the task")
                };
                Ok((t, fx))
            }
            TaskStatus::Assigned | TaskStatus::Active => {
                let robot = task
                    .assigned_robot
                    .clone()
                    .expect("an assigned task has a robot");
                let task = task.clone();
                self.preempting.remove(id);
                self.cancels.insert(id.clone(), self.retry(now));
                let cmd = CancelCommand {
                    task_id: Some(id.clone()),
                };
                Ok((task, vec![Effect::SendCancel(robot, cmd)]))
            }
            status => Err(TaskError::InvalidState {
                id: id.clone(),
                status,
                action: "cancel".into(),
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

    /// Engages or releases the fleet e-stop (persisted) for every known robot.
    pub fn set_fleet_estop(&mut self, engage: bool, robots: &[RobotView], now: u64) -> Vec<Effect> {
        self.fleet_estop = engage;
        self.estop_sends.clear();
        if !engage {
            // A release releases every robot (agents hold one e-stop, whoever engaged it).
            self.robot_estops.clear();
        }
        let mut fx = vec![Effect::Setting(
            FLEET_ESTOP_SETTING.into(),
            JsonValue::Bool(engage),
        )];
        for r in robots {
            fx.push(Effect::SendEstop(r.id.clone(), fleet_estop_cmd(engage)));
            if engage {
                self.estop_sends.insert(r.id.clone(), self.retry(now));
            }
        }
        fx.push(Effect::System(SystemEventKind::Estop {
            robot_id: None,
            engaged: engage,
        }));
        if !engage {
            fx.extend(self.dispatch(robots, now));
        }
        order(fx)
    }

    /// Engages or releases one robot's e-stop. A robot cannot be released while the
    /// fleet e-stop holds.
    pub fn set_robot_estop(
        &mut self,
        robot: &RobotId,
        engage: bool,
    ) -> Result<Vec<Effect>, TaskError> {
        if !engage && self.fleet_estop {
            return Err(TaskError::FleetEstopEngaged);
        }
        if engage {
            self.robot_estops.insert(robot.clone());
        } else {
            self.robot_estops.remove(robot);
            self.estop_sends.remove(robot);
        }
        Ok(vec![
            Effect::SendEstop(robot.clone(), robot_estop_cmd(engage)),
            Effect::System(SystemEventKind::Estop {
                robot_id: Some(robot.clone()),
                engaged: engage,
            }),
        ])
    }

    /// A robot's presence changed.
    pub fn on_presence(&mut self, change: &PresenceChange, now: u64) -> Vec<Effect> {
        let robot = &change.robot_id;
        let mut fx = Vec::new();
        match change.to {
            Presence::Offline => {
                self.offline_since.entry(robot.clone()).or_insert(now);
            }
            Presence::Online => {
                self.offline_since.remove(robot);
                if change.from != Some(Presence::Stale) {
                    self.new_session.insert(robot.clone());
                    // A legacy robot back from OFFLINE may have said things nobody heard.
                    self.legacy_last.remove(robot);
                }
                if self.fleet_estop {
                    fx.push(Effect::SendEstop(robot.clone(), fleet_estop_cmd(true)));
                    self.estop_sends.insert(robot.clone(), self.retry(now));
                } else if self.robot_estops.contains(robot) {
                    // An operator's e-stop outlives an agent restart.
                    fx.push(Effect::SendEstop(robot.clone(), robot_estop_cmd(true)));
                }
            }
            Presence::Stale => {}
        }
        fx
    }
}

/// The command of the fleet e-stop (engage or release).
pub fn fleet_estop_cmd(engage: bool) -> EstopCommand {
    EstopCommand {
        engage,
        reason: Some("fleet emergency stop".into()),
    }
}

/// The command of one robot's e-stop (engage or release).
pub fn robot_estop_cmd(engage: bool) -> EstopCommand {
    EstopCommand {
        engage,
        reason: Some("operator emergency stop".into()),
    }
}

mod events;
mod legacy;
mod upkeep;

pub use events::{plausible, Implausible, Refused, EPOCH_AHEAD_MARGIN_MS};

#[cfg(test)]
mod props;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_legacy;
