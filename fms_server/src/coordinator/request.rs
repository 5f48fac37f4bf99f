//! What the coordinator is asked to do, and the handle that asks: [`Request`]s from the
//! HTTP handlers, the Zenoh ingest, the ticker and the lease loop, with the answers
//! (or [`CoordError`]) sent back to those that wait for one.

use fms_msgs::{RobotEvent, RobotId, TaskId};
use tokio::sync::{mpsc, oneshot};

use super::EstopDone;
use crate::fleet::lease::Transition;
use crate::fleet::legacy::LegacyReport;
use crate::fleet::registry::PresenceChange;
use crate::fleet::tasks::{NewTask, Task, TaskError};
use crate::store::StoreError;

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
        reply: Reply<EstopDone>,
    },
    RobotEstop {
        robot: RobotId,
        engage: bool,
        actor: String,
        reply: Reply<EstopDone>,
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
    /// A legacy robot's status report (`state/status` with a task-protocol word).
    LegacyStatus {
        robot: RobotId,
        report: LegacyReport,
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
    /// A handle on the channel the coordinator serves.
    pub(super) fn new(tx: mpsc::UnboundedSender<Request>) -> Self {
        Self { tx }
    }
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

    /// Engages or releases the fleet e-stop: sent to the robots first, then persisted.
    pub async fn fleet_estop(&self, engage: bool, actor: &str) -> Result<EstopDone, CoordError> {
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
    ) -> Result<EstopDone, CoordError> {
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
