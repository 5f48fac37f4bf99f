//! Task persistence behind one trait. `memory` keeps tasks in this process; durable
//! backends (SQLite, PostgreSQL) implement the same trait.

pub mod memory;

use std::collections::HashMap;

use async_trait::async_trait;
use fms_msgs::{RobotId, TaskId};

use crate::fleet::tasks::{Task, TaskStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Which tasks to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub robot: Option<RobotId>,
    pub limit: usize,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts the task or replaces the stored copy (same id).
    async fn put_task(&self, task: &Task) -> Result<(), StoreError>;
    async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError>;
    /// Matching tasks, newest first, at most `filter.limit`.
    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError>;
    /// Number of tasks in each status.
    async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError>;
    /// Tasks that reached COMPLETED at or after `since_ms`.
    async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError>;
}
