//! Owns the task engine. Turns API requests, robot events, presence changes and ticks into
//! engine calls, then carries out the effects in order: store first, then Zenoh commands
//! and live updates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fms_msgs::codec::JsonValue;
use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::{
    encode, unix_ms, RobotEvent, RobotId, RobotMode, SystemEvent, SystemEventKind, TaskId,
};
use tokio::sync::{mpsc, oneshot};

use crate::fleet::engine::{Effect, RobotView, TaskEngine, FLEET_ESTOP_SETTING};
use crate::fleet::registry::{Presence, PresenceChange, Registry};
use crate::fleet::tasks::{NewTask, Task, TaskError};
use crate::hub::{Hub, LiveMessage};
use crate::metrics::Metrics;
use crate::store::{AuditEntry, Batch, Store, StoreError, Write};

/// State shared by the HTTP handlers, the Zenoh ingest and the coordinator.
pub struct Shared {
    registry: RwLock<Registry>,
    pub metrics: Metrics,
    pub hub: Hub,
    pub store: Arc<dyn Store>,
    fleet_estop: AtomicBool,
}

impl Shared {
    pub fn new(registry: Registry, store: Arc<dyn Store>, fleet_estop: bool) -> Self {
        Self {
            registry: RwLock::new(registry),
            metrics: Metrics::default(),
            hub: Hub::new(),
            store,
            fleet_estop: AtomicBool::new(fleet_estop),
        }
    }

    /// Read access to the registry. A panic while holding the lock cannot leave the
    /// registry half-updated in a harmful way (each update is one field write), so a
    /// poisoned lock is used as is.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn fleet_estop(&self) -> bool {
        self.fleet_estop.load(Ordering::Relaxed)
    }
}

/// Robots as the engine sees them.
pub fn robot_views(reg: &Registry) -> Vec<RobotView> {
    reg.robots()
        .map(|e| {
            let s = e.state.as_ref();
            RobotView {
                id: e.id.clone(),
                online: e.presence == Presence::Online && s.is_some(),
                idle: s.is_some_and(|s| {
                    matches!(s.mode, RobotMode::Idle | RobotMode::Charging) && s.task.is_none()
                }),
                estopped: s.is_some_and(|s| s.mode == RobotMode::Estopped),
                charging: s.is_some_and(|s| s.battery.charging || s.mode == RobotMode::Charging),
                battery: s.map_or(0.0, |s| s.battery.percentage),
                x: s.map_or(0.0, |s| s.pose.x),
                y: s.map_or(0.0, |s| s.pose.y),
                current_task: s.and_then(|s| s.task.as_ref().map(|t| t.task_id.clone())),
            }
        })
        .collect()
}

/// A message for one robot (or the system key), to be published on Zenoh.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the coordinator has stopped")]
    Stopped,
}

type Reply<T> = oneshot::Sender<Result<T, CoordError>>;

/// What the coordinator is asked to do.
#[derive(Debug)]
pub enum Request {
    CreateTask {
        id: TaskId,
        new: NewTask,
        actor: String,
        reply: Reply<Created>,
    },
    CancelTask {
        id: TaskId,
        actor: String,
        reply: Reply<Task>,
    },
    CancelRobot {
        robot: RobotId,
        actor: String,
        reply: Reply<()>,
    },
    FleetEstop {
        engage: bool,
        actor: String,
        reply: Reply<usize>,
    },
    RobotEstop {
        robot: RobotId,
        engage: bool,
        actor: String,
        reply: Reply<()>,
    },
    /// A robot's teleop lease changed hands (seen in its state): audited.
    TeleopLease {
        robot: RobotId,
        operator: Option<String>,
    },
    RobotEvent {
        robot: RobotId,
        event: RobotEvent,
    },
    Presence(PresenceChange),
    Tick,
}

/// A created task, or the one an earlier request with the same idempotency key created.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub task: Task,
    pub replayed: bool,
}

