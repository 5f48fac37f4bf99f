//! A task's life on the robot, as a pure state machine: accept (deduplicated by task id),
//! progress, finish, cancel, e-stop, teleop. It takes commands and polls with a `now` and
//! returns the robot actions to perform and the events to publish.

use std::collections::{HashMap, VecDeque};

use fms_msgs::robot_to_server::TaskProgress;
use fms_msgs::{
    Battery, CancelCommand, EstopCommand, EventKind, Pose, RobotEvent, RobotMode, RobotState,
    TaskCommand, TaskId, TeleopCommand, MAX_OPERATOR_LEN, PROTOCOL_VERSION, TELEOP_LEASE_MS,
};

use crate::robot::{NavOutcome, Snapshot};
use fms_msgs::server_to_robot::is_charge;

/// How long a teleop command keeps the robot moving without a follow-up (dead-man).
pub const TELEOP_DEADMAN_MS: u64 = 400;
/// How many finished tasks the executor remembers for deduplication.
const REMEMBERED_TASKS: usize = 1024;
/// Progress events are sent each time progress crosses another tenth.
const PROGRESS_STEP: f64 = 0.1;

/// Something the agent must ask the robot backend to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Navigate(Vec<Pose>),
    CancelNavigation,
    SetEstop(bool),
    Teleop {
        cmd: TeleopCommand,
        until_ms: u64,
    },
    /// A charging task arrived at its charger.
    Dock,
}

/// What one input produced.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub actions: Vec<Action>,
    pub events: Vec<RobotEvent>,
}

#[derive(Debug, Clone)]
struct Running {
    cmd: TaskCommand,
    started_ms: u64,
    progress: f64,
    reported_step: u32,
}

/// The executor's state.
#[derive(Debug)]
pub struct Executor {
    epoch: u64,
    seq: u64,
    running: Option<Running>,
    estopped: bool,
    teleop_until_ms: u64,
    /// The teleop lease: its holder and when it lapses.
    lease: Option<(String, u64)>,
    /// The final event of recently finished (or refused) tasks, replayed on a duplicate command.
    finished: HashMap<TaskId, EventKind>,
    finished_order: VecDeque<TaskId>,
}

impl Executor {
    /// `epoch` identifies this agent run (its start time in ms); event `seq` restarts per epoch.
    pub fn new(epoch: u64) -> Self {
        Self {
            epoch,
            seq: 0,
            running: None,
            estopped: false,
            teleop_until_ms: 0,
            lease: None,
            finished: HashMap::new(),
            finished_order: VecDeque::new(),
        }
    }

    pub fn current_task(&self) -> Option<&TaskId> {
        self.running.as_ref().map(|r| &r.cmd.task_id)
    }

    pub fn is_estopped(&self) -> bool {
        self.estopped
    }

    fn event(&mut self, fx: &mut Effects, now_ms: u64, event: EventKind) {
        self.seq += 1;
        fx.events.push(RobotEvent {
            epoch: self.epoch,
            seq: self.seq,
            stamp_ms: now_ms,
            event,
        });
    }

    fn remember(&mut self, task_id: TaskId, last: EventKind) {
        if self.finished.insert(task_id.clone(), last).is_none() {
            self.finished_order.push_back(task_id);
            if self.finished_order.len() > REMEMBERED_TASKS {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
    }

    /// Ends the running task with `last` (completed, failed or canceled).
    fn end_running(
        &mut self,
        fx: &mut Effects,
        now_ms: u64,
        make: impl FnOnce(TaskId) -> EventKind,
    ) {
        if let Some(r) = self.running.take() {
            let last = make(r.cmd.task_id.clone());
            self.remember(r.cmd.task_id, last.clone());
            self.event(fx, now_ms, last);
        }
    }

    /// `cmd/task`.
    pub fn on_task(&mut self, cmd: TaskCommand, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let id = cmd.task_id.clone();
        if self.current_task() == Some(&id) {
            // A resend of what we are doing: acknowledge again, run once.
            self.event(&mut fx, now_ms, EventKind::TaskAccepted { task_id: id });
            return fx;
        }
        if let Some(last) = self.finished.get(&id).cloned() {
            // Already finished: tell the sender how it ended instead of running it again.
            self.event(&mut fx, now_ms, last);
            return fx;
        }
        let refuse = if self.estopped {
            Some("emergency stop engaged".to_owned())
        } else if let Some(other) = self.current_task() {
            Some(format!("busy with task {other}"))
        } else if cmd.goal.poses().is_empty() || cmd.goal.poses().iter().any(|p| !p.is_finite()) {
            Some("goal has no poses or a non-finite pose".to_owned())
        } else if cmd.timeout_s.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
            Some("timeout_s must be a positive number".to_owned())
        } else {
            None
        };
        if let Some(reason) = refuse {
            self.event(
                &mut fx,
                now_ms,
                EventKind::TaskRejected {
                    task_id: id,
                    reason,
                },
            );
            return fx;
        }
        fx.actions.push(Action::Navigate(cmd.goal.poses().to_vec()));
        self.teleop_until_ms = 0;
        self.running = Some(Running {
            cmd,
            started_ms: now_ms,
            progress: 0.0,
            reported_step: 0,
        });
        self.event(
            &mut fx,
            now_ms,
            EventKind::TaskAccepted {
                task_id: id.clone(),
            },
        );
        self.event(&mut fx, now_ms, EventKind::TaskStarted { task_id: id });
        fx
    }

    /// The backend refused a goal the executor asked for.
    pub fn on_navigate_refused(&mut self, reason: String, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskFailed {
            task_id,
            reason,
        });
        fx
    }

