//! The `ros2dds` robot backend (cargo feature `ros2dds`): the robot's ROS 2 graph over DDS
//! through zenoh-plugin-ros2dds, with no ROS installation.
//!
//! By default the agent runs the plugin itself, as a static plugin of a second, private Zenoh
//! runtime (peer mode, no listener, no scouting, so nothing of the ROS graph reaches the fleet
//! network), on the robot's `ROS_DOMAIN_ID`. With `[ros2dds] bridge` it connects to a
//! zenoh-bridge-ros2dds already running on the robot instead (the free_fleet set-up). Either
//! way it sees the graph as the plugin maps it: topic `/odom` is key `odom`, Nav2's action is
//! the queryables `navigate_to_pose/_action/{send_goal,cancel_goal,get_result}` and the
//! publications `…/_action/feedback`, every payload CDR (`ros_msgs::wire`). Names resolve
//! in the node's namespace with the `--ros-args` remaps, as rcl would (`ros_names`).
//!
//! As in the r2r backend, every decision is in [`RosBridge`]; this module moves bytes. It runs
//! on its own thread (`fms-ros2dds`, a current-thread tokio runtime), so the `RobotInterface`
//! calls only lock the bridge for a moment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use fms_msgs::{unix_ms, Pose, TeleopCommand, Velocity};
use serde::de::DeserializeOwned;
use zenoh::internal::plugins::PluginsManager;
use zenoh::internal::runtime::RuntimeBuilder;
use zenoh::query::Querier;
use zenoh::sample::Sample;
use zenoh::Session;
use zenoh_ext::{AdvancedSubscriberBuilderExt, HistoryConfig};

use super::ros_msgs::wire::{self, WireError};
use super::ros_msgs::{
    self as msgs, BatteryState, BridgeSettings, CancelGoalRequest, CancelGoalResponse,
    FeedbackMessage, GetResultRequest, GoalId, GoalInfo, Odometry, Output,
    PoseWithCovarianceStamped, RosBridge, SendGoalRequest, SendGoalResponse, TwistStamped,
};
use super::ros_names::{self, NameError};
use super::{RobotError, RobotInterface, Snapshot};
use crate::config::{Ros2Settings, Ros2ddsSettings};

/// How often the bridge is ticked (cmd_vel repeats, queued outputs).
const TICK: Duration = Duration::from_millis(20);
/// How long `start` waits for the bridge to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// A get_result query waits this long (Nav2 goals can take long); the in-process plugin is
/// configured to wait as long.
const GET_RESULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Pause before asking for a result again after a get_result query ended unanswered.
const GET_RESULT_RETRY: Duration = Duration::from_secs(1);
/// How long a stopping agent waits for its last cancel to be answered.
const SHUTDOWN_CANCEL: Duration = Duration::from_secs(1);

/// Why the ros2dds backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum Ros2ddsError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("cannot start the ros2dds bridge: {0}")]
    Startup(String),
    #[error("the ros2dds bridge did not start within {0:?}")]
    Timeout(Duration),
    #[error("cannot spawn the ros2dds thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The Zenoh keys of the robot's ROS interfaces, and their fully qualified ROS names.
#[derive(Debug, Clone, PartialEq)]
pub struct Interfaces {
    pub odom: Endpoint,
    /// `None` when the fleet pose comes from odometry (`use_localization = false`).
    pub amcl_pose: Option<Endpoint>,
    /// `None` when no battery topic is configured.
    pub battery: Option<Endpoint>,
    pub cmd_vel: Endpoint,
    pub navigate: Endpoint,
}

/// One ROS interface: its ROS name and the key the plugin routes it on.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub ros_name: String,
    pub key: String,
}

impl Endpoint {
    fn action_key(&self, part: &str) -> String {
        format!("{}/_action/{part}", self.key)
    }
}

impl Interfaces {
    /// Resolves the configured names in the node's namespace, with the remaps.
    pub fn resolve(
        ros2: &Ros2Settings,
        dds: &Ros2ddsSettings,
        remaps: &[(String, String)],
    ) -> Result<Self, NameError> {
        let endpoint = |name: &str| -> Result<Endpoint, NameError> {
            let ros_name =
                ros_names::resolve_remapped(name, &ros2.namespace, &ros2.node_name, remaps)?;
            let key = ros_names::zenoh_key(&ros_name, &dds.bridge_namespace);
            Ok(Endpoint { ros_name, key })
        };
        let optional = |name: &str| -> Result<Option<Endpoint>, NameError> {
            if name.trim().is_empty() {
                Ok(None)
            } else {
                endpoint(name).map(Some)
            }
        };
        Ok(Self {
            odom: endpoint(&ros2.odom_topic)?,
            amcl_pose: if ros2.use_localization {
                optional(&ros2.amcl_pose_topic)?
            } else {
                None
            },
            battery: optional(&ros2.battery_topic)?,
            cmd_vel: endpoint(&ros2.cmd_vel_topic)?,
            navigate: endpoint(&ros2.navigate_action)?,
        })
    }

