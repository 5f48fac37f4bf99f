//! Requests a follower replica leaves in the store for the leader (cancels, e-stops), and
//! the answers the leader writes back: their wire form, the follower's wait for the answer,
//! and the write that records one.

use std::time::Duration;

use fms_msgs::codec;
use fms_msgs::{unix_ms, RobotId, TaskId};

use super::{CoordError, EstopDone};
use crate::fleet::tasks::TaskError;
use crate::store::{Store, Write};

/// A follower's request, left in the store for the leader ([`Store::submit_request`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ReplicaRequest {
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

/// Submits a request for the leader and waits for its answer.
pub(super) async fn forward(store: &dyn Store, req: &ReplicaRequest) -> Result<usize, CoordError> {
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
pub(super) fn followed_estop(
    engage: bool,
    result: Result<usize, CoordError>,
) -> Result<EstopDone, CoordError> {
    match result {
        Ok(robots) => Ok(EstopDone {
            robots,
            warning: None,
        }),
        Err(CoordError::Store(e)) if engage => Ok(EstopDone {
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