/// The sending side, cloned into HTTP handlers and Zenoh callbacks.
#[derive(Debug, Clone)]
pub struct CoordinatorHandle {
    tx: mpsc::UnboundedSender<Request>,
}

impl CoordinatorHandle {
    /// Fire and forget (events, presence, ticks).
    pub fn send(&self, req: Request) {
        let _ = self.tx.send(req);
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, CoordError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| CoordError::Stopped)?;
        rx.await.map_err(|_| CoordError::Stopped)?
    }

    /// Creates a task on behalf of `actor` (who is written to the audit).
    pub async fn create_task(&self, new: NewTask, actor: &str) -> Result<Created, CoordError> {
        let id = TaskId::new(uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid task id");
        let actor = actor.to_owned();
        self.ask(|reply| Request::CreateTask {
            id,
            new,
            actor,
            reply,
        })
        .await
    }

    pub async fn cancel_task(&self, id: TaskId, actor: &str) -> Result<Task, CoordError> {
        let actor = actor.to_owned();
        self.ask(|reply| Request::CancelTask { id, actor, reply })
            .await
    }

    pub async fn cancel_robot(&self, robot: RobotId, actor: &str) -> Result<(), CoordError> {
        let actor = actor.to_owned();
        self.ask(|reply| Request::CancelRobot {
            robot,
            actor,
            reply,
        })
        .await
    }

    pub async fn fleet_estop(&self, engage: bool, actor: &str) -> Result<usize, CoordError> {
        let actor = actor.to_owned();
        self.ask(|reply| Request::FleetEstop {
            engage,
            actor,
            reply,
        })
        .await
    }

    pub async fn robot_estop(
        &self,
        robot: RobotId,
        engage: bool,
        actor: &str,
    ) -> Result<(), CoordError> {
        let actor = actor.to_owned();
        self.ask(|reply| Request::RobotEstop {
            robot,
            engage,
            actor,
            reply,
        })
        .await
    }
}

pub struct Coordinator {
    engine: TaskEngine,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
    rx: mpsc::UnboundedReceiver<Request>,
}

impl Coordinator {
    pub fn new(
        engine: TaskEngine,
        shared: Arc<Shared>,
        out: mpsc::UnboundedSender<Outgoing>,
    ) -> (Self, CoordinatorHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let me = Self {
            engine,
            shared,
            out,
            rx,
        };
        (me, CoordinatorHandle { tx })
    }

    /// Serves requests until every handle is dropped.
    pub async fn run(mut self) {
        while let Some(req) = self.rx.recv().await {
            self.handle(req).await;
        }
    }

    fn views(&self) -> Vec<RobotView> {
        robot_views(&self.shared.registry())
    }

