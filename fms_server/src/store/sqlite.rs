//! The embedded default store: one SQLite file (WAL, synchronous NORMAL, foreign keys on),
//! its schema migrations, and the [`Store`] implementation on top of it.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use fms_msgs::codec::{self, JsonValue};
use fms_msgs::{RobotId, TaskId};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::sql::{self, backend, TaskEventRow};
use super::{AuditEntry, Batch, EventCursor, RobotRecord, Store, StoreError, TaskFilter, Write};
use crate::fleet::tasks::{Task, TaskStatus};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections in the pool (SQLite allows one writer at a time anyway).
const POOL_SIZE: u32 = 4;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A task row joined with its history, one row per history entry (see `sql::TaskEventRow`).
const TASK_COLUMNS: &str = "t.id, t.robot_id, t.assigned_robot, t.goal, t.priority, \
    t.timeout_s, t.parameters, t.status, t.progress, t.attempts, t.max_attempts, t.retries, \
    t.failures, t.location, t.idempotency_key, t.error, t.created_ms, t.updated_ms, \
    e.idx AS e_idx, e.status AS e_status, e.at_ms AS e_at_ms, e.robot_id AS e_robot_id, \
    e.note AS e_note";

const UPSERT_TASK: &str = "INSERT INTO tasks (id, robot_id, assigned_robot, goal, priority, \
    timeout_s, parameters, status, progress, attempts, max_attempts, retries, failures, \
    location, idempotency_key, error, created_ms, updated_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
    ON CONFLICT (id) DO UPDATE SET robot_id = excluded.robot_id, \
    assigned_robot = excluded.assigned_robot, goal = excluded.goal, \
    priority = excluded.priority, timeout_s = excluded.timeout_s, \
    parameters = excluded.parameters, status = excluded.status, \
    progress = excluded.progress, attempts = excluded.attempts, \
    max_attempts = excluded.max_attempts, retries = excluded.retries, \
    failures = excluded.failures, location = excluded.location, \
    idempotency_key = excluded.idempotency_key, error = excluded.error, \
    created_ms = excluded.created_ms, updated_ms = excluded.updated_ms";

const UPSERT_ROBOT: &str = "INSERT INTO robots (id, name, model, first_seen_ms, last_seen_ms) \
    VALUES ($1, $2, $3, $4, $4) \
    ON CONFLICT (id) DO UPDATE SET \
    last_seen_ms = max(robots.last_seen_ms, excluded.last_seen_ms), \
    name = coalesce(excluded.name, robots.name), \
    model = coalesce(excluded.model, robots.model)";

/// A [`Store`] in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(backend(format_args!(
                "cannot open SQLite database {}",
                path.display()
            )))?;
        Self::migrate(pool).await
    }

    /// A private database that lives as long as this store (tests).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(backend("cannot configure an in-memory SQLite database"))?
            .foreign_keys(true);
        // Every connection to ":memory:" is a database of its own: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend("cannot open an in-memory SQLite database"))?;
        Self::migrate(pool).await
    }

    async fn migrate(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("cannot migrate the SQLite database schema: {e}"))
        })?;
        Ok(Self { pool })
    }

    /// Closes every connection (the pool also closes when the last clone is dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Tasks selected by `inner` (which continues `SELECT * FROM tasks` with WHERE / ORDER
    /// BY / LIMIT), each with its full history, newest first.
    async fn select_tasks<'a>(
        &self,
        inner: impl FnOnce(&mut QueryBuilder<'a, Sqlite>),
    ) -> Result<Vec<Task>, StoreError> {
        let mut q = QueryBuilder::new("SELECT ");
        q.push(TASK_COLUMNS).push(" FROM (SELECT * FROM tasks");
        inner(&mut q);
        q.push(
            ") AS t LEFT JOIN task_events AS e ON e.task_id = t.id \
             ORDER BY t.created_ms DESC, t.id DESC, e.idx",
        );
        let rows = q
            .build_query_as::<TaskEventRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(backend("cannot read tasks"))?;
        sql::assemble_tasks(rows)
    }
}

async fn apply(conn: &mut SqliteConnection, w: &Write) -> Result<(), StoreError> {
    match w {
        Write::Task(t) => write_task(conn, t).await,
        Write::Robot {
            id,
            at_ms,
            name,
            model,
        } => {
            sqlx::query(UPSERT_ROBOT)
                .bind(id.as_str())
                .bind(name.as_deref())
                .bind(model.as_deref())
                .bind(sql::to_i64(*at_ms, "robot at_ms")?)
                .execute(&mut *conn)
                .await
                .map_err(backend(format_args!("cannot record robot {id}")))?;
            Ok(())
        }
        Write::Cursor { robot, cursor } => {
            sqlx::query(
                "INSERT INTO event_cursors (robot_id, epoch, seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (robot_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
            )
            .bind(robot.as_str())
            .bind(sql::to_i64(cursor.epoch, "cursor epoch")?)
            .bind(sql::to_i64(cursor.seq, "cursor seq")?)
            .execute(&mut *conn)
            .await
            .map_err(backend(format_args!("cannot store the cursor of {robot}")))?;
            Ok(())
        }
        Write::Audit(a) => {
            sqlx::query(
                "INSERT INTO audit (at_ms, actor, action, robot_id, task_id, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(sql::to_i64(a.at_ms, "audit at_ms")?)
            .bind(a.actor.as_str())
            .bind(a.action.as_str())
            .bind(a.robot_id.as_ref().map(RobotId::as_str))
            .bind(a.task_id.as_ref().map(TaskId::as_str))
            .bind(codec::encode_text(&a.detail))
            .execute(&mut *conn)
            .await
            .map_err(backend("cannot append to the audit"))?;
            Ok(())
        }
        Write::Setting { key, value } => {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key.as_str())
            .bind(codec::encode_text(value))
            .execute(&mut *conn)
            .await
            .map_err(backend(format_args!("cannot store setting {key:?}")))?;
            Ok(())
        }
    }
}

