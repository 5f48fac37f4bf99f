//! Agent configuration: a TOML file, overridden by environment, overridden by flags and
//! by the `--ros-args` that `ros2 launch` appends. Unknown keys are errors.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
pub use fms_msgs::legacy::log_level;
use fms_msgs::{Pose, RobotId};
use serde::Deserialize;

use crate::robot::ros_msgs::BatteryScale;
use crate::robot::sim::SimParams;

mod legacy_json;
mod ros2dds;
pub use ros2dds::{FileRos2dds, Ros2ddsSettings};

/// Which robot the agent drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// A simulated robot (no ROS needed).
    Mock,
    /// ROS 2 through r2r (cargo feature `ros2`).
    Ros2,
    /// ROS 2 over DDS via zenoh-plugin-ros2dds (cargo feature `ros2dds`).
    Ros2dds,
}

/// Command-line flags; each may also come from the environment variable named.
#[derive(Debug, Default, Parser)]
#[command(
    name = "fms_agent",
    version,
    about = "fms robot agent: bridges one robot to the fleet over Zenoh"
)]
pub struct Cli {
    /// TOML config file (see config/agent.toml), or the Python FMS agent's config.json.
    #[arg(long, env = "FMS_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Robot id; defaults to the ROS namespace when launched by ros2 launch.
    #[arg(long, env = "ROBOT_ID")]
    pub robot_id: Option<String>,
    /// Zenoh router to connect to, e.g. tcp/127.0.0.1:7447 (tls/host:7447 with TLS).
    #[arg(long, env = "ZENOH_ENDPOINT")]
    pub zenoh_endpoint: Option<String>,
    /// Zenoh configuration file (JSON5) to start from: TLS certificates, for instance
    /// (config/zenoh/). Mode and endpoint still come from the settings above.
    #[arg(long, env = "FMS_ZENOH_CONFIG")]
    pub zenoh_config: Option<PathBuf>,
    /// Robot backend.
    #[arg(long, value_enum, env = "FMS_INTERFACE")]
    pub interface: Option<Interface>,
    /// State messages per second.
    #[arg(long, env = "FMS_RATE")]
    pub rate: Option<f64>,
    /// Simulated start pose: x,y,yaw (metres, radians).
    #[arg(long, value_parser = parse_pose, allow_hyphen_values = true)]
    pub start_pose: Option<Pose>,
    /// Simulated chance (0-1) that a navigation goal fails.
    #[arg(long)]
    pub failure_probability: Option<f64>,
    /// Simulated top speed, m/s.
    #[arg(long)]
    pub max_speed: Option<f64>,
    /// Log filter: error, warn, info, debug, trace (or a tracing filter string).
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// DDS domain of the robot's ROS 2 graph (`--interface ros2dds`; r2r reads it itself).
    #[arg(long, env = "ROS_DOMAIN_ID")]
    pub ros_domain_id: Option<u32>,
    /// Keep DDS traffic on this host (`--interface ros2dds`), as ROS_LOCALHOST_ONLY=1 does.
    #[arg(long, env = "ROS_LOCALHOST_ONLY", value_parser = clap::builder::BoolishValueParser::new())]
    pub ros_localhost_only: Option<bool>,
    /// `--interface ros2dds`: Zenoh endpoint of a zenoh-bridge-ros2dds already running on the
    /// robot, instead of running the bridge inside the agent.
    #[arg(long, env = "FMS_ROS2DDS_BRIDGE")]
    pub ros2dds_bridge: Option<String>,
}

/// `config/agent.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub robot_id: Option<String>,
    pub zenoh_endpoint: Option<String>,
    pub zenoh_config: Option<PathBuf>,
    pub interface: Option<Interface>,
    pub rate: Option<f64>,
    pub log_level: Option<String>,
    pub sim: Option<FileSim>,
    pub ros: Option<FileRos>,
    pub ros2dds: Option<FileRos2dds>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSim {
    pub start_pose: Option<[f64; 3]>,
    pub max_speed: Option<f64>,
    pub max_turn_rate: Option<f64>,
    pub goal_tolerance: Option<f64>,
    pub failure_probability: Option<f64>,
    pub drain_per_metre: Option<f64>,
    pub drain_per_second: Option<f64>,
}

/// `[ros]`: the ROS 2 backend. Each key may also be given as a ROS parameter of the same name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRos {
    pub amcl_pose_topic: Option<String>,
    pub odom_topic: Option<String>,
    pub battery_topic: Option<String>,
    pub cmd_vel_topic: Option<String>,
    pub navigate_action: Option<String>,
    pub use_localization: Option<bool>,
    pub amcl_pose_transient_local: Option<bool>,
    pub map_frame: Option<String>,
    pub cmd_vel_rate: Option<f64>,
    pub cmd_vel_stamped: Option<bool>,
    pub battery_scale: Option<BatteryScale>,
    pub unknown_battery_percentage: Option<f64>,
    pub odom_timeout_s: Option<f64>,
}