    /// The in-process plugin's configuration: route only these interfaces, on `domain`.
    pub fn plugin_config(&self, dds: &Ros2ddsSettings, node_name: &str) -> String {
        let list = |items: Vec<&Endpoint>| {
            let names: Vec<String> = items.iter().map(|e| format!("{:?}", e.ros_name)).collect();
            format!("[{}]", names.join(","))
        };
        let publishers = list(
            [
                Some(&self.odom),
                self.amcl_pose.as_ref(),
                self.battery.as_ref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        );
        format!(
            r#"{{
  domain: {domain},
  namespace: "/",
  nodename: {node:?},
  ros_localhost_only: {localhost},
  allow: {{
    publishers: {publishers},
    subscribers: {subscribers},
    action_servers: {actions},
  }},
  queries_timeout: {{
    default: {timeout},
    actions: {{ get_result: [".*={get_result}"] }},
  }},
}}"#,
            domain = dds.domain,
            node = node_name,
            localhost = dds.localhost_only,
            subscribers = list(vec![&self.cmd_vel]),
            actions = list(vec![&self.navigate]),
            timeout = dds.query_timeout_s,
            get_result = GET_RESULT_TIMEOUT.as_secs(),
        )
    }
}

/// Goal ids by the bridge's goal keys, and back (for feedback).
#[derive(Default)]
struct Goals {
    by_key: HashMap<u64, GoalId>,
    by_id: HashMap<GoalId, u64>,
}

impl Goals {
    fn insert(&mut self, key: u64, id: GoalId) {
        self.by_key.insert(key, id);
        self.by_id.insert(id, key);
    }

    fn remove(&mut self, key: u64) {
        if let Some(id) = self.by_key.remove(&key) {
            self.by_id.remove(&id);
        }
    }
}

/// What the `RobotInterface` side and the bridge thread share.
struct Shared {
    bridge: Mutex<RosBridge>,
    goals: Mutex<Goals>,
    wake: tokio::sync::Notify,
    stop: AtomicBool,
    bad_payloads: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn bridge(&self) -> MutexGuard<'_, RosBridge> {
        lock(&self.bridge)
    }

    /// Decodes a sample; a bad payload is logged (the first and every 100th) and dropped.
    fn decode<T: DeserializeOwned>(&self, what: &str, sample: &Sample) -> Option<T> {
        match wire::decode::<T>(&sample.payload().to_bytes()) {
            Ok(m) => Some(m),
            Err(e) => {
                let n = self.bad_payloads.fetch_add(1, Ordering::Relaxed);
                if n % 100 == 0 {
                    tracing::warn!(key = %sample.key_expr(), "dropped a bad {what} payload ({} so far): {e}", n + 1);
                }
                None
            }
        }
    }
}

