//! Tests of the task engine in simulated time: lifecycle, dispatch, acknowledgements and
//! resends, lost robots, reconciliation, retries, preemption, charging and restore.

use fms_msgs::{EventKind, Goal, Pose, Priority, RobotEvent};

use super::test_support::*;
use super::*;
use crate::fleet::registry::PresenceChange;

fn robot(id: &str, x: f64, battery: f64) -> RobotView {
    idle_robot(id, x, battery, false)
}

fn new_task(robot: Option<&str>, x: f64, priority: Priority) -> NewTask {
    NewTask {
        robot_id: robot.map(rid),
        goal: Goal::Pose(Pose::new(x, 0.0, 0.0)),
        priority,
        timeout_s: None,
        parameters: Default::default(),
        queue_if_busy: true,
        retries: 0,
        location: None,
        idempotency_key: None,
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

fn busy(mut r: RobotView, task: &str) -> RobotView {
    r.idle = false;
    r.current_task = Some(tid(task));
    r
}

#[test]
fn lifecycle_allows_only_the_documented_moves() {
    use TaskStatus::*;
    assert!(Queued.can_become(Assigned));
    assert!(Assigned.can_become(Active));
    assert!(Active.can_become(Completed));
    assert!(Active.can_become(Queued), "requeue");
    assert!(!Queued.can_become(Active));
    assert!(!Queued.can_become(Completed));
    for t in [Completed, Failed, Canceled] {
        assert!(
            TaskStatus::ALL.iter().all(|to| !t.can_become(*to)),
            "{t:?} is terminal"
        );
    }
    assert_eq!("active".parse::<TaskStatus>(), Ok(Active));
}

#[test]
fn task_runs_through_its_life_and_writes_come_before_sends() {
    let mut e = engine();
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
    let first_send = fx.iter().position(|e| !e.is_write()).unwrap();
    assert!(
        fx[first_send..].iter().all(|e| !e.is_write()),
        "sent before persisted: {fx:?}"
    );
    assert_eq!(sent_tasks(&fx), vec![(rid("a"), tid("t1"))]);

    let a = rid("a");
    let fx = e
        .on_event(
            &a,
            &ev(7, 1, EventKind::TaskAccepted { task_id: tid("t1") }),
            11,
        )
        .unwrap();
    assert!(matches!(&fx[..], [Effect::Cursor(_, c)] if c.seq == 1));
    let fx = e
        .on_event(
            &a,
            &ev(7, 2, EventKind::TaskStarted { task_id: tid("t1") }),
            12,
        )
        .unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Active);
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
    assert_eq!(persisted(&fx)[0].progress, 0.5);
    let fx = e
        .on_event(
            &a,
            &ev(7, 4, EventKind::TaskCompleted { task_id: tid("t1") }),
            14,
        )
        .unwrap();
    let done = persisted(&fx)[0];
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
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t1"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let a = rid("a");
    let started = ev(5, 1, EventKind::TaskStarted { task_id: tid("t1") });
    assert!(e.on_event(&a, &started, 1).is_ok());
    assert_eq!(
        e.on_event(&a, &started, 2),
        Err(Refused::Duplicate),
        "duplicate applied"
    );
    let old = ev(4, 9, EventKind::TaskCompleted { task_id: tid("t1") });
    assert_eq!(
        e.on_event(&a, &old, 3),
        Err(Refused::Duplicate),
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
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Completed);
}

#[test]
fn unacknowledged_task_is_resent_with_backoff_until_acked() {
    let mut e = engine(); // resend 500 ms, doubling, max 8 s
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let mut sends = Vec::new();
    for now in (100..=4_000).step_by(100) {
        if !sent_tasks(&e.tick(&[busy(robot("a", 0.0, 90.0), "other")], now)).is_empty() {
            sends.push(now);
        }
    }
    assert_eq!(sends, vec![500, 1_500, 3_500], "backoff 500, 1000, 2000 ms");
    e.on_event(
        &rid("a"),
        &ev(1, 1, EventKind::TaskAccepted { task_id: tid("t") }),
        4_000,
    )
    .unwrap();
    for now in (4_100..=20_000).step_by(100) {
        assert!(
            sent_tasks(&e.tick(&[], now)).is_empty(),
            "resent after ack at {now}"
        );
    }
}

#[test]
fn cancel_is_resent_until_the_robot_ends_the_task() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    e.on_event(
        &rid("a"),
        &ev(1, 1, EventKind::TaskStarted { task_id: tid("t") }),
        1,
    )
    .unwrap();
    let (_, fx) = e.cancel(&tid("t"), 10).unwrap();
    assert!(matches!(&fx[..], [Effect::SendCancel(..)]));
    let running = [busy(robot("a", 0.0, 90.0), "t")];
    let resent = (11..3_000)
        .step_by(100)
        .filter(|now| {
            e.tick(&running, *now)
                .iter()
                .any(|f| matches!(f, Effect::SendCancel(..)))
        })
        .count();
    assert!(resent >= 2, "cancel resent {resent} times");
    let fx = e
        .on_event(
            &rid("a"),
            &ev(1, 2, EventKind::TaskCanceled { task_id: tid("t") }),
            3_000,
        )
        .unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Canceled);
    assert!(!e
        .tick(&[robot("a", 0.0, 90.0)], 20_000)
        .iter()
        .any(|f| matches!(f, Effect::SendCancel(..))));
}

