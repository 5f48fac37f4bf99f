//! The one behaviour suite every [`Store`] backend must pass, unchanged: memory (the
//! reference), SQLite on a temporary file and PostgreSQL in a fresh database per test.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fms_msgs::codec::{self, JsonMap, JsonValue};
use fms_msgs::{Goal, Pose, Priority, RobotId, TaskId};
use futures_util::future::{join_all, BoxFuture};
use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::memory::MemoryStore;
use super::{
    open_store, AuditEntry, EventCursor, Fence, RobotRecord, Store, StoreError, TaskFilter, Write,
    WriteBatch,
};
use crate::fleet::tasks::{HistoryEntry, Task, TaskStatus};

/// Where PostgreSQL for tests lives unless `FMS_TEST_DATABASE_URL` says otherwise.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

type Opener = Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Store>> + Send + Sync>;
type RefusingOpener =
    Box<dyn Fn() -> BoxFuture<'static, (Arc<dyn Store>, WriteBatch)> + Send + Sync>;

/// Gives a test its backend. `open` may be called again after the previous store was
/// dropped: it reaches the same data (a reopened file, a new pool on the same database).
pub(super) struct Harness {
    opener: Opener,
    /// SQL backends: opens a store whose database refuses one kind of write inside the
    /// database, the way a full disk refuses every write, and gives a batch it refuses.
    refusing: Option<RefusingOpener>,
}

impl Harness {
    async fn open(&self) -> Arc<dyn Store> {
        (self.opener)().await
    }

    /// A store whose database refuses the returned batch (SQL backends only).
    async fn open_refusing(&self) -> (Arc<dyn Store>, WriteBatch) {
        let refusing = self
            .refusing
            .as_ref()
            .expect("only SQL backends refuse writes inside the database");
        refusing().await
    }
}

/// The action of the audit entry the refusing PostgreSQL database rejects at COMMIT.
const REFUSED_ACTION: &str = "test.refused";

async fn with_memory<F, Fut>(test: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let opener: Opener = Box::new(move || {
        let store = store.clone();
        Box::pin(async move { store })
    });
    test(Harness {
        opener,
        refusing: None,
    })
    .await;
}

/// A directory removed when dropped, even if the test panics.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("fms_store_{}", uuid::Uuid::new_v4().simple()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = TempDir::new();
    // A directory that does not exist yet: opening must create it.
    let url = format!("sqlite://{}", dir.0.join("data").join("fms.db").display());
    // A database capped at 1 MiB (256 pages of 4 KiB): a batch of more than that fails with
    // SQLITE_FULL, as every write does on a full disk.
    let capped = dir.0.join("capped").join("fms.db");
    let refusing: RefusingOpener = Box::new(move || {
        let path = capped.clone();
        Box::pin(async move {
            let store = super::sqlite::SqliteStore::open_capped(&path, 256)
                .await
                .unwrap_or_else(|e| {
                    panic!("cannot open capped SQLite store {}: {e}", path.display())
                });
            let mut big = audit_entry(1, REFUSED_ACTION);
            big.detail = JsonValue::String("x".repeat(2 << 20));
            let store: Arc<dyn Store> = Arc::new(store);
            (store, batch([Write::Audit(big)]))
        })
    });
    let opener: Opener = Box::new(move || {
        let url = url.clone();
        Box::pin(async move {
            open_store(Some(&url), std::path::Path::new("/nonexistent"))
                .await
                .unwrap_or_else(|e| panic!("cannot open SQLite store {url}: {e}"))
        })
    });
    test(Harness {
        opener,
        refusing: Some(refusing),
    })
    .await;
    drop(dir);
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url =
        std::env::var("FMS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let admin_options = PgConnectOptions::from_str(&admin_url)
        .unwrap_or_else(|e| panic!("FMS_TEST_DATABASE_URL is not a PostgreSQL URL: {e}"));
    let unreachable = |why: String| -> ! {
        panic!(
            "PostgreSQL at {}:{} is unreachable ({why}). The store conformance tests need it: \
             start PostgreSQL or point FMS_TEST_DATABASE_URL at one",
            admin_options.get_host(),
            admin_options.get_port()
        )
    };
    let mut admin = match tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&admin_options),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => unreachable(e.to_string()),
        Err(_) => unreachable("no answer within 10 s".into()),
    };
    let name = format!("fms_t_{}", uuid::Uuid::new_v4().simple());
    // A locale-aware default collation (ICU en-US, PostgreSQL 15+) catches queries that sort
    // ids without `COLLATE "C"`; servers without it get the default collation.
    let icu =
        format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
    if sqlx::raw_sql(&icu).execute(&mut admin).await.is_err() {
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    }

    // Open through the URL, as a deployment would.
    let url = admin_options
        .clone()
        .database(&name)
        .to_url_lossy()
        .to_string();
    let refusing_url = url.clone();
    let opener: Opener = Box::new(move || {
        let url = url.clone();
        Box::pin(async move {
            open_store(Some(&url), std::path::Path::new("/nonexistent"))
                .await
                .unwrap_or_else(|e| panic!("cannot open PostgreSQL store: {e}"))
        })
    });
    // A deferred constraint trigger rejects one audit action when the transaction commits:
    // the COMMIT itself fails, as it does when the server cannot write its WAL.
    let refusing: RefusingOpener = Box::new(move || {
        let url = refusing_url.clone();
        Box::pin(async move {
            let store = open_store(Some(&url), std::path::Path::new("/nonexistent"))
                .await
                .unwrap_or_else(|e| panic!("cannot open PostgreSQL store: {e}"));
            let pool = sqlx::PgPool::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
            let ddl = format!(
                "CREATE OR REPLACE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused at commit (test)'; END $$; \
                 DROP TRIGGER IF EXISTS refuse_at_commit ON audit; \
                 CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON audit \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
                 WHEN (NEW.action = '{REFUSED_ACTION}') EXECUTE FUNCTION refuse_at_commit()"
            );
            sqlx::raw_sql(&ddl)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("cannot install the refusing trigger: {e}"));
            pool.close().await;
            (store, batch([Write::Audit(audit_entry(1, REFUSED_ACTION))]))
        })
    });
    let outcome = AssertUnwindSafe(test(Harness {
        opener,
        refusing: Some(refusing),
    }))
    .catch_unwind()
    .await;
    let dropped = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    if let Err(e) = dropped {
        panic!("cannot drop test database {name}: {e}");
    }
}

