//! `fms_server bench-dispatch`: times one dispatch batch on a synthetic fleet and prints
//! the figures. A benchmark command, not a test: it asserts nothing.

use std::time::{Duration, Instant};

use fms_msgs::codec::encode_text;
use fms_msgs::{Goal, Pose, Priority, RobotId, TaskId};
use serde::Serialize;

use crate::fleet::engine::{EngineParams, RobotView, TaskEngine};
use crate::fleet::tasks::NewTask;

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct DispatchFigures {
    pub tasks: usize,
    pub robots: usize,
    pub assigned: usize,
    pub runs: Vec<Duration>,
}

impl DispatchFigures {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.runs.clone();
        v.sort();
        v
    }

    pub fn min(&self) -> Duration {
        self.sorted().first().copied().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.sorted().last().copied().unwrap_or_default()
    }

    /// A readable table followed by one JSON line.
    pub fn report(&self) -> String {
        #[derive(Serialize)]
        struct Json {
            bench: &'static str,
            tasks: usize,
            robots: usize,
            runs: usize,
            assigned: usize,
            min_ms: f64,
            median_ms: f64,
            max_ms: f64,
        }
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let json = Json {
            bench: "dispatch",
            tasks: self.tasks,
            robots: self.robots,
            runs: self.runs.len(),
            assigned: self.assigned,
            min_ms: ms(self.min()),
            median_ms: ms(self.median()),
            max_ms: ms(self.max()),
        };
        format!(
            "dispatch benchmark: {} queued tasks, {} idle robots, {} runs, one thread\n  \
             assigned per batch  {}\n  batch time          min {:.3} ms   median {:.3} ms   max {:.3} ms\n{}\n",
            json.tasks,
            json.robots,
            json.runs,
            json.assigned,
            json.min_ms,
            json.median_ms,
            json.max_ms,
            encode_text(&json)
        )
    }
}

/// Deterministic pseudo-random numbers in [0, 1) (xorshift), so runs are comparable.
fn rng(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Queues `tasks` tasks (mixed priorities, spread over a 100 m x 100 m site), then times the
/// dispatch batch that assigns them across `robots` idle robots. Repeats `runs` times.
pub fn dispatch(tasks: usize, robots: usize, runs: usize) -> DispatchFigures {
    let mut times = Vec::with_capacity(runs);
    let mut assigned = 0;
    for run in 0..runs.max(1) {
        let mut seed = 0x9E37_79B9_7F4A_7C15 ^ run as u64;
        let mut engine = TaskEngine::new(EngineParams::default(), &[]);
        for i in 0..tasks {
            let new = NewTask {
                robot_id: None,
                goal: Goal::Pose(Pose::new(
                    100.0 * rng(&mut seed),
                    100.0 * rng(&mut seed),
                    0.0,
                )),
                priority: [
                    Priority::Low,
                    Priority::Normal,
                    Priority::High,
                    Priority::Urgent,
                ][i % 4],
                timeout_s: None,
                parameters: Default::default(),
                queue_if_busy: true,
                retries: 0,
                location: None,
                idempotency_key: None,
            };
            let id = TaskId::new(format!("task-{i}")).expect("valid id");
            // No robots yet: every task stays queued.
            let _ = engine.create(id, new, &[], i as u64);
        }
        let views: Vec<RobotView> = (0..robots)
            .map(|i| RobotView {
                id: RobotId::new(format!("robot-{i}")).expect("valid id"),
                online: true,
                idle: true,
                estopped: false,
                charging: false,
                battery: 30.0 + 70.0 * rng(&mut seed),
                x: 100.0 * rng(&mut seed),
                y: 100.0 * rng(&mut seed),
                current_task: None,
                legacy: false,
            })
            .collect();
        let start = Instant::now();
        let fx = engine.dispatch(&views, tasks as u64 + 1);
        times.push(start.elapsed());
        assigned = fx
            .iter()
            .filter(|e| matches!(e, crate::fleet::engine::Effect::SendTask(..)))
            .count();
    }
    DispatchFigures {
        tasks,
        robots,
        assigned,
        runs: times,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_assigns_min_of_tasks_and_robots() {
        let f = super::dispatch(30, 20, 2);
        assert_eq!((f.assigned, f.runs.len()), (20, 2));
        let f = super::dispatch(10, 50, 1);
        assert_eq!(f.assigned, 10);
    }
}