#[test]
fn robot_offline_past_grace_loses_its_task_to_another() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    e.on_event(
        &rid("a"),
        &ev(1, 1, EventKind::TaskStarted { task_id: tid("t") }),
        1,
    )
    .unwrap();
    let off = PresenceChange {
        robot_id: rid("a"),
        from: Some(Presence::Online),
        to: Presence::Offline,
    };
    e.on_presence(&off, 1_000);
    let mut a_off = robot("a", 0.0, 90.0);
    a_off.online = false;
    let fleet = [a_off, robot("b", 5.0, 90.0)];
    assert!(
        sent_tasks(&e.tick(&fleet, 10_999)).is_empty(),
        "requeued before the grace"
    );
    let fx = e.tick(&fleet, 11_000);
    assert_eq!(sent_tasks(&fx), vec![(rid("b"), tid("t"))]);
    let t = (*persisted(&fx).last().unwrap()).clone();
    assert_eq!((t.status, t.attempts), (TaskStatus::Assigned, 2));
    assert!(t
        .history
        .iter()
        .any(|h| h.note.as_deref() == Some("robot offline")));
    // The old robot comes back still running it: it is told to stop.
    let fx = e
        .on_event(
            &rid("a"),
            &ev(
                1,
                2,
                EventKind::TaskProgress {
                    task_id: tid("t"),
                    progress: 0.9,
                },
            ),
            12_000,
        )
        .unwrap();
    assert!(fx.iter().any(
        |f| matches!(f, Effect::SendCancel(r, c) if *r == rid("a") && c.task_id == Some(tid("t")))
    ));
}

#[test]
fn attempts_run_out() {
    let mut e = TaskEngine::new(
        EngineParams {
            max_attempts: 2,
            ..EngineParams::default()
        },
        &[],
    );
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
    let t = persisted(&fx)[0];
    assert_eq!(
        (t.status, t.assigned_robot.clone()),
        (TaskStatus::Queued, None)
    );
    assert_eq!(sent_tasks(&e.dispatch(&robots, 2)).len(), 1);
    let fx = e.on_event(&a, &reject(2), 3).unwrap();
    let t = persisted(&fx)[0];
    assert_eq!((t.status, t.attempts), (TaskStatus::Failed, 2));
}

