//! The server's Zenoh side: an embedded router (or a client of an existing one), the
//! subscriptions that feed the registry and the coordinator, and the publisher of commands.

use std::sync::Arc;

use fms_msgs::codec::encode_text;
use fms_msgs::keys::{self, RobotTopic};
use fms_msgs::legacy::{LegacyBattery, LegacyPose, LegacyStatus};
use fms_msgs::{
    decode, encode, unix_ms, DecodeError, InvalidMessage, RobotEvent, RobotId, RobotState,
};
use tokio::sync::mpsc;
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Config, Session};

use crate::coordinator::{CoordinatorHandle, Outgoing, Request};
use crate::fleet::legacy::LegacyReport;
use crate::fleet::registry::{LegacyUpdate, PresenceChange};
use crate::hub::{state_update_text, LiveMessage};
use crate::metrics::MsgKind;
use crate::state::ServerState;

/// How the server joins the Zenoh network.
#[derive(Debug, Clone, PartialEq)]
pub enum ZenohMode {
    /// Run a router in this process, listening on these endpoints.
    EmbeddedRouter { listen: Vec<String> },
    /// Connect as a client to an existing router.
    Client { connect: String },
}

fn set(c: &mut Config, key: &str, value: &str) -> Result<(), zenoh::Error> {
    c.insert_json5(key, value)
        .map_err(|e| format!("zenoh config {key}: {e}").into())
}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(","))
}

/// Opens the server's session.
/// `file` is a Zenoh configuration file (JSON5: TLS, access control) to start from; the mode
/// and endpoints set here win over it.
pub async fn open(
    mode: &ZenohMode,
    file: Option<&std::path::Path>,
) -> Result<Session, zenoh::Error> {
    let mut c = match file {
        Some(path) => Config::from_file(path).map_err(|e| -> zenoh::Error {
            format!("zenoh config file {}: {e}", path.display()).into()
        })?,
        None => Config::default(),
    };
    match mode {
        ZenohMode::EmbeddedRouter { listen } => {
            set(&mut c, "mode", "\"router\"")?;
            set(&mut c, "listen/endpoints", &json_list(listen))?;
        }
        ZenohMode::Client { connect } => {
            set(&mut c, "mode", "\"client\"")?;
            set(
                &mut c,
                "connect/endpoints",
                &json_list(std::slice::from_ref(connect)),
            )?;
            set(&mut c, "connect/timeout_ms", "-1")?;
            set(
                &mut c,
                "connect/retry",
                "{period_init_ms: 250, period_max_ms: 1000, period_increase_factor: 2}",
            )?;
        }
    }
    set(&mut c, "scouting/multicast/enabled", "false")?;
    zenoh::open(c).await
}

/// Keeps the subscriptions alive; dropping it stops ingest.
pub struct Ingest {
    _subscribers: Vec<zenoh::pubsub::Subscriber<()>>,
}

/// Subscribes to robot state, events, legacy keys and liveliness tokens.
pub async fn start_ingest(
    session: &Session,
    shared: Arc<ServerState>,
    coord: CoordinatorHandle,
) -> Result<Ingest, zenoh::Error> {
    let mut subs = Vec::new();

    let (sh, co) = (shared.clone(), coord.clone());
    subs.push(
        session
            .declare_subscriber(keys::all_robots(RobotTopic::State))
            .callback(move |s| on_state(&sh, &co, &s))
            .await?,
    );
    let (sh, co) = (shared.clone(), coord.clone());
    subs.push(
        session
            .declare_subscriber(keys::all_robots(RobotTopic::Event))
            .callback(move |s| on_event(&sh, &co, &s))
            .await?,
    );
    let (sh, co) = (shared.clone(), coord.clone());
    subs.push(
        session
            .declare_subscriber(keys::all_robots_legacy_state())
            .callback(move |s| on_legacy(&sh, &co, &s))
            .await?,
    );
    let (sh, co) = (shared.clone(), coord.clone());
    subs.push(
        session
            .declare_subscriber(keys::all_robots(RobotTopic::LegacyHeartbeat))
            .callback(move |s| on_legacy(&sh, &co, &s))
            .await?,
    );
    let (sh, co) = (shared, coord);
    subs.push(
        session
            .liveliness()
            .declare_subscriber(keys::all_robots(RobotTopic::Alive))
            .history(true)
            .callback(move |s| on_token(&sh, &co, &s))
            .await?,
    );
    Ok(Ingest { _subscribers: subs })
}

