//! The production store: a PostgreSQL database reached through a connection pool, its
//! schema migrations, and the [`Store`] implementation on top of it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::{RobotId, TaskId};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder};

use super::health::{self, WriteHealth, WriteTracker};
use super::sql::{self, backend, TaskEventRow};
use super::sql_store::{impl_sql_store, Dialect};
use super::{
    AuditEntry, EventCursor, RobotRecord, Store, StoreError, TaskFilter, Write, WriteBatch,
};
use crate::fleet::tasks::{Task, TaskStatus};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections in the pool.
const POOL_SIZE: u32 = 8;
/// How long to wait for a connection before reporting the database unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    writes: Arc<WriteTracker>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // The URL may carry a password: never echo it.
        let options = PgConnectOptions::from_str(url)
            .map_err(backend("invalid PostgreSQL connection URL"))?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options and brings the schema up to date.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let what = format!(
            "cannot connect to PostgreSQL database {:?} on {}:{}",
            options.get_database().unwrap_or_default(),
            options.get_host(),
            options.get_port()
        );
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .before_acquire(sql::reusable::<PgConnection>)
            .connect_with(options)
            .await
            .map_err(backend(what))?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("cannot migrate the PostgreSQL schema: {e}"))
        })?;
        Ok(Self {
            pool,
            writes: Arc::default(),
        })
    }

    /// Closes every connection (the pool also closes when the last clone is dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(conn: &mut PgConnection) -> Result<sqlx::Transaction<'_, Postgres>, StoreError> {
        // Concurrent writers of one task serialize on its row lock, taken by the upsert
        // before the stored history is counted.
        conn.begin()
            .await
            .map_err(backend("cannot begin a transaction"))
    }

    /// Connections left inside a transaction are closed (see `sql_store.rs`); the pool
    /// opens new ones.
    fn may_close_connections(&self) -> bool {
        true
    }
}

const DIALECT: Dialect = Dialect {
    task_columns: "t.id, t.robot_id, t.assigned_robot, t.goal::text AS goal, t.priority, \
    t.timeout_s, t.parameters::text AS parameters, t.status, t.progress, t.attempts, t.max_attempts, t.retries, \
    t.failures, t.location, t.idempotency_key, t.error, t.created_ms, t.updated_ms, \
    e.idx AS e_idx, e.status AS e_status, e.at_ms AS e_at_ms, e.robot_id AS e_robot_id, \
    e.note AS e_note",
    upsert_task: "INSERT INTO tasks (id, robot_id, assigned_robot, goal, priority, \
    timeout_s, parameters, status, progress, attempts, max_attempts, retries, failures, \
    location, idempotency_key, error, created_ms, updated_ms) \
    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
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
    last_seen_ms = greatest(robots.last_seen_ms, excluded.last_seen_ms), \
    name = coalesce(excluded.name, robots.name), \
    model = coalesce(excluded.model, robots.model)",
    insert_audit: "INSERT INTO audit (at_ms, actor, action, robot_id, task_id, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
    upsert_setting: "INSERT INTO settings (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    id_desc: "id COLLATE \"C\" DESC",
    select_robots: "SELECT id, name, model, first_seen_ms, last_seen_ms FROM robots ORDER BY id COLLATE \"C\"",
    select_setting: "SELECT value::text FROM settings WHERE key = $1",
    select_settings_prefix: "SELECT key, value::text FROM settings WHERE substr(key, 1, length($1)) = $1 ORDER BY key COLLATE \"C\"",
    select_audit: "SELECT id, at_ms, actor, action, robot_id, task_id, detail::text AS detail FROM audit ORDER BY id DESC LIMIT $1",
    acquire_lease: "INSERT INTO leases (name, holder, token, expires_ms) VALUES ('dispatch', $1, 1, (extract(epoch from clock_timestamp()) * 1000)::bigint + $2) \
    ON CONFLICT (name) DO UPDATE SET \
    token = CASE WHEN leases.holder = excluded.holder AND leases.expires_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint THEN leases.token ELSE leases.token + 1 END, \
    holder = excluded.holder, expires_ms = excluded.expires_ms \
    WHERE leases.holder = excluded.holder OR leases.expires_ms <= (extract(epoch from clock_timestamp()) * 1000)::bigint \
    RETURNING token",
    fence_check: "SELECT token FROM leases WHERE name = 'dispatch' AND holder = $1 AND token = $2 \
    AND expires_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint FOR SHARE",
    insert_request: "INSERT INTO requests (body, created_ms) VALUES ($1::jsonb, $2) RETURNING id",
    select_pending: "SELECT id, body::text FROM requests WHERE done_ms IS NULL ORDER BY id LIMIT $1",
    select_request_result: "SELECT result::text FROM requests WHERE id = $1 AND done_ms IS NOT NULL",
    request_done: "UPDATE requests SET done_ms = $2, result = $3::jsonb WHERE id = $1 AND done_ms IS NULL",
};

impl_sql_store!(PostgresStore, Postgres, PgConnection, DIALECT);