#[test]
fn navigation_failures_are_retried_per_task() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    let a = rid("a");
    let mut nt = new_task(None, 1.0, Priority::Normal);
    nt.retries = 1;
    e.create(tid("t"), nt, &robots, 0).unwrap();
    let fail = |seq| {
        ev(
            1,
            seq,
            EventKind::TaskFailed {
                task_id: tid("t"),
                reason: "blocked".into(),
            },
        )
    };
    let fx = e.on_event(&a, &fail(1), 1).unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Queued);
    e.dispatch(&robots, 2);
    let fx = e.on_event(&a, &fail(2), 3).unwrap();
    let t = persisted(&fx)[0];
    assert_eq!(
        (t.status, t.failures, t.error.as_deref()),
        (TaskStatus::Failed, 1, Some("blocked"))
    );
    // An e-stop failure is never retried.
    let mut nt = new_task(None, 1.0, Priority::Normal);
    nt.retries = 5;
    e.create(tid("s"), nt, &robots, 4).unwrap();
    let fx = e
        .on_event(
            &a,
            &ev(
                1,
                3,
                EventKind::TaskFailed {
                    task_id: tid("s"),
                    reason: "emergency stop engaged".into(),
                },
            ),
            5,
        )
        .unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Failed);
}

#[test]
fn reconcile_resends_a_task_the_robot_forgot_and_cancels_strays() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    e.on_event(
        &rid("a"),
        &ev(1, 1, EventKind::TaskStarted { task_id: tid("t") }),
        1,
    )
    .unwrap();
    // The agent restarted: it is idle and reports no task.
    assert!(sent_tasks(&e.tick(&robots, 1_000)).is_empty());
    assert!(
        sent_tasks(&e.tick(&robots, 3_999)).is_empty(),
        "resent before the grace"
    );
    assert_eq!(
        sent_tasks(&e.tick(&robots, 4_000)),
        vec![(rid("a"), tid("t"))]
    );
    // A robot reporting a task that is not its own is told to cancel it, after the grace.
    let stray = [busy(robot("b", 0.0, 90.0), "ghost")];
    let cancels = |fx: &[Effect]| {
        fx.iter()
            .filter(|f| matches!(f, Effect::SendCancel(r, _) if *r == rid("b")))
            .count()
    };
    assert_eq!(cancels(&e.tick(&stray, 5_000)), 0);
    assert_eq!(cancels(&e.tick(&stray, 8_000)), 1);
}

#[test]
fn state_reporting_the_task_counts_as_acknowledgement() {
    let mut e = engine();
    e.create(
        tid("t"),
        new_task(None, 1.0, Priority::Normal),
        &[robot("a", 0.0, 90.0)],
        0,
    )
    .unwrap();
    let fx = e.tick(&[busy(robot("a", 0.0, 90.0), "t")], 100);
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Active);
    assert!(sent_tasks(&e.tick(&[busy(robot("a", 0.0, 90.0), "t")], 60_000)).is_empty());
}

#[test]
fn server_side_timeout_backstop() {
    let mut e = engine();
    let mut nt = new_task(None, 1.0, Priority::Normal);
    nt.timeout_s = Some(10.0);
    e.create(tid("t"), nt, &[robot("a", 0.0, 90.0)], 0).unwrap();
    e.on_event(
        &rid("a"),
        &ev(1, 1, EventKind::TaskStarted { task_id: tid("t") }),
        1_000,
    )
    .unwrap();
    let running = [busy(robot("a", 0.0, 90.0), "t")];
    assert!(persisted(&e.tick(&running, 15_000)).is_empty());
    let fx = e.tick(&running, 16_001);
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Failed);
    assert!(fx.iter().any(|f| matches!(f, Effect::SendCancel(..))));
}

#[test]
fn create_checks_the_named_robot() {
    let mut e = engine();
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
    let (t, fx) = e.create(tid("x6"), mk("a"), &robots, 2).unwrap();
    assert_eq!(
        t.status,
        TaskStatus::Queued,
        "queues behind the running task"
    );
    assert!(sent_tasks(&fx).is_empty());
}

#[test]
fn dispatch_prefers_priority_then_age_then_nearest_robot() {
    let mut e = engine();
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
    assert_eq!(
        sent,
        vec![(rid("near0"), tid("urgent")), (rid("near10"), tid("old"))]
    );
}

