//! The `ros2` robot backend (cargo feature `ros2`): an r2r node on its own thread.
//!
//! The node (named `fms_agent` unless `--ros-args -r __node:=…` says otherwise) subscribes to
//! odometry, the AMCL pose and the battery state, publishes `cmd_vel`, and drives Nav2's
//! `navigate_to_pose` action through r2r's untyped action client (r2r's bindings need no
//! `nav2_msgs` at compile time that way). It spins on a thread named `fms-r2r`; the
//! `RobotInterface` calls only lock the shared [`RosBridge`] (which holds every decision, see
//! `ros_msgs.rs`) for a moment, so they never block on ROS. The r2r thread feeds the bridge
//! what ROS says and performs the bridge's [`Output`]s.
//!
//! `--ros-args` (remaps, `__ns`, `__node`, parameters) reach rcl because `r2r::Context::create`
//! passes the process arguments to `rcl_init`; `ROS_DOMAIN_ID` is read by rmw as usual.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fms_msgs::{unix_ms, Pose, TeleopCommand};
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::{self, Either};
use futures::task::LocalSpawnExt;
use futures::{Future, Stream, StreamExt};
use r2r::{geometry_msgs, nav_msgs, sensor_msgs, std_msgs, QosProfile};

use super::ros_msgs::{self as msgs, goal_status, BridgeSettings, Output, RosBridge};
use super::{RobotError, RobotInterface, Snapshot};
use crate::config::Ros2Settings;

/// How long each `spin_once` waits for ROS events; bounds the latency of every request.
const SPIN_TIMEOUT: Duration = Duration::from_millis(20);
/// How long `start` waits for the node to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping node keeps spinning to send its last cancel and zero velocity.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(300);

/// Why the ROS 2 backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum Ros2Error {
    #[error("cannot start the ROS 2 node: {0}")]
    Startup(String),
    #[error("the ROS 2 node did not start within {0:?}")]
    Timeout(Duration),
    #[error("cannot spawn the ROS 2 thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A robot driven through ROS 2 (r2r).
