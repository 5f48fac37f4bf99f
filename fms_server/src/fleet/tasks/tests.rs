//! Tests of the task lifecycle, the engine and dispatch, in simulated time.

use fms_msgs::{Goal, Pose, Priority, RobotEvent};

use super::*;

fn rid(s: &str) -> RobotId {
    RobotId::new(s).unwrap()
}

fn tid(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn robot(id: &str, x: f64, battery: f64) -> RobotView {
    RobotView {
        id: rid(id),
        online: true,
        idle: true,
        estopped: false,
        battery,
        x,
        y: 0.0,
    }
}

fn new_task(robot: Option<&str>, x: f64, priority: Priority) -> NewTask {
    NewTask {
        robot_id: robot.map(rid),
        goal: Goal::Pose(Pose::new(x, 0.0, 0.0)),
        priority,
        timeout_s: None,
        parameters: Default::default(),
        queue_if_busy: true,
    }
}

fn ev(epoch: u64, seq: u64, event: EventKind) -> RobotEvent {
    RobotEvent {
        epoch,
        seq,
        stamp_ms: 0,
        event,
    }
}

fn sent_tasks(fx: &[Effect]) -> Vec<(RobotId, TaskId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SendTask(r, c) => Some((r.clone(), c.task_id.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn lifecycle_allows_only_forward_moves() {
    use TaskStatus::*;
    assert!(Queued.can_become(Assigned));
    assert!(Assigned.can_become(Active));
    assert!(Active.can_become(Completed));
    assert!(!Queued.can_become(Active));
    assert!(!Active.can_become(Queued));
    for t in [Completed, Failed, Canceled] {
        assert!(
            TaskStatus::ALL.iter().all(|to| !t.can_become(*to)),
            "{t:?} is terminal"
        );
    }
    assert_eq!("active".parse::<TaskStatus>(), Ok(Active));
}

#[test]
fn task_runs_through_its_life_and_is_persisted_before_sent() {
    let mut e = TaskEngine::new(EngineParams::default());
    let robots = [robot("a", 0.0, 90.0)];
    let (task, fx) = e
        .create(
            tid("t1"),
            new_task(Some("a"), 5.0, Priority::Normal),
            &robots,
            10,
        )
        .unwrap();
    assert_eq!(task.status, TaskStatus::Assigned);
    let first_send = fx
        .iter()
        .position(|e| matches!(e, Effect::SendTask(..)))
        .unwrap();
    let last_persist = fx
        .iter()
        .rposition(|e| matches!(e, Effect::Persist(_)))
        .unwrap();
    assert!(last_persist < first_send, "sent before persisted: {fx:?}");
    assert_eq!(sent_tasks(&fx), vec![(rid("a"), tid("t1"))]);

    let a = rid("a");
    e.on_event(
        &a,
        &ev(7, 1, EventKind::TaskAccepted { task_id: tid("t1") }),
        11,
    )
    .unwrap();
    let fx = e
        .on_event(
            &a,
            &ev(7, 2, EventKind::TaskStarted { task_id: tid("t1") }),
            12,
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::Persist(t)] if t.status == TaskStatus::Active));
    let fx = e
        .on_event(
            &a,
            &ev(
                7,
                3,
                EventKind::TaskProgress {
                    task_id: tid("t1"),
                    progress: 0.5,
                },
            ),
            13,
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::Persist(t)] if t.progress == 0.5));
    let fx = e
        .on_event(
            &a,
            &ev(7, 4, EventKind::TaskCompleted { task_id: tid("t1") }),
            14,
        )
        .unwrap();
    let Effect::Persist(done) = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!((done.status, done.progress), (TaskStatus::Completed, 1.0));
    let statuses: Vec<TaskStatus> = done.history.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            TaskStatus::Queued,
            TaskStatus::Assigned,
            TaskStatus::Active,
            TaskStatus::Completed
        ]
    );
    assert_eq!(e.open_tasks().count(), 0);
}