#[test]
fn dispatch_skips_unavailable_and_low_robots_and_weighs_battery() {
    let mut e = engine();
    let mut stopped = robot("stopped", 0.0, 90.0);
    stopped.estopped = true;
    let robots = [
        busy(robot("busy", 0.0, 90.0), "x"),
        stopped,
        robot("flat", 0.0, 10.0),
        robot("weak", 1.0, 25.0),
        robot("strong", 2.0, 100.0),
    ];
    let (_, fx) = e
        .create(tid("t"), new_task(None, 0.0, Priority::Normal), &robots, 0)
        .unwrap();
    // weak: 1 m + 75% * 0.05 = 4.75; strong: 2 m + 0 = 2; flat is under 20%.
    assert_eq!(sent_tasks(&fx), vec![(rid("strong"), tid("t"))]);
}

#[test]
fn urgent_preempts_low_only_when_configured() {
    for preempt in [false, true] {
        let mut e = TaskEngine::new(
            EngineParams {
                preempt,
                ..EngineParams::default()
            },
            &[],
        );
        e.create(
            tid("low"),
            new_task(None, 1.0, Priority::Low),
            &[robot("a", 0.0, 90.0)],
            0,
        )
        .unwrap();
        e.on_event(
            &rid("a"),
            &ev(
                1,
                1,
                EventKind::TaskStarted {
                    task_id: tid("low"),
                },
            ),
            1,
        )
        .unwrap();
        let running = [busy(robot("a", 0.0, 90.0), "low")];
        let (_, fx) = e
            .create(
                tid("urgent"),
                new_task(None, 2.0, Priority::Urgent),
                &running,
                2,
            )
            .unwrap();
        let cancel = fx
            .iter()
            .any(|f| matches!(f, Effect::SendCancel(_, c) if c.task_id == Some(tid("low"))));
        assert_eq!(cancel, preempt);
        if preempt {
            let fx = e
                .on_event(
                    &rid("a"),
                    &ev(
                        1,
                        2,
                        EventKind::TaskCanceled {
                            task_id: tid("low"),
                        },
                    ),
                    3,
                )
                .unwrap();
            assert_eq!(
                persisted(&fx)[0].status,
                TaskStatus::Queued,
                "a preempted task is requeued"
            );
            let fx = e.dispatch(&[robot("a", 0.0, 90.0)], 4);
            assert_eq!(sent_tasks(&fx), vec![(rid("a"), tid("urgent"))]);
        }
    }
}

#[test]
fn low_robots_go_to_the_nearest_free_charger() {
    let chargers = [
        Location {
            name: "far".into(),
            pose: Pose::new(50.0, 0.0, 0.0),
            charger: true,
        },
        Location {
            name: "near".into(),
            pose: Pose::new(3.0, 0.0, 0.0),
            charger: true,
        },
        Location {
            name: "shelf".into(),
            pose: Pose::new(1.0, 0.0, 0.0),
            charger: false,
        },
    ];
    let mut e = TaskEngine::new(EngineParams::default(), &chargers);
    let robots = [
        robot("low1", 0.0, 10.0),
        robot("low2", 1.0, 12.0),
        robot("ok", 0.0, 90.0),
    ];
    let fx = e.tick(&robots, 0);
    let sent = sent_tasks(&fx);
    assert_eq!(sent.len(), 2, "{fx:?}");
    let goals: Vec<String> = persisted(&fx)
        .iter()
        .filter(|t| t.status == TaskStatus::Assigned)
        .map(|t| {
            format!(
                "{}->{}",
                t.assigned_robot.as_ref().unwrap(),
                t.location.as_deref().unwrap()
            )
        })
        .collect();
    assert!(
        goals.contains(&"low1->near".to_string()) || goals.contains(&"low2->near".to_string()),
        "{goals:?}"
    );
    assert!(goals.iter().any(|g| g.ends_with("->far")));
    // No second charge task while one is open.
    assert!(persisted(&e.tick(&robots, 1_000))
        .iter()
        .all(|t| t.status != TaskStatus::Queued));
}

