//! A follower replica's share of the work, while another replica holds the dispatch lease:
//! it creates tasks straight in the store (the leader takes them in), leaves cancels and
//! e-stops there as requests for the leader (sending an e-stop itself too, at once), and
//! relays the leader's task changes to its live clients.

use std::collections::HashMap;
use std::sync::Arc;

use fms_msgs::{unix_ms, EstopCommand, RobotId, SystemEvent, TaskId};

use super::dialect::{Command, Outbox};
use super::forwarded::{followed_estop, forward, ReplicaRequest};
use super::{create_audit, presence_event, replay, CoordError, Created, Request};
use crate::fleet::engine::{self, EngineParams, FLEET_ESTOP_SETTING};
use crate::fleet::tasks::{NewTask, TaskError};
use crate::hub::LiveMessage;
use crate::state::ServerState;
use crate::store::{StoreError, Write, WriteBatch};

/// Task changes a follower relays per tick.
const RELAY_PER_TICK: usize = 500;
/// Followers re-read this far back, for changes committed late or stamped by a leader whose
/// clock is a little behind.
const RELAY_OVERLAP_MS: u64 = 3000;

/// What only a follower keeps: the leader's task changes it relayed, and how far it got.
pub(super) struct Follower {
    shared: Arc<ServerState>,
    /// E-stops go out from every replica at once.
    outbox: Outbox,
    /// The task changes already relayed (task, updated_ms).
    relayed: HashMap<TaskId, u64>,
    relay_from: u64,
    /// The store failed the last relay (logged once, not every tick).
    relay_failing: bool,
}

impl Follower {
    pub(super) fn new(shared: Arc<ServerState>, outbox: Outbox) -> Self {
        Self {
            shared,
            outbox,
            relayed: HashMap::new(),
            relay_from: unix_ms().saturating_sub(RELAY_OVERLAP_MS),
            relay_failing: false,
        }
    }

    /// Follows again after leading: relays from now on (what it led, its clients saw).
    pub(super) fn restart(&mut self, now: u64) {
        self.relay_from = now.saturating_sub(RELAY_OVERLAP_MS);
        self.relayed.clear();
    }

    /// A follower's share of the work.
    pub(super) async fn handle(&mut self, req: Request, now: u64, params: &EngineParams) {
        let store = self.shared.store.clone();
        match req {
            Request::CreateTask {
                id,
                new,
                actor,
                reply,
            } => {
                let _ = reply.send(self.create(id, new, now, actor, params).await);
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
                    let cmd = engine::fleet_estop_cmd(true);
                    for v in self.shared.robot_views().iter().filter(|v| v.online) {
                        self.stop_now(&v.id, &cmd);
                    }
                }
                let req = ReplicaRequest::FleetEstop { engage, actor };
                tokio::spawn(async move {
                    let result = forward(&*store, &req).await;
                    let _ = reply.send(followed_estop(engage, result));
                });
            }
            Request::RobotEstop {
                robot,
                engage,
                actor,
                reply,
            } => {
                if engage {
                    self.stop_now(&robot, &engine::robot_estop_cmd(true));
                }
                let req = ReplicaRequest::RobotEstop {
                    robot_id: robot,
                    engage,
                    actor,
                };
                tokio::spawn(async move {
                    let result = forward(&*store, &req).await.map(|_| 1);
                    let _ = reply.send(followed_estop(engage, result));
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
            Request::RobotEvent { .. }
            | Request::LegacyStatus { .. }
            | Request::TeleopLease { .. } => {}
            Request::Leadership(_) => unreachable!("handled by the coordinator"),
        }
    }

    /// A follower's e-stop: sent at once, whoever leads.
    fn stop_now(&self, robot: &RobotId, cmd: &EstopCommand) {
        if let Some(msg) = self.outbox.command(robot, Command::Estop(cmd)) {
            self.outbox.send(msg);
        }
    }

    /// A follower creates a task straight in the store; the leader takes it in.
    async fn create(
        &mut self,
        id: TaskId,
        new: NewTask,
        now: u64,
        actor: String,
        params: &EngineParams,
    ) -> Result<Created, CoordError> {
        if let Some(created) = replay(&*self.shared.store, &new).await? {
            return Ok(created);
        }
        let views = self.shared.robot_views();
        // Only the leader knows every open task: a follower goes by what robots report.
        engine::check_new(params, &new, &views, |_| false)?;
        let key = new.idempotency_key.clone();
        let task = engine::new_task(params, id, new, now);
        let batch = WriteBatch {
            writes: vec![Write::Task(task.clone()), create_audit(now, actor, &task)],
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
            self.shared.set_fleet_estop(on);
        }
    }
}
