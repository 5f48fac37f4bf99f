//! Owns the task engine. Turns API requests, robot events, presence changes and ticks into
//! engine calls, then carries out the effects in order: store first, then Zenoh commands
//! and live updates.
//!
//! Among replicas (`[replicas]`), only the one holding the dispatch lease runs the engine
//! and sends commands, writing under its fence (`replica`); leadership arrives as
//! [`Request::Leadership`] messages. A follower's share of the work is its own type
//! (`follower`): it creates tasks straight in the store, leaves cancels and e-stops there
//! as requests for the leader (`forwarded`), and relays the leader's task changes.

use std::sync::Arc;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::keys;
use fms_msgs::{encode, unix_ms, RobotId, SystemEvent, SystemEventKind, TaskId};
use tokio::sync::mpsc;

use crate::fleet::engine::{Effect, Refused, RobotView, TaskEngine, FLEET_ESTOP_SETTING};
use crate::fleet::registry::{Presence, PresenceChange};
use crate::fleet::tasks::{NewTask, Task, TaskError};
use crate::hub::LiveMessage;
use crate::leader::Leadership;
use crate::log_gate::{LogGate, LOG_EVERY_MS};
use crate::state::ServerState;
use crate::store::{AuditEntry, Store, StoreError, Write, WriteBatch};

mod dialect;
mod follower;
mod forwarded;
mod replica;
mod request;
mod safety;

use dialect::{Command, Outbox};
use follower::Follower;
use forwarded::{answer, ReplicaAnswer};
use replica::Replica;

pub use request::{CoordError, CoordinatorHandle, Created, Request};
pub use safety::EstopDone;
use safety::Unpersisted;

/// A message for one robot (or the system key), to be published on Zenoh.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
}

pub struct Coordinator {
    engine: TaskEngine,
    shared: Arc<ServerState>,
    outbox: Outbox,
    rx: mpsc::UnboundedReceiver<Request>,
    /// `None`: the only server, always leading. `Some`: one of several replicas.
    replica: Option<Replica>,
    /// The last commit failed (an outage is logged when it starts and ends, not per write).
    store_failing: bool,
    /// E-stops and releases sent to robots whose writes the store refused: retried every
    /// tick, their commands re-sent, until they commit.
    unpersisted: Unpersisted,
    /// Robot events refused as implausible, logged once per robot and minute.
    implausible_log: LogGate,
    /// Presence changes of unconfirmed robot ids, logged once per id and minute.
    unknown_log: LogGate,
}

impl Coordinator {
    /// `replica`: this server's lease among several replicas (`None`: the only server).
    /// A replica starts as a follower with an empty engine; it loads the store when elected.
    pub fn new(
        engine: TaskEngine,
        shared: Arc<ServerState>,
        out: mpsc::UnboundedSender<Outgoing>,
        replica: Option<Arc<Leadership>>,
    ) -> (Self, CoordinatorHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        if replica.is_none() {
            shared.metrics.set_leader(Some(0));
        }
        let outbox = Outbox::new(out, shared.clone());
        let replica = replica.map(|leadership| Replica {
            leadership,
            term: None,
            follower: Follower::new(shared.clone(), outbox.clone()),
        });
        let me = Self {
            engine,
            shared,
            outbox,
            rx,
            replica,
            store_failing: false,
            unpersisted: Unpersisted::default(),
            implausible_log: LogGate::new(LOG_EVERY_MS),
            unknown_log: LogGate::new(LOG_EVERY_MS),
        };
        (me, CoordinatorHandle::new(tx))
    }

    /// Serves requests until every handle is dropped.
    pub async fn run(mut self) {
        while let Some(req) = self.rx.recv().await {
            self.handle(req).await;
        }
    }

    fn views(&self) -> Vec<RobotView> {
        self.shared.robot_views()
    }

    /// The lease term this replica leads in (replicas only).
    fn term(&self) -> Option<u64> {
        self.replica.as_ref().and_then(|r| r.term)
    }

    /// Whether this server runs the engine: the only server, or the replica in its term.
    fn leading(&self) -> bool {
        self.replica.is_none() || self.term().is_some()
    }