mod cases;
mod commits;
mod replicas;
use cases::*;
use commits::*;
use replicas::*;

/// Instantiates every test of the suite once per backend; `sql:` tests only for the SQL
/// backends (they make the database refuse writes, which the memory store never does).
macro_rules! suite {
    (every: [$($test:ident),* $(,)?], sql: [$($sql:ident),* $(,)?] $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $test() {
                super::with_memory(super::$test).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                super::with_sqlite(super::$test).await;
            })*
            $(#[tokio::test]
            async fn $sql() {
                super::with_sqlite(super::$sql).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                super::with_postgres(super::$test).await;
            })*
            $(#[tokio::test]
            async fn $sql() {
                super::with_postgres(super::$sql).await;
            })*
        }
    };
}

suite!(
    every: [
    task_round_trip_every_field,
    task_round_trip_nones,
    update_appends_only_new_history,
    list_filters_and_order,
    open_tasks_exclude_terminal,
    count_by_status,
    completed_since,
    idempotency_key_lookup,
    duplicate_idempotency_key_rejects_whole_batch,
    robots_first_and_last_seen,
    cursors_set_and_overwrite,
    settings_round_trip,
    settings_by_prefix,
    audit_newest_first,
    batch_is_atomic,
    reopen_keeps_everything,
    concurrent_commits,
    lease_is_exclusive_and_tokens_fence,
    fenced_batch_writes_nothing,
    requests_are_answered_once,
    open_ids_and_changes_since,
    ],
    sql: [failed_commit_leaves_store_writable],
);

// ---- test data ----

fn rid(s: &str) -> RobotId {
    RobotId::new(s).expect("test robot id")
}

fn tid(s: &str) -> TaskId {
    TaskId::new(s).expect("test task id")
}

fn json(text: &str) -> JsonValue {
    codec::decode(text.as_bytes()).expect("test JSON")
}

fn json_map(text: &str) -> JsonMap {
    codec::decode(text.as_bytes()).expect("test JSON object")
}

/// A queued task with every optional field empty.
fn task(id: &str, created_ms: u64) -> Task {
    Task {
        id: tid(id),
        robot_id: None,
        assigned_robot: None,
        goal: Goal::Pose(Pose::new(1.0, -2.5, 0.25)),
        priority: Priority::Normal,
        timeout_s: None,
        parameters: JsonMap::new(),
        status: TaskStatus::Queued,
        progress: 0.0,
        attempts: 0,
        max_attempts: 3,
        retries: 0,
        failures: 0,
        location: None,
        idempotency_key: None,
        error: None,
        created_ms,
        updated_ms: created_ms,
        history: vec![HistoryEntry {
            status: TaskStatus::Queued,
            at_ms: created_ms,
            robot_id: None,
            note: None,
        }],
    }
}

fn with_status(mut t: Task, status: TaskStatus, updated_ms: u64) -> Task {
    t.status = status;
    t.updated_ms = updated_ms;
    t
}

