//! The agent loop: polls the robot interface on a timer and turns Zenoh commands into
//! executor inputs; publishes state, events and the liveliness token.

use std::future::Future;
use std::time::Duration;

use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::{
    decode, encode, unix_ms, CancelCommand, EstopCommand, RobotEvent, TaskCommand, TeleopCommand,
};
use tokio::time::MissedTickBehavior;
use zenoh::qos::CongestionControl;
use zenoh::sample::Sample;

use crate::config::AgentConfig;
use crate::executor::{Action, Effects, Executor};
use crate::robot::RobotInterface;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("zenoh: {0}")]
    Zenoh(#[from] zenoh::Error),
}

/// Runs one robot's agent until `shutdown` completes.
pub async fn run(
    config: &AgentConfig,
    mut robot: Box<dyn RobotInterface>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let id = &config.robot_id;
    tokio::pin!(shutdown);
    tracing::info!(endpoint = %config.zenoh_endpoint, "connecting to the Zenoh router");
    let session = tokio::select! {
        s = crate::link::open(&config.zenoh_endpoint, config.zenoh_config.as_deref()) => s?,
        _ = &mut shutdown => return Ok(()),
    };
    let _token = session
        .liveliness()
        .declare_token(keys::robot_key(id, RobotTopic::Alive))
        .await?;
    let state_pub = session
        .declare_publisher(keys::robot_key(id, RobotTopic::State))
        .congestion_control(CongestionControl::Drop)
        .await?;
    let event_pub = session
        .declare_publisher(keys::robot_key(id, RobotTopic::Event))
        // Zenoh publishers are reliable by default; Block means never drop an event locally.
        .congestion_control(CongestionControl::Block)
        .await?;
    let commands = session.declare_subscriber(keys::robot_commands(id)).await?;
    tracing::info!(robot_id = %id, endpoint = %config.zenoh_endpoint, rate_hz = config.rate_hz, "agent running");

    let mut exec = Executor::new(unix_ms());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / config.rate_hz));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut state_seq = 0u64;
    // The backend's last fault (see `Snapshot::fault`), to log its changes once each.
    let mut fault: Option<String> = None;
    // When teleop motion must end: the robot is polled (and stops) right then, whatever
    // the state rate, so it never drives past the dead-man deadline.
    let mut teleop_deadline: Option<tokio::time::Instant> = None;

    loop {
        let fx = tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                poll_and_publish(&mut exec, robot.as_mut(), &state_pub, &mut state_seq, &mut fault).await
            }
            _ = sleep_until(teleop_deadline), if teleop_deadline.is_some() => {
                teleop_deadline = None;
                poll_and_publish(&mut exec, robot.as_mut(), &state_pub, &mut state_seq, &mut fault).await
            }
            sample = commands.recv_async() => match sample {
                Ok(sample) => on_command(&mut exec, &sample, unix_ms()),
                Err(_) => break,
            },
        };
        if let Some(until_ms) = fx
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Teleop { until_ms, .. } => Some(*until_ms),
                _ => None,
            })
            .max()
        {
            let left = until_ms.saturating_sub(unix_ms()) + 1;
            teleop_deadline = Some(tokio::time::Instant::now() + Duration::from_millis(left));
        }
        for event in apply(&mut exec, robot.as_mut(), fx) {
            tracing::debug!(seq = event.seq, event = ?event.event, "event");
            if let Err(e) = event_pub.put(encode(&event)).await {
                tracing::warn!("event {} not sent: {e}", event.seq);
            }
        }
    }
    tracing::info!(robot_id = %id, "agent stopping");
    session.close().await?;
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Polls the robot, publishes its state, and returns what the executor makes of the poll.
async fn poll_and_publish(
    exec: &mut Executor,
    robot: &mut dyn RobotInterface,
    state_pub: &zenoh::pubsub::Publisher<'_>,
    state_seq: &mut u64,
    fault: &mut Option<String>,
) -> Effects {
    let now = unix_ms();
    let snap = robot.poll(now);
    if snap.fault != *fault {
        match &snap.fault {
            Some(why) => tracing::warn!("robot reported in ERROR: {why}"),
            None => tracing::info!("robot data flows again: fault cleared"),
        }
        fault.clone_from(&snap.fault);
    }
    *state_seq += 1;
    let (fx, state) = exec.on_poll(&snap, *state_seq, now);
    if let Err(e) = state_pub.put(encode(&state)).await {
        tracing::debug!("state not sent: {e}");
    }
    fx
}

/// Decodes one command sample and feeds it to the executor. Bad payloads are logged and dropped.
fn on_command(exec: &mut Executor, sample: &Sample, now: u64) -> Effects {
    let key = sample.key_expr().as_str();
    let bytes = sample.payload().to_bytes();
    let topic = match keys::parse_robot_key(key) {
        Ok((_, topic)) => topic,
        Err(e) => {
            tracing::warn!("ignoring command on {key}: {e}");
            return Effects::default();
        }
    };
    let result = match topic {
        RobotTopic::CmdTask => decode::<TaskCommand>(&bytes).map(|c| exec.on_task(c, now)),
        RobotTopic::CmdCancel => decode::<CancelCommand>(&bytes).map(|c| exec.on_cancel(c, now)),
        RobotTopic::CmdEstop => decode::<EstopCommand>(&bytes).map(|c| exec.on_estop(c, now)),
        RobotTopic::CmdTeleop => decode::<TeleopCommand>(&bytes).map(|c| exec.on_teleop(c, now)),
        other => {
            tracing::warn!("ignoring {other:?} on the command channel");
            return Effects::default();
        }
    };
    result.unwrap_or_else(|e| {
        tracing::warn!("rejected command on {key}: {e}");
        Effects::default()
    })
}

/// Performs the executor's actions on the robot and returns every event to publish, in order.
fn apply(exec: &mut Executor, robot: &mut dyn RobotInterface, fx: Effects) -> Vec<RobotEvent> {
    let Effects {
        actions,
        mut events,
    } = fx;
    let now = unix_ms();
    for action in actions {
        match action {
            Action::Navigate(poses) => {
                if let Some(task) = exec.current_task() {
                    // One line per execution: tests count these to prove no task runs twice.
                    tracing::info!(task_id = %task, waypoints = poses.len(), "executing task");
                }
                if let Err(e) = robot.navigate(&poses, now) {
                    events.extend(exec.on_navigate_refused(e.to_string(), now).events);
                }
            }
            Action::CancelNavigation => robot.cancel(now),
            Action::SetEstop(engaged) => robot.set_estop(engaged, now),
            Action::Teleop { cmd, until_ms } => robot.teleop(cmd, until_ms, now),
            Action::Dock => robot.dock(now),
        }
    }
    events
}
