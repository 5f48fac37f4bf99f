//! The leader's side of running as one of several replicas: taking over and giving up the
//! dispatch lease, the fence every write goes under, and the tasks and requests followers
//! left in the store, taken in each tick. (A follower's share is [`super::follower`].)

use std::collections::HashMap;
use std::sync::Arc;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::unix_ms;

use super::follower::Follower;
use super::forwarded::{answer, ReplicaAnswer, ReplicaRequest};
use super::{CoordError, Coordinator};
use crate::fleet::engine::FLEET_ESTOP_SETTING;
use crate::fleet::lease::Transition;
use crate::hub::LiveMessage;
use crate::leader::Leadership;
use crate::store::{Fence, StoreError};

/// Requests a leader takes from the store per tick.
const REQUESTS_PER_TICK: usize = 64;

/// This server as one of several replicas.
pub(super) struct Replica {
    /// Its hold on the dispatch lease, kept by the lease loop.
    pub(super) leadership: Arc<Leadership>,
    /// The lease term it leads in; `None` while it follows.
    pub(super) term: Option<u64>,
    /// Its share of the work while it follows.
    pub(super) follower: Follower,
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
                        if let Some(r) = &mut self.replica {
                            r.term = Some(token);
                        }
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
                        if let Some(l) = self.replica.as_ref().map(|r| &r.leadership) {
                            l.release();
                            if let Err(e) = store.release_lease(l.holder()).await {
                                tracing::warn!("cannot release the dispatch lease: {e}");
                            }
                        }
                    }
                }
            }
            Transition::SteppedDown { token, why } => {
                if self.term() == Some(token) {
                    self.step_down(now, &format!("{why:?}"));
                }
            }
        }
    }

    /// Stops leading: forgets the engine's state (the next leader loads it from the store).
    pub(super) fn step_down(&mut self, now: u64, why: &str) {
        let Some(r) = &mut self.replica else {
            return;
        };
        let Some(token) = r.term.take() else {
            return;
        };
        r.follower.restart(now);
        self.engine.reload(Vec::new(), HashMap::new(), false, now);
        self.shared.metrics.set_leader(None);
        tracing::warn!(
            token,
            why,
            "following: this replica no longer holds the dispatch lease"
        );
    }

    /// The fence for a write: none for the only server; the lease term for a leading
    /// replica, which steps down if its lease ran out.
    pub(super) fn fence(&mut self) -> Result<Option<Fence>, CoordError> {
        let Some(r) = &self.replica else {
            return Ok(None);
        };
        let Some(term) = r.term else {
            return Err(CoordError::NotLeader);
        };
        match r.leadership.fence() {
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
            Some(r) => r.term.is_some() && r.leadership.fence().map(|f| f.token) == r.term,
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
}