    async fn handle(&mut self, req: Request) {
        let now = unix_ms();
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
                let audit = audit(now, &actor, "task.cancel", None, Some(&id));
                let result = match self.engine.cancel(&id, now) {
                    Ok((task, fx)) => self.apply(fx, vec![audit]).await.map(|_| task),
                    Err(TaskError::TaskNotFound(id)) => self.finished_task(id).await,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Request::CancelRobot {
                robot,
                actor,
                reply,
            } => {
                let audit = audit(now, &actor, "robot.cancel", Some(&robot), None);
                let result = match self.engine.cancel_robot(&robot, now) {
                    Ok(fx) => self.apply(fx, vec![audit]).await,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Request::FleetEstop {
                engage,
                actor,
                reply,
            } => {
                let views = self.views();
                let action = if engage {
                    "fleet.estop"
                } else {
                    "fleet.release"
                };
                let fx = self.engine.set_fleet_estop(engage, &views, now);
                let result = self
                    .apply(fx, vec![audit(now, &actor, action, None, None)])
                    .await;
                if result.is_ok() {
                    self.shared.fleet_estop.store(engage, Ordering::Relaxed);
                }
                let _ = reply.send(result.map(|_| views.len()));
            }
            Request::RobotEstop {
                robot,
                engage,
                actor,
                reply,
            } => {
                let action = if engage {
                    "robot.estop"
                } else {
                    "robot.release"
                };
                let result = match self.engine.set_robot_estop(&robot, engage) {
                    Ok(fx) => {
                        self.apply(fx, vec![audit(now, &actor, action, Some(&robot), None)])
                            .await
                    }
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Request::RobotEvent { robot, event } => match self.engine.on_event(&robot, &event, now)
            {
                Some(fx) => {
                    self.apply_logged(fx, Vec::new()).await;
                    self.dispatch(now).await;
                }
                None => self.shared.metrics.duplicate_event(),
            },
            Request::Presence(change) => {
                let kind = match change.to {
                    Presence::Online => SystemEventKind::RobotOnline {
                        robot_id: change.robot_id.clone(),
                    },
                    Presence::Stale => SystemEventKind::RobotStale {
                        robot_id: change.robot_id.clone(),
                    },
                    Presence::Offline => SystemEventKind::RobotOffline {
                        robot_id: change.robot_id.clone(),
                    },
                };
                tracing::info!(robot_id = %change.robot_id, from = ?change.from, to = ?change.to, "presence");
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
                let views = self.views();
                let fx = self.engine.tick(&views, now);
                self.apply_logged(fx, Vec::new()).await;
            }
        }
    }

    async fn create(
        &mut self,
        id: TaskId,
        new: NewTask,
        now: u64,
        actor: String,
    ) -> Result<Created, CoordError> {
        if let Some(key) = &new.idempotency_key {
            if let Some(task) = self.shared.store.task_by_idempotency_key(key).await? {
                return Ok(Created {
                    task,
                    replayed: true,
                });
            }
        }
        let views = self.views();
        let (task, fx) = self.engine.create(id, new, &views, now)?;
        let entry = Write::Audit(AuditEntry {
            at_ms: now,
            actor,
            action: "task.create".into(),
            robot_id: task.robot_id.clone(),
            task_id: Some(task.id.clone()),
            detail: JsonValue::String(format!("{:?}, priority {:?}", task.goal, task.priority)),
        });
        self.apply(fx, vec![entry]).await?;
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
                action: "cancel",
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
        if let Err(e) = self.apply(fx, extra).await {
            tracing::error!("could not apply task changes: {e}");
        }
    }

    /// Carries out effects: first every store write, in one transaction, then the
    /// sends and live updates. If the commit fails nothing is sent.
    async fn apply(&mut self, fx: Vec<Effect>, extra: Vec<Write>) -> Result<(), CoordError> {
        let mut batch = Batch::default();
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
            if let Err(e) = self.shared.store.commit(&batch).await {
                // The engine already moved on; bring it back to what the store holds.
                self.resync().await;
                return Err(e.into());
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
                    self.send(keys::robot_key(&robot, RobotTopic::CmdTask), encode(&cmd));
                }
                Effect::SendCancel(robot, cmd) => {
                    self.send(keys::robot_key(&robot, RobotTopic::CmdCancel), encode(&cmd));
                }
                Effect::SendEstop(robot, cmd) => {
                    self.send(keys::robot_key(&robot, RobotTopic::CmdEstop), encode(&cmd));
                }
                Effect::Cursor(..) | Effect::Setting(..) => {}
                Effect::System(kind) => {
                    let event = SystemEvent {
                        stamp_ms: unix_ms(),
                        kind,
                    };
                    self.shared
                        .hub
                        .publish(None, &LiveMessage::SystemEvent { event: &event });
                    self.send(keys::SYSTEM_EVENT.to_owned(), encode(&event));
                }
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
                self.engine.reload(open, cursors, estop, unix_ms());
                self.shared.fleet_estop.store(estop, Ordering::Relaxed);
                tracing::warn!("task engine reloaded from the store after a failed write");
            }
            Err(e) => tracing::error!("store unreachable; engine may be ahead of it: {e}"),
        }
    }

    fn send(&self, key: String, payload: Vec<u8>) {
        self.shared.metrics.command_sent();
        let _ = self.out.send(Outgoing { key, payload });
    }
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
