//! Owns the task engine. Turns API requests, robot events, presence changes and ticks into
//! engine calls, then carries out the effects in order: store first, then Zenoh commands
//! and live updates.
//!
//! Among replicas (`[replicas]`), only the one holding the dispatch lease runs the engine
//! and sends commands, writing under its fence. A follower creates tasks straight in the
//! store, leaves cancels and e-stops there as requests for the leader (it sends an e-stop
//! itself too, at once), and relays the leader's task changes to its live clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::{
    encode, unix_ms, RobotEvent, RobotId, RobotMode, SystemEvent, SystemEventKind, TaskId,
};
use tokio::sync::{mpsc, oneshot};

use crate::fleet::engine::{self, Effect, RobotView, TaskEngine, FLEET_ESTOP_SETTING};
use crate::fleet::lease::Transition;
use crate::fleet::registry::{Presence, PresenceChange, Registry};
use crate::fleet::tasks::{NewTask, Task, TaskError};
use crate::hub::{Hub, LiveMessage};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::store::{AuditEntry, Batch, Fence, Store, StoreError, Write};

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
    /// A replica lost the dispatch lease while carrying out the request.
    #[error("this replica no longer holds the dispatch lease; retry the request")]
    NotLeader,
    /// A follower's request found no leader to carry it out in time; it stays queued.
    #[error("no replica took the request within {0} s (is one leading?); it stays queued and will be carried out when a leader takes over")]
    NoLeader(u64),
    /// The leader could not carry out a follower's request.
    #[error("the leading replica could not carry out the request: {0}")]
    Replica(String),
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
    /// This replica started or stopped leading.
    Leadership(Transition),
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

    /// Like `send`; false once the coordinator has stopped.
    pub fn try_send(&self, req: Request) -> bool {
        self.tx.send(req).is_ok()
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

/// A follower's request, left in the store for the leader ([`Store::submit_request`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReplicaRequest {
    CancelTask {
        task_id: TaskId,
        actor: String,
    },
    CancelRobot {
        robot_id: RobotId,
        actor: String,
    },
    FleetEstop {
        engage: bool,
        actor: String,
    },
    RobotEstop {
        robot_id: RobotId,
        engage: bool,
        actor: String,
    },
}

/// The leader's answer to a [`ReplicaRequest`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum ReplicaAnswer {
    /// Done; `count` is the number of robots a fleet e-stop addressed.
    Done { count: usize },
    /// Refused, as the leader's own API would have refused it.
    Refused { error: TaskError },
    /// Could not be carried out.
    Failed { message: String },
}

/// How long a follower waits for the leader to answer a request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a follower looks for the answer.
const FORWARD_POLL: Duration = Duration::from_millis(20);
/// Requests a leader takes from the store per tick.
const REQUESTS_PER_TICK: usize = 64;
/// Task changes a follower relays per tick.
const RELAY_PER_TICK: usize = 500;
/// Followers re-read this far back, for changes committed late or stamped by a leader whose
/// clock is a little behind.
const RELAY_OVERLAP_MS: u64 = 3000;