    /// `cmd/cancel`.
    pub fn on_cancel(&mut self, cmd: CancelCommand, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        match cmd.task_id {
            Some(id) if self.current_task() != Some(&id) => {
                if let Some(last) = self.finished.get(&id).cloned() {
                    self.event(&mut fx, now_ms, last);
                } else {
                    // Canceled before it arrived: remember it so a late cmd/task never runs.
                    let last = EventKind::TaskCanceled {
                        task_id: id.clone(),
                    };
                    self.remember(id, last.clone());
                    self.event(&mut fx, now_ms, last);
                }
            }
            _ if self.running.is_some() => {
                fx.actions.push(Action::CancelNavigation);
                self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskCanceled {
                    task_id,
                });
            }
            _ => {}
        }
        fx
    }

    /// `cmd/emergency_stop`.
    pub fn on_estop(&mut self, cmd: EstopCommand, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        if cmd.engage {
            // Always tell the backend, even if we think we're stopped: it's the safe direction.
            fx.actions.push(Action::SetEstop(true));
            self.teleop_until_ms = 0;
            if !self.estopped {
                self.estopped = true;
                self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskFailed {
                    task_id,
                    reason: "emergency stop engaged".into(),
                });
                self.event(
                    &mut fx,
                    now_ms,
                    EventKind::EstopEngaged { reason: cmd.reason },
                );
            }
        } else if self.estopped {
            self.estopped = false;
            fx.actions.push(Action::SetEstop(false));
            self.event(&mut fx, now_ms, EventKind::EstopReleased);
        }
        fx
    }

    /// Who holds the teleop lease at `now_ms`, if anyone.
    pub fn lease_holder(&self, now_ms: u64) -> Option<&str> {
        self.lease
            .as_ref()
            .filter(|(_, until)| now_ms < *until)
            .map(|(who, _)| who.as_str())
    }

    /// `cmd/teleop`, under the teleop lease (see `TeleopCommand`): a command from anyone but
    /// the holder is ignored; the holder's `release` stops the robot and frees the lease.
    /// Motion is honoured only when idle and not e-stopped.
    pub fn on_teleop(&mut self, cmd: TeleopCommand, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let operator = cmd.operator.clone().unwrap_or_default();
        if operator.len() > MAX_OPERATOR_LEN {
            return fx;
        }
        if let Some(holder) = self.lease_holder(now_ms) {
            if holder != operator {
                return fx;
            }
        }
        if cmd.release {
            self.lease = None;
            if now_ms < self.teleop_until_ms {
                self.teleop_until_ms = now_ms;
                fx.actions.push(Action::Teleop {
                    cmd: TeleopCommand::drive(0.0, 0.0, cmd.operator),
                    until_ms: now_ms,
                });
            }
            return fx;
        }
        if !cmd.linear.is_finite() || !cmd.angular.is_finite() {
            return fx;
        }
        self.lease = Some((operator, now_ms + TELEOP_LEASE_MS));
        if !self.estopped && self.running.is_none() {
            self.teleop_until_ms = now_ms + TELEOP_DEADMAN_MS;
            fx.actions.push(Action::Teleop {
                cmd,
                until_ms: self.teleop_until_ms,
            });
        }
        fx
    }

    /// A poll of the backend: turns navigation progress and outcomes into task events,
    /// enforces task timeouts, and builds the state message for this tick.
    pub fn on_poll(
        &mut self,
        snap: &Snapshot,
        state_seq: u64,
        now_ms: u64,
    ) -> (Effects, RobotState) {
        let mut fx = Effects::default();
        if let Some(outcome) = &snap.nav_outcome {
            // An outcome for a goal we no longer track (e.g. already canceled) is ignored.
            match outcome.clone() {
                NavOutcome::Succeeded => {
                    let charge = self
                        .running
                        .as_ref()
                        .is_some_and(|r| is_charge(&r.cmd.parameters));
                    if charge {
                        fx.actions.push(Action::Dock);
                    }
                    self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskCompleted {
                        task_id,
                    })
                }
                NavOutcome::Failed(reason) => self.end_running(&mut fx, now_ms, |task_id| {
                    EventKind::TaskFailed { task_id, reason }
                }),
                NavOutcome::Canceled => {
                    self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskFailed {
                        task_id,
                        reason: "navigation canceled by the robot".into(),
                    })
                }
            }
        }
        let mut progress_event = None;
        let mut timed_out = false;
        if let Some(r) = &mut self.running {
            if let Some(p) = snap.nav_progress {
                r.progress = r.progress.max(p.clamp(0.0, 1.0));
            }
            let step = (r.progress / PROGRESS_STEP).floor() as u32;
            if step > r.reported_step && r.progress < 1.0 {
                r.reported_step = step;
                progress_event = Some(EventKind::TaskProgress {
                    task_id: r.cmd.task_id.clone(),
                    progress: r.progress,
                });
            }
            timed_out = r
                .cmd
                .timeout_s
                .is_some_and(|t| now_ms.saturating_sub(r.started_ms) as f64 > t * 1000.0);
        }
        if let Some(e) = progress_event {
            self.event(&mut fx, now_ms, e);
        }
        if timed_out {
            fx.actions.push(Action::CancelNavigation);
            self.end_running(&mut fx, now_ms, |task_id| EventKind::TaskFailed {
                task_id,
                reason: "task timed out".into(),
            });
        }
        let state = self.state(snap, state_seq, now_ms);
        (fx, state)
    }

    fn state(&self, snap: &Snapshot, seq: u64, now_ms: u64) -> RobotState {
        let mode = if self.estopped {
            RobotMode::Estopped
        } else if snap.fault.is_some() {
            RobotMode::Error
        } else if self.running.is_some() {
            RobotMode::Navigating
        } else if now_ms < self.teleop_until_ms {
            RobotMode::Teleop
        } else if snap.charging {
            RobotMode::Charging
        } else {
            RobotMode::Idle
        };
        RobotState {
            protocol: PROTOCOL_VERSION,
            seq,
            stamp_ms: now_ms,
            pose: snap.pose.clone(),
            velocity: snap.velocity,
            battery: Battery {
                percentage: snap.battery_percentage.clamp(0.0, 100.0),
                voltage: snap.battery_voltage.filter(|v| v.is_finite()),
                charging: snap.charging,
            },
            mode,
            task: self.running.as_ref().map(|r| TaskProgress {
                task_id: r.cmd.task_id.clone(),
                progress: r.progress,
            }),
            teleop_operator: self.lease_holder(now_ms).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fms_msgs::server_to_robot::charge_parameters;
    use fms_msgs::{Goal, Priority, Velocity};

    fn tid(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn task(id: &str) -> TaskCommand {
        TaskCommand {
            task_id: tid(id),
            goal: Goal::Pose(Pose::new(3.0, 4.0, 0.0)),
            priority: Priority::Normal,
            timeout_s: None,
            parameters: Default::default(),
        }
    }

    fn snap(progress: Option<f64>, outcome: Option<NavOutcome>) -> Snapshot {
        Snapshot {
            pose: Pose::new(0.0, 0.0, 0.0),
            velocity: Velocity::default(),
            battery_percentage: 80.0,
            battery_voltage: None,
            charging: false,
            nav_progress: progress,
            nav_outcome: outcome,
            fault: None,
        }
    }

    fn kinds(fx: &Effects) -> Vec<EventKind> {
        fx.events.iter().map(|e| e.event.clone()).collect()
    }

    #[test]
    fn runs_a_task_to_completion_with_sequenced_events() {
        let mut ex = Executor::new(42);
        let fx = ex.on_task(task("t1"), 10);
        assert_eq!(
            fx.actions,
            vec![Action::Navigate(vec![Pose::new(3.0, 4.0, 0.0)])]
        );
        assert_eq!(
            kinds(&fx),
            vec![
                EventKind::TaskAccepted { task_id: tid("t1") },
                EventKind::TaskStarted { task_id: tid("t1") }
            ]
        );
        let (fx2, state) = ex.on_poll(&snap(Some(0.55), None), 1, 20);
        assert_eq!(state.mode, RobotMode::Navigating);
        assert_eq!(state.task.as_ref().unwrap().progress, 0.55);
        assert!(matches!(kinds(&fx2)[..], [EventKind::TaskProgress { .. }]));
        let (fx3, state) = ex.on_poll(&snap(None, Some(NavOutcome::Succeeded)), 2, 30);
        assert_eq!(
            kinds(&fx3),
            vec![EventKind::TaskCompleted { task_id: tid("t1") }]
        );
        assert_eq!(state.mode, RobotMode::Idle);
        let seqs: Vec<u64> = [fx, fx2, fx3]
            .iter()
            .flat_map(|f| f.events.iter().map(|e| e.seq))
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }

    #[test]
    fn duplicate_task_never_runs_twice() {
        let mut ex = Executor::new(1);
        ex.on_task(task("t1"), 0);
        let again = ex.on_task(task("t1"), 5);
        assert!(again.actions.is_empty());
        assert_eq!(
            kinds(&again),
            vec![EventKind::TaskAccepted { task_id: tid("t1") }]
        );
        ex.on_poll(&snap(None, Some(NavOutcome::Succeeded)), 1, 10);
        let late = ex.on_task(task("t1"), 20);
        assert!(late.actions.is_empty(), "finished task re-ran");
        assert_eq!(
            kinds(&late),
            vec![EventKind::TaskCompleted { task_id: tid("t1") }]
        );
    }

    #[test]
    fn busy_robot_rejects_a_second_task() {
        let mut ex = Executor::new(1);
        ex.on_task(task("t1"), 0);
        let fx = ex.on_task(task("t2"), 1);
        assert!(fx.actions.is_empty());
        assert!(
            matches!(&kinds(&fx)[..], [EventKind::TaskRejected { task_id, .. }] if *task_id == tid("t2"))
        );
    }

    #[test]
    fn cancel_running_unknown_and_early() {
        let mut ex = Executor::new(1);
        ex.on_task(task("t1"), 0);
        let fx = ex.on_cancel(CancelCommand { task_id: None }, 1);
        assert_eq!(fx.actions, vec![Action::CancelNavigation]);
        assert_eq!(
            kinds(&fx),
            vec![EventKind::TaskCanceled { task_id: tid("t1") }]
        );
        // The backend's own Canceled outcome afterwards must not produce a second event.
        let (fx, _) = ex.on_poll(&snap(None, Some(NavOutcome::Canceled)), 1, 2);
        assert!(fx.events.is_empty());
        // Cancel that arrives before its task: the task must never run.
        ex.on_cancel(
            CancelCommand {
                task_id: Some(tid("t9")),
            },
            3,
        );
        let fx = ex.on_task(task("t9"), 4);
        assert!(fx.actions.is_empty());
        assert_eq!(
            kinds(&fx),
            vec![EventKind::TaskCanceled { task_id: tid("t9") }]
        );
        // Nothing running: a bare cancel does nothing.
        assert_eq!(
            ex.on_cancel(CancelCommand { task_id: None }, 5),
            Effects::default()
        );
    }

    #[test]
    fn estop_fails_the_task_refuses_new_ones_until_release() {
        let mut ex = Executor::new(1);
        ex.on_task(task("t1"), 0);
        let fx = ex.on_estop(
            EstopCommand {
                engage: true,
                reason: None,
            },
            1,
        );
        assert_eq!(fx.actions, vec![Action::SetEstop(true)]);
        assert!(matches!(
            &kinds(&fx)[..],
            [EventKind::TaskFailed { .. }, EventKind::EstopEngaged { .. }]
        ));
        let (_, state) = ex.on_poll(&snap(None, None), 1, 2);
        assert_eq!(state.mode, RobotMode::Estopped);
        assert!(matches!(
            &kinds(&ex.on_task(task("t2"), 3))[..],
            [EventKind::TaskRejected { .. }]
        ));
        assert!(ex
            .on_teleop(TeleopCommand::drive(1.0, 0.0, None), 3)
            .actions
            .is_empty());
        // Engaging twice is harmless and announces nothing new.
        assert!(ex
            .on_estop(
                EstopCommand {
                    engage: true,
                    reason: None
                },
                4
            )
            .events
            .is_empty());
        let fx = ex.on_estop(
            EstopCommand {
                engage: false,
                reason: None,
            },
            5,
        );
        assert_eq!(fx.actions, vec![Action::SetEstop(false)]);
        assert_eq!(kinds(&fx), vec![EventKind::EstopReleased]);
        assert!(matches!(
            &kinds(&ex.on_task(task("t2"), 6))[..],
            [EventKind::TaskAccepted { .. }, _]
        ));
    }

    #[test]
    fn timeout_fails_the_task() {
        let mut ex = Executor::new(1);
        let mut cmd = task("t1");
        cmd.timeout_s = Some(1.0);
        ex.on_task(cmd, 0);
        let (fx, _) = ex.on_poll(&snap(Some(0.1), None), 1, 900);
        assert!(fx.actions.is_empty());
        let (fx, _) = ex.on_poll(&snap(Some(0.2), None), 2, 1_100);
        assert_eq!(fx.actions, vec![Action::CancelNavigation]);
        assert!(
            matches!(&kinds(&fx)[..], [.., EventKind::TaskFailed { reason, .. }] if reason.contains("timed out"))
        );
    }

    #[test]
    fn a_finished_charge_task_docks() {
        let mut ex = Executor::new(1);
        let mut cmd = task("c1");
        cmd.parameters = charge_parameters();
        ex.on_task(cmd, 0);
        let (fx, _) = ex.on_poll(&snap(None, Some(NavOutcome::Succeeded)), 1, 10);
        assert_eq!(fx.actions, vec![Action::Dock]);
        ex.on_task(task("t2"), 20);
        let (fx, _) = ex.on_poll(&snap(None, Some(NavOutcome::Succeeded)), 2, 30);
        assert!(fx.actions.is_empty());
    }

    #[test]
    fn teleop_sets_a_deadman_deadline_and_mode() {
        let mut ex = Executor::new(1);
        let fx = ex.on_teleop(TeleopCommand::drive(0.3, 0.0, None), 100);
        assert_eq!(
            fx.actions,
            vec![Action::Teleop {
                cmd: TeleopCommand::drive(0.3, 0.0, None),
                until_ms: 100 + TELEOP_DEADMAN_MS
            }]
        );
        assert_eq!(
            ex.on_poll(&snap(None, None), 1, 300).1.mode,
            RobotMode::Teleop
        );
        assert_eq!(
            ex.on_poll(&snap(None, None), 2, 100 + TELEOP_DEADMAN_MS)
                .1
                .mode,
            RobotMode::Idle
        );
    }

    #[test]
    fn one_operator_holds_the_teleop_lease_until_it_lapses_or_is_released() {
        let mut ex = Executor::new(1);
        let alice = |l: f64| TeleopCommand::drive(l, 0.0, Some("alice".into()));
        let bob = |l: f64| TeleopCommand::drive(l, 0.0, Some("bob".into()));
        assert_eq!(ex.on_teleop(alice(0.2), 1000).actions.len(), 1);
        assert_eq!(ex.lease_holder(1000), Some("alice"));
        // Bob is refused while Alice holds it, even after her dead-man stopped the robot.
        assert!(ex.on_teleop(bob(0.5), 1200).actions.is_empty());
        assert!(ex.on_teleop(bob(0.5), 3900).actions.is_empty());
        let state = ex.on_poll(&snap(None, None), 1, 3900).1;
        assert_eq!(state.teleop_operator.as_deref(), Some("alice"));
        assert_eq!(state.mode, RobotMode::Idle);
        // Alice renews it; it lapses TELEOP_LEASE_MS after her last command.
        assert_eq!(ex.on_teleop(alice(0.1), 3950).actions.len(), 1);
        assert!(ex
            .on_teleop(bob(0.5), 3950 + TELEOP_LEASE_MS - 1)
            .actions
            .is_empty());
        assert_eq!(
            ex.on_teleop(bob(0.5), 3950 + TELEOP_LEASE_MS).actions.len(),
            1
        );
        assert_eq!(ex.lease_holder(7000), Some("bob"));
        // Alice cannot release Bob's lease; Bob's release stops the robot at once.
        let mut release = bob(0.0);
        release.release = true;
        let mut alice_release = alice(0.0);
        alice_release.release = true;
        assert!(ex.on_teleop(alice_release, 7000).actions.is_empty());
        assert_eq!(
            ex.on_teleop(release, 7001).actions,
            vec![Action::Teleop {
                cmd: TeleopCommand::drive(0.0, 0.0, Some("bob".into())),
                until_ms: 7001
            }]
        );
        assert_eq!(ex.lease_holder(7001), None);
        assert_eq!(
            ex.on_poll(&snap(None, None), 2, 7001).1.teleop_operator,
            None
        );
        // Then anyone may take it; an oversized operator name is ignored.
        assert_eq!(ex.on_teleop(alice(0.2), 7002).actions.len(), 1);
        let long = TeleopCommand::drive(0.2, 0.0, Some("x".repeat(MAX_OPERATOR_LEN + 1)));
        assert!(ex.on_teleop(long, 20000).actions.is_empty());
    }
}
