//! Agent configuration: a TOML file, overridden by environment, overridden by flags and
//! by the `--ros-args` that `ros2 launch` appends. Unknown keys are errors.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use fms_msgs::{Pose, RobotId};
use serde::Deserialize;

use crate::robot::sim::SimParams;

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
    /// TOML config file (see config/agent.toml).
    #[arg(long, env = "FMS_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Robot id; defaults to the ROS namespace when launched by ros2 launch.
    #[arg(long, env = "ROBOT_ID")]
    pub robot_id: Option<String>,
    /// Zenoh router to connect to, e.g. tcp/127.0.0.1:7447.
    #[arg(long, env = "ZENOH_ENDPOINT")]
    pub zenoh_endpoint: Option<String>,
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
}

/// `config/agent.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub robot_id: Option<String>,
    pub zenoh_endpoint: Option<String>,
    pub interface: Option<Interface>,
    pub rate: Option<f64>,
    pub log_level: Option<String>,
    pub sim: Option<FileSim>,
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
    pub interface: Interface,
    pub rate_hz: f64,
    pub start_pose: Pose,
    pub sim: SimParams,
    pub log_level: String,
    pub ros: RosArgs,
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
    #[error("invalid --ros-args: {0}")]
    RosArgs(String),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("no robot id: pass --robot-id, set ROBOT_ID, or launch in a ROS namespace")]
    MissingRobotId,
}

pub const DEFAULT_ZENOH_ENDPOINT: &str = "tcp/127.0.0.1:7447";

fn parse_pose(s: &str) -> Result<Pose, String> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [x, y, yaw] if x.is_finite() && y.is_finite() && yaw.is_finite() => {
            Ok(Pose::new(x, y, yaw))
        }
        [x, y] if x.is_finite() && y.is_finite() => Ok(Pose::new(x, y, 0.0)),
        _ => Err("expected x,y,yaw with finite numbers".into()),
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

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

impl AgentConfig {
    /// Resolves flags (and env, via clap), ROS args and the optional file into settings.
    pub fn resolve(cli: Cli, ros: RosArgs) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let sim_file = file.sim.unwrap_or_default();
        let ros_param = |name: &str| {
            ros.params
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
            .or(ros_param("rate").and_then(|r| r.parse().ok()))
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
                parse_pose(&format!("{x},{y},{yaw}")).map_err(|reason| ConfigError::Invalid {
                    name: "sim.start_pose",
                    reason,
                })?
            }
            (None, None) => Pose::new(0.0, 0.0, 0.0),
        };
        Ok(Self {
            robot_id,
            zenoh_endpoint: cli
                .zenoh_endpoint
                .or(file.zenoh_endpoint)
                .unwrap_or_else(|| DEFAULT_ZENOH_ENDPOINT.to_owned()),
            interface: cli.interface.or(file.interface).unwrap_or(Interface::Mock),
            rate_hz,
            start_pose,
            sim,
            log_level: cli
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            ros,
        })
    }
}

/// A stable per-robot seed, so each simulated robot fails differently but reproducibly.
fn seed_for(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ros_args_are_split_off() {
        let (ours, ros) = split_ros_args(strings(&[
            "fms_agent",
            "--rate",
            "10",
            "--ros-args",
            "-r",
            "__node:=fms_agent",
            "-r",
            "__ns:=/tb3_1",
            "-p",
            "robot_id:=tb3_9",
            "--params-file",
            "/tmp/p.yaml",
            "-r",
            "odom:=/odometry",
            "--",
            "--max-speed",
            "0.5",
        ]))
        .unwrap();
        assert_eq!(
            ours,
            strings(&["fms_agent", "--rate", "10", "--max-speed", "0.5"])
        );
        assert_eq!(ros.namespace.as_deref(), Some("/tb3_1"));
        assert_eq!(ros.node_name.as_deref(), Some("fms_agent"));
        assert_eq!(ros.params, vec![("robot_id".into(), "tb3_9".into())]);
        assert_eq!(ros.remaps, vec![("odom".into(), "/odometry".into())]);
        assert_eq!(ros.params_files, vec![PathBuf::from("/tmp/p.yaml")]);
        assert!(split_ros_args(strings(&["a", "--ros-args", "-r"])).is_err());
        assert!(split_ros_args(strings(&["a", "--ros-args", "-r", "nope"])).is_err());
    }

    #[test]
    fn robot_id_precedence_and_namespace_default() {
        let ros = RosArgs {
            namespace: Some("/tb3_1".into()),
            ..RosArgs::default()
        };
        let c = AgentConfig::resolve(Cli::default(), ros.clone()).unwrap();
        assert_eq!(c.robot_id.as_str(), "tb3_1");
        let cli = Cli {
            robot_id: Some("r7".into()),
            ..Cli::default()
        };
        assert_eq!(
            AgentConfig::resolve(cli, ros).unwrap().robot_id.as_str(),
            "r7"
        );
        assert!(matches!(
            AgentConfig::resolve(Cli::default(), RosArgs::default()),
            Err(ConfigError::MissingRobotId)
        ));
        let bad = Cli {
            robot_id: Some("fms/**".into()),
            ..Cli::default()
        };
        assert!(matches!(
            AgentConfig::resolve(bad, RosArgs::default()),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn file_is_overridden_by_flags_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("fms_agent_cfg_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.toml");
        std::fs::write(
            &path,
            "robot_id = \"file_bot\"\nrate = 2.0\n[sim]\nstart_pose = [1.0, 2.0, 0.5]\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            rate: Some(8.0),
            ..Cli::default()
        };
        let c = AgentConfig::resolve(cli, RosArgs::default()).unwrap();
        assert_eq!((c.robot_id.as_str(), c.rate_hz), ("file_bot", 8.0));
        assert_eq!(c.start_pose, Pose::new(1.0, 2.0, 0.5));
        std::fs::write(&path, "robot_id = \"x\"\nspeed = 3\n").unwrap();
        let err = AgentConfig::resolve(
            Cli {
                config: Some(path),
                ..Cli::default()
            },
            RosArgs::default(),
        );
        assert!(matches!(err, Err(ConfigError::Parse { .. })), "{err:?}");
    }

    #[test]
    fn shipped_config_file_parses_and_matches_defaults() {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.toml"));
        let id = || Some("tb3_1".to_owned());
        let from_file = AgentConfig::resolve(
            Cli {
                config: Some(path),
                robot_id: id(),
                ..Cli::default()
            },
            RosArgs::default(),
        )
        .unwrap();
        let defaults = AgentConfig::resolve(
            Cli {
                robot_id: id(),
                ..Cli::default()
            },
            RosArgs::default(),
        )
        .unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for cli in [
            Cli {
                robot_id: Some("r".into()),
                rate: Some(0.0),
                ..Cli::default()
            },
            Cli {
                robot_id: Some("r".into()),
                rate: Some(f64::NAN),
                ..Cli::default()
            },
            Cli {
                robot_id: Some("r".into()),
                failure_probability: Some(1.5),
                ..Cli::default()
            },
        ] {
            assert!(AgentConfig::resolve(cli, RosArgs::default()).is_err());
        }
        assert!(parse_pose("1,2,x").is_err());
        assert!(parse_pose("1,inf,0").is_err());
        assert_eq!(parse_pose("-1.5,2").unwrap(), Pose::new(-1.5, 2.0, 0.0));
    }
}
