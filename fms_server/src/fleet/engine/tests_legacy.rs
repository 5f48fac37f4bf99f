//! Tests of the task engine with legacy robots (the Python FMS's protocol): their status
//! reports drive tasks exactly once, resends never restart a running task, lost robots
//! lose their tasks, e-stops hold, and tasks they cannot run are refused or go elsewhere.

use fms_msgs::legacy::LegacyTaskStatus;
use fms_msgs::{Goal, Pose, Priority};

use super::test_support::*;
use super::*;
use crate::fleet::legacy::{LegacyReport, ESTOP_REASON};
use crate::fleet::registry::PresenceChange;

fn view(id: &str, x: f64, legacy: bool) -> RobotView {
    idle_robot(id, x, 90.0, legacy)
}

/// A legacy robot while it runs something (mode NAVIGATING, no task id known).
fn running(id: &str) -> RobotView {
    RobotView {
        idle: false,
        ..view(id, 0.0, true)
    }
}

fn task_to(robot: Option<&str>, goal: Goal) -> NewTask {
    NewTask {
        robot_id: robot.map(rid),
        goal,
        priority: Priority::Normal,
        timeout_s: None,
        parameters: Default::default(),
        queue_if_busy: true,
        retries: 0,
        location: None,
        idempotency_key: None,
    }
}

fn pose(x: f64) -> Goal {
    Goal::Pose(Pose::new(x, 0.0, 0.0))
}

fn report(status: LegacyTaskStatus, ts: f64) -> LegacyReport {
    LegacyReport {
        status,
        message: Some("from the robot".into()),
        timestamp: Some(ts),
    }
}

use LegacyTaskStatus::*;

#[test]
fn status_reports_drive_a_task_exactly_once() {
    let mut e = engine();
    let old = rid("old");
    let (t, fx) = e
        .create(
            tid("t1"),
            task_to(None, pose(1.0)),
            &[view("old", 0.0, true)],
            0,
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Assigned);
    assert_eq!(sent_tasks(&fx), vec![(old.clone(), tid("t1"))]);

    let fx = e.on_legacy_status(&old, report(Running, 1.0), 100).unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Active);
    // The same report again (a re-delivery) is a duplicate.
    assert_eq!(
        e.on_legacy_status(&old, report(Running, 1.0), 150),
        Err(Refused::Duplicate)
    );
    let fx = e
        .on_legacy_status(&old, report(Completed, 2.0), 200)
        .unwrap();
    let done = persisted(&fx);
    assert_eq!((done.len(), done[0].status), (1, TaskStatus::Completed));
    assert_eq!(
        e.on_legacy_status(&old, report(Completed, 2.0), 250),
        Err(Refused::Duplicate)
    );

    // The next task: an older or early end report does not end it.
    let (t2, fx) = e
        .create(
            tid("t2"),
            task_to(None, pose(2.0)),
            &[view("old", 0.0, true)],
            300,
        )
        .unwrap();
    assert_eq!(sent_tasks(&fx), vec![(old.clone(), tid("t2"))]);
    assert_eq!(
        e.on_legacy_status(&old, report(Completed, 1.5), 310),
        Err(Refused::Duplicate),
        "stamped before the last report"
    );
    let fx = e.on_legacy_status(&old, report(Error, 3.0), 320).unwrap();
    assert!(fx.is_empty(), "an end report before RUNNING: {fx:?}");
    assert_eq!(e.open_task(&t2.id).unwrap().status, TaskStatus::Assigned);
    e.on_legacy_status(&old, report(Running, 4.0), 400).unwrap();
    let mut err = report(Error, 5.0);
    err.message = Some("path blocked".into());
    let fx = e.on_legacy_status(&old, err, 500).unwrap();
    let failed = persisted(&fx)[0];
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (TaskStatus::Failed, Some("path blocked"))
    );
    assert!(e.task_of(&old).is_none());
}