/// Upserts the task row, then appends the history entries not stored yet.
async fn write_task(conn: &mut SqliteConnection, t: &Task) -> Result<(), StoreError> {
    let p = sql::TaskParams::new(t)?;
    let upsert = sqlx::query(UPSERT_TASK)
        .bind(p.id)
        .bind(p.robot_id)
        .bind(p.assigned_robot)
        .bind(p.goal)
        .bind(p.priority)
        .bind(p.timeout_s)
        .bind(p.parameters)
        .bind(p.status)
        .bind(p.progress)
        .bind(p.attempts)
        .bind(p.max_attempts)
        .bind(p.retries)
        .bind(p.failures)
        .bind(p.location)
        .bind(p.idempotency_key)
        .bind(p.error)
        .bind(p.created_ms)
        .bind(p.updated_ms)
        .execute(&mut *conn)
        .await;
    match (upsert, &t.idempotency_key) {
        (Ok(_), _) => {}
        (Err(e), Some(key)) if sql::is_unique_violation(&e) => {
            return Err(StoreError::DuplicateIdempotencyKey(key.clone()))
        }
        (Err(e), _) => return Err(backend(format_args!("cannot store task {}", t.id))(e)),
    }
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM task_events WHERE task_id = $1")
        .bind(p.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend(format_args!(
            "cannot read the history of task {}",
            t.id
        )))?;
    let stored = usize::try_from(stored)
        .map_err(|_| StoreError::Corrupt(format!("task {} has {stored} history entries", t.id)))?;
    for (idx, h) in t.history.iter().enumerate().skip(stored) {
        let e = sql::EventParams::new(idx, h)?;
        sqlx::query(
            "INSERT INTO task_events (task_id, idx, status, at_ms, robot_id, note) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(p.id)
        .bind(e.idx)
        .bind(e.status)
        .bind(e.at_ms)
        .bind(e.robot_id)
        .bind(e.note)
        .execute(&mut *conn)
        .await
        .map_err(backend(format_args!(
            "cannot append to the history of task {}",
            t.id
        )))?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // IMMEDIATE takes the write lock up front, so concurrent commits queue on the busy
        // timeout instead of failing when a read would have to turn into a write.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend("cannot begin a transaction"))?;
        for w in &batch.writes {
            // On error the transaction is dropped, which rolls it back.
            apply(&mut tx, w).await?;
        }
        tx.commit()
            .await
            .map_err(backend("cannot commit the transaction"))
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let tasks = self
            .select_tasks(|q| {
                q.push(" WHERE id = ").push_bind(id.as_str());
            })
            .await?;
        Ok(tasks.into_iter().next())
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
        self.select_tasks(|q| {
            q.push(" WHERE 1 = 1");
            if let Some(status) = filter.status {
                q.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(robot) = &filter.robot {
                q.push(" AND (robot_id = ")
                    .push_bind(robot.as_str())
                    .push(" OR assigned_robot = ")
                    .push_bind(robot.as_str())
                    .push(")");
            }
            q.push(" ORDER BY created_ms DESC, id DESC LIMIT ")
                .push_bind(sql::limit(filter.limit));
        })
        .await
    }

    async fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
        self.select_tasks(|q| {
            q.push(" WHERE status IN (");
            let mut list = q.separated(", ");
            for s in sql::open_statuses() {
                list.push_bind(s);
            }
            q.push(")");
        })
        .await
    }

    async fn task_by_idempotency_key(&self, key: &str) -> Result<Option<Task>, StoreError> {
        let tasks = self
            .select_tasks(|q| {
                q.push(" WHERE idempotency_key = ").push_bind(key);
            })
            .await?;
        Ok(tasks.into_iter().next())
    }

    async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM tasks GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(backend("cannot count tasks"))?;
        sql::counts_from_rows(rows)
    }

    async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError> {
        // No stored time reaches beyond i64::MAX, so nothing can match such a bound.
        let Ok(since) = i64::try_from(since_ms) else {
            return Ok(0);
        };
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tasks WHERE status = $1 AND updated_ms >= $2")
                .bind(TaskStatus::Completed.as_str())
                .bind(since)
                .fetch_one(&self.pool)
                .await
                .map_err(backend("cannot count completed tasks"))?;
        sql::to_u64(n, "completed count")
    }

    async fn robots(&self) -> Result<Vec<RobotRecord>, StoreError> {
        let rows: Vec<sql::RobotRow> = sqlx::query_as(
            "SELECT id, name, model, first_seen_ms, last_seen_ms FROM robots ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend("cannot read robots"))?;
        rows.into_iter().map(RobotRecord::try_from).collect()
    }

    async fn cursors(&self) -> Result<HashMap<RobotId, EventCursor>, StoreError> {
        let rows: Vec<sql::CursorRow> =
            sqlx::query_as("SELECT robot_id, epoch, seq FROM event_cursors")
                .fetch_all(&self.pool)
                .await
                .map_err(backend("cannot read event cursors"))?;
        sql::cursors_from_rows(rows)
    }

    async fn setting(&self, key: &str) -> Result<Option<JsonValue>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(format_args!("cannot read setting {key:?}")))?;
        row.map(|(text,)| sql::setting_from_text(key, &text))
            .transpose()
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<sql::AuditRow> = sqlx::query_as(
            "SELECT id, at_ms, actor, action, robot_id, task_id, detail FROM audit \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(sql::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend("cannot read the audit"))?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}