/// The resolved settings of the ROS 2 backend (see `[ros]` in config/agent.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct Ros2Settings {
    /// The node's name: `__node` from `--ros-args`, else `fms_agent`.
    pub node_name: String,
    /// The node's namespace: `__ns` from `--ros-args`, else empty (the root namespace).
    pub namespace: String,
    /// Relative names resolve in the node's namespace (`amcl_pose` → `/tb3_1/amcl_pose`).
    pub amcl_pose_topic: String,
    pub odom_topic: String,
    /// Empty: no battery subscription.
    pub battery_topic: String,
    pub cmd_vel_topic: String,
    pub navigate_action: String,
    /// Report the AMCL (map) pose; false: report the odometry pose.
    pub use_localization: bool,
    /// Subscribe to the AMCL pose as transient-local (as Nav2's AMCL publishes it, so the
    /// last pose arrives at once); false for a localization that publishes volatile.
    pub amcl_pose_transient_local: bool,
    /// ROS name of the fleet's `map` frame, used in navigation goals.
    pub map_frame: String,
    /// Hz at which zero (e-stop) or teleop velocities are repeated on `cmd_vel`.
    pub cmd_vel_rate: f64,
    /// Publish `geometry_msgs/TwistStamped` instead of `Twist` on `cmd_vel`.
    pub cmd_vel_stamped: bool,
    pub battery_scale: BatteryScale,
    /// Battery percentage reported until the robot has published a known one.
    pub unknown_battery_percentage: f64,
    /// Seconds without odometry after which the robot is reported in ERROR and its goal
    /// given up (0: never).
    pub odom_timeout_s: f64,
}

pub const DEFAULT_NODE_NAME: &str = "fms_agent";

impl Default for Ros2Settings {
    fn default() -> Self {
        Self {
            node_name: DEFAULT_NODE_NAME.into(),
            namespace: String::new(),
            amcl_pose_topic: "amcl_pose".into(),
            odom_topic: "odom".into(),
            battery_topic: "battery_state".into(),
            cmd_vel_topic: "cmd_vel".into(),
            navigate_action: "navigate_to_pose".into(),
            use_localization: true,
            amcl_pose_transient_local: true,
            map_frame: "map".into(),
            cmd_vel_rate: 10.0,
            cmd_vel_stamped: false,
            battery_scale: BatteryScale::Fraction,
            unknown_battery_percentage: 100.0,
            odom_timeout_s: 2.0,
        }
    }
}

/// What `ros2 launch` / `ros2 run` passed after `--ros-args`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RosArgs {
    pub namespace: Option<String>,
    pub node_name: Option<String>,
    pub params: Vec<(String, String)>,
    pub remaps: Vec<(String, String)>,
    pub params_files: Vec<PathBuf>,
}

/// The agent's resolved settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub robot_id: RobotId,
    pub zenoh_endpoint: String,
    pub zenoh_config: Option<PathBuf>,
    pub interface: Interface,
    pub rate_hz: f64,
    pub start_pose: Pose,
    pub sim: SimParams,
    pub log_level: String,
    pub ros: RosArgs,
    pub ros2: Ros2Settings,
    pub ros2dds: Ros2ddsSettings,
    /// Said about the configuration (e.g. keys of the Python FMS's config.json that mean
    /// nothing here), to be logged once logging is up.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config file {path} (read as the Python FMS's config.json): {source}")]
    ParseJson {
        path: PathBuf,
        source: fms_msgs::codec::DecodeError,
    },
    #[error("invalid --ros-args: {0}")]
    RosArgs(String),
    #[error("cannot read ROS parameters file {path}: {source}")]
    ParamsFile {
        path: PathBuf,
        source: ParamsFileError,
    },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    /// A setting refused by the parser or check of the type it configures.
    #[error("invalid setting {name}: {source}")]
    Refused {
        name: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no robot id: pass --robot-id, set ROBOT_ID, or launch in a ROS namespace")]
    MissingRobotId,
}

pub const DEFAULT_ZENOH_ENDPOINT: &str = "tcp/127.0.0.1:7447";

/// Why `x,y[,yaw]` is not a pose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoseError {
    #[error("{text:?}: {source}")]
    Number {
        text: String,
        source: std::num::ParseFloatError,
    },
    #[error("expected x,y,yaw with finite numbers")]
    Shape,
}