#[test]
fn a_running_legacy_robot_is_never_sent_its_task_again() {
    let mut e = engine(); // legacy resends: 3 s, then doubling up to 8 s
    let old = rid("old");
    e.create(
        tid("t"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        0,
    )
    .unwrap();
    let mut sends = Vec::new();
    for now in (100..=10_000).step_by(100) {
        // The robot has not answered: it shows IDLE.
        if !sent_tasks(&e.tick(&[view("old", 0.0, true)], now)).is_empty() {
            sends.push(now);
        }
    }
    assert_eq!(sends, vec![3_000, 9_000]);
    e.on_legacy_status(&old, report(Running, 10.0), 10_050)
        .unwrap();
    for now in (10_100..=60_000).step_by(100) {
        let fx = e.tick(&[running("old")], now);
        assert!(sent_tasks(&fx).is_empty(), "resent while RUNNING at {now}");
    }
    // The robot says IDLE while the engine believes it runs the task: it lost it.
    let fx = e
        .on_legacy_status(&old, report(Idle, 61.0), 61_000)
        .unwrap();
    assert_eq!(sent_tasks(&fx), vec![(old.clone(), tid("t"))]);
}

#[test]
fn a_lost_legacy_robot_loses_its_task_and_its_late_report_changes_nothing() {
    let mut e = engine(); // offline grace 10 s
    let old = rid("old");
    e.create(
        tid("t"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        0,
    )
    .unwrap();
    e.on_legacy_status(&old, report(Running, 1.0), 100).unwrap();
    e.on_presence(
        &PresenceChange {
            robot_id: old.clone(),
            from: Some(Presence::Stale),
            to: Presence::Offline,
        },
        1_000,
    );
    let fx = e.tick(&[view("agent", 5.0, false)], 11_000);
    let t = persisted(&fx)
        .into_iter()
        .rev()
        .find(|t| t.id == tid("t"))
        .unwrap()
        .clone();
    assert_eq!(
        t.status,
        TaskStatus::Assigned,
        "requeued and dispatched again"
    );
    assert_eq!(t.assigned_robot, Some(rid("agent")));
    // The legacy robot comes back and says it completed: not its task any more.
    e.on_presence(
        &PresenceChange {
            robot_id: old.clone(),
            from: Some(Presence::Offline),
            to: Presence::Online,
        },
        12_000,
    );
    let fx = e
        .on_legacy_status(&old, report(Completed, 12.0), 12_000)
        .unwrap();
    assert!(persisted(&fx).is_empty(), "{fx:?}");
    assert_eq!(e.open_task(&tid("t")).unwrap().status, TaskStatus::Assigned);
    // Still running its old task: it is told to stop.
    let fx = e
        .on_legacy_status(&old, report(Running, 13.0), 13_000)
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::SendCancel(old, CancelCommand { task_id: None })]
    );
}

#[test]
fn after_a_restart_the_first_end_report_counts() {
    let mut e = engine();
    let old = rid("old");
    let (t, _) = e
        .create(
            tid("t"),
            task_to(None, pose(1.0)),
            &[view("old", 0.0, true)],
            0,
        )
        .unwrap();
    // The server died before RUNNING was stored: the task comes back ASSIGNED.
    let mut e = TaskEngine::restore(
        EngineParams::default(),
        &[],
        vec![t],
        HashMap::new(),
        false,
        1_000,
    );
    // Not resent before the registry knows the robot (and which protocol it speaks).
    assert!(sent_tasks(&e.tick(&[], 1_000)).is_empty());
    let fx = e
        .on_legacy_status(&old, report(Completed, 2.0), 2_000)
        .unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Completed);
    assert!(e.open_task(&tid("t")).is_none());
    assert!(sent_tasks(&e.tick(&[view("old", 0.0, true)], 10_000)).is_empty());
}