#[test]
fn fleet_estop_is_persisted_pauses_dispatch_and_is_resent_until_shown() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0), robot("b", 0.0, 90.0)];
    let fx = e.set_fleet_estop(true, &robots, 0);
    assert!(
        matches!(&fx[0], Effect::Setting(k, v) if k == FLEET_ESTOP_SETTING && *v == JsonValue::Bool(true))
    );
    assert_eq!(
        fx.iter()
            .filter(|f| matches!(f, Effect::SendEstop(_, c) if c.engage))
            .count(),
        2
    );
    let (t, fx) = e
        .create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 1)
        .unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    assert!(sent_tasks(&fx).is_empty());
    // a shows the e-stop, b does not: only b gets it again.
    let mut a = robot("a", 0.0, 90.0);
    a.estopped = true;
    let fx = e.tick(&[a, robot("b", 0.0, 90.0)], 600);
    let resent: Vec<&RobotId> = fx
        .iter()
        .filter_map(|f| match f {
            Effect::SendEstop(r, _) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![&rid("b")]);
    let fx = e.set_fleet_estop(false, &robots, 700);
    assert_eq!(sent_tasks(&fx).len(), 1, "release resumes dispatch");
}

#[test]
fn restore_resends_assigned_and_keeps_estop() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    let (t, _) = e
        .create(tid("t"), new_task(None, 1.0, Priority::Normal), &robots, 0)
        .unwrap();
    let mut e = TaskEngine::restore(
        EngineParams::default(),
        &[],
        vec![t],
        HashMap::new(),
        true,
        1_000,
    );
    assert!(e.fleet_estop());
    // Resent at once (the robot has not shown up yet: the send is harmless).
    let mut gone = robot("a", 0.0, 90.0);
    gone.online = false;
    let fx = e.tick(&[gone], 1_000);
    assert_eq!(sent_tasks(&fx), vec![(rid("a"), tid("t"))]);
    // The robot never comes back: after the grace the task is queued again.
    let fx = e.tick(&[], 11_000);
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Queued);
}

#[test]
fn has_queued_says_when_dispatch_has_work() {
    let mut e = engine();
    assert!(!e.has_queued());
    e.create(tid("t"), new_task(None, 1.0, Priority::Normal), &[], 0)
        .unwrap();
    assert!(e.has_queued());
    e.set_fleet_estop(true, &[], 1);
    assert!(!e.has_queued(), "an e-stopped fleet dispatches nothing");
}

// --- Issue 15: event sequencing cannot be poisoned; e-stopped robots keep their tasks ---

const NOW: u64 = 1_767_225_600_000;

fn completed(fx: &[Effect]) -> bool {
    persisted(fx)
        .iter()
        .any(|t| t.status == TaskStatus::Completed)
}

#[test]
fn an_implausible_event_is_refused_and_never_becomes_the_cursor() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(
        tid("t"),
        new_task(None, 1.0, Priority::Normal),
        &robots,
        NOW,
    )
    .unwrap();
    let a = rid("a");
    let epoch = NOW - 60_000;
    e.on_event(
        &a,
        &ev(epoch, 1, EventKind::TaskStarted { task_id: tid("t") }),
        NOW,
    )
    .unwrap();
    // The poison: an epoch far beyond the server's clock.
    let poison = ev(9_000_000_000_000_000_000, 1, EventKind::EstopReleased);
    assert!(matches!(
        e.on_event(&a, &poison, NOW + 1),
        Err(Refused::Implausible(_))
    ));
    // A seq no agent started a minute ago could reach.
    let far = ev(epoch, 1_000_000_000, EventKind::EstopReleased);
    assert!(matches!(
        e.on_event(&a, &far, NOW + 2),
        Err(Refused::Implausible(_))
    ));
    // The robot's real events still apply: its task ends.
    let done = ev(epoch, 2, EventKind::TaskCompleted { task_id: tid("t") });
    assert!(completed(&e.on_event(&a, &done, NOW + 3).unwrap()));
}

