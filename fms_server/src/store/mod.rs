//! Persistence behind one trait. Every change the coordinator makes is one [`WriteBatch`],
//! committed atomically before anything is sent or acknowledged. Backends: `memory`
//! (tests), SQLite (the embedded default) and PostgreSQL (production).

#[cfg(test)]
mod conformance;
pub mod health;
pub mod memory;
pub mod postgres;
mod sql;
mod sql_store;
pub mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use fms_msgs::codec::JsonValue;
use fms_msgs::{RobotId, TaskId};
use serde::{Deserialize, Serialize};

use crate::fleet::tasks::{Task, TaskStatus};
pub use health::{WriteFailure, WriteHealth};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("idempotency key {0:?} is already used by another task")]
    DuplicateIdempotencyKey(String),
    /// The batch carried a fence whose lease term is over: nothing was written.
    #[error("the dispatch lease (token {0}) is no longer held; write refused")]
    Fenced(u64),
    /// A replica request was already answered (by an earlier leader): nothing was written.
    #[error("replica request {0} was already answered")]
    RequestAlreadyDone(u64),
}

/// Which tasks to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub robot: Option<RobotId>,
    pub limit: usize,
}

/// A robot as persisted (presence and state live in memory only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotRecord {
    pub id: RobotId,
    pub name: Option<String>,
    pub model: Option<String>,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// One row of the command audit: who asked for what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// Who: "api", a user or key name once authentication exists, or "system".
    pub actor: String,
    /// What: e.g. "task.create", "task.cancel", "robot.cancel", "fleet.estop".
    pub action: String,
    pub robot_id: Option<RobotId>,
    pub task_id: Option<TaskId>,
    #[schema(value_type = Value)]
    pub detail: JsonValue,
}

/// The last robot event applied, so events are applied once across restarts too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCursor {
    pub epoch: u64,
    pub seq: u64,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Inserts or updates the task. History entries beyond those already stored are
    /// appended (history is append-only). A task whose `idempotency_key` is taken by
    /// another task fails the batch with `DuplicateIdempotencyKey`.
    Task(Task),
    /// Records that the robot was seen: inserts it (first_seen = last_seen = at_ms) or
    /// moves last_seen forward. `name`/`model` overwrite when given.
    Robot {
        id: RobotId,
        at_ms: u64,
        name: Option<String>,
        model: Option<String>,
    },
    /// Sets the robot's event cursor.
    Cursor { robot: RobotId, cursor: EventCursor },
    /// Appends to the audit.
    Audit(AuditEntry),
    /// Sets a persistent setting (e.g. the fleet e-stop).
    Setting { key: String, value: JsonValue },
    /// Answers a replica request (see [`Store::submit_request`]). Fails the batch with
    /// `RequestAlreadyDone` if it was answered before, so each is carried out once.
    RequestDone {
        id: u64,
        at_ms: u64,
        result: JsonValue,
    },
}

/// The lease term a leader writes under: the commit checks, in its transaction, that
/// `holder` still holds the dispatch lease with `token`, and fails with `Fenced` if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub token: u64,
}