/// Why a ROS parameters file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamsFileError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
    #[error("expected a map of node names")]
    NotAMap,
}

fn parse_pose(s: &str) -> Result<Pose, PoseError> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| {
            p.trim().parse::<f64>().map_err(|source| PoseError::Number {
                text: p.to_owned(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [x, y, yaw] if x.is_finite() && y.is_finite() && yaw.is_finite() => {
            Ok(Pose::new(x, y, yaw))
        }
        [x, y] if x.is_finite() && y.is_finite() => Ok(Pose::new(x, y, 0.0)),
        _ => Err(PoseError::Shape),
    }
}

/// Splits the process arguments into ours and the ROS ones after `--ros-args`
/// (up to a lone `--`, after which our own arguments resume).
pub fn split_ros_args(args: Vec<String>) -> Result<(Vec<String>, RosArgs), ConfigError> {
    let mut ours = Vec::new();
    let mut ros = RosArgs::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a != "--ros-args" {
            ours.push(a);
            continue;
        }
        while let Some(r) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .ok_or_else(|| ConfigError::RosArgs(format!("{flag} needs a value")))
            };
            match r.as_str() {
                "--" => break,
                "--ros-args" => {}
                "-r" | "--remap" => {
                    let v = value(&r)?;
                    let (from, to) = split_assign(&v)?;
                    match from.as_str() {
                        "__ns" => ros.namespace = Some(to),
                        "__node" | "__name" => ros.node_name = Some(to),
                        _ => ros.remaps.push((from, to)),
                    }
                }
                "-p" | "--param" => ros.params.push(split_assign(&value(&r)?)?),
                "--params-file" => ros.params_files.push(PathBuf::from(value(&r)?)),
                "--log-level" | "--log-config-file" | "-e" | "--enclave" => {
                    value(&r)?;
                }
                s if s.starts_with("--") => {} // e.g. --disable-stdout-logs
                other => return Err(ConfigError::RosArgs(format!("unexpected {other:?}"))),
            }
        }
    }
    Ok((ours, ros))
}

fn split_assign(s: &str) -> Result<(String, String), ConfigError> {
    s.split_once(":=")
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| ConfigError::RosArgs(format!("expected name:=value, got {s:?}")))
}

/// The parameters for node `node` (in namespace `namespace`) in a ROS parameters file:
///
/// ```yaml
/// /**:                      # or fms_agent, /tb3_1/fms_agent, /**/fms_agent
///   ros__parameters:
///     odom_topic: odom
/// ```
///
/// Nested maps give dotted names; lists are skipped (the agent has no list parameters).
pub fn params_from_yaml(
    text: &str,
    node: &str,
    namespace: &str,
) -> Result<Vec<(String, String)>, ParamsFileError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)?;
    let mut out = Vec::new();
    let Some(top) = doc.as_mapping() else {
        return if doc.is_null() {
            Ok(out)
        } else {
            Err(ParamsFileError::NotAMap)
        };
    };
    let ns = namespace.trim_matches('/');
    let fqn = if ns.is_empty() {
        node.to_owned()
    } else {
        format!("{ns}/{node}")
    };
    for (key, value) in top {
        let Some(key) = key.as_str() else { continue };
        let name = key.trim_start_matches('/');
        let matches = name == "**" || name == fqn || name == format!("**/{node}");
        if !matches {
            continue;
        }
        if let Some(params) = value.get("ros__parameters") {
            flatten_params("", params, &mut out);
        }
    }
    Ok(out)
}

fn flatten_params(prefix: &str, value: &serde_yaml::Value, out: &mut Vec<(String, String)>) {
    use serde_yaml::Value;
    let scalar = match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                if let Some(k) = k.as_str() {
                    let name = if prefix.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten_params(&name, v, out);
                }
            }
            return;
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null | Value::Sequence(_) | Value::Tagged(_) => return,
    };
    out.push((prefix.to_owned(), scalar));
}

/// Every ROS parameter for this node, in precedence order (later wins): parameters files in
/// the order given, then `-p name:=value`.
fn ros_params(ros: &RosArgs) -> Result<Vec<(String, String)>, ConfigError> {
    let node = ros.node_name.as_deref().unwrap_or(DEFAULT_NODE_NAME);
    let namespace = ros.namespace.as_deref().unwrap_or("");
    let mut params = Vec::new();
    for path in &ros.params_files {
        let file = |source: ParamsFileError| ConfigError::ParamsFile {
            path: path.clone(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.into()))?;
        params.extend(params_from_yaml(&text, node, namespace).map_err(file)?);
    }
    params.extend(ros.params.iter().cloned());
    Ok(params)
}

