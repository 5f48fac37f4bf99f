//! `[ros2dds]`: how the `ros2dds` backend reaches the robot's DDS graph (in-process bridge or
//! an existing zenoh-bridge-ros2dds), resolved from file, environment and flags.

use serde::Deserialize;

use super::ConfigError;
use crate::robot::ros_names;

/// Largest DDS domain id (the RTPS port mapping has room for 0-232).
pub const MAX_DOMAIN_ID: u32 = 232;

/// `[ros2dds]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRos2dds {
    pub bridge: Option<String>,
    pub bridge_namespace: Option<String>,
    pub domain: Option<u32>,
    pub localhost_only: Option<bool>,
    pub query_timeout_s: Option<f64>,
}

/// The resolved settings of the `ros2dds` backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Ros2ddsSettings {
    /// Zenoh endpoint of a zenoh-bridge-ros2dds already on the robot; `None`: the agent runs
    /// zenoh-plugin-ros2dds itself, in its own process.
    pub bridge: Option<String>,
    /// The `namespace` (`-n`) that bridge was started with; `/` for none. Its keys are
    /// prefixed with it.
    pub bridge_namespace: String,
    /// DDS domain (`ROS_DOMAIN_ID`) of the in-process bridge.
    pub domain: u32,
    /// Keep the in-process bridge's DDS traffic on this host.
    pub localhost_only: bool,
    /// How long a send_goal or cancel_goal may take to be answered.
    pub query_timeout_s: f64,
}

impl Default for Ros2ddsSettings {
    fn default() -> Self {
        Self {
            bridge: None,
            bridge_namespace: "/".into(),
            domain: 0,
            localhost_only: false,
            query_timeout_s: 10.0,
        }
    }
}

/// File, overridden by environment and flags (which clap has already merged).
pub(super) fn resolve(
    domain_flag: &Option<u32>,
    localhost_only_flag: Option<bool>,
    bridge_flag: Option<String>,
    file: FileRos2dds,
) -> Result<Ros2ddsSettings, ConfigError> {
    let d = Ros2ddsSettings::default();
    let s = Ros2ddsSettings {
        bridge: bridge_flag
            .or(file.bridge)
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty()),
        bridge_namespace: file.bridge_namespace.unwrap_or(d.bridge_namespace),
        domain: domain_flag.or(file.domain).unwrap_or(d.domain),
        localhost_only: localhost_only_flag
            .or(file.localhost_only)
            .unwrap_or(d.localhost_only),
        query_timeout_s: file.query_timeout_s.unwrap_or(d.query_timeout_s),
    };
    if s.domain > MAX_DOMAIN_ID {
        return Err(ConfigError::Invalid {
            name: "ros2dds.domain",
            reason: format!("{} is outside 0-{MAX_DOMAIN_ID}", s.domain),
        });
    }
    if let Err(e) = ros_names::namespace(&s.bridge_namespace) {
        return Err(ConfigError::Refused {
            name: "ros2dds.bridge_namespace",
            source: e.into(),
        });
    }
    if !(s.query_timeout_s.is_finite() && (0.1..=600.0).contains(&s.query_timeout_s)) {
        return Err(ConfigError::Invalid {
            name: "ros2dds.query_timeout_s",
            reason: format!("{} is outside 0.1-600 s", s.query_timeout_s),
        });
    }
    Ok(s)
}
