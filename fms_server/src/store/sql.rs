//! What the SQL backends share: the text forms of enums, checked integer conversions, and
//! turning rows (tasks joined with their history, robots, cursors, audit) back into values.

use std::collections::HashMap;
use std::fmt::Display;

use fms_msgs::codec::{self, JsonValue};
use fms_msgs::{Goal, Priority, RobotId, TaskId};
use futures_util::future::BoxFuture;

use super::{AuditEntry, EventCursor, RobotRecord, StoreError};
use crate::fleet::tasks::{HistoryEntry, Task, TaskStatus};

/// The SQL-side text of a priority (its serde form).
pub(super) fn priority_str(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

fn parse_priority(s: &str) -> Result<Priority, StoreError> {
    [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ]
    .into_iter()
    .find(|p| priority_str(*p) == s)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown priority {s:?}")))
}

fn parse_status(s: &str) -> Result<TaskStatus, StoreError> {
    TaskStatus::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown task status {s:?}")))
}

/// Every status that is not terminal (what `open_tasks` returns).
pub(super) fn open_statuses() -> impl Iterator<Item = &'static str> {
    TaskStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .map(TaskStatus::as_str)
}

/// A u64 for a BIGINT column. Values beyond i64::MAX cannot be stored.
pub(super) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Backend(format!("{what} {v} does not fit a BIGINT column")))
}

/// A u64 read from a BIGINT column; negative values are corruption.
pub(super) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is {v}")))
}

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is {v}")))
}

/// A limit for SQL `LIMIT` (anything beyond i64::MAX is as good as no limit).
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn robot_id(s: String, what: &str) -> Result<RobotId, StoreError> {
    RobotId::new(s.as_str()).map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}

fn task_id(s: String, what: &str) -> Result<TaskId, StoreError> {
    TaskId::new(s.as_str()).map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    codec::decode(text.as_bytes()).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Wraps a driver error with what was being done.
pub(super) fn backend(context: impl Display) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Backend(format!("{context}: {e}"))
}

/// Whether a connection whose write failed may go back to the pool: outside any transaction
/// as sqlx counts them (see `sql_store.rs` for how a failed write can leave it inside one).
/// Dropping the failed `Transaction` queued a ROLLBACK; the ping runs after it.
pub(super) async fn outside_transaction<C: sqlx::Connection>(conn: &mut C) -> bool {
    conn.ping().await.is_ok() && !conn.is_in_transaction()
}

/// The pools' `before_acquire` check: an idle connection still counted inside a transaction
/// (a write cancelled after its transaction failed) is closed rather than handed out.
pub(super) fn reusable<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    let idle = !conn.is_in_transaction();
    if !idle {
        tracing::warn!("closing a pooled database connection left inside a transaction");
    }
    Box::pin(std::future::ready(Ok(idle)))
}

/// Whether the error is a unique-constraint violation.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A task's columns, encoded for binding.
pub(super) struct TaskParams<'a> {
    pub id: &'a str,
    pub robot_id: Option<&'a str>,
    pub assigned_robot: Option<&'a str>,
    pub goal: String,
    pub priority: &'static str,
    pub timeout_s: Option<f64>,
    pub parameters: String,
    pub status: &'static str,
    pub progress: f64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub retries: i64,
    pub failures: i64,
    pub location: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub error: Option<&'a str>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl<'a> TaskParams<'a> {
    pub fn new(t: &'a Task) -> Result<Self, StoreError> {
        Ok(Self {
            id: t.id.as_str(),
            robot_id: t.robot_id.as_ref().map(RobotId::as_str),
            assigned_robot: t.assigned_robot.as_ref().map(RobotId::as_str),
            goal: codec::encode_text(&t.goal),
            priority: priority_str(t.priority),
            timeout_s: t.timeout_s,
            parameters: codec::encode_text(&t.parameters),
            status: t.status.as_str(),
            progress: t.progress,
            attempts: i64::from(t.attempts),
            max_attempts: i64::from(t.max_attempts),
            retries: i64::from(t.retries),
            failures: i64::from(t.failures),
            location: t.location.as_deref(),
            idempotency_key: t.idempotency_key.as_deref(),
            error: t.error.as_deref(),
            created_ms: to_i64(t.created_ms, "created_ms")?,
            updated_ms: to_i64(t.updated_ms, "updated_ms")?,
        })
    }
}