/// Reads our TOML, or the Python FMS agent's `config.json` when the name ends in `.json`;
/// with the warnings to log once logging is up.
fn load_file(path: &Path) -> Result<(FileConfig, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return legacy_json::load(path, &text);
    }
    let file = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })?;
    Ok((file, Vec::new()))
}

impl AgentConfig {
    /// Resolves flags (and env, via clap), ROS args and the optional file into settings.
    pub fn resolve(cli: Cli, ros: RosArgs) -> Result<Self, ConfigError> {
        let (file, warnings) = match &cli.config {
            Some(p) => load_file(p)?,
            None => (FileConfig::default(), Vec::new()),
        };
        let sim_file = file.sim.unwrap_or_default();
        let params = ros_params(&ros)?;
        let ros_param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let ns_id = ros
            .namespace
            .as_deref()
            .map(|ns| ns.trim_matches('/').replace('/', "_"))
            .filter(|s| !s.is_empty());
        let robot_id = cli
            .robot_id
            .filter(|s| !s.is_empty())
            .or_else(|| ros_param("robot_id"))
            .or(file.robot_id)
            .or(ns_id)
            .ok_or(ConfigError::MissingRobotId)?;
        let robot_id = RobotId::new(robot_id).map_err(|e| ConfigError::Invalid {
            name: "robot_id",
            reason: e.to_string(),
        })?;
        let rate_hz = cli
            .rate
            .or(parse_param(&ros_param, "rate")?)
            .or(file.rate)
            .unwrap_or(5.0);
        if !(rate_hz.is_finite() && (0.1..=1000.0).contains(&rate_hz)) {
            return Err(ConfigError::Invalid {
                name: "rate",
                reason: format!("{rate_hz} is outside 0.1-1000 Hz"),
            });
        }
        let d = SimParams::default();
        let sim = SimParams {
            max_speed: cli.max_speed.or(sim_file.max_speed).unwrap_or(d.max_speed),
            max_turn_rate: sim_file.max_turn_rate.unwrap_or(d.max_turn_rate),
            goal_tolerance: sim_file.goal_tolerance.unwrap_or(d.goal_tolerance),
            failure_probability: cli
                .failure_probability
                .or(sim_file.failure_probability)
                .unwrap_or(d.failure_probability),
            drain_per_metre: sim_file.drain_per_metre.unwrap_or(d.drain_per_metre),
            drain_per_second: sim_file.drain_per_second.unwrap_or(d.drain_per_second),
            seed: seed_for(robot_id.as_str()),
            ..d
        };
        for (name, v, lo, hi) in [
            ("max_speed", sim.max_speed, 0.01, 20.0),
            ("max_turn_rate", sim.max_turn_rate, 0.01, 20.0),
            ("goal_tolerance", sim.goal_tolerance, 0.001, 10.0),
            ("failure_probability", sim.failure_probability, 0.0, 1.0),
            ("drain_per_metre", sim.drain_per_metre, 0.0, 100.0),
            ("drain_per_second", sim.drain_per_second, 0.0, 100.0),
        ] {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return Err(ConfigError::Invalid {
                    name,
                    reason: format!("{v} is outside {lo}-{hi}"),
                });
            }
        }
        let start_pose = match (cli.start_pose, sim_file.start_pose) {
            (Some(p), _) => p,
            (None, Some([x, y, yaw])) => {
                parse_pose(&format!("{x},{y},{yaw}")).map_err(|e| ConfigError::Refused {
                    name: "sim.start_pose",
                    source: e.into(),
                })?
            }
            (None, None) => Pose::new(0.0, 0.0, 0.0),
        };
        let interface = match (cli.interface, ros_param("interface")) {
            (Some(i), _) => Some(i),
            (None, Some(p)) => {
                Some(
                    Interface::from_str(&p, true).map_err(|reason| ConfigError::Invalid {
                        name: "interface",
                        reason,
                    })?,
                )
            }
            (None, None) => None,
        };
        let ros2 = resolve_ros2(&ros, file.ros.unwrap_or_default(), &ros_param)?;
        let ros2dds = ros2dds::resolve(
            &cli.ros_domain_id,
            cli.ros_localhost_only,
            cli.ros2dds_bridge.clone(),
            file.ros2dds.unwrap_or_default(),
        )?;
        Ok(Self {
            robot_id,
            zenoh_endpoint: cli
                .zenoh_endpoint
                .or(ros_param("zenoh_endpoint"))
                .or(file.zenoh_endpoint)
                .unwrap_or_else(|| DEFAULT_ZENOH_ENDPOINT.to_owned()),
            zenoh_config: cli.zenoh_config.or(file.zenoh_config),
            interface: interface.or(file.interface).unwrap_or(Interface::Mock),
            rate_hz,
            start_pose,
            sim,
            log_level: log_level(
                &cli.log_level
                    .or(ros_param("log_level"))
                    .or(file.log_level)
                    .unwrap_or_else(|| "info".into()),
            ),
            ros,
            ros2,
            ros2dds,
            warnings,
        })
    }
}