#[test]
fn a_poisoned_stored_cursor_is_dropped_on_restore() {
    let a = rid("a");
    let t = {
        let mut e = engine();
        let robots = [robot("a", 0.0, 90.0)];
        let (_, fx) = e
            .create(
                tid("t"),
                new_task(None, 1.0, Priority::Normal),
                &robots,
                NOW,
            )
            .unwrap();
        persisted(&fx).last().map(|t| (*t).clone()).unwrap()
    };
    let poisoned = HashMap::from([(
        a.clone(),
        EventCursor {
            epoch: 9_000_000_000_000_000_000,
            seq: 1,
        },
    )]);
    let mut e = TaskEngine::restore(EngineParams::default(), &[], vec![t], poisoned, false, NOW);
    let done = ev(
        NOW - 5_000,
        7,
        EventKind::TaskCompleted { task_id: tid("t") },
    );
    assert!(completed(&e.on_event(&a, &done, NOW).unwrap()));
}

#[test]
fn a_robot_back_from_offline_may_start_a_lower_epoch() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    e.create(
        tid("t"),
        new_task(None, 1.0, Priority::Normal),
        &robots,
        NOW,
    )
    .unwrap();
    let a = rid("a");
    // The agent's clock ran 30 s ahead (within the margin) when it started...
    let skewed = NOW + 30_000;
    e.on_event(
        &a,
        &ev(skewed, 1, EventKind::TaskStarted { task_id: tid("t") }),
        NOW,
    )
    .unwrap();
    // ...then was set right and the agent restarted: a lower epoch, stale for now.
    let fixed = NOW + 1_000;
    let done = ev(fixed, 1, EventKind::TaskCompleted { task_id: tid("t") });
    assert_eq!(e.on_event(&a, &done, NOW + 1_000), Err(Refused::Duplicate));
    // Its new session (OFFLINE, then ONLINE) lets its new epoch in.
    for (from, to) in [
        (Some(Presence::Online), Presence::Offline),
        (Some(Presence::Offline), Presence::Online),
    ] {
        e.on_presence(
            &PresenceChange {
                robot_id: a.clone(),
                from,
                to,
            },
            NOW + 1_500,
        );
    }
    assert!(completed(&e.on_event(&a, &done, NOW + 2_000).unwrap()));
}

#[test]
fn a_task_for_an_estopped_robot_waits_for_the_release() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    let a = rid("a");
    e.set_robot_estop(&a, true).unwrap();
    // The robot's state does not show the e-stop yet: the engine knows it anyway.
    let (task, fx) = e
        .create(
            tid("t"),
            new_task(Some("a"), 1.0, Priority::Normal),
            &robots,
            NOW,
        )
        .unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    assert!(
        sent_tasks(&fx).is_empty(),
        "dispatched to an e-stopped robot"
    );
    let note = task.history[0].note.clone().unwrap_or_default();
    assert!(note.contains("emergency-stopped"), "{note}");
    assert!(sent_tasks(&e.tick(&robots, NOW + 5_000)).is_empty());
    e.set_robot_estop(&a, false).unwrap();
    assert_eq!(sent_tasks(&e.tick(&robots, NOW + 6_000)).len(), 1);
}

#[test]
fn rejections_for_an_estop_spend_no_attempts() {
    let mut e = engine();
    let robots = [robot("a", 0.0, 90.0)];
    let a = rid("a");
    let (_, fx) = e
        .create(
            tid("t"),
            new_task(Some("a"), 1.0, Priority::Normal),
            &robots,
            NOW,
        )
        .unwrap();
    assert_eq!(sent_tasks(&fx).len(), 1);
    // The robot was e-stopped a moment ago (by its own button): it refuses.
    let refuse = ev(
        NOW,
        1,
        EventKind::TaskRejected {
            task_id: tid("t"),
            reason: "emergency stop engaged".into(),
        },
    );
    let fx = e.on_event(&a, &refuse, NOW + 1).unwrap();
    let t = persisted(&fx)[0];
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
    // Until the robot says it is released, nothing is sent to it again.
    for i in 0..10 {
        assert!(sent_tasks(&e.tick(&robots, NOW + 1_000 * i)).is_empty());
    }
    e.on_event(&a, &ev(NOW, 2, EventKind::EstopReleased), NOW + 20_000)
        .unwrap();
    let fx = e.tick(&robots, NOW + 21_000);
    assert_eq!(sent_tasks(&fx).len(), 1);
    assert_eq!(persisted(&fx)[0].attempts, 1);
}