#[test]
fn duplicate_and_stale_events_apply_once() {
    let mut e = TaskEngine::new(EngineParams::default());
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t1"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let a = rid("a");
    let started = ev(5, 1, EventKind::TaskStarted { task_id: tid("t1") });
    assert!(e.on_event(&a, &started, 1).is_some());
    assert!(e.on_event(&a, &started, 2).is_none(), "duplicate applied");
    assert!(
        e.on_event(
            &a,
            &ev(4, 9, EventKind::TaskCompleted { task_id: tid("t1") }),
            3
        )
        .is_none(),
        "old epoch applied"
    );
    // A new agent run (higher epoch) restarts seq at 1.
    let fx = e
        .on_event(
            &a,
            &ev(6, 1, EventKind::TaskCompleted { task_id: tid("t1") }),
            4,
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::Persist(t)] if t.status == TaskStatus::Completed));
}

#[test]
fn invalid_moves_are_refused() {
    let mut e = TaskEngine::new(EngineParams::default());
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t1"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let a = rid("a");
    e.on_event(
        &a,
        &ev(1, 1, EventKind::TaskCompleted { task_id: tid("t1") }),
        1,
    )
    .unwrap();
    // Finished tasks are no longer open: cancel says not found (the API then looks in the store).
    assert_eq!(
        e.cancel(&tid("t1"), 2).unwrap_err(),
        TaskError::TaskNotFound(tid("t1"))
    );
    // An event from a robot the task is not assigned to changes nothing.
    e.create(
        tid("t2"),
        new_task(Some("a"), 1.0, Priority::Normal),
        &robots,
        3,
    )
    .unwrap();
    let fx = e
        .on_event(
            &rid("b"),
            &ev(1, 1, EventKind::TaskCompleted { task_id: tid("t2") }),
            4,
        )
        .unwrap();
    assert!(fx.is_empty());
}

#[test]
fn create_checks_the_named_robot() {
    let mut e = TaskEngine::new(EngineParams::default());
    let mut offline = robot("off", 0.0, 90.0);
    offline.online = false;
    let robots = [robot("a", 0.0, 90.0), robot("low", 0.0, 5.0), offline];
    let mk = |r: &str| new_task(Some(r), 1.0, Priority::Normal);
    assert_eq!(
        e.create(tid("x1"), mk("zz"), &robots, 0).unwrap_err(),
        TaskError::RobotNotFound(rid("zz"))
    );
    assert_eq!(
        e.create(tid("x2"), mk("off"), &robots, 0).unwrap_err(),
        TaskError::RobotOffline(rid("off"))
    );
    assert!(matches!(
        e.create(tid("x3"), mk("low"), &robots, 0),
        Err(TaskError::LowBattery { .. })
    ));
    e.create(tid("x4"), mk("a"), &robots, 0).unwrap();
    let mut strict = mk("a");
    strict.queue_if_busy = false;
    assert_eq!(
        e.create(tid("x5"), strict, &robots, 1).unwrap_err(),
        TaskError::RobotBusy(rid("a"))
    );
    // Queued behind the running task instead.
    let (t, fx) = e.create(tid("x6"), mk("a"), &robots, 2).unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    assert!(sent_tasks(&fx).is_empty());
}

#[test]
fn dispatch_prefers_priority_then_age_then_nearest_robot() {
    let mut e = TaskEngine::new(EngineParams::default());
    // No robots: everything queues.
    e.create(tid("low"), new_task(None, 10.0, Priority::Low), &[], 0)
        .unwrap();
    e.create(tid("old"), new_task(None, 10.0, Priority::Normal), &[], 1)
        .unwrap();
    e.create(tid("new"), new_task(None, 0.0, Priority::Normal), &[], 2)
        .unwrap();
    e.create(tid("urgent"), new_task(None, 0.0, Priority::Urgent), &[], 3)
        .unwrap();
    let robots = [robot("near0", 0.0, 90.0), robot("near10", 10.0, 90.0)];
    let sent = sent_tasks(&e.dispatch(&robots, 4));
    // Urgent first: nearest to x=0 is near0. Then the older normal task gets near10.
    assert_eq!(
        sent,
        vec![(rid("near0"), tid("urgent")), (rid("near10"), tid("old"))]
    );
}