    async fn handle(&mut self, req: Request) {
        let now = unix_ms();
        if let Request::Leadership(t) = req {
            self.on_transition(t, now).await;
            return;
        }
        if matches!(req, Request::Tick) && self.term().is_some() && !self.may_send() {
            // The lease loop may be stuck on an unreachable database: do not wait for it.
            self.step_down(now, "the lease ran out before it could be renewed");
        }
        if let Some(r) = self.replica.as_mut().filter(|r| r.term.is_none()) {
            r.follower.handle(req, now, self.engine.params()).await;
            return;
        }
        match req {
            Request::CreateTask {
                id,
                new,
                actor,
                reply,
            } => {
                let _ = reply.send(self.create(id, new, now, actor).await);
            }
            Request::TeleopLease { robot, operator } => {
                let entry = Write::Audit(AuditEntry {
                    at_ms: now,
                    actor: operator.clone().unwrap_or_else(|| "robot".into()),
                    action: if operator.is_some() {
                        "teleop.lease".into()
                    } else {
                        "teleop.lease_end".into()
                    },
                    robot_id: Some(robot),
                    task_id: None,
                    detail: JsonValue::Null,
                });
                self.apply_logged(Vec::new(), vec![entry]).await;
            }
            Request::CancelTask { id, actor, reply } => {
                let _ = reply.send(self.cancel_task(id, &actor, now, None).await);
            }
            Request::CancelRobot {
                robot,
                actor,
                reply,
            } => {
                let _ = reply.send(self.cancel_robot(robot, &actor, now, None).await);
            }
            Request::FleetEstop {
                engage,
                actor,
                reply,
            } => {
                let _ = reply.send(self.fleet_estop(engage, &actor, now, None).await);
            }
            Request::RobotEstop {
                robot,
                engage,
                actor,
                reply,
            } => {
                let _ = reply.send(self.robot_estop(robot, engage, &actor, now, None).await);
            }
            Request::RobotEvent { robot, event } => match self.engine.on_event(&robot, &event, now)
            {
                Ok(fx) => {
                    self.apply_logged(fx, Vec::new()).await;
                    self.dispatch(now).await;
                }
                Err(Refused::Duplicate) => self.shared.metrics.duplicate_event(),
                Err(Refused::Implausible(why)) => {
                    self.shared.metrics.implausible_event();
                    if self.implausible_log.allow(robot.as_str(), now) {
                        tracing::warn!(robot_id = %robot, "robot event refused (not stored): {why}; is the robot's clock right? (logged once a minute per robot)");
                    }
                }
            },
            Request::LegacyStatus { robot, report } => {
                match self.engine.on_legacy_status(&robot, report, now) {
                    Ok(fx) => {
                        self.apply_logged(fx, Vec::new()).await;
                        self.dispatch(now).await;
                    }
                    Err(_) => self.shared.metrics.duplicate_event(),
                }
            }
            Request::Presence(change) => {
                let kind = presence_event(&change);
                self.log_presence(&change, now);
                let mut fx = vec![Effect::System(kind)];
                fx.extend(self.engine.on_presence(&change, now));
                let seen = Write::Robot {
                    id: change.robot_id.clone(),
                    at_ms: now,
                    name: None,
                    model: None,
                };
                self.apply_logged(fx, vec![seen]).await;
                self.dispatch(now).await;
            }
            Request::Tick => {
                self.retry_unpersisted(now).await;
                if self.replica.is_some() {
                    self.take_in(now).await;
                }
                if self.leading() {
                    let views = self.views();
                    let fx = self.engine.tick(&views, now);
                    self.apply_logged(fx, Vec::new()).await;
                }
            }
            Request::Leadership(_) => unreachable!("handled above"),
        }
    }

    // --- Commands (the leader, or the only server) ----------------------------------------