/// Submits a request for the leader and waits for its answer.
async fn forward(store: &dyn Store, req: &ReplicaRequest) -> Result<usize, CoordError> {
    let id = store
        .submit_request(&codec::to_value(req), unix_ms())
        .await?;
    let deadline = tokio::time::Instant::now() + FORWARD_TIMEOUT;
    loop {
        if let Some(answer) = store.request_result(id).await? {
            return match codec::from_value::<ReplicaAnswer>(answer) {
                Ok(ReplicaAnswer::Done { count }) => Ok(count),
                Ok(ReplicaAnswer::Refused { error }) => Err(error.into()),
                Ok(ReplicaAnswer::Failed { message }) => Err(CoordError::Replica(message)),
                Err(e) => Err(CoordError::Replica(format!("unreadable answer: {e}"))),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CoordError::NoLeader(FORWARD_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(FORWARD_POLL).await;
    }
}

fn answer(id: u64, now: u64, a: &ReplicaAnswer) -> Write {
    Write::RequestDone {
        id,
        at_ms: now,
        result: codec::to_value(a),
    }
}

pub struct Coordinator {
    engine: TaskEngine,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
    rx: mpsc::UnboundedReceiver<Request>,
    /// `None`: the only server, always leading. `Some`: one of several replicas.
    replica: Option<Arc<Leadership>>,
    /// The lease term this replica leads in (replicas only).
    term: Option<u64>,
    /// Followers: the task changes already relayed (task, updated_ms) and how far they got.
    relayed: HashMap<TaskId, u64>,
    relay_from: u64,
    /// Followers: the store failed the last relay (logged once, not every tick).
    relay_failing: bool,
    /// The last commit failed (an outage is logged when it starts and ends, not per write).
    store_failing: bool,
}

impl Coordinator {
    /// `replica`: this server's lease among several replicas (`None`: the only server).
    /// A replica starts as a follower with an empty engine; it loads the store when elected.
    pub fn new(
        engine: TaskEngine,
        shared: Arc<Shared>,
        out: mpsc::UnboundedSender<Outgoing>,
        replica: Option<Arc<Leadership>>,
    ) -> (Self, CoordinatorHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        if replica.is_none() {
            shared.metrics.set_leader(Some(0));
        }
        let me = Self {
            engine,
            shared,
            out,
            rx,
            replica,
            term: None,
            relayed: HashMap::new(),
            relay_from: unix_ms().saturating_sub(RELAY_OVERLAP_MS),
            relay_failing: false,
            store_failing: false,
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

    /// Whether this server runs the engine: the only server, or the replica in its term.
    fn leading(&self) -> bool {
        self.replica.is_none() || self.term.is_some()
    }

    async fn handle(&mut self, req: Request) {
        let now = unix_ms();
        if let Request::Leadership(t) = req {
            self.on_transition(t, now).await;
            return;
        }
        if matches!(req, Request::Tick) && self.term.is_some() && !self.may_send() {
            // The lease loop may be stuck on an unreachable database: do not wait for it.
            self.step_down(now, "the lease ran out before it could be renewed");
        }
        if !self.leading() {
            self.follow(req, now).await;
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
                Some(fx) => {
                    self.apply_logged(fx, Vec::new()).await;
                    self.dispatch(now).await;
                }
                None => self.shared.metrics.duplicate_event(),
            },
            Request::Presence(change) => {
                let kind = presence_event(&change);
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

    // --- Replicas -----------------------------------------------------------------------

    async fn on_transition(&mut self, t: Transition, now: u64) {
        match t {
            Transition::Elected { token } => {
                let store = &self.shared.store;
                let loaded = async {
                    let open = store.open_tasks().await?;
                    let cursors = store.cursors().await?;
                    let estop = store
                        .setting(FLEET_ESTOP_SETTING)
                        .await?
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false);
                    Ok::<_, StoreError>((open, cursors, estop))
                };
                match loaded.await {
                    Ok((open, cursors, estop)) => {
                        let n = open.len();
                        self.engine.reload(open, cursors, estop, now);
                        self.shared.fleet_estop.store(estop, Ordering::Relaxed);
                        self.term = Some(token);
                        self.shared.metrics.set_leader(Some(token));
                        tracing::info!(
                            token,
                            open_tasks = n,
                            "leading: this replica holds the dispatch lease"
                        );
                        self.take_in(now).await;
                        if self.leading() {
                            let views = self.views();
                            let fx = self.engine.tick(&views, now);
                            self.apply_logged(fx, Vec::new()).await;
                        }
                    }
                    Err(e) => {
                        // Do not sit on a lease we cannot use: let another replica lead.
                        tracing::error!(
                            "elected but cannot load the store, giving the lease up: {e}"
                        );
                        if let Some(l) = &self.replica {
                            l.release();
                            if let Err(e) = store.release_lease(l.holder()).await {
                                tracing::warn!("cannot release the dispatch lease: {e}");
                            }
                        }
                    }
                }
            }
            Transition::SteppedDown { token, why } => {
                if self.term == Some(token) {
                    self.step_down(now, &format!("{why:?}"));
                }
            }
        }
    }

    /// Stops leading: forgets the engine's state (the next leader loads it from the store).
    fn step_down(&mut self, now: u64, why: &str) {
        let Some(token) = self.term.take() else {
            return;
        };
        self.engine.reload(Vec::new(), HashMap::new(), false, now);
        self.shared.metrics.set_leader(None);
        self.relay_from = now.saturating_sub(RELAY_OVERLAP_MS);
        self.relayed.clear();
        tracing::warn!(
            token,
            why,
            "following: this replica no longer holds the dispatch lease"
        );
    }

    /// The fence for a write: none for the only server; the lease term for a leading
    /// replica, which steps down if its lease ran out.
    fn fence(&mut self) -> Result<Option<Fence>, CoordError> {
        let Some(l) = self.replica.clone() else {
            return Ok(None);
        };
        let Some(term) = self.term else {
            return Err(CoordError::NotLeader);
        };
        match l.fence() {
            Some(f) if f.token == term => Ok(Some(f)),
            _ => {
                self.step_down(unix_ms(), "lease ran out");
                Err(CoordError::NotLeader)
            }
        }
    }

    /// Whether commands may go out now: always for the only server; for a replica, only
    /// within its term while the lease is valid on its clock.
    fn may_send(&self) -> bool {
        match &self.replica {
            None => true,
            Some(l) => self.term.is_some() && l.fence().map(|f| f.token) == self.term,
        }
    }

    /// Leader among replicas: takes in tasks followers created and their requests.
    async fn take_in(&mut self, now: u64) {
        let store = self.shared.store.clone();
        let ids = match store.open_task_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("cannot look for new tasks: {e}");
                return;
            }
        };
        let mut adopted = 0;
        for id in ids {
            if self.engine.open_task(&id).is_some() {
                continue;
            }
            match store.get_task(&id).await {
                Ok(Some(task)) => {
                    let robot = task.robot_id.clone();
                    let shown = task.clone();
                    if self.engine.adopt(task) {
                        adopted += 1;
                        self.shared
                            .hub
                            .publish(robot.as_ref(), &LiveMessage::TaskUpdate { task: &shown });
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot read new task {id}: {e}"),
            }
        }
        if adopted > 0 {
            tracing::debug!(adopted, "took in tasks created by other replicas");
            self.dispatch(now).await;
        }
        let pending = match store.pending_requests(REQUESTS_PER_TICK).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read replica requests: {e}");
                return;
            }
        };
        for (id, body) in pending {
            if !self.leading() {
                return;
            }
            self.serve_request(id, body, now).await;
        }
    }

    /// Carries out a follower's request and answers it, in the same commit as its effects.
    async fn serve_request(&mut self, id: u64, body: JsonValue, now: u64) {
        let req = match codec::from_value::<ReplicaRequest>(body) {
            Ok(r) => r,
            Err(e) => {
                let a = ReplicaAnswer::Failed {
                    message: format!("unreadable request: {e}"),
                };
                self.apply_logged(Vec::new(), vec![answer(id, now, &a)])
                    .await;
                return;
            }
        };
        let done = Some(id);
        let result = match req {
            ReplicaRequest::CancelTask { task_id, actor } => self
                .cancel_task(task_id, &actor, now, done)
                .await
                .map(|_| 1),
            ReplicaRequest::CancelRobot { robot_id, actor } => self
                .cancel_robot(robot_id, &actor, now, done)
                .await
                .map(|_| 1),
            ReplicaRequest::FleetEstop { engage, actor } => {
                self.fleet_estop(engage, &actor, now, done).await
            }
            ReplicaRequest::RobotEstop {
                robot_id,
                engage,
                actor,
            } => self
                .robot_estop(robot_id, engage, &actor, now, done)
                .await
                .map(|_| 1),
        };
        let a = match result {
            // Answered in the commit that carried it out.
            Ok(_) => return,
            Err(CoordError::Task(error)) => ReplicaAnswer::Refused { error },
            // Lost the lease or the store: the next leader (or tick) tries again.
            Err(CoordError::NotLeader | CoordError::Store(_)) => return,
            Err(e) => ReplicaAnswer::Failed {
                message: e.to_string(),
            },
        };
        self.apply_logged(Vec::new(), vec![answer(id, now, &a)])
            .await;
    }

    /// A follower's share of the work.
    async fn follow(&mut self, req: Request, now: u64) {
        let store = self.shared.store.clone();
        match req {
            Request::CreateTask {
                id,
                new,
                actor,
                reply,
            } => {
                let _ = reply.send(self.follower_create(id, new, now, actor).await);
            }
            Request::CancelTask { id, actor, reply } => {
                let req = ReplicaRequest::CancelTask {
                    task_id: id.clone(),
                    actor,
                };
                tokio::spawn(async move {
                    let result = async {
                        forward(&*store, &req).await?;
                        store
                            .get_task(&id)
                            .await?
                            .ok_or(CoordError::Task(TaskError::TaskNotFound(id)))
                    }
                    .await;
                    let _ = reply.send(result);
                });
            }
            Request::CancelRobot {
                robot,
                actor,
                reply,
            } => {
                let req = ReplicaRequest::CancelRobot {
                    robot_id: robot,
                    actor,
                };
                tokio::spawn(async move {
                    let _ = reply.send(forward(&*store, &req).await.map(|_| ()));
                });
            }
            Request::FleetEstop {
                engage,
                actor,
                reply,
            } => {
                if engage {
                    // Stopping cannot wait for a leader: every replica sends it at once.
                    let cmd = fms_msgs::EstopCommand {
                        engage: true,
                        reason: Some("fleet emergency stop".into()),
                    };
                    for v in self.views().iter().filter(|v| v.online) {
                        self.send_always(
                            keys::robot_key(&v.id, RobotTopic::CmdEstop),
                            encode(&cmd),
                        );
                    }
                }
                let req = ReplicaRequest::FleetEstop { engage, actor };
                tokio::spawn(async move {
                    let _ = reply.send(forward(&*store, &req).await);
                });
            }
            Request::RobotEstop {
                robot,
                engage,
                actor,
                reply,
            } => {
                if engage {
                    let cmd = fms_msgs::EstopCommand {
                        engage: true,
                        reason: Some("operator emergency stop".into()),
                    };
                    self.send_always(keys::robot_key(&robot, RobotTopic::CmdEstop), encode(&cmd));
                }
                let req = ReplicaRequest::RobotEstop {
                    robot_id: robot,
                    engage,
                    actor,
                };
                tokio::spawn(async move {
                    let _ = reply.send(forward(&*store, &req).await.map(|_| ()));
                });
            }
            Request::Presence(change) => {
                let event = SystemEvent {
                    stamp_ms: now,
                    kind: presence_event(&change),
                };
                self.shared
                    .hub
                    .publish(None, &LiveMessage::SystemEvent { event: &event });
            }
            Request::Tick => self.relay(now).await,
            // The leader applies events and audits leases; the database is the truth.
            Request::RobotEvent { .. } | Request::TeleopLease { .. } => {}
            Request::Leadership(_) => unreachable!("handled by handle"),
        }
    }

    /// A follower creates a task straight in the store; the leader takes it in.
    async fn follower_create(
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
        // Only the leader knows every open task: a follower goes by what robots report.
        engine::check_new(self.engine.params(), &new, &views, |_| false)?;
        let key = new.idempotency_key.clone();
        let task = engine::new_task(self.engine.params(), id, new, now);
        let entry = Write::Audit(AuditEntry {
            at_ms: now,
            actor,
            action: "task.create".into(),
            robot_id: task.robot_id.clone(),
            task_id: Some(task.id.clone()),
            detail: JsonValue::String(format!("{:?}, priority {:?}", task.goal, task.priority)),
        });
        let batch = Batch {
            writes: vec![Write::Task(task.clone()), entry],
            fence: None,
        };
        match self.shared.store.commit(&batch).await {
            Ok(()) => {}
            // Another replica created it with the same key just now.
            Err(StoreError::DuplicateIdempotencyKey(_)) if key.is_some() => {
                let key = key.expect("checked");
                if let Some(task) = self.shared.store.task_by_idempotency_key(&key).await? {
                    return Ok(Created {
                        task,
                        replayed: true,
                    });
                }
                return Err(StoreError::DuplicateIdempotencyKey(key).into());
            }
            Err(e) => return Err(e.into()),
        }
        self.relayed.insert(task.id.clone(), task.updated_ms);
        self.shared.hub.publish(
            task.robot_id.as_ref(),
            &LiveMessage::TaskUpdate { task: &task },
        );
        Ok(Created {
            task,
            replayed: false,
        })
    }

    /// A follower shows its live clients the task changes the leader made, and keeps the
    /// fleet e-stop flag current.
    async fn relay(&mut self, now: u64) {
        let store = self.shared.store.clone();
        let changes = store
            .tasks_updated_since(self.relay_from, RELAY_PER_TICK)
            .await;
        match (&changes, self.relay_failing) {
            (Err(e), false) => tracing::warn!("cannot read task changes to relay: {e}"),
            (Ok(_), true) => tracing::info!("relaying task changes again"),
            _ => {}
        }
        self.relay_failing = changes.is_err();
        match changes {
            Ok(tasks) => {
                let mut newest = self.relay_from;
                for task in &tasks {
                    newest = newest.max(task.updated_ms);
                    if self.relayed.get(&task.id) == Some(&task.updated_ms) {
                        continue;
                    }
                    self.relayed.insert(task.id.clone(), task.updated_ms);
                    let robot = task.assigned_robot.as_ref().or(task.robot_id.as_ref());
                    self.shared
                        .hub
                        .publish(robot, &LiveMessage::TaskUpdate { task });
                }
                // A full page may hide more changes at the same time stamp: go on from there.
                self.relay_from = if tasks.len() >= RELAY_PER_TICK {
                    newest
                } else {
                    now.saturating_sub(RELAY_OVERLAP_MS)
                };
                let keep_from = self.relay_from.saturating_sub(RELAY_OVERLAP_MS);
                self.relayed.retain(|_, at| *at >= keep_from);
            }
            Err(_) => return,
        }
        if let Ok(v) = store.setting(FLEET_ESTOP_SETTING).await {
            let on = v.and_then(|v| v.as_bool()).unwrap_or(false);
            self.shared.fleet_estop.store(on, Ordering::Relaxed);
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
    ) -> Result<usize, CoordError> {
        let views = self.views();
        let action = if engage {
            "fleet.estop"
        } else {
            "fleet.release"
        };
        let mut extra = vec![audit(now, actor, action, None, None)];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: views.len() })));
        let fx = self.engine.set_fleet_estop(engage, &views, now);
        let result = self.apply(fx, extra).await;
        if result.is_ok() {
            self.shared.fleet_estop.store(engage, Ordering::Relaxed);
        }
        result.map(|_| views.len())
    }

    async fn robot_estop(
        &mut self,
        robot: RobotId,
        engage: bool,
        actor: &str,
        now: u64,
        done: Option<u64>,
    ) -> Result<(), CoordError> {
        let action = if engage {
            "robot.estop"
        } else {
            "robot.release"
        };
        let mut extra = vec![audit(now, actor, action, Some(&robot), None)];
        extra.extend(done.map(|rid| answer(rid, now, &ReplicaAnswer::Done { count: 1 })));
        match self.engine.set_robot_estop(&robot, engage) {
            Ok(fx) => self.apply(fx, extra).await,
            Err(e) => Err(e.into()),
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
        let mut batch = Batch {
            fence: self.fence()?,
            ..Batch::default()
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
            Err(e) if self.store_failing => {
                tracing::debug!("store unreachable; engine may be ahead of it: {e}")
            }
            Err(e) => tracing::error!("store unreachable; engine may be ahead of it: {e}"),
        }
    }

    /// Publishes a command, unless this replica does not (or no longer) lead.
    fn send(&self, key: String, payload: Vec<u8>) {
        if !self.may_send() {
            self.shared.metrics.command_suppressed();
            return;
        }
        self.send_always(key, payload);
    }

    /// Publishes whatever the role (a follower's e-stop).
    fn send_always(&self, key: String, payload: Vec<u8>) {
        self.shared.metrics.command_sent();
        let _ = self.out.send(Outgoing { key, payload });
    }
}

fn presence_event(change: &PresenceChange) -> SystemEventKind {
    let robot_id = change.robot_id.clone();
    match change.to {
        Presence::Online => SystemEventKind::RobotOnline { robot_id },
        Presence::Stale => SystemEventKind::RobotStale { robot_id },
        Presence::Offline => SystemEventKind::RobotOffline { robot_id },
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
