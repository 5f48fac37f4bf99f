//! The embedded default store: one SQLite file (WAL, synchronous NORMAL, foreign keys on),
//! its schema migrations, and the [`Store`] implementation on top of it.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::{RobotId, TaskId};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite};

use super::health::{self, WriteHealth, WriteTracker};
use super::sql::{self, backend, TaskEventRow};
use super::sql_store::{impl_sql_store, Dialect};
use super::{
    AuditEntry, EventCursor, RobotRecord, Store, StoreError, TaskFilter, Write, WriteBatch,
};
use crate::fleet::tasks::{Task, TaskStatus};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections in the pool (SQLite allows one writer at a time anyway).
const POOL_SIZE: u32 = 4;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writes: Arc<WriteTracker>,
    /// false for an in-memory database: it lives in its one connection, which must never
    /// be closed (a fresh one would be an empty database).
    file: bool,
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, |options| options).await
    }

    /// As [`open`](Self::open), with a database that holds at most `max_pages` pages on every
    /// connection: a write that needs more fails as on a full disk (`SQLITE_FULL`).
    #[cfg(test)]
    pub(crate) async fn open_capped(path: &Path, max_pages: u32) -> Result<Self, StoreError> {
        Self::open_with(path, |options| {
            options.pragma("max_page_count", max_pages.to_string())
        })
        .await
    }

    async fn open_with(
        path: &Path,
        tune: impl FnOnce(SqliteConnectOptions) -> SqliteConnectOptions,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let options = tune(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT),
        );
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .before_acquire(sql::reusable::<SqliteConnection>)
            .connect_with(options)
            .await
            .map_err(backend(format_args!(
                "cannot open SQLite database {}",
                path.display()
            )))?;
        Self::migrate(pool, true).await
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
        Self::migrate(pool, false).await
    }

    async fn migrate(pool: SqlitePool, file: bool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("cannot migrate the SQLite database schema: {e}"))
        })?;
        Ok(Self {
            pool,
            writes: Arc::default(),
            file,
        })
    }

    /// Closes every connection (the pool also closes when the last clone is dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(
        conn: &mut SqliteConnection,
    ) -> Result<sqlx::Transaction<'_, Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front, so concurrent commits queue on the busy
        // timeout instead of failing when a read would have to turn into a write.
        conn.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend("cannot begin a transaction"))
    }

    /// Whether a connection left inside a transaction may be closed (see `sql_store.rs`):
    /// not the in-memory database's only one.
    fn may_close_connections(&self) -> bool {
        self.file
    }
}

const DIALECT: Dialect = Dialect {
    task_columns: "t.id, t.robot_id, t.assigned_robot, t.goal, t.priority, \
    t.timeout_s, t.parameters, t.status, t.progress, t.attempts, t.max_attempts, t.retries, \
    t.failures, t.location, t.idempotency_key, t.error, t.created_ms, t.updated_ms, \
    e.idx AS e_idx, e.status AS e_status, e.at_ms AS e_at_ms, e.robot_id AS e_robot_id, \
    e.note AS e_note",
    upsert_task: "INSERT INTO tasks (id, robot_id, assigned_robot, goal, priority, \
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
    created_ms = excluded.created_ms, updated_ms = excluded.updated_ms",
    upsert_robot: "INSERT INTO robots (id, name, model, first_seen_ms, last_seen_ms) \
    VALUES ($1, $2, $3, $4, $4) \
    ON CONFLICT (id) DO UPDATE SET \
    last_seen_ms = max(robots.last_seen_ms, excluded.last_seen_ms), \
    name = coalesce(excluded.name, robots.name), \
    model = coalesce(excluded.model, robots.model)",
    insert_audit: "INSERT INTO audit (at_ms, actor, action, robot_id, task_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    upsert_setting: "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    id_desc: "id DESC",
    select_robots: "SELECT id, name, model, first_seen_ms, last_seen_ms FROM robots ORDER BY id",
    select_setting: "SELECT value FROM settings WHERE key = $1",
    select_settings_prefix: "SELECT key, value FROM settings WHERE substr(key, 1, length($1)) = $1 ORDER BY key",
    select_audit: "SELECT id, at_ms, actor, action, robot_id, task_id, detail FROM audit ORDER BY id DESC LIMIT $1",
    acquire_lease: "INSERT INTO leases (name, holder, token, expires_ms) VALUES ('dispatch', $1, 1, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) + $2) \
    ON CONFLICT (name) DO UPDATE SET \
    token = CASE WHEN leases.holder = excluded.holder AND leases.expires_ms > CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) THEN leases.token ELSE leases.token + 1 END, \
    holder = excluded.holder, expires_ms = excluded.expires_ms \
    WHERE leases.holder = excluded.holder OR leases.expires_ms <= CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) \
    RETURNING token",
    fence_check: "SELECT token FROM leases WHERE name = 'dispatch' AND holder = $1 AND token = $2 \
    AND expires_ms > CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    insert_request: "INSERT INTO requests (body, created_ms) VALUES ($1, $2) RETURNING id",
    select_pending: "SELECT id, body FROM requests WHERE done_ms IS NULL ORDER BY id LIMIT $1",
    select_request_result: "SELECT result FROM requests WHERE id = $1 AND done_ms IS NOT NULL",
    request_done: "UPDATE requests SET done_ms = $2, result = $3 WHERE id = $1 AND done_ms IS NULL",
};

impl_sql_store!(SqliteStore, Sqlite, SqliteConnection, DIALECT);