/// A robot driven through ROS 2 over DDS (zenoh-plugin-ros2dds).
pub struct Ros2ddsRobot {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Ros2ddsRobot {
    /// Starts the bridge thread and waits until the subscriptions, publisher and queriers
    /// exist. Nav2 need not be up yet: goals are refused until its action server is seen.
    pub fn start(
        ros2: &Ros2Settings,
        dds: &Ros2ddsSettings,
        remaps: &[(String, String)],
    ) -> Result<Self, Ros2ddsError> {
        let interfaces = Interfaces::resolve(ros2, dds, remaps)?;
        let shared = Arc::new(Shared {
            bridge: Mutex::new(RosBridge::new(BridgeSettings {
                use_localization: ros2.use_localization,
                map_frame: ros2.map_frame.clone(),
                battery_scale: ros2.battery_scale,
                unknown_battery_percentage: ros2.unknown_battery_percentage,
                cmd_vel_period_ms: (1000.0 / ros2.cmd_vel_rate).round() as u64,
                odom_timeout_ms: (ros2.odom_timeout_s * 1000.0).round() as u64,
            })),
            goals: Mutex::new(Goals::default()),
            wake: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            bad_payloads: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fms-ros2dds".into())
            .spawn({
                let shared = shared.clone();
                let (ros2, dds) = (ros2.clone(), dds.clone());
                move || bridge_thread(ros2, dds, interfaces, shared, ready_tx)
            })?;
        let robot = Self {
            shared,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(())) => Ok(robot),
            Ok(Err(e)) => Err(Ros2ddsError::Startup(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Ros2ddsError::Timeout(STARTUP_TIMEOUT)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Ros2ddsError::Startup(
                "the ros2dds thread stopped while starting".into(),
            )),
        }
    }

    fn alive(&self) -> Result<(), RobotError> {
        match &self.thread {
            Some(t) if !t.is_finished() => Ok(()),
            _ => Err(RobotError::Unavailable(
                "the ros2dds bridge thread stopped".into(),
            )),
        }
    }

    fn wake(&self) {
        self.shared.wake.notify_one();
    }
}

impl Drop for Ros2ddsRobot {
    fn drop(&mut self) {
        // As an e-stop does: cancel the goal, end teleop, publish a zero velocity.
        self.shared.bridge().set_estop(true);
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RobotInterface for Ros2ddsRobot {
    fn navigate(&mut self, poses: &[Pose], _now_ms: u64) -> Result<(), RobotError> {
        self.alive()?;
        let r = self.shared.bridge().navigate(poses);
        self.wake();
        r
    }

    fn cancel(&mut self, _now_ms: u64) {
        self.shared.bridge().cancel();
        self.wake();
    }

    fn set_estop(&mut self, engaged: bool, _now_ms: u64) {
        self.shared.bridge().set_estop(engaged);
        self.wake();
    }

    fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        self.shared.bridge().teleop(cmd, until_ms, now_ms);
        self.wake();
    }

    fn poll(&mut self, _now_ms: u64) -> Snapshot {
        self.shared.bridge().snapshot()
    }
}

fn bridge_thread(
    ros2: Ros2Settings,
    dds: Ros2ddsSettings,
    interfaces: Interfaces,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot build the runtime: {e}")));
            return;
        }
    };
    rt.block_on(async move {
        let link = match Link::open(&ros2, &dds, &interfaces, &shared).await {
            Ok(link) => link,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        tracing::info!(
            odom = %interfaces.odom.key,
            cmd_vel = %interfaces.cmd_vel.key,
            navigate = %interfaces.navigate.key,
            mode = if dds.bridge.is_some() { "external zenoh-bridge-ros2dds" } else { "in-process zenoh-plugin-ros2dds" },
            domain = dds.domain,
            "ros2dds backend running"
        );
        let _ = ready.send(Ok(()));
        link.run(&shared).await;
    });
}

/// Everything the bridge thread holds on the Zenoh side.
struct Link {
    session: Session,
    cmd_vel: zenoh::pubsub::Publisher<'static>,
    cmd_vel_stamped: bool,
    send_goal: Arc<Querier<'static>>,
    cancel_goal: Arc<Querier<'static>>,
    get_result: Arc<Querier<'static>>,
    // Held for their callbacks.
    _subscribers: Vec<zenoh_ext::AdvancedSubscriber<()>>,
    _feedback: zenoh::pubsub::Subscriber<()>,
    _matching: zenoh::matching::MatchingListener<()>,
}

impl Link {
    async fn open(
        ros2: &Ros2Settings,
        dds: &Ros2ddsSettings,
        interfaces: &Interfaces,
        shared: &Arc<Shared>,
    ) -> Result<Self, String> {
        let session = match &dds.bridge {
            Some(endpoint) => {
                tracing::info!(%endpoint, "connecting to the robot's zenoh-bridge-ros2dds");
                crate::link::open(endpoint, None)
                    .await
                    .map_err(|e| format!("cannot reach the bridge at {endpoint}: {e}"))?
            }
            None => in_process_session(interfaces.plugin_config(dds, &ros2.node_name)).await?,
        };
        let z = |e: zenoh::Error| e.to_string();

        let mut subscribers = Vec::new();
        let s = shared.clone();
        subscribers.push(
            session
                .declare_subscriber(interfaces.odom.key.clone())
                .history(HistoryConfig::default().detect_late_publishers())
                .callback(move |sample| {
                    if let Some(m) = s.decode::<Odometry>("odom", &sample) {
                        s.bridge().on_odom(&m);
                    }
                })
                .await
                .map_err(z)?,
        );
        if let Some(amcl) = &interfaces.amcl_pose {
            let s = shared.clone();
            subscribers.push(
                session
                    .declare_subscriber(amcl.key.clone())
                    // AMCL publishes transient-local and only when it updates: the plugin
                    // caches its last pose, and history fetches it at once.
                    .history(HistoryConfig::default().detect_late_publishers())
                    .callback(move |sample| {
                        if let Some(m) = s.decode::<PoseWithCovarianceStamped>("amcl_pose", &sample)
                        {
                            s.bridge().on_amcl_pose(&m);
                        }
                    })
                    .await
                    .map_err(z)?,
            );
        }
        if let Some(battery) = &interfaces.battery {
            let s = shared.clone();
            subscribers.push(
                session
                    .declare_subscriber(battery.key.clone())
                    .history(HistoryConfig::default().detect_late_publishers())
                    .callback(move |sample| {
                        if let Some(m) = s.decode::<BatteryState>("battery_state", &sample) {
                            s.bridge().on_battery(&m);
                        }
                    })
                    .await
                    .map_err(z)?,
            );
        }
        let s = shared.clone();
        let feedback = session
            .declare_subscriber(interfaces.navigate.action_key("feedback"))
            .callback(move |sample| {
                let Some(m) = s.decode::<FeedbackMessage>("feedback", &sample) else {
                    return;
                };
                let key = lock(&s.goals).by_id.get(&m.goal_id).copied();
                if let Some(key) = key {
                    s.bridge().on_feedback(key, &m.feedback);
                }
            })
            .await
            .map_err(z)?;

        let cmd_vel = session
            .declare_publisher(interfaces.cmd_vel.key.clone())
            .await
            .map_err(z)?;
        let query_timeout = Duration::from_secs_f64(dds.query_timeout_s);
        let send_goal = session
            .declare_querier(interfaces.navigate.action_key("send_goal"))
            .timeout(query_timeout)
            .await
            .map_err(z)?;
        let cancel_goal = session
            .declare_querier(interfaces.navigate.action_key("cancel_goal"))
            .timeout(query_timeout)
            .await
            .map_err(z)?;
        let get_result = session
            .declare_querier(interfaces.navigate.action_key("get_result"))
            .timeout(GET_RESULT_TIMEOUT)
            .await
            .map_err(z)?;
        // Nav2 is there when the plugin serves its send_goal.
        let s = shared.clone();
        let matching = send_goal
            .matching_listener()
            .callback(move |status| {
                let ready = status.matching();
                tracing::info!(ready, "Nav2 navigate_to_pose action server");
                s.bridge().set_server_ready(ready);
            })
            .await
            .map_err(z)?;
        Ok(Self {
            session,
            cmd_vel,
            cmd_vel_stamped: ros2.cmd_vel_stamped,
            send_goal: Arc::new(send_goal),
            cancel_goal: Arc::new(cancel_goal),
            get_result: Arc::new(get_result),
            _subscribers: subscribers,
            _feedback: feedback,
            _matching: matching,
        })
    }

    /// Ticks the bridge and performs its outputs until asked to stop.
    async fn run(self, shared: &Arc<Shared>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shared.wake.notified() => {}
            }
            let stopping = shared.stop.load(Ordering::Acquire);
            let outputs = {
                let mut b = shared.bridge();
                b.tick(unix_ms());
                b.take_outputs()
            };
            for out in outputs {
                self.perform(shared, out, stopping).await;
            }
            if stopping {
                break;
            }
        }
        // Let the last publications leave before the session goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = self.session.close().await {
            tracing::debug!("closing the ros2dds session: {e}");
        }
    }

