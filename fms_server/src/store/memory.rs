//! In-process task store: a map guarded by a lock. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use fms_msgs::TaskId;

use super::{Store, StoreError, TaskFilter};
use crate::fleet::tasks::{Task, TaskStatus};

#[derive(Debug, Default)]
pub struct MemoryStore {
    tasks: RwLock<HashMap<TaskId, Task>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, HashMap<TaskId, Task>>, StoreError> {
        self.tasks
            .read()
            .map_err(|_| StoreError::Backend("task map lock poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_task(&self, task: &Task) -> Result<(), StoreError> {
        self.tasks
            .write()
            .map_err(|_| StoreError::Backend("task map lock poisoned".into()))?
            .insert(task.id.clone(), task.clone());
        Ok(())
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self.read()?.get(id).cloned())
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
        let map = self.read()?;
        let mut out: Vec<&Task> = map
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

    async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError> {
        let mut counts = HashMap::new();
        for t in self.read()?.values() {
            *counts.entry(t.status).or_insert(0) += 1;
        }
        Ok(counts)
    }

    async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError> {
        Ok(self
            .read()?
            .values()
            .filter(|t| t.status == TaskStatus::Completed && t.updated_ms >= since_ms)
            .count() as u64)
    }
}
