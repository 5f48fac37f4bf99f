//! Assignment of queued tasks to free robots by cost: travel distance from the robot's pose
//! to the task's first goal, plus a penalty for a low battery margin.

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
    /// Below the battery threshold: it may only take its own charging task.
    pub low_battery: bool,
    /// Speaks the legacy protocol: it takes only the tasks it can run.
    pub legacy: bool,
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

/// Greedy assignment in queue order (the caller sorts by priority, then age). A task that
/// names a robot waits for that robot; others take the cheapest free robot. Robots with a
/// low battery take only charging tasks (`is_charge`); legacy robots only the tasks they
/// can run (`legacy_can_run`).
pub fn assign(
    queue: &[&Task],
    mut free: Vec<Candidate>,
    is_charge: impl Fn(&Task) -> bool,
    legacy_can_run: impl Fn(&Task) -> bool,
) -> Vec<(TaskId, RobotId)> {
    let mut plan = Vec::new();
    for task in queue {
        if free.is_empty() {
            break;
        }
        let charge = is_charge(task);
        let legacy_ok = legacy_can_run(task);
        let pick = match &task.robot_id {
            Some(want) => free.iter().position(|c| {
                &c.id == want && (charge || !c.low_battery) && (legacy_ok || !c.legacy)
            }),
            None => free
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.low_battery && (legacy_ok || !c.legacy))
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