#[test]
fn cancel_ends_the_task_when_the_robot_answers_cancelled() {
    let mut e = engine();
    let old = rid("old");
    e.create(
        tid("t"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        0,
    )
    .unwrap();
    e.on_legacy_status(&old, report(Running, 1.0), 100).unwrap();
    let (_, fx) = e.cancel(&tid("t"), 200).unwrap();
    assert!(matches!(fx[..], [Effect::SendCancel(..)]));
    let fx = e
        .on_legacy_status(&old, report(Cancelled, 2.0), 300)
        .unwrap();
    assert_eq!(persisted(&fx)[0].status, TaskStatus::Canceled);
}

#[test]
fn estop_cancels_the_legacy_task_and_holds_dispatch_until_the_release() {
    let mut e = engine();
    let old = rid("old");
    e.create(
        tid("t"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        0,
    )
    .unwrap();
    e.on_legacy_status(&old, report(Running, 1.0), 100).unwrap();
    let fx = e.set_robot_estop(&old, true).unwrap();
    assert!(matches!(&fx[0], Effect::SendEstop(r, c) if r == &old && c.engage));
    // Until the robot shows it runs nothing, the e-stop (a cancel for it) is resent.
    let resent = [2_000, 2_500, 3_000]
        .into_iter()
        .flat_map(|now| e.tick(&[running("old")], now))
        .filter(|f| matches!(f, Effect::SendEstop(r, c) if r == &old && c.engage))
        .count();
    assert!(
        resent > 0,
        "the e-stop was not resent to a running legacy robot"
    );
    let fx = e
        .on_legacy_status(&old, report(Cancelled, 2.0), 3_000)
        .unwrap();
    let t = persisted(&fx)[0];
    assert_eq!(
        (t.status, t.error.as_deref()),
        (TaskStatus::Failed, Some(ESTOP_REASON))
    );
    // Stopped: nothing is dispatched to it, and nothing more is sent.
    e.create(
        tid("t2"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        3_000,
    )
    .unwrap();
    for now in (3_100..=20_000).step_by(500) {
        let fx = e.tick(&[view("old", 0.0, true)], now);
        assert!(fx.is_empty(), "at {now}: {fx:?}");
    }
    // The release sends nothing to a legacy robot (the coordinator drops it) and dispatch
    // resumes.
    e.set_robot_estop(&old, false).unwrap();
    let fx = e.tick(&[view("old", 0.0, true)], 21_000);
    assert_eq!(sent_tasks(&fx), vec![(old, tid("t2"))]);
}

#[test]
fn fleet_estop_with_an_assigned_legacy_task_requeues_it_for_the_release() {
    let mut e = engine();
    let old = rid("old");
    e.create(
        tid("t"),
        task_to(None, pose(1.0)),
        &[view("old", 0.0, true)],
        0,
    )
    .unwrap();
    let fx = e.set_fleet_estop(true, &[view("old", 0.0, true)], 100);
    assert!(fx
        .iter()
        .any(|f| matches!(f, Effect::SendEstop(r, _) if r == &old)));
    // The robot got the cancel before the task ever ran.
    e.on_legacy_status(&old, report(Idle, 0.5), 150).unwrap();
    let fx = e
        .on_legacy_status(&old, report(Cancelled, 1.0), 200)
        .unwrap();
    let t = persisted(&fx)[0];
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
    // An idle legacy robot shows the fleet e-stop: no resend.
    assert!(e.tick(&[view("old", 0.0, true)], 5_000).is_empty());
    let fx = e.set_fleet_estop(false, &[view("old", 0.0, true)], 6_000);
    assert_eq!(sent_tasks(&fx), vec![(old, tid("t"))]);
}

#[test]
fn tasks_a_legacy_robot_cannot_run_are_refused_or_go_elsewhere() {
    let mut e = engine();
    let waypoints = Goal::Waypoints(vec![Pose::new(1.0, 0.0, 0.0), Pose::new(2.0, 0.0, 0.0)]);
    let legacy_only = [view("old", 0.0, true)];
    let err = e
        .create(
            tid("w"),
            task_to(Some("old"), waypoints.clone()),
            &legacy_only,
            0,
        )
        .unwrap_err();
    assert!(
        matches!(err, TaskError::LegacyUnsupported { .. }),
        "{err:?}"
    );
    let mut charge = task_to(Some("old"), pose(1.0));
    charge.parameters = fms_msgs::server_to_robot::charge_parameters();
    assert!(matches!(
        e.create(tid("c"), charge, &legacy_only, 0),
        Err(TaskError::LegacyUnsupported { .. })
    ));
    // Without a robot named: never dispatched to the legacy robot, even the closest.
    let (t, fx) = e
        .create(tid("w"), task_to(None, waypoints), &legacy_only, 0)
        .unwrap();
    assert_eq!((t.status, sent_tasks(&fx).len()), (TaskStatus::Queued, 0));
    let both = [view("old", 0.0, true), view("agent", 50.0, false)];
    let fx = e.tick(&both, 100);
    assert_eq!(sent_tasks(&fx), vec![(rid("agent"), tid("w"))]);
}

#[test]
fn a_low_legacy_robot_is_not_sent_to_a_charger() {
    let charger = Location {
        name: "dock".into(),
        pose: Pose::new(0.0, 0.0, 0.0),
        charger: true,
    };
    let mut e = TaskEngine::new(EngineParams::default(), &[charger]);
    let mut low = view("old", 3.0, true);
    low.battery = 5.0;
    let fx = e.tick(&[low], 0);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(e.open_tasks().count(), 0);
}
