//! In-process store: maps guarded by one lock. Nothing survives a restart; used by tests
//! and as the reference the SQL backends are checked against.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use fms_msgs::codec::JsonValue;
use fms_msgs::{unix_ms, RobotId, TaskId};

use super::{
    AuditEntry, EventCursor, Fence, RobotRecord, Store, StoreError, TaskFilter, Write, WriteBatch,
};
use crate::fleet::tasks::{Task, TaskStatus};

#[derive(Debug, Default, Clone)]
struct Data {
    tasks: HashMap<TaskId, Task>,
    robots: HashMap<RobotId, RobotRecord>,
    cursors: HashMap<RobotId, EventCursor>,
    settings: HashMap<String, JsonValue>,
    audit: Vec<AuditEntry>,
    /// (holder, token, expires at Unix ms)
    lease: Option<(String, u64, u64)>,
    /// Replica requests by id: body, answer.
    requests: Vec<(JsonValue, Option<JsonValue>)>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Data>, StoreError> {
        self.data
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

fn apply(d: &mut Data, w: &Write) -> Result<(), StoreError> {
    match w {
        Write::Task(t) => {
            if let Some(key) = &t.idempotency_key {
                if d.tasks
                    .values()
                    .any(|o| o.id != t.id && o.idempotency_key.as_ref() == Some(key))
                {
                    return Err(StoreError::DuplicateIdempotencyKey(key.clone()));
                }
            }
            let mut t = t.clone();
            if let Some(old) = d.tasks.get(&t.id) {
                // Append-only history: keep what was stored, add what is new.
                let mut history = old.history.clone();
                history.extend(t.history.iter().skip(old.history.len()).cloned());
                t.history = history;
            }
            d.tasks.insert(t.id.clone(), t);
        }
        Write::Robot {
            id,
            at_ms,
            name,
            model,
        } => {
            let r = d.robots.entry(id.clone()).or_insert_with(|| RobotRecord {
                id: id.clone(),
                name: None,
                model: None,
                first_seen_ms: *at_ms,
                last_seen_ms: *at_ms,
            });
            r.last_seen_ms = r.last_seen_ms.max(*at_ms);
            if name.is_some() {
                r.name = name.clone();
            }
            if model.is_some() {
                r.model = model.clone();
            }
        }
        Write::Cursor { robot, cursor } => {
            d.cursors.insert(robot.clone(), *cursor);
        }
        Write::Audit(a) => d.audit.push(a.clone()),
        Write::Setting { key, value } => {
            d.settings.insert(key.clone(), value.clone());
        }
        Write::RequestDone { id, result, .. } => {
            let slot = usize::try_from(*id)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| d.requests.get_mut(i))
                .filter(|r| r.1.is_none())
                .ok_or(StoreError::RequestAlreadyDone(*id))?;
            slot.1 = Some(result.clone());
        }
    }
    Ok(())
}

fn check_fence(d: &Data, fence: &Fence) -> Result<(), StoreError> {
    match &d.lease {
        Some((holder, token, expires))
            if *holder == fence.holder && *token == fence.token && *expires > unix_ms() =>
        {
            Ok(())
        }
        _ => Err(StoreError::Fenced(fence.token)),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut guard = self.lock()?;
        // All or nothing: apply to a copy, then swap it in.
        if let Some(fence) = &batch.fence {
            check_fence(&guard, fence)?;
        }
        let mut next = guard.clone();
        for w in &batch.writes {
            apply(&mut next, w)?;
        }
        *guard = next;
        Ok(())
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self.lock()?.tasks.get(id).cloned())
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<&Task> = d
            .tasks
            .values()
            .filter(|t| filter.status.is_none_or(|s| t.status == s))
            .filter(|t| {
                filter.robot.as_ref().is_none_or(|r| {
                    t.assigned_robot.as_ref() == Some(r) || t.robot_id.as_ref() == Some(r)
                })
            })
            .collect();
        out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        Ok(out.into_iter().take(filter.limit).cloned().collect())
    }

    async fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
        Ok(self
            .lock()?
            .tasks
            .values()
            .filter(|t| !t.status.is_terminal())
            .cloned()
            .collect())
    }

    async fn task_by_idempotency_key(&self, key: &str) -> Result<Option<Task>, StoreError> {
        Ok(self
            .lock()?
            .tasks
            .values()
            .find(|t| t.idempotency_key.as_deref() == Some(key))
            .cloned())
    }

    async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError> {
        let mut counts = HashMap::new();
        for t in self.lock()?.tasks.values() {
            *counts.entry(t.status).or_insert(0) += 1;
        }
        Ok(counts)
    }

    async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError> {
        Ok(self
            .lock()?
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Completed && t.updated_ms >= since_ms)
            .count() as u64)
    }

    async fn robots(&self) -> Result<Vec<RobotRecord>, StoreError> {
        let mut v: Vec<RobotRecord> = self.lock()?.robots.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    async fn cursors(&self) -> Result<HashMap<RobotId, EventCursor>, StoreError> {
        Ok(self.lock()?.cursors.clone())
    }

    async fn setting(&self, key: &str) -> Result<Option<JsonValue>, StoreError> {
        Ok(self.lock()?.settings.get(key).cloned())
    }

    async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, JsonValue)>, StoreError> {
        let mut out: Vec<(String, JsonValue)> = self
            .lock()?
            .settings
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .lock()?
            .audit
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn acquire_lease(&self, holder: &str, ttl_ms: u64) -> Result<Option<u64>, StoreError> {
        let mut d = self.lock()?;
        let now = unix_ms();
        let token = match &d.lease {
            None => 1,
            Some((h, token, expires)) if h == holder && *expires > now => *token,
            Some((_, token, expires)) if *expires <= now => token + 1,
            Some(_) => return Ok(None),
        };
        d.lease = Some((holder.to_owned(), token, now + ttl_ms));
        Ok(Some(token))
    }

    async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
        let mut d = self.lock()?;
        if let Some((h, _, expires)) = &mut d.lease {
            if h == holder {
                *expires = 0;
            }
        }
        Ok(())
    }

    async fn submit_request(&self, body: &JsonValue, _at_ms: u64) -> Result<u64, StoreError> {
        let mut d = self.lock()?;
        d.requests.push((body.clone(), None));
        Ok(d.requests.len() as u64)
    }

    async fn pending_requests(&self, limit: usize) -> Result<Vec<(u64, JsonValue)>, StoreError> {
        Ok(self
            .lock()?
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| r.1.is_none())
            .take(limit)
            .map(|(i, r)| (i as u64 + 1, r.0.clone()))
            .collect())
    }

    async fn request_result(&self, id: u64) -> Result<Option<JsonValue>, StoreError> {
        let d = self.lock()?;
        Ok(usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| d.requests.get(i))
            .and_then(|r| r.1.clone()))
    }

    async fn open_task_ids(&self) -> Result<Vec<TaskId>, StoreError> {
        Ok(self
            .lock()?
            .tasks
            .values()
            .filter(|t| !t.status.is_terminal())
            .map(|t| t.id.clone())
            .collect())
    }

    async fn tasks_updated_since(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<&Task> = d
            .tasks
            .values()
            .filter(|t| t.updated_ms >= since_ms)
            .collect();
        out.sort_by(|a, b| a.updated_ms.cmp(&b.updated_ms).then(a.id.cmp(&b.id)));
        Ok(out.into_iter().take(limit).cloned().collect())
    }
}
