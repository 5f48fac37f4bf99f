//! What the engine's example tests share: ids, a robot view, the engine, and readers of the
//! effects it returns.

use fms_msgs::{RobotId, TaskId};

use super::{Effect, EngineParams, RobotView, TaskEngine};
use crate::fleet::tasks::Task;

pub fn rid(s: &str) -> RobotId {
    RobotId::new(s).unwrap()
}

pub fn tid(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

/// An online, idle robot at (x, 0) that is not e-stopped or charging.
pub fn idle_robot(id: &str, x: f64, battery: f64, legacy: bool) -> RobotView {
    RobotView {
        id: rid(id),
        online: true,
        idle: true,
        estopped: false,
        charging: false,
        battery,
        x,
        y: 0.0,
        current_task: None,
        legacy,
    }
}

pub fn sent_tasks(fx: &[Effect]) -> Vec<(RobotId, TaskId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SendTask(r, c) => Some((r.clone(), c.task_id.clone())),
            _ => None,
        })
        .collect()
}

pub fn persisted(fx: &[Effect]) -> Vec<&Task> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Persist(t) => Some(t),
            _ => None,
        })
        .collect()
}

pub fn engine() -> TaskEngine {
    TaskEngine::new(EngineParams::default(), &[])
}