#[test]
fn dispatch_skips_unavailable_robots_and_weighs_battery() {
    let mut e = TaskEngine::new(EngineParams::default());
    let mut busy = robot("busy", 0.0, 90.0);
    busy.idle = false;
    let mut stopped = robot("stopped", 0.0, 90.0);
    stopped.estopped = true;
    let robots = [
        busy,
        stopped,
        robot("weak", 1.0, 25.0),
        robot("strong", 2.0, 100.0),
    ];
    let (_, fx) = e
        .create(tid("t"), new_task(None, 0.0, Priority::Normal), &robots, 0)
        .unwrap();
    // weak: 1 m + 75% * 0.05 = 4.75; strong: 2 m + 0 = 2.
    assert_eq!(sent_tasks(&fx), vec![(rid("strong"), tid("t"))]);
}

#[test]
fn rejection_requeues_then_fails_after_max_attempts() {
    let mut e = TaskEngine::new(EngineParams {
        max_attempts: 2,
        ..EngineParams::default()
    });
    let robots = [robot("a", 0.0, 90.0)];
    let a = rid("a");
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let reject = |seq| {
        ev(
            1,
            seq,
            EventKind::TaskRejected {
                task_id: tid("t"),
                reason: "busy".into(),
            },
        )
    };
    let fx = e.on_event(&a, &reject(1), 1).unwrap();
    assert!(
        matches!(&fx[..], [Effect::Persist(t)] if t.status == TaskStatus::Queued && t.assigned_robot.is_none())
    );
    let fx = e.dispatch(&robots, 2);
    assert_eq!(sent_tasks(&fx).len(), 1);
    let fx = e.on_event(&a, &reject(2), 3).unwrap();
    assert!(
        matches!(&fx[..], [Effect::Persist(t)] if t.status == TaskStatus::Failed && t.attempts == 2)
    );
}

#[test]
fn cancel_queued_at_once_and_running_via_robot() {
    let mut e = TaskEngine::new(EngineParams::default());
    e.create(tid("q"), new_task(None, 1.0, Priority::Normal), &[], 0)
        .unwrap();
    let (t, fx) = e.cancel(&tid("q"), 1).unwrap();
    assert_eq!(t.status, TaskStatus::Canceled);
    assert!(matches!(&fx[..], [Effect::Persist(_)]));
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("r"), new_task(None, 1.0, Priority::Normal), &robots, 2)
        .unwrap();
    let fx = e.cancel_robot(&rid("a"), 3).unwrap();
    assert!(
        matches!(&fx[..], [Effect::SendCancel(r, c)] if *r == rid("a") && c.task_id == Some(tid("r")))
    );
    let fx = e
        .on_event(
            &rid("a"),
            &ev(1, 1, EventKind::TaskCanceled { task_id: tid("r") }),
            4,
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::Persist(t)] if t.status == TaskStatus::Canceled));
}

#[test]
fn fleet_estop_pauses_dispatch_and_reaches_late_robots() {
    let mut e = TaskEngine::new(EngineParams::default());
    let robots = [robot("a", 0.0, 90.0), robot("b", 0.0, 90.0)];
    let fx = e.set_fleet_estop(true, &robots, 0);
    let stops = fx
        .iter()
        .filter(|f| matches!(f, Effect::SendEstop(_, c) if c.engage))
        .count();
    assert_eq!(stops, 2);
    let (t, fx) = e
        .create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 1)
        .unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    assert!(sent_tasks(&fx).is_empty());
    assert_eq!(e.on_robot_online(&rid("c")).len(), 1);
    let fx = e.set_fleet_estop(false, &robots, 2);
    assert_eq!(sent_tasks(&fx).len(), 1, "release resumes dispatch");
    assert!(e.on_robot_online(&rid("c")).is_empty());
}