/// A history entry's columns, encoded for binding.
pub(super) struct EventParams<'a> {
    pub idx: i64,
    pub status: &'static str,
    pub at_ms: i64,
    pub robot_id: Option<&'a str>,
    pub note: Option<&'a str>,
}

impl<'a> EventParams<'a> {
    pub fn new(idx: usize, h: &'a HistoryEntry) -> Result<Self, StoreError> {
        Ok(Self {
            idx: i64::try_from(idx)
                .map_err(|_| StoreError::Backend(format!("history index {idx} too large")))?,
            status: h.status.as_str(),
            at_ms: to_i64(h.at_ms, "history at_ms")?,
            robot_id: h.robot_id.as_ref().map(RobotId::as_str),
            note: h.note.as_deref(),
        })
    }
}

/// One row of a task left-joined with one of its history entries (`e_*` are NULL for a task
/// without history). Queries must order rows by task, then by `e_idx`.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct TaskEventRow {
    pub id: String,
    pub robot_id: Option<String>,
    pub assigned_robot: Option<String>,
    pub goal: String,
    pub priority: String,
    pub timeout_s: Option<f64>,
    pub parameters: String,
    pub status: String,
    pub progress: f64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub retries: i64,
    pub failures: i64,
    pub location: Option<String>,
    pub idempotency_key: Option<String>,
    pub error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub e_idx: Option<i64>,
    pub e_status: Option<String>,
    pub e_at_ms: Option<i64>,
    pub e_robot_id: Option<String>,
    pub e_note: Option<String>,
}

impl TaskEventRow {
    /// The history entry on this row, if the task has any.
    fn take_event(&mut self) -> Option<EventPart> {
        Some(EventPart {
            idx: self.e_idx.take()?,
            status: self.e_status.take(),
            at_ms: self.e_at_ms.take(),
            robot_id: self.e_robot_id.take(),
            note: self.e_note.take(),
        })
    }

    /// The task, with an empty history.
    fn into_task(self) -> Result<Task, StoreError> {
        let id = task_id(self.id, "task id")?;
        let what = |f: &str| format!("task {id} {f}");
        Ok(Task {
            robot_id: self
                .robot_id
                .map(|r| robot_id(r, &what("robot_id")))
                .transpose()?,
            assigned_robot: self
                .assigned_robot
                .map(|r| robot_id(r, &what("assigned_robot")))
                .transpose()?,
            goal: json::<Goal>(&self.goal, &what("goal"))?,
            priority: parse_priority(&self.priority)?,
            timeout_s: self.timeout_s,
            parameters: json(&self.parameters, &what("parameters"))?,
            status: parse_status(&self.status)?,
            progress: self.progress,
            attempts: to_u32(self.attempts, &what("attempts"))?,
            max_attempts: to_u32(self.max_attempts, &what("max_attempts"))?,
            retries: to_u32(self.retries, &what("retries"))?,
            failures: to_u32(self.failures, &what("failures"))?,
            location: self.location,
            idempotency_key: self.idempotency_key,
            error: self.error,
            created_ms: to_u64(self.created_ms, &what("created_ms"))?,
            updated_ms: to_u64(self.updated_ms, &what("updated_ms"))?,
            history: Vec::new(),
            id,
        })
    }
}

struct EventPart {
    idx: i64,
    status: Option<String>,
    at_ms: Option<i64>,
    robot_id: Option<String>,
    note: Option<String>,
}

impl EventPart {
    /// Appends the entry to the task's history; it must be the next one.
    fn append_to(self, task: &mut Task) -> Result<(), StoreError> {
        let what = |f: &str| format!("task {} history {f}", task.id);
        let expected = task.history.len();
        if usize::try_from(self.idx).ok() != Some(expected) {
            return Err(StoreError::Corrupt(what(&format!(
                "entry {} found where entry {expected} belongs",
                self.idx
            ))));
        }
        let status = self
            .status
            .ok_or_else(|| StoreError::Corrupt(what("status is NULL")))?;
        let at_ms = self
            .at_ms
            .ok_or_else(|| StoreError::Corrupt(what("at_ms is NULL")))?;
        let entry = HistoryEntry {
            status: parse_status(&status)?,
            at_ms: to_u64(at_ms, &what("at_ms"))?,
            robot_id: self
                .robot_id
                .map(|r| robot_id(r, &what("robot_id")))
                .transpose()?,
            note: self.note,
        };
        task.history.push(entry);
        Ok(())
    }
}

