//! The replica side of the coordinator: following and taking over the dispatch lease,
//! requests a follower leaves in the store for the leader, tasks it creates there, and the
//! leader's task changes it relays to its live clients.

use super::*;

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
pub(super) enum ReplicaAnswer {
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
pub(super) const RELAY_OVERLAP_MS: u64 = 3000;

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

/// A follower's answer to an e-stop it forwarded: an engage was already sent by this
/// replica, so a store that fails to take the request is a warning, not a failure.
fn followed_estop(
    engage: bool,
    result: Result<usize, CoordError>,
) -> Result<super::EstopDone, CoordError> {
    match result {
        Ok(robots) => Ok(super::EstopDone {
            robots,
            warning: None,
        }),
        Err(CoordError::Store(e)) if engage => Ok(super::EstopDone {
            robots: 0,
            warning: Some(format!(
                "sent to the robots by this replica, but not recorded ({e}); the leader resends it only once the store takes the request"
            )),
        }),
        Err(e) => Err(e),
    }
}

pub(super) fn answer(id: u64, now: u64, a: &ReplicaAnswer) -> Write {
    Write::RequestDone {
        id,
        at_ms: now,
        result: codec::to_value(a),
    }
}

impl Coordinator {
    pub(super) async fn on_transition(&mut self, t: Transition, now: u64) {
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
                        self.shared.set_fleet_estop(estop);
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
    pub(super) fn step_down(&mut self, now: u64, why: &str) {
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
    pub(super) fn fence(&mut self) -> Result<Option<Fence>, CoordError> {
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
    pub(super) fn may_send(&self) -> bool {
        match &self.replica {
            None => true,
            Some(l) => self.term.is_some() && l.fence().map(|f| f.token) == self.term,
        }
    }

    /// Leader among replicas: takes in tasks followers created and their requests.
    pub(super) async fn take_in(&mut self, now: u64) {
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
            ReplicaRequest::FleetEstop { engage, actor } => self
                .fleet_estop(engage, &actor, now, done)
                .await
                .map(|d| d.robots),
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
    pub(super) async fn follow(&mut self, req: Request, now: u64) {
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
                    let cmd = engine::fleet_estop_cmd(true);
                    for v in self.views().iter().filter(|v| v.online) {
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
            Request::Leadership(_) => unreachable!("handled by handle"),
        }
    }

    /// A follower's e-stop: sent at once, whoever leads.
    fn stop_now(&self, robot: &RobotId, cmd: &fms_msgs::EstopCommand) {
        self.send_command(robot, super::Command::Estop(cmd), true);
    }

    /// A follower creates a task straight in the store; the leader takes it in.
    async fn follower_create(
        &mut self,
        id: TaskId,
        new: NewTask,
        now: u64,
        actor: String,
    ) -> Result<Created, CoordError> {
        if let Some(created) = self.replay(&new).await? {
            return Ok(created);
        }
        let views = self.views();
        // Only the leader knows every open task: a follower goes by what robots report.
        engine::check_new(self.engine.params(), &new, &views, |_| false)?;
        let key = new.idempotency_key.clone();
        let task = engine::new_task(self.engine.params(), id, new, now);
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