/// Publishes coordinator output until the channel closes.
pub async fn publish_outgoing(session: Session, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(msg) = rx.recv().await {
        if let Err(e) = session.put(&msg.key, msg.payload).await {
            tracing::warn!("could not publish on {}: {e}", msg.key);
        }
    }
}

/// Why an incoming message was dropped (counted, and logged at debug level).
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Invalid(#[from] InvalidMessage),
    #[error("{0:?} is not a legacy topic")]
    NotLegacy(RobotTopic),
}

fn reject(shared: &ServerState, key: &str, why: impl std::fmt::Display) {
    shared.metrics.rejected();
    tracing::debug!("rejected message on {key}: {why}");
}

fn robot_of(shared: &ServerState, sample: &Sample) -> Option<(RobotId, RobotTopic)> {
    let key = sample.key_expr().as_str();
    match keys::parse_robot_key(key) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            reject(shared, key, e);
            None
        }
    }
}

fn report(coord: &CoordinatorHandle, change: Option<PresenceChange>) {
    if let Some(change) = change {
        coord.send(Request::Presence(change));
    }
}

/// Applies an update to the registry and pushes the robot's new state to live clients.
fn update_and_publish(
    shared: &ServerState,
    coord: &CoordinatorHandle,
    id: &RobotId,
    update: impl FnOnce(&mut crate::fleet::registry::Registry) -> Option<PresenceChange>,
) {
    let (change, text) = {
        let mut reg = shared.registry_mut();
        let change = update(&mut reg);
        let text = shared.hub.has_listeners().then(|| {
            reg.get(id).and_then(|e| {
                e.state.as_ref().map(|state| {
                    encode_text(&LiveMessage::StateUpdate {
                        robot_id: id,
                        presence: e.presence,
                        state,
                    })
                })
            })
        });
        (change, text.flatten())
    };
    if let Some(text) = text {
        shared.hub.send_state(id, text);
    }
    report(coord, change);
}

/// The hot path (every robot, every tick): the id is borrowed from the key, the state is
/// serialized for live clients before the registry lock is taken, and the lock is held
/// for the update only.
fn on_state(shared: &ServerState, coord: &CoordinatorHandle, sample: &Sample) {
    let key = sample.key_expr().as_str();
    let id = match keys::parse_robot_key_ref(key) {
        Ok((id, _)) => id,
        Err(e) => return reject(shared, key, e),
    };
    let state: RobotState = match decode(&sample.payload().to_bytes()) {
        Ok(s) => s,
        Err(e) => return reject(shared, key, e),
    };
    if let Err(e) = state.validate() {
        return reject(shared, key, e);
    }
    shared.metrics.message(MsgKind::State);
    let now = unix_ms();
    let body: Option<std::sync::Arc<[u8]>> =
        shared.hub.has_listeners().then(|| encode(&state).into());
    // A teleop lease changing hands is audited (the agent holds it; its state names it).
    let lease = state.teleop_operator.clone();
    let lease_changed;
    let (change, live) = {
        let mut reg = shared.registry_mut();
        let before = reg
            .get_str(id)
            .and_then(|e| e.state.as_ref())
            .and_then(|s| s.teleop_operator.as_ref());
        lease_changed = before != lease.as_ref();
        let Some(applied) = reg.on_state_named(id, state, body.clone(), now) else {
            return;
        };
        let e = applied.entry;
        let live = match (&body, applied.taken) {
            (Some(body), true) => Some(state_update_text(&e.id, e.presence, body)),
            // An older state than the one held: show the one held.
            (Some(_), false) => e.state.as_ref().map(|state| {
                encode_text(&LiveMessage::StateUpdate {
                    robot_id: &e.id,
                    presence: e.presence,
                    state,
                })
            }),
            (None, _) => None,
        };
        (applied.change, live.map(|text| (e.id.clone(), text)))
    };
    if let Some((id, text)) = live {
        shared.hub.send_state(&id, text);
    }
    if lease_changed {
        if let Ok(robot) = fms_msgs::RobotId::new(id) {
            coord.send(Request::TeleopLease {
                robot,
                operator: lease,
            });
        }
    }
    report(coord, change);
}