pub struct Ros2Robot {
    bridge: Arc<Mutex<RosBridge>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(bridge: &Mutex<RosBridge>) -> MutexGuard<'_, RosBridge> {
    bridge.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ros2Robot {
    /// Creates the node on its own thread and waits until its subscriptions, publisher and
    /// action client exist. Nav2 need not be up yet: goals are refused until it is.
    pub fn start(settings: &Ros2Settings) -> Result<Self, Ros2Error> {
        let bridge = Arc::new(Mutex::new(RosBridge::new(BridgeSettings {
            use_localization: settings.use_localization,
            map_frame: settings.map_frame.clone(),
            battery_scale: settings.battery_scale,
            unknown_battery_percentage: settings.unknown_battery_percentage,
            cmd_vel_period_ms: (1000.0 / settings.cmd_vel_rate).round() as u64,
            odom_timeout_ms: (settings.odom_timeout_s * 1000.0).round() as u64,
        })));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new().name("fms-r2r".into()).spawn({
            let (bridge, stop, settings) = (bridge.clone(), stop.clone(), settings.clone());
            move || node_thread(settings, bridge, stop, ready_tx)
        })?;
        let robot = Self {
            bridge,
            stop,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(())) => Ok(robot),
            Ok(Err(e)) => Err(Ros2Error::Startup(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Ros2Error::Timeout(STARTUP_TIMEOUT)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Ros2Error::Startup(
                "the ROS 2 thread stopped while starting".into(),
            )),
        }
    }

    fn alive(&self) -> Result<(), RobotError> {
        match &self.thread {
            Some(t) if !t.is_finished() => Ok(()),
            _ => Err(RobotError::Unavailable(
                "the ROS 2 node thread stopped".into(),
            )),
        }
    }
}

impl Drop for Ros2Robot {
    fn drop(&mut self) {
        // Whatever the fleet asked for ends with the agent: as an e-stop does, this cancels
        // the goal and ends teleop, and the flush below publishes a zero velocity.
        lock(&self.bridge).set_estop(true);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RobotInterface for Ros2Robot {
    fn navigate(&mut self, poses: &[Pose], _now_ms: u64) -> Result<(), RobotError> {
        self.alive()?;
        lock(&self.bridge).navigate(poses)
    }

    fn cancel(&mut self, _now_ms: u64) {
        lock(&self.bridge).cancel();
    }

    fn set_estop(&mut self, engaged: bool, _now_ms: u64) {
        lock(&self.bridge).set_estop(engaged);
    }

    fn teleop(&mut self, cmd: TeleopCommand, until_ms: u64, now_ms: u64) {
        lock(&self.bridge).teleop(cmd, until_ms, now_ms);
    }

    fn poll(&mut self, _now_ms: u64) -> Snapshot {
        lock(&self.bridge).snapshot()
    }
}

/// The publisher of `cmd_vel`, plain or stamped.
enum CmdVel {
    Plain(r2r::Publisher<geometry_msgs::msg::Twist>),
    Stamped(r2r::Publisher<geometry_msgs::msg::TwistStamped>),
}

impl CmdVel {
    fn publish(&self, v: fms_msgs::Velocity) -> r2r::Result<()> {
        let twist = to_r2r_twist(&msgs::twist_from_velocity(v));
        match self {
            CmdVel::Plain(p) => p.publish(&twist),
            CmdVel::Stamped(p) => p.publish(&geometry_msgs::msg::TwistStamped {
                header: std_msgs::msg::Header::default(),
                twist,
            }),
        }
    }
}

/// Goal handles by the bridge's goal key, for canceling.
type Handles = Rc<RefCell<HashMap<u64, r2r::ActionClientGoalUntyped>>>;

/// Everything the node thread owns.
struct Node {
    node: r2r::Node,
    pool: LocalPool,
    cmd_vel: CmdVel,
    client: r2r::ActionClientUntyped,
    handles: Handles,
}

fn node_thread(
    settings: Ros2Settings,
    bridge: Arc<Mutex<RosBridge>>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let mut node = match create_node(&settings, &bridge) {
        Ok(n) => n,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    tracing::info!(
        node = %node.node.name().unwrap_or_default(),
        namespace = %node.node.namespace().unwrap_or_default(),
        "ROS 2 node running"
    );
    let mut stopping_since: Option<Instant> = None;
    loop {
        node.node.spin_once(SPIN_TIMEOUT);
        node.pool.run_until_stalled();
        let outputs = {
            let mut b = lock(&bridge);
            b.tick(unix_ms());
            b.take_outputs()
        };
        for output in outputs {
            perform(&mut node, &bridge, output);
        }
        node.pool.run_until_stalled();
        if stop.load(Ordering::Relaxed) {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SHUTDOWN_FLUSH {
                break;
            }
        }
    }
    tracing::info!("ROS 2 node stopped");
}

fn create_node(settings: &Ros2Settings, bridge: &Arc<Mutex<RosBridge>>) -> Result<Node, String> {
    let e = |what: &str, err: r2r::Error| format!("{what}: {err}");
    // rcl_init sees the process arguments, so --ros-args remaps and parameters apply.
    let ctx = r2r::Context::create().map_err(|err| e("context", err))?;
    let mut node = r2r::Node::create(ctx, &settings.node_name, &settings.namespace)
        .map_err(|err| e("node", err))?;
    let pool = LocalPool::new();
    let spawner = pool.spawner();

    let odom = node
        .subscribe::<nav_msgs::msg::Odometry>(&settings.odom_topic, QosProfile::sensor_data())
        .map_err(|err| e(&settings.odom_topic, err))?;
    forward(&spawner, bridge, odom, |b, m| {
        b.on_odom(&from_r2r_odometry(&m))
    })?;

    if !settings.amcl_pose_topic.is_empty() && settings.use_localization {
        let qos = if settings.amcl_pose_transient_local {
            QosProfile::default()
                .keep_last(1)
                .reliable()
                .transient_local()
        } else {
            QosProfile::default()
        };
        let amcl = node
            .subscribe::<geometry_msgs::msg::PoseWithCovarianceStamped>(
                &settings.amcl_pose_topic,
                qos,
            )
            .map_err(|err| e(&settings.amcl_pose_topic, err))?;
        forward(&spawner, bridge, amcl, |b, m| {
            b.on_amcl_pose(&from_r2r_pose_with_covariance_stamped(&m))
        })?;
    }

    if !settings.battery_topic.is_empty() {
        let battery = node
            .subscribe::<sensor_msgs::msg::BatteryState>(
                &settings.battery_topic,
                QosProfile::sensor_data(),
            )
            .map_err(|err| e(&settings.battery_topic, err))?;
        forward(&spawner, bridge, battery, |b, m| {
            b.on_battery(&from_r2r_battery_state(&m))
        })?;
    }

    let cmd_vel = if settings.cmd_vel_stamped {
        CmdVel::Stamped(
            node.create_publisher(&settings.cmd_vel_topic, QosProfile::default())
                .map_err(|err| e(&settings.cmd_vel_topic, err))?,
        )
    } else {
        CmdVel::Plain(
            node.create_publisher(&settings.cmd_vel_topic, QosProfile::default())
                .map_err(|err| e(&settings.cmd_vel_topic, err))?,
        )
    };

    let client = node
        .create_action_client_untyped(&settings.navigate_action, msgs::NAVIGATE_TO_POSE_TYPE)
        .map_err(|err| {
            format!(
                "action client {} ({}): {err}; r2r generates {} only if nav2_msgs is installed \
                 and ROS is sourced while building fms_agent (docs/ros2.md)",
                settings.navigate_action,
                msgs::NAVIGATE_TO_POSE_TYPE,
                msgs::NAVIGATE_TO_POSE_TYPE
            )
        })?;
    let available = r2r::Node::is_available(&client).map_err(|err| e("action client", err))?;
    let action = settings.navigate_action.clone();
    let b = bridge.clone();
    spawner
        .spawn_local(async move {
            tracing::info!(action = %action, "waiting for the Nav2 action server");
            match available.await {
                Ok(()) => {
                    tracing::info!(action = %action, "Nav2 action server available");
                    lock(&b).set_server_ready(true);
                }
                Err(err) => tracing::warn!(action = %action, "action server wait failed: {err}"),
            }
        })
        .map_err(|err| format!("spawn: {err}"))?;

    Ok(Node {
        node,
        pool,
        cmd_vel,
        client,
        handles: Rc::default(),
    })
}

/// Feeds every message of `stream` to the bridge.
fn forward<T: 'static>(
    spawner: &LocalSpawner,
    bridge: &Arc<Mutex<RosBridge>>,
    stream: impl Stream<Item = T> + Unpin + 'static,
    mut f: impl FnMut(&mut RosBridge, T) + 'static,
) -> Result<(), String> {
    let bridge = bridge.clone();
    spawner
        .spawn_local(stream.for_each(move |msg| {
            f(&mut lock(&bridge), msg);
            future::ready(())
        }))
        .map_err(|err| format!("spawn: {err}"))
}

fn perform(node: &mut Node, bridge: &Arc<Mutex<RosBridge>>, output: Output) {
    match output {
        Output::CmdVel(v) => {
            if let Err(err) = node.cmd_vel.publish(v) {
                tracing::warn!("cmd_vel not published: {err}");
            }
        }
        Output::SendGoal { key, goal } => {
            let (x, y) = (goal.pose.pose.position.x, goal.pose.pose.position.y);
            tracing::info!(key, x, y, frame = %goal.pose.header.frame_id, "sending NavigateToPose goal");
            match node.client.send_goal_request(msgs::goal_to_json(&goal)) {
                Ok(request) => {
                    let task = follow_goal(key, request, bridge.clone(), node.handles.clone());
                    if let Err(err) = node.pool.spawner().spawn_local(task) {
                        lock(bridge).on_goal_failed(key, format!("cannot follow the goal: {err}"));
                    }
                }
                Err(err) => lock(bridge).on_goal_failed(key, format!("goal not sent: {err}")),
            }
        }
        Output::CancelGoal { key } => {
            let Some(handle) = node.handles.borrow().get(&key).cloned() else {
                // Not accepted yet (the bridge cancels it on acceptance) or already over.
                return;
            };
            tracing::info!(key, "canceling NavigateToPose goal");
            match handle.cancel() {
                Ok(done) => {
                    let cancel = async move {
                        if let Err(err) = done.await {
                            tracing::debug!(key, "cancel: {err}");
                        }
                    };
                    if let Err(err) = node.pool.spawner().spawn_local(cancel) {
                        tracing::warn!(key, "cancel not followed: {err}");
                    }
                }
                Err(err) => tracing::warn!(key, "cancel not sent: {err}"),
            }
        }
    }
}

/// Waits for the goal's acceptance, forwards its feedback, and reports its result.
async fn follow_goal<R, F>(
    key: u64,
    request: impl Future<Output = r2r::Result<(r2r::ActionClientGoalUntyped, R, F)>>,
    bridge: Arc<Mutex<RosBridge>>,
    handles: Handles,
) where
    R: Future<Output = r2r::Result<(r2r::GoalStatus, r2r::Result<fms_msgs::codec::JsonValue>)>>,
    F: Stream<Item = r2r::Result<fms_msgs::codec::JsonValue>> + Unpin,
{
    let (handle, result, feedback) = match request.await {
        Ok(accepted) => accepted,
        Err(err) => {
            tracing::warn!(key, "goal rejected: {err}");
            lock(&bridge).on_goal_failed(key, format!("Nav2 rejected the goal: {err}"));
            return;
        }
    };
    handles.borrow_mut().insert(key, handle);
    lock(&bridge).on_goal_accepted(key);
    let b = bridge.clone();
    let feedback = feedback.for_each(move |msg| {
        match msg
            .map_err(|e| e.to_string())
            .and_then(|v| msgs::feedback_from_json(v).map_err(|e| e.to_string()))
        {
            Ok(fb) => {
                tracing::trace!(
                    key,
                    distance_remaining = fb.distance_remaining,
                    eta_s = fb.estimated_time_remaining.as_secs_f64(),
                    recoveries = fb.number_of_recoveries,
                    "feedback"
                );
                lock(&b).on_feedback(key, &fb);
            }
            Err(err) => tracing::debug!(key, "unreadable feedback: {err}"),
        }
        future::ready(())
    });
    let result = match future::select(Box::pin(result), feedback).await {
        Either::Left((result, _)) => result,
        Either::Right(((), result)) => result.await,
    };
    handles.borrow_mut().remove(&key);
    match result {
        Ok((status, result)) => {
            let result = result.map(msgs::result_from_json).unwrap_or_default();
            let code = status_code(status);
            tracing::info!(key, status = %status, "NavigateToPose goal ended");
            lock(&bridge).on_result(key, code, &result);
        }
        Err(err) => lock(&bridge).on_goal_failed(key, format!("goal result lost: {err}")),
    }
}

fn status_code(status: r2r::GoalStatus) -> i8 {
    match status {
        r2r::GoalStatus::Unknown => goal_status::UNKNOWN,
        r2r::GoalStatus::Accepted => goal_status::ACCEPTED,
        r2r::GoalStatus::Executing => goal_status::EXECUTING,
        r2r::GoalStatus::Canceling => goal_status::CANCELING,
        r2r::GoalStatus::Succeeded => goal_status::SUCCEEDED,
        r2r::GoalStatus::Canceled => goal_status::CANCELED,
        r2r::GoalStatus::Aborted => goal_status::ABORTED,
    }
}

// --- r2r's generated types to the mirrors in ros_msgs.rs ---

fn from_r2r_time(t: &r2r::builtin_interfaces::msg::Time) -> msgs::Time {
    msgs::Time {
        sec: t.sec,
        nanosec: t.nanosec,
    }
}

fn from_r2r_header(h: &std_msgs::msg::Header) -> msgs::Header {
    msgs::Header {
        stamp: from_r2r_time(&h.stamp),
        frame_id: h.frame_id.clone(),
    }
}

fn from_r2r_pose(p: &geometry_msgs::msg::Pose) -> msgs::RosPose {
    msgs::RosPose {
        position: msgs::Point {
            x: p.position.x,
            y: p.position.y,
            z: p.position.z,
        },
        orientation: msgs::Quaternion {
            x: p.orientation.x,
            y: p.orientation.y,
            z: p.orientation.z,
            w: p.orientation.w,
        },
    }
}

fn from_r2r_vector3(v: &geometry_msgs::msg::Vector3) -> msgs::Vector3 {
    msgs::Vector3 {
        x: v.x,
        y: v.y,
        z: v.z,
    }
}

fn from_r2r_odometry(m: &nav_msgs::msg::Odometry) -> msgs::Odometry {
    msgs::Odometry {
        header: from_r2r_header(&m.header),
        child_frame_id: m.child_frame_id.clone(),
        pose: msgs::PoseWithCovariance {
            pose: from_r2r_pose(&m.pose.pose),
            covariance: m.pose.covariance.clone(),
        },
        twist: msgs::TwistWithCovariance {
            twist: msgs::Twist {
                linear: from_r2r_vector3(&m.twist.twist.linear),
                angular: from_r2r_vector3(&m.twist.twist.angular),
            },
            covariance: m.twist.covariance.clone(),
        },
    }
}

fn from_r2r_pose_with_covariance_stamped(
    m: &geometry_msgs::msg::PoseWithCovarianceStamped,
) -> msgs::PoseWithCovarianceStamped {
    msgs::PoseWithCovarianceStamped {
        header: from_r2r_header(&m.header),
        pose: msgs::PoseWithCovariance {
            pose: from_r2r_pose(&m.pose.pose),
            covariance: m.pose.covariance.clone(),
        },
    }
}

fn from_r2r_battery_state(m: &sensor_msgs::msg::BatteryState) -> msgs::BatteryState {
    msgs::BatteryState {
        header: from_r2r_header(&m.header),
        voltage: m.voltage,
        temperature: m.temperature,
        current: m.current,
        charge: m.charge,
        capacity: m.capacity,
        design_capacity: m.design_capacity,
        percentage: m.percentage,
        power_supply_status: m.power_supply_status,
        power_supply_health: m.power_supply_health,
        power_supply_technology: m.power_supply_technology,
        present: m.present,
        cell_voltage: m.cell_voltage.clone(),
        cell_temperature: m.cell_temperature.clone(),
        location: m.location.clone(),
        serial_number: m.serial_number.clone(),
    }
}

fn to_r2r_twist(t: &msgs::Twist) -> geometry_msgs::msg::Twist {
    let v = |v: &msgs::Vector3| geometry_msgs::msg::Vector3 {
        x: v.x,
        y: v.y,
        z: v.z,
    };
    geometry_msgs::msg::Twist {
        linear: v(&t.linear),
        angular: v(&t.angular),
    }
}
