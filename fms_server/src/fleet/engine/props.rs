//! Property tests of the task engine: random sequences of API calls, robot events
//! (including duplicates, stale epochs and nonsense), presence changes, robot reports,
//! e-stops and server restarts never lose a task, never end one twice, never give one
//! robot two tasks, and never send a task that is not open and assigned to that robot.

use std::collections::HashMap;

use fms_msgs::{EventKind, Goal, Pose, Priority, RobotEvent, RobotId, TaskId};
use proptest::prelude::*;

use super::{Effect, EngineParams, RobotView, TaskEngine, FLEET_ESTOP_SETTING};
use crate::fleet::registry::{Presence, PresenceChange};
use crate::fleet::tasks::{NewTask, Task, TaskStatus};
use crate::store::EventCursor;

const ROBOTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Create {
        robot: Option<u8>,
        prio: u8,
    },
    Cancel {
        task: u8,
    },
    CancelRobot {
        robot: u8,
    },
    Event {
        robot: u8,
        task: u8,
        kind: u8,
        duplicate: bool,
    },
    AgentRestart {
        robot: u8,
    },
    Presence {
        robot: u8,
        online: bool,
    },
    Report {
        robot: u8,
        task: Option<u8>,
        idle: bool,
    },
    Tick {
        dt: u16,
    },
    Estop(bool),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::option::of(0..ROBOTS as u8), 0u8..4).prop_map(|(robot, prio)| Op::Create { robot, prio }),
        1 => any::<u8>().prop_map(|task| Op::Cancel { task }),
        1 => (0..ROBOTS as u8).prop_map(|robot| Op::CancelRobot { robot }),
        6 => (0..ROBOTS as u8, any::<u8>(), 0u8..7, proptest::bool::weighted(0.15))
            .prop_map(|(robot, task, kind, duplicate)| Op::Event { robot, task, kind, duplicate }),
        1 => (0..ROBOTS as u8).prop_map(|robot| Op::AgentRestart { robot }),
        2 => (0..ROBOTS as u8, proptest::bool::weighted(0.7)).prop_map(|(robot, online)| Op::Presence { robot, online }),
        2 => (0..ROBOTS as u8, proptest::option::of(any::<u8>()), any::<bool>())
            .prop_map(|(robot, task, idle)| Op::Report { robot, task, idle }),
        3 => (0u16..15_000).prop_map(|dt| Op::Tick { dt }),
        1 => any::<bool>().prop_map(Op::Estop),
        1 => Just(Op::Restart),
    ]
}

/// The engine plus a model of the store built only from the effects it returned.
struct Harness {
    engine: TaskEngine,
    params: EngineParams,
    stored: HashMap<TaskId, Task>,
    cursors: HashMap<RobotId, EventCursor>,
    estop: bool,
    views: Vec<RobotView>,
    created: Vec<TaskId>,
    epochs: Vec<(u64, u64)>,
    now: u64,
}

fn rid(i: usize) -> RobotId {
    RobotId::new(format!("r{i}")).unwrap()
}

impl Harness {
    fn new() -> Self {
        let params = EngineParams {
            offline_grace_ms: 5_000,
            ..EngineParams::default()
        };
        let views = (0..ROBOTS)
            .map(|i| RobotView {
                id: rid(i),
                online: true,
                idle: true,
                estopped: false,
                charging: false,
                battery: 80.0,
                x: i as f64,
                y: 0.0,
                current_task: None,
                legacy: false,
            })
            .collect();
        Self {
            engine: TaskEngine::new(params, &[]),
            params,
            stored: HashMap::new(),
            cursors: HashMap::new(),
            estop: false,
            views,
            created: Vec::new(),
            epochs: vec![(1, 0); ROBOTS],
            now: 1,
        }
    }

    fn task_at(&self, i: u8) -> Option<TaskId> {
        (!self.created.is_empty()).then(|| self.created[i as usize % self.created.len()].clone())
    }