/// A task with every field set.
fn full_task(id: &str) -> Task {
    let created = 1_700_000_000_000;
    let mut far = Pose::new(-3.5, 4.125, -1.5);
    far.frame = "odom".into();
    Task {
        id: tid(id),
        robot_id: Some(rid("tb3_1")),
        assigned_robot: Some(rid("tb3_2")),
        goal: Goal::Waypoints(vec![Pose::new(1.0, 2.0, 0.0), far]),
        priority: Priority::Urgent,
        timeout_s: Some(120.5),
        parameters: json_map(
            r#"{"speed": 0.35, "tags": ["a", "b"], "nested": {"k": null, "n": 3, "big": 1e300},
                "text": "ünïcode \"quoted\" \\ back", "empty": {}}"#,
        ),
        status: TaskStatus::Active,
        progress: 0.42,
        attempts: 2,
        max_attempts: 5,
        retries: 4,
        failures: 1,
        location: Some("dock ü 1".into()),
        idempotency_key: Some(format!("key-{id}")),
        error: Some("navigation failed once; retrying".into()),
        created_ms: created,
        updated_ms: created + 5_000,
        history: vec![
            HistoryEntry {
                status: TaskStatus::Queued,
                at_ms: created,
                robot_id: None,
                note: Some("created via API".into()),
            },
            HistoryEntry {
                status: TaskStatus::Assigned,
                at_ms: created + 1_000,
                robot_id: Some(rid("tb3_2")),
                note: None,
            },
            HistoryEntry {
                status: TaskStatus::Active,
                at_ms: created + 5_000,
                robot_id: Some(rid("tb3_2")),
                note: Some("retry 1 after \"aborted\"".into()),
            },
        ],
    }
}

fn batch(writes: impl IntoIterator<Item = Write>) -> WriteBatch {
    WriteBatch {
        writes: writes.into_iter().collect(),
        fence: None,
    }
}

async fn put(store: &dyn Store, tasks: impl IntoIterator<Item = Task>) {
    store
        .commit(&batch(tasks.into_iter().map(Write::Task)))
        .await
        .expect("commit tasks");
}

fn ids(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.id.as_str()).collect()
}

fn sorted_ids(tasks: &[Task]) -> Vec<&str> {
    let mut v = ids(tasks);
    v.sort_unstable();
    v
}

fn audit_entry(at_ms: u64, action: &str) -> AuditEntry {
    AuditEntry {
        at_ms,
        actor: "api".into(),
        action: action.into(),
        robot_id: (at_ms % 2 == 0).then(|| rid("tb3_1")),
        task_id: (at_ms % 3 == 0).then(|| tid("t-1")),
        detail: json(&format!(r#"{{"n": {at_ms}, "why": "because"}}"#)),
    }
}

fn robot_seen(id: &str, at_ms: u64, name: Option<&str>, model: Option<&str>) -> Write {
    Write::Robot {
        id: rid(id),
        at_ms,
        name: name.map(Into::into),
        model: model.map(Into::into),
    }
}

fn filter(status: Option<TaskStatus>, robot: Option<&str>, limit: usize) -> TaskFilter {
    TaskFilter {
        status,
        robot: robot.map(rid),
        limit,
    }
}

// ---- the suite ----

// ---- opening by URL ----

#[tokio::test]
async fn open_store_defaults_to_sqlite_in_data_dir() {
    let dir = TempDir::new();
    let data_dir = dir.0.join("state");
    let store = open_store(None, &data_dir).await.unwrap();
    put(&*store, [task("t-1", 1)]).await;
    assert!(data_dir.join("fms.db").is_file());
    assert!(data_dir.join("fms.db-wal").is_file(), "journal mode is WAL");
    drop(store);
    let store = open_store(None, &data_dir).await.unwrap();
    assert!(store.get_task(&tid("t-1")).await.unwrap().is_some());
}

#[tokio::test]
async fn open_store_accepts_sqlite_urls() {
    let dir = TempDir::new();
    let path = dir.0.join("a.db");
    let store = open_store(Some(&format!("sqlite:{}", path.display())), &dir.0)
        .await
        .unwrap();
    put(&*store, [task("t-1", 1)]).await;
    drop(store);
    assert!(path.is_file());
    let store = open_store(Some(&format!("sqlite://{}", path.display())), &dir.0)
        .await
        .unwrap();
    assert!(store.get_task(&tid("t-1")).await.unwrap().is_some());

    let memory = open_store(Some("sqlite::memory:"), &dir.0).await.unwrap();
    put(&*memory, [task("t-2", 2)]).await;
    assert!(memory.get_task(&tid("t-2")).await.unwrap().is_some());
}

#[tokio::test]
async fn open_store_rejects_other_urls() {
    let dir = TempDir::new();
    for url in ["mysql://u:secret@host/db", "fms.db", "sqlite:", "sqlite://"] {
        match open_store(Some(url), &dir.0).await {
            Err(StoreError::Backend(msg)) => {
                assert!(!msg.contains("secret"), "{msg}");
            }
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}