    async fn cancel_task(
        &mut self,
        id: TaskId,
        actor: &str,
        now: u64,
        done: Option<u64>,
    ) -> Result<Task, CoordError> {
        let mut extra = vec![audit(now, actor, "task.cancel", None, Some(&id))];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: 1 })));
        match self.engine.cancel(&id, now) {
            Ok((task, fx)) => self.apply(fx, extra).await.map(|_| task),
            Err(TaskError::TaskNotFound(id)) => self.finished_task(id).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn cancel_robot(
        &mut self,
        robot: RobotId,
        actor: &str,
        now: u64,
        done: Option<u64>,
    ) -> Result<(), CoordError> {
        let mut extra = vec![audit(now, actor, "robot.cancel", Some(&robot), None)];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: 1 })));
        match self.engine.cancel_robot(&robot, now) {
            Ok(fx) => self.apply(fx, extra).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn fleet_estop(
        &mut self,
        engage: bool,
        actor: &str,
        now: u64,
        done: Option<u64>,
    ) -> Result<EstopDone, CoordError> {
        let views = self.views();
        let action = if engage {
            "fleet.estop"
        } else {
            "fleet.release"
        };
        let mut extra = vec![audit(now, actor, action, None, None)];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: views.len() })));
        let fx = self.engine.set_fleet_estop(engage, &views, now);
        self.shared.set_fleet_estop(engage);
        let warning = self.apply_estop(fx, extra, now).await?;
        Ok(EstopDone {
            robots: views.len(),
            warning,
        })
    }

    async fn robot_estop(
        &mut self,
        robot: RobotId,
        engage: bool,
        actor: &str,
        now: u64,
        done: Option<u64>,
    ) -> Result<EstopDone, CoordError> {
        let action = if engage {
            "robot.estop"
        } else {
            "robot.release"
        };
        let mut extra = vec![audit(now, actor, action, Some(&robot), None)];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: 1 })));
        let fx = self.engine.set_robot_estop(&robot, engage)?;
        let warning = self.apply_estop(fx, extra, now).await?;
        Ok(EstopDone { robots: 1, warning })
    }

    async fn create(
        &mut self,
        id: TaskId,
        new: NewTask,
        now: u64,
        actor: String,
    ) -> Result<Created, CoordError> {
        if let Some(created) = replay(&*self.shared.store, &new).await? {
            return Ok(created);
        }
        let views = self.views();
        let (task, fx) = self.engine.create(id, new, &views, now)?;
        self.apply(fx, vec![create_audit(now, actor, &task)])
            .await?;
        Ok(Created {
            task,
            replayed: false,
        })
    }

    /// A cancel for a task that is no longer open: finished tasks answer INVALID_STATE.
    async fn finished_task(&self, id: TaskId) -> Result<Task, CoordError> {
        match self.shared.store.get_task(&id).await? {
            Some(t) => Err(TaskError::InvalidState {
                id,
                status: t.status,
                action: "cancel".into(),
            }
            .into()),
            None => Err(TaskError::TaskNotFound(id).into()),
        }
    }

    async fn dispatch(&mut self, now: u64) {
        if !self.engine.has_queued() {
            return;
        }
        let views = self.views();
        let fx = self.engine.dispatch(&views, now);
        self.apply_logged(fx, Vec::new()).await;
    }

    async fn apply_logged(&mut self, fx: Vec<Effect>, extra: Vec<Write>) {
        let failing_before = self.store_failing;
        match self.apply(fx, extra).await {
            Ok(()) | Err(CoordError::NotLeader) => {}
            Err(CoordError::Store(e)) if failing_before => {
                tracing::debug!("could not apply task changes: {e}")
            }
            Err(e) => tracing::error!(
                "could not apply task changes: {e} (while the store keeps failing, repeats are logged at debug level)"
            ),
        }
    }

    /// Carries out effects: first every store write, in one transaction (under the lease's
    /// fence among replicas), then the sends and live updates. If the commit fails nothing
    /// is sent.
    async fn apply(&mut self, fx: Vec<Effect>, extra: Vec<Write>) -> Result<(), CoordError> {
        let mut batch = WriteBatch {
            fence: self.fence()?,
            ..WriteBatch::default()
        };
        for effect in &fx {
            match effect {
                Effect::Persist(task) => batch.push(Write::Task(task.clone())),
                Effect::Cursor(robot, cursor) => batch.push(Write::Cursor {
                    robot: robot.clone(),
                    cursor: *cursor,
                }),
                Effect::Setting(key, value) => batch.push(Write::Setting {
                    key: key.clone(),
                    value: value.clone(),
                }),
                _ => {}
            }
        }
        batch.writes.extend(extra);
        if !batch.is_empty() {
            let committed = self.shared.store.commit(&batch).await;
            if committed.is_ok() && self.store_failing {
                tracing::info!("the store accepts writes again");
            }
            self.store_failing = committed.is_err();
            match committed {
                Ok(()) => {}
                Err(StoreError::Fenced(token)) => {
                    self.step_down(unix_ms(), &format!("write fenced off (token {token})"));
                    return Err(CoordError::NotLeader);
                }
                Err(e) => {
                    // The engine already moved on; bring it back to what the store holds.
                    self.resync().await;
                    return Err(e.into());
                }
            }
        }
        for effect in fx {
            match effect {
                Effect::Persist(task) => {
                    self.shared.metrics.task_outcome(task.status);
                    let robot = task.assigned_robot.as_ref().or(task.robot_id.as_ref());
                    self.shared
                        .hub
                        .publish(robot, &LiveMessage::TaskUpdate { task: &task });
                }
                Effect::SendTask(robot, cmd) => {
                    tracing::info!(robot_id = %robot, task_id = %cmd.task_id, "task sent");
                    self.send_command(&robot, Command::Task(&cmd), false);
                }
                Effect::SendCancel(robot, cmd) => {
                    self.send_command(&robot, Command::Cancel(&cmd), false);
                }
                Effect::SendEstop(robot, cmd) => {
                    self.send_command(&robot, Command::Estop(&cmd), false);
                }
                Effect::Cursor(..) | Effect::Setting(..) => {}
                Effect::System(kind) => self.system_event(kind),
            }
        }
        Ok(())
    }

    /// Rebuilds the engine from the store (after a failed commit).
    async fn resync(&mut self) {
        let store = &self.shared.store;
        let loaded = async {
            let open = store.open_tasks().await?;
            let cursors = store.cursors().await?;
            let estop = store
                .setting(FLEET_ESTOP_SETTING)
                .await?
                .and_then(|v| v.as_bool());
            Ok::<_, StoreError>((open, cursors, estop.unwrap_or(false)))
        };
        match loaded.await {
            Ok((open, cursors, estop)) => {
                // An e-stop or release the store has not taken yet still holds.
                let estop = self.unpersisted.fleet_estop().unwrap_or(estop);
                self.engine.reload(open, cursors, estop, unix_ms());
                self.shared.set_fleet_estop(estop);
                tracing::warn!("task engine reloaded from the store after a failed write");
            }
            Err(e) if self.store_failing => {
                tracing::debug!("store unreachable; engine may be ahead of it: {e}")
            }
            Err(e) => tracing::error!("store unreachable; engine may be ahead of it: {e}"),
        }
    }

    /// Logs a presence change: always for confirmed robots, once per id and minute for ids
    /// heard of only briefly (anyone can publish under any id).
    fn log_presence(&mut self, change: &PresenceChange, now: u64) {
        let id = &change.robot_id;
        if self.shared.registry().is_confirmed(id) {
            tracing::info!(robot_id = %id, from = ?change.from, to = ?change.to, "presence");
        } else if self.unknown_log.allow(id.as_str(), now) {
            tracing::info!(robot_id = %id, from = ?change.from, to = ?change.to, "presence of an unconfirmed robot id (no liveliness token, heard of only briefly; logged once a minute per id)");
        } else {
            tracing::debug!(robot_id = %id, from = ?change.from, to = ?change.to, "presence");
        }
    }

    /// Tells live clients and Zenoh subscribers about a fleet event.
    fn system_event(&self, kind: SystemEventKind) {
        let event = SystemEvent {
            stamp_ms: unix_ms(),
            kind,
        };
        self.shared
            .hub
            .publish(None, &LiveMessage::SystemEvent { event: &event });
        let msg = Outgoing {
            key: keys::SYSTEM_EVENT.to_owned(),
            payload: encode(&event),
        };
        self.send_message(msg, false);
    }

    /// Publishes a command in the robot's protocol; `always`: whatever this replica's role
    /// (e-stops).
    fn send_command(&self, robot: &RobotId, cmd: Command<'_>, always: bool) {
        if let Some(msg) = self.outbox.command(robot, cmd) {
            self.send_message(msg, always);
        }
    }

    /// Publishes a message, unless this replica does not (or no longer) lead and the
    /// message is not one to send `always`.
    fn send_message(&self, msg: Outgoing, always: bool) {
        if !always && !self.may_send() {
            self.shared.metrics.command_suppressed();
            return;
        }
        self.outbox.send(msg);
    }
}