    async fn perform(&self, shared: &Arc<Shared>, out: Output, stopping: bool) {
        match out {
            Output::CmdVel(v) => self.publish_cmd_vel(v).await,
            Output::SendGoal { key, goal } => {
                let id = GoalId {
                    uuid: uuid::Uuid::new_v4().into_bytes(),
                };
                lock(&shared.goals).insert(key, id);
                tokio::spawn(follow_goal(
                    shared.clone(),
                    self.send_goal.clone(),
                    self.get_result.clone(),
                    key,
                    SendGoalRequest { goal_id: id, goal },
                ));
            }
            Output::CancelGoal { key } => {
                let Some(id) = lock(&shared.goals).by_key.get(&key).copied() else {
                    return;
                };
                let cancel = cancel_goal(self.cancel_goal.clone(), id);
                if stopping {
                    let _ = tokio::time::timeout(SHUTDOWN_CANCEL, cancel).await;
                } else {
                    tokio::spawn(cancel);
                }
            }
        }
    }

    async fn publish_cmd_vel(&self, v: Velocity) {
        let twist = msgs::twist_from_velocity(v);
        let bytes = if self.cmd_vel_stamped {
            wire::encode(&TwistStamped {
                header: Default::default(),
                twist,
            })
        } else {
            wire::encode(&twist)
        };
        match bytes {
            Ok(b) => {
                if let Err(e) = self.cmd_vel.put(b).await {
                    tracing::warn!("cmd_vel not published: {e}");
                }
            }
            Err(e) => tracing::warn!("cmd_vel not encoded: {e}"),
        }
    }
}