    /// Applies effects to the model store and checks each against the invariants.
    fn absorb(&mut self, fx: Vec<Effect>) -> Result<(), TestCaseError> {
        let first_send = fx.iter().position(|e| !e.is_write()).unwrap_or(fx.len());
        prop_assert!(
            fx[first_send..].iter().all(|e| !e.is_write()),
            "a write after a send: {fx:?}"
        );
        for e in &fx {
            match e {
                Effect::Persist(t) => {
                    if let Some(old) = self.stored.get(&t.id) {
                        prop_assert!(
                            !old.status.is_terminal(),
                            "terminal task {} changed: {:?} -> {:?}",
                            t.id,
                            old.status,
                            t.status
                        );
                        prop_assert!(t.history.len() >= old.history.len(), "history shrank");
                        prop_assert_eq!(
                            &t.history[..old.history.len()],
                            &old.history[..],
                            "history rewritten"
                        );
                    }
                    prop_assert_eq!(
                        t.history.first().map(|h| h.status),
                        Some(TaskStatus::Queued)
                    );
                    for pair in t.history.windows(2) {
                        prop_assert!(
                            pair[0].status.can_become(pair[1].status),
                            "illegal move {:?} -> {:?}",
                            pair[0].status,
                            pair[1].status
                        );
                    }
                    prop_assert_eq!(t.history.last().map(|h| h.status), Some(t.status));
                    self.stored.insert(t.id.clone(), t.clone());
                }
                Effect::Cursor(r, c) => {
                    self.cursors.insert(r.clone(), *c);
                }
                Effect::Setting(k, v) => {
                    prop_assert_eq!(k.as_str(), FLEET_ESTOP_SETTING);
                    self.estop = v.as_bool().unwrap_or(false);
                }
                _ => {}
            }
        }
        for e in &fx {
            if let Effect::SendTask(r, cmd) = e {
                let t = self.stored.get(&cmd.task_id);
                prop_assert!(
                    t.is_some_and(
                        |t| !t.status.is_terminal() && t.assigned_robot.as_ref() == Some(r)
                    ),
                    "sent {} to {r} but it is {:?}",
                    cmd.task_id,
                    t.map(|t| (t.status, t.assigned_robot.clone()))
                );
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for id in &self.created {
            prop_assert!(self.stored.contains_key(id), "task {id} was lost");
        }
        let mut open_model: Vec<&TaskId> = self
            .stored
            .values()
            .filter(|t| !t.status.is_terminal())
            .map(|t| &t.id)
            .collect();
        let mut open_engine: Vec<&TaskId> = self.engine.open_tasks().map(|t| &t.id).collect();
        open_model.sort();
        open_engine.sort();
        prop_assert_eq!(
            open_model,
            open_engine,
            "engine and store disagree on open tasks"
        );
        for e in self.engine.open_tasks() {
            prop_assert_eq!(
                Some(e),
                self.stored.get(&e.id),
                "engine holds an unpersisted change"
            );
        }
        let mut holders: HashMap<&RobotId, &TaskId> = HashMap::new();
        for t in self.stored.values() {
            if matches!(t.status, TaskStatus::Assigned | TaskStatus::Active) {
                let r = t.assigned_robot.as_ref();
                prop_assert!(
                    r.is_some(),
                    "task {} is {:?} without a robot",
                    t.id,
                    t.status
                );
                if let Some(other) = holders.insert(r.unwrap(), &t.id) {
                    prop_assert!(false, "robot {:?} holds {} and {}", r, other, t.id);
                }
            } else {
                prop_assert!(
                    t.status != TaskStatus::Queued || t.assigned_robot.is_none(),
                    "queued task keeps a robot"
                );
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        self.now += 10;
        let now = self.now;
        match op {
            Op::Create { robot, prio } => {
                let id = TaskId::new(format!("t{}", self.created.len())).unwrap();
                let new = NewTask {
                    robot_id: robot.map(|r| rid(r as usize)),
                    goal: Goal::Pose(Pose::new(prio as f64, 1.0, 0.0)),
                    priority: [
                        Priority::Low,
                        Priority::Normal,
                        Priority::High,
                        Priority::Urgent,
                    ][prio as usize],
                    timeout_s: (prio == 3).then_some(20.0),
                    parameters: Default::default(),
                    queue_if_busy: true,
                    retries: prio as u32 % 2,
                    location: None,
                    idempotency_key: None,
                };
                if let Ok((task, fx)) = self.engine.create(id.clone(), new, &self.views, now) {
                    self.absorb(fx)?;
                    prop_assert_eq!(self.stored.get(&id).map(|t| t.id.clone()), Some(task.id));
                    self.created.push(id);
                }
            }
            Op::Cancel { task } => {
                if let Some(id) = self.task_at(task) {
                    if let Ok((_, fx)) = self.engine.cancel(&id, now) {
                        self.absorb(fx)?;
                    }
                }
            }
            Op::CancelRobot { robot } => {
                if let Ok(fx) = self.engine.cancel_robot(&rid(robot as usize), now) {
                    self.absorb(fx)?;
                }
            }
            Op::Event {
                robot,
                task,
                kind,
                duplicate,
            } => {
                let Some(task_id) = self.task_at(task) else {
                    return Ok(());
                };
                let r = robot as usize;
                let (epoch, seq) = &mut self.epochs[r];
                if !duplicate || *seq == 0 {
                    *seq += 1;
                }
                let event = match kind {
                    0 => EventKind::TaskAccepted { task_id },
                    1 => EventKind::TaskStarted { task_id },
                    2 => EventKind::TaskProgress {
                        task_id,
                        progress: 0.5,
                    },
                    3 => EventKind::TaskCompleted { task_id },
                    4 => EventKind::TaskFailed {
                        task_id,
                        reason: "blocked".into(),
                    },
                    5 => EventKind::TaskCanceled { task_id },
                    _ => EventKind::TaskRejected {
                        task_id,
                        reason: "busy".into(),
                    },
                };
                let ev = RobotEvent {
                    epoch: *epoch,
                    seq: *seq,
                    stamp_ms: now,
                    event,
                };
                if let Ok(fx) = self.engine.on_event(&rid(r), &ev, now) {
                    self.absorb(fx)?;
                }
            }
            Op::AgentRestart { robot } => {
                let e = &mut self.epochs[robot as usize];
                *e = (e.0 + 1, 0);
            }
            Op::Presence { robot, online } => {
                let v = &mut self.views[robot as usize];
                let from = Some(if v.online {
                    Presence::Online
                } else {
                    Presence::Offline
                });
                v.online = online;
                let change = PresenceChange {
                    robot_id: v.id.clone(),
                    from,
                    to: if online {
                        Presence::Online
                    } else {
                        Presence::Offline
                    },
                };
                let fx = self.engine.on_presence(&change, now);
                self.absorb(fx)?;
            }
            Op::Report { robot, task, idle } => {
                let current = task.and_then(|t| self.task_at(t));
                let v = &mut self.views[robot as usize];
                v.idle = idle && current.is_none();
                v.current_task = current;
            }
            Op::Tick { dt } => {
                self.now += dt as u64;
                let fx = self.engine.tick(&self.views, self.now);
                self.absorb(fx)?;
            }
            Op::Estop(engage) => {
                let fx = self.engine.set_fleet_estop(engage, &self.views, now);
                self.absorb(fx)?;
                for v in &mut self.views {
                    v.estopped = engage;
                }
            }
            Op::Restart => {
                let open = self
                    .stored
                    .values()
                    .filter(|t| !t.status.is_terminal())
                    .cloned()
                    .collect();
                self.engine = TaskEngine::restore(
                    self.params,
                    &[],
                    open,
                    self.cursors.clone(),
                    self.estop,
                    now,
                );
            }
        }
        self.check()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_loses_or_duplicates_a_task(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        for op in ops {
            h.apply(op)?;
        }
    }
}