/// The task an earlier request with the same idempotency key created, if any.
async fn replay(store: &dyn Store, new: &NewTask) -> Result<Option<Created>, CoordError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    let task = store.task_by_idempotency_key(key).await?;
    Ok(task.map(|task| Created {
        task,
        replayed: true,
    }))
}

fn presence_event(change: &PresenceChange) -> SystemEventKind {
    let robot_id = change.robot_id.clone();
    match change.to {
        Presence::Online => SystemEventKind::RobotOnline { robot_id },
        Presence::Stale => SystemEventKind::RobotStale { robot_id },
        Presence::Offline => SystemEventKind::RobotOffline { robot_id },
    }
}

/// The audit row of a created task.
fn create_audit(now: u64, actor: String, task: &Task) -> Write {
    Write::Audit(AuditEntry {
        at_ms: now,
        actor,
        action: "task.create".into(),
        robot_id: task.robot_id.clone(),
        task_id: Some(task.id.clone()),
        detail: create_detail(task),
    })
}

/// What an audit row of a created task says about it, as JSON.
fn create_detail(task: &Task) -> JsonValue {
    let mut d = codec::JsonMap::new();
    d.insert("goal".into(), codec::to_value(&task.goal));
    d.insert("priority".into(), codec::to_value(&task.priority));
    if let Some(location) = &task.location {
        d.insert("location".into(), JsonValue::String(location.clone()));
    }
    JsonValue::Object(d)
}

/// An audit row for a command given through the API.
fn audit(
    now: u64,
    actor: &str,
    action: &str,
    robot: Option<&RobotId>,
    task: Option<&TaskId>,
) -> Write {
    Write::Audit(AuditEntry {
        at_ms: now,
        actor: actor.into(),
        action: action.into(),
        robot_id: robot.cloned(),
        task_id: task.cloned(),
        detail: JsonValue::Null,
    })
}
