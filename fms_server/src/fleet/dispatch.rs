//! Assignment of queued tasks to available robots by cost: travel distance from the robot's
//! pose to the task's first goal, plus a penalty for a low battery.

use fms_msgs::{RobotId, TaskId};

use super::tasks::Task;

/// Metres of travel one percent of missing battery is worth.
const BATTERY_PENALTY_M_PER_PERCENT: f64 = 0.05;

/// A robot free to take a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: RobotId,
    pub x: f64,
    pub y: f64,
    pub battery: f64,
}

/// The cost of sending `robot` to `task`; lower is better.
pub fn cost(robot: &Candidate, task: &Task) -> f64 {
    let travel = task
        .goal
        .poses()
        .first()
        .map(|p| (p.x - robot.x).hypot(p.y - robot.y))
        .unwrap_or(0.0);
    travel + (100.0 - robot.battery).max(0.0) * BATTERY_PENALTY_M_PER_PERCENT
}

/// Greedy assignment in queue order (the caller sorts by priority, then age).
/// A task that names a robot waits for that robot; others take the cheapest free robot.
pub fn assign(queue: &[&Task], mut free: Vec<Candidate>) -> Vec<(TaskId, RobotId)> {
    let mut plan = Vec::new();
    for task in queue {
        if free.is_empty() {
            break;
        }
        let pick = match &task.robot_id {
            Some(want) => free.iter().position(|c| &c.id == want),
            None => free
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| {
                    cost(a, task)
                        .total_cmp(&cost(b, task))
                        .then(a.id.cmp(&b.id))
                })
                .map(|(i, _)| i),
        };
        if let Some(i) = pick {
            let robot = free.swap_remove(i);
            plan.push((task.id.clone(), robot.id));
        }
    }
    plan
}