/// A ROS parameter parsed as `T`; a present but unparsable value is an error.
fn parse_param<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                name,
                reason: format!("ROS parameter {v:?}: {e}"),
            })
        })
        .transpose()
}

/// `[ros]` from the file, overridden by ROS parameters, over the defaults.
fn resolve_ros2(
    ros: &RosArgs,
    file: FileRos,
    param: &impl Fn(&str) -> Option<String>,
) -> Result<Ros2Settings, ConfigError> {
    let d = Ros2Settings::default();
    let text = |name: &'static str, file: Option<String>, default: String| {
        param(name).or(file).unwrap_or(default)
    };
    let s = Ros2Settings {
        node_name: ros
            .node_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or(d.node_name),
        namespace: ros.namespace.clone().unwrap_or(d.namespace),
        amcl_pose_topic: text("amcl_pose_topic", file.amcl_pose_topic, d.amcl_pose_topic),
        odom_topic: text("odom_topic", file.odom_topic, d.odom_topic),
        battery_topic: text("battery_topic", file.battery_topic, d.battery_topic),
        cmd_vel_topic: text("cmd_vel_topic", file.cmd_vel_topic, d.cmd_vel_topic),
        navigate_action: text("navigate_action", file.navigate_action, d.navigate_action),
        use_localization: parse_param(param, "use_localization")?
            .or(file.use_localization)
            .unwrap_or(d.use_localization),
        amcl_pose_transient_local: parse_param(param, "amcl_pose_transient_local")?
            .or(file.amcl_pose_transient_local)
            .unwrap_or(d.amcl_pose_transient_local),
        map_frame: text("map_frame", file.map_frame, d.map_frame),
        cmd_vel_rate: parse_param(param, "cmd_vel_rate")?
            .or(file.cmd_vel_rate)
            .unwrap_or(d.cmd_vel_rate),
        cmd_vel_stamped: parse_param(param, "cmd_vel_stamped")?
            .or(file.cmd_vel_stamped)
            .unwrap_or(d.cmd_vel_stamped),
        battery_scale: parse_param(param, "battery_scale")?
            .or(file.battery_scale)
            .unwrap_or(d.battery_scale),
        unknown_battery_percentage: parse_param(param, "unknown_battery_percentage")?
            .or(file.unknown_battery_percentage)
            .unwrap_or(d.unknown_battery_percentage),
        odom_timeout_s: parse_param(param, "odom_timeout_s")?
            .or(file.odom_timeout_s)
            .unwrap_or(d.odom_timeout_s),
    };
    for (name, value) in [
        ("odom_topic", &s.odom_topic),
        ("cmd_vel_topic", &s.cmd_vel_topic),
        ("navigate_action", &s.navigate_action),
        ("map_frame", &s.map_frame),
    ] {
        if value.trim().is_empty() {
            return Err(ConfigError::Invalid {
                name,
                reason: "must not be empty".into(),
            });
        }
    }
    if s.use_localization && s.amcl_pose_topic.trim().is_empty() {
        return Err(ConfigError::Invalid {
            name: "amcl_pose_topic",
            reason: "must not be empty while use_localization is true".into(),
        });
    }
    if !(s.cmd_vel_rate.is_finite() && (1.0..=100.0).contains(&s.cmd_vel_rate)) {
        return Err(ConfigError::Invalid {
            name: "cmd_vel_rate",
            reason: format!("{} is outside 1-100 Hz", s.cmd_vel_rate),
        });
    }
    if !(s.unknown_battery_percentage.is_finite()
        && (0.0..=100.0).contains(&s.unknown_battery_percentage))
    {
        return Err(ConfigError::Invalid {
            name: "unknown_battery_percentage",
            reason: format!("{} is outside 0-100", s.unknown_battery_percentage),
        });
    }
    if !(s.odom_timeout_s.is_finite() && (0.0..=3600.0).contains(&s.odom_timeout_s)) {
        return Err(ConfigError::Invalid {
            name: "odom_timeout_s",
            reason: format!("{} is outside 0-3600 s", s.odom_timeout_s),
        });
    }
    Ok(s)
}

/// A stable per-robot seed, so each simulated robot fails differently but reproducibly.
fn seed_for(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