fn on_event(shared: &ServerState, coord: &CoordinatorHandle, sample: &Sample) {
    let Some((robot, _)) = robot_of(shared, sample) else {
        return;
    };
    match decode::<RobotEvent>(&sample.payload().to_bytes())
        .map_err(Rejected::from)
        .and_then(|ev| ev.validate().map(|_| ev).map_err(Rejected::from))
    {
        Ok(event) => {
            shared.metrics.message(MsgKind::Event);
            coord.send(Request::RobotEvent { robot, event });
        }
        Err(e) => reject(shared, sample.key_expr().as_str(), e),
    }
}

fn on_legacy(shared: &ServerState, coord: &CoordinatorHandle, sample: &Sample) {
    let Some((id, topic)) = robot_of(shared, sample) else {
        return;
    };
    let key = sample.key_expr().as_str();
    let bytes = sample.payload().to_bytes();
    // A status of the task protocol (RUNNING, COMPLETED, ...) also drives the robot's task.
    let mut report = None;
    let update = match topic {
        RobotTopic::LegacyPose => decode::<LegacyPose>(&bytes)
            .map_err(Rejected::from)
            .and_then(|p| p.to_pose().map_err(Rejected::from))
            .map(LegacyUpdate::Pose),
        RobotTopic::LegacyBattery => decode::<LegacyBattery>(&bytes)
            .map_err(Rejected::from)
            .and_then(|b| {
                b.validate()?;
                Ok(LegacyUpdate::Battery {
                    percentage: b.percentage,
                    voltage: b.voltage.filter(|v| v.is_finite()),
                    charging: b.charging,
                })
            }),
        RobotTopic::LegacyStatus => decode::<LegacyStatus>(&bytes)
            .map_err(Rejected::from)
            .and_then(|s| {
                let mode = s.to_mode()?;
                report = s.task_status().map(|status| LegacyReport {
                    status,
                    message: s.message().map(str::to_owned),
                    timestamp: s.timestamp(),
                });
                Ok(LegacyUpdate::Mode(mode))
            }),
        RobotTopic::LegacyHeartbeat => Ok(LegacyUpdate::Heartbeat),
        other => Err(Rejected::NotLegacy(other)),
    };
    let update = match update {
        Ok(u) => u,
        Err(e) => return reject(shared, key, e),
    };
    let kind = if update == LegacyUpdate::Heartbeat {
        MsgKind::Heartbeat
    } else {
        MsgKind::Legacy
    };
    shared.metrics.message(kind);
    let now = unix_ms();
    update_and_publish(shared, coord, &id, |reg| reg.on_legacy(&id, update, now));
    if let Some(report) = report {
        coord.send(Request::LegacyStatus { robot: id, report });
    }
}

fn on_token(shared: &ServerState, coord: &CoordinatorHandle, sample: &Sample) {
    let Some((id, topic)) = robot_of(shared, sample) else {
        return;
    };
    if topic != RobotTopic::Alive {
        return reject(shared, sample.key_expr().as_str(), "not an alive token");
    }
    shared.metrics.message(MsgKind::Liveliness);
    let alive = sample.kind() == SampleKind::Put;
    let change = shared.registry_mut().on_token(&id, alive, unix_ms());
    report(coord, change);
}