/// A private Zenoh runtime that runs zenoh-plugin-ros2dds, and a session on it.
async fn in_process_session(plugin_config: String) -> Result<Session, String> {
    let mut config = zenoh::Config::default();
    for (key, value) in [
        ("mode", r#""peer""#),
        ("listen/endpoints", "[]"),
        ("connect/endpoints", "[]"),
        ("scouting/multicast/enabled", "false"),
        // The plugin's transient-local caches need timestamps.
        ("timestamping/enabled", "true"),
        ("plugins_loading/enabled", "true"),
        ("plugins/ros2dds", plugin_config.as_str()),
    ] {
        config
            .insert_json5(key, value)
            .map_err(|e| format!("zenoh config {key}: {e}"))?;
    }
    tracing::debug!(plugin_config = %plugin_config, "starting zenoh-plugin-ros2dds");
    let mut plugins = PluginsManager::static_plugins_only();
    plugins.declare_static_plugin::<zenoh_plugin_ros2dds::ROS2Plugin, &str>("ros2dds", false);
    let mut runtime = RuntimeBuilder::new(config)
        .plugins_manager(plugins)
        .build()
        .await
        .map_err(|e| format!("cannot build the Zenoh runtime: {e}"))?;
    if runtime
        .plugins_manager()
        .started_plugin("ros2dds")
        .is_none()
    {
        return Err(
            "zenoh-plugin-ros2dds did not start (DDS domain or network unavailable? see the log above)"
                .into(),
        );
    }
    runtime
        .start()
        .await
        .map_err(|e| format!("cannot start the Zenoh runtime: {e}"))?;
    zenoh::session::init(runtime.into())
        .await
        .map_err(|e| format!("cannot open a session on the bridge runtime: {e}"))
}

/// One query, its first answer's payload.
async fn ask(querier: &Querier<'static>, payload: Vec<u8>) -> Result<Vec<u8>, String> {
    let replies = querier
        .get()
        .payload(payload)
        .await
        .map_err(|e| e.to_string())?;
    match replies.recv_async().await {
        Ok(reply) => match reply.result() {
            Ok(sample) => Ok(sample.payload().to_bytes().into_owned()),
            Err(err) => Err(format!(
                "error reply: {}",
                String::from_utf8_lossy(&err.payload().to_bytes())
            )),
        },
        Err(_) => Err("no answer (timed out, or the action server is gone)".into()),
    }
}

fn encoded<T: serde::Serialize>(msg: &T) -> Result<Vec<u8>, String> {
    wire::encode(msg).map_err(|e: WireError| e.to_string())
}

/// Sends a goal and follows it to its result, reporting to the bridge under `key`.
async fn follow_goal(
    shared: Arc<Shared>,
    send_goal: Arc<Querier<'static>>,
    get_result: Arc<Querier<'static>>,
    key: u64,
    request: SendGoalRequest,
) {
    let id = request.goal_id;
    let accepted = match encoded(&request) {
        Ok(bytes) => ask(&send_goal, bytes).await.and_then(|answer| {
            wire::decode::<SendGoalResponse>(&answer)
                .map(|r| r.accepted)
                .map_err(|e| e.to_string())
        }),
        Err(e) => Err(e),
    };
    match accepted {
        Ok(true) => {
            tracing::debug!(key, "goal accepted");
            shared.bridge().on_goal_accepted(key);
        }
        Ok(false) => {
            shared
                .bridge()
                .on_goal_failed(key, "Nav2 rejected the goal".into());
            lock(&shared.goals).remove(key);
            return;
        }
        Err(e) => {
            // Seen live: a Fast DDS action server never answers through the plugin.
            let hint = if e.contains("Timeout") || e.starts_with("no answer") {
                " (no answer from the action server: zenoh-plugin-ros2dds calls the ROS 2 \
                 actions of Cyclone DDS nodes only, docs/ros2.md)"
            } else {
                ""
            };
            shared
                .bridge()
                .on_goal_failed(key, format!("send_goal failed: {e}{hint}"));
            lock(&shared.goals).remove(key);
            return;
        }
    }
    shared.wake.notify_one();
    let request = match encoded(&GetResultRequest { goal_id: id }) {
        Ok(r) => r,
        Err(e) => {
            shared.bridge().on_goal_failed(key, e);
            lock(&shared.goals).remove(key);
            return;
        }
    };
    loop {
        match ask(&get_result, request.clone()).await {
            Ok(answer) => {
                match wire::decode_get_result(&answer) {
                    Ok(r) => shared.bridge().on_result(key, r.status, &r.result),
                    Err(e) => shared
                        .bridge()
                        .on_goal_failed(key, format!("unreadable get_result answer: {e}")),
                }
                break;
            }
            Err(e) => {
                if !shared.bridge().is_goal_current(key) {
                    break;
                }
                tracing::warn!(key, "get_result: {e}; asking again");
                tokio::time::sleep(GET_RESULT_RETRY).await;
            }
        }
    }
    lock(&shared.goals).remove(key);
    // The bridge may have queued the next waypoint's goal.
    shared.wake.notify_one();
}

async fn cancel_goal(querier: Arc<Querier<'static>>, id: GoalId) {
    let request = CancelGoalRequest {
        goal_info: GoalInfo {
            goal_id: id,
            stamp: Default::default(),
        },
    };
    let answer = match encoded(&request) {
        Ok(bytes) => ask(&querier, bytes).await,
        Err(e) => Err(e),
    };
    match answer.and_then(|a| wire::decode::<CancelGoalResponse>(&a).map_err(|e| e.to_string())) {
        Ok(r) if r.return_code == 0 => tracing::debug!("goal canceled"),
        Ok(r) => tracing::warn!(
            return_code = r.return_code,
            "Nav2 refused to cancel the goal"
        ),
        Err(e) => tracing::warn!("cancel_goal failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_resolve_in_the_namespace_with_remaps() {
        let ros2 = Ros2Settings {
            namespace: "/tb3_1".into(),
            ..Ros2Settings::default()
        };
        let remaps = vec![("odom".to_owned(), "/odometry/filtered".to_owned())];
        let i = Interfaces::resolve(&ros2, &Ros2ddsSettings::default(), &remaps).unwrap();
        assert_eq!(i.odom.key, "odometry/filtered");
        assert_eq!(i.amcl_pose.as_ref().unwrap().key, "tb3_1/amcl_pose");
        assert_eq!(i.cmd_vel.ros_name, "/tb3_1/cmd_vel");
        assert_eq!(
            i.navigate.action_key("send_goal"),
            "tb3_1/navigate_to_pose/_action/send_goal"
        );
        let external = Ros2ddsSettings {
            bridge_namespace: "/bot1".into(),
            ..Ros2ddsSettings::default()
        };
        let i = Interfaces::resolve(&Ros2Settings::default(), &external, &[]).unwrap();
        assert_eq!(i.battery.unwrap().key, "bot1/battery_state");
    }

    #[test]
    fn plugin_config_routes_only_our_interfaces() {
        let i = Interfaces::resolve(&Ros2Settings::default(), &Ros2ddsSettings::default(), &[])
            .unwrap();
        let dds = Ros2ddsSettings {
            domain: 42,
            ..Ros2ddsSettings::default()
        };
        let text = i.plugin_config(&dds, "fms_agent");
        let mut config = zenoh::Config::default();
        config.insert_json5("plugins/ros2dds", &text).unwrap();
        let parsed: zenoh_plugin_ros2dds::config::Config =
            fms_msgs::codec::from_value(config.plugin("ros2dds").unwrap().clone()).unwrap();
        assert_eq!(parsed.domain, 42);
        let allow = parsed.allowance.expect("an allow list");
        assert!(allow.is_publisher_allowed("/odom"));
        assert!(allow.is_publisher_allowed("/amcl_pose"));
        assert!(!allow.is_publisher_allowed("/scan"));
        assert!(allow.is_subscriber_allowed("/cmd_vel"));
        assert!(!allow.is_subscriber_allowed("/cmd_vel_other"));
        assert!(allow.is_action_srv_allowed("/navigate_to_pose"));
        assert!(!allow.is_action_srv_allowed("/follow_waypoints"));
    }
}