/// Folds task/history rows (grouped by task, history in order) into tasks, keeping the
/// order in which tasks first appear.
pub(super) fn assemble_tasks(rows: Vec<TaskEventRow>) -> Result<Vec<Task>, StoreError> {
    let mut out: Vec<Task> = Vec::new();
    for mut row in rows {
        let event = row.take_event();
        if out.last().is_none_or(|t| t.id.as_str() != row.id) {
            out.push(row.into_task()?);
        }
        if let (Some(event), Some(task)) = (event, out.last_mut()) {
            event.append_to(task)?;
        }
    }
    Ok(out)
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct RobotRow {
    pub id: String,
    pub name: Option<String>,
    pub model: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl TryFrom<RobotRow> for RobotRecord {
    type Error = StoreError;
    fn try_from(r: RobotRow) -> Result<Self, StoreError> {
        let id = robot_id(r.id, "robot id")?;
        Ok(RobotRecord {
            first_seen_ms: to_u64(r.first_seen_ms, &format!("robot {id} first_seen_ms"))?,
            last_seen_ms: to_u64(r.last_seen_ms, &format!("robot {id} last_seen_ms"))?,
            name: r.name,
            model: r.model,
            id,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct CursorRow {
    pub robot_id: String,
    pub epoch: i64,
    pub seq: i64,
}

pub(super) fn cursors_from_rows(
    rows: Vec<CursorRow>,
) -> Result<HashMap<RobotId, EventCursor>, StoreError> {
    rows.into_iter()
        .map(|r| {
            let id = robot_id(r.robot_id, "cursor robot_id")?;
            let cursor = EventCursor {
                epoch: to_u64(r.epoch, &format!("cursor of {id} epoch"))?,
                seq: to_u64(r.seq, &format!("cursor of {id} seq"))?,
            };
            Ok((id, cursor))
        })
        .collect()
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub robot_id: Option<String>,
    pub task_id: Option<String>,
    pub detail: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        let what = |f: &str| format!("audit {} {f}", r.id);
        Ok(AuditEntry {
            at_ms: to_u64(r.at_ms, &what("at_ms"))?,
            robot_id: r
                .robot_id
                .map(|s| robot_id(s, &what("robot_id")))
                .transpose()?,
            task_id: r
                .task_id
                .map(|s| task_id(s, &what("task_id")))
                .transpose()?,
            detail: json(&r.detail, &what("detail"))?,
            actor: r.actor,
            action: r.action,
        })
    }
}

/// Counts per status from `(status, count)` rows.
pub(super) fn counts_from_rows(
    rows: Vec<(String, i64)>,
) -> Result<HashMap<TaskStatus, u64>, StoreError> {
    rows.into_iter()
        .map(|(s, n)| Ok((parse_status(&s)?, to_u64(n, &format!("count of {s}"))?)))
        .collect()
}

/// A setting's value from its stored text.
pub(super) fn setting_from_text(key: &str, text: &str) -> Result<JsonValue, StoreError> {
    json(text, &format!("setting {key:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_text_is_the_serde_form() {
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(codec::encode_text(&p), format!("\"{}\"", priority_str(p)));
            assert_eq!(parse_priority(priority_str(p)).ok(), Some(p));
        }
        assert!(matches!(
            parse_priority("NORMAL"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn status_text_is_the_serde_form() {
        for s in TaskStatus::ALL {
            assert_eq!(codec::encode_text(&s), format!("\"{}\"", s.as_str()));
            assert_eq!(parse_status(s.as_str()).ok(), Some(s));
        }
        assert!(matches!(
            parse_status("queued"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn integers_are_checked() {
        assert_eq!(to_i64(5, "x").ok(), Some(5));
        assert!(matches!(to_i64(u64::MAX, "x"), Err(StoreError::Backend(_))));
        assert!(matches!(to_u64(-1, "x"), Err(StoreError::Corrupt(_))));
        assert!(matches!(to_u32(-1, "x"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            to_u32(i64::from(u32::MAX) + 1, "x"),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(limit(usize::MAX), i64::MAX);
    }
}