/// Writes that succeed or fail together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    pub writes: Vec<Write>,
    /// Set by a leader among replicas: the batch commits only while the lease is held.
    pub fence: Option<Fence>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn push(&mut self, w: Write) {
        self.writes.push(w);
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies every write of the batch in one transaction, in order.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError>;
    /// Matching tasks, newest first (by created_ms, then id descending), at most `filter.limit`.
    /// `robot` matches the requested or the assigned robot.
    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError>;
    /// Every task not in a terminal status (for recovery after a restart).
    async fn open_tasks(&self) -> Result<Vec<Task>, StoreError>;
    /// The task created with this idempotency key, if any.
    async fn task_by_idempotency_key(&self, key: &str) -> Result<Option<Task>, StoreError>;
    /// Number of tasks in each status (statuses with none may be absent).
    async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError>;
    /// Tasks in COMPLETED whose updated_ms is at or after `since_ms`.
    async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError>;
    async fn robots(&self) -> Result<Vec<RobotRecord>, StoreError>;
    async fn cursors(&self) -> Result<HashMap<RobotId, EventCursor>, StoreError>;
    async fn setting(&self, key: &str) -> Result<Option<JsonValue>, StoreError>;
    /// Every setting whose key starts with `prefix`, by key.
    async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, JsonValue)>, StoreError>;
    /// The newest `limit` audit entries, newest first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    // --- Replicas: the dispatch lease, replica requests and change polling -------------

    /// Takes the dispatch lease for `holder` for `ttl_ms` (on the database's clock) if it is
    /// free or expired, or renews it if `holder` has it. Returns the fencing token: the same
    /// while a holder keeps renewing, higher on every change of hands (or after a lapse).
    /// `None`: another holder has an unexpired lease.
    async fn acquire_lease(&self, holder: &str, ttl_ms: u64) -> Result<Option<u64>, StoreError>;
    /// Ends `holder`'s lease at once, if it has it (a clean shutdown hands over quickly).
    async fn release_lease(&self, holder: &str) -> Result<(), StoreError>;
    /// Queues a request for the leader (a follower's cancel or e-stop). Returns its id.
    async fn submit_request(&self, body: &JsonValue, at_ms: u64) -> Result<u64, StoreError>;
    /// Unanswered requests, oldest first, at most `limit`.
    async fn pending_requests(&self, limit: usize) -> Result<Vec<(u64, JsonValue)>, StoreError>;
    /// The answer to a request, once the leader gave it.
    async fn request_result(&self, id: u64) -> Result<Option<JsonValue>, StoreError>;
    /// Ids of every open task (cheaper than `open_tasks`, for spotting new ones).
    async fn open_task_ids(&self) -> Result<Vec<TaskId>, StoreError>;
    /// Tasks whose `updated_ms` is at or after `since_ms`, oldest change first, at most
    /// `limit` (followers relay changes made by the leader to their live clients).
    async fn tasks_updated_since(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError>;

    // --- Write health: does the database take writes? -----------------------------------

    /// Whether writes work, as the last commit (or write probe) that reached the database
    /// found: a full disk or a lost database makes it failing until a write succeeds again.
    /// Batches refused for their content (a duplicate key, a lost lease) do not count.
    /// The default, for stores that cannot fail to write (memory): always writable.
    fn write_health(&self) -> WriteHealth {
        WriteHealth::default()
    }

    /// While writes fail, tries a tiny write (at most once per `health::PROBE_INTERVAL`),
    /// so health comes back without waiting for traffic; then returns the health. No I/O
    /// while writes work.
    async fn probe_writes(&self) -> WriteHealth {
        self.write_health()
    }
}

/// Opens the store a deployment asked for: `postgres://` or `postgresql://` URLs connect
/// to PostgreSQL, `sqlite://path` or `sqlite:path` open that SQLite file, and no URL opens
/// `fms.db` in `data_dir`. Schemas are migrated on open.
pub async fn open_store(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    let Some(url) = database_url else {
        return Ok(Arc::new(
            sqlite::SqliteStore::open(&data_dir.join("fms.db")).await?,
        ));
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::connect(url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match path {
        Some(":memory:") => Ok(Arc::new(sqlite::SqliteStore::open_in_memory().await?)),
        Some(path) if !path.is_empty() => {
            Ok(Arc::new(sqlite::SqliteStore::open(Path::new(path)).await?))
        }
        Some(_) => Err(StoreError::Backend(format!(
            "database URL {url:?} names no SQLite file (expected sqlite://path or sqlite:path)"
        ))),
        None => {
            // Show only the scheme: the rest may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
            Err(StoreError::Backend(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://, postgresql://, \
                 sqlite://path or sqlite:path"
            )))
        }
    }
}
