//! The Python FMS agent's `config.json` (its deployment guide keeps it at
//! `/opt/fms/agent/config.json`), read when `--config` names a `.json` file and mapped onto
//! our settings. Its keys that mean nothing here are accepted and named in one warning; any
//! other key is an error, as in our TOML.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, FileConfig, FileRos2dds, Interface};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldConfig {
    /// `robot_id`.
    robot_id: Option<String>,
    /// `zenoh_endpoint`.
    zenoh_server_endpoint: Option<String>,
    /// `interface` (`mock`, `ros2`).
    interface: Option<Interface>,
    /// `[ros2dds] domain` (ROS_DOMAIN_ID).
    ros_domain_id: Option<u32>,
    logging: Option<OldLogging>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldLogging {
    /// `log_level` (Python's names are read as ours: `WARNING` is `warn`).
    level: Option<String>,
    /// The agent logs to stderr (the journal under systemd): accepted, not used.
    file: Option<serde::de::IgnoredAny>,
    max_size: Option<serde::de::IgnoredAny>,
    backup_count: Option<serde::de::IgnoredAny>,
}

/// Reads the old `config.json` as our file settings, plus warnings to log once logging is up.
pub(super) fn load(path: &Path, text: &str) -> Result<(FileConfig, Vec<String>), ConfigError> {
    let old: OldConfig =
        fms_msgs::decode(text.as_bytes()).map_err(|source| ConfigError::ParseJson {
            path: path.to_owned(),
            source,
        })?;
    let logging = old.logging.unwrap_or_default();
    let unused: Vec<&str> = [
        ("logging.file", logging.file.is_some()),
        ("logging.max_size", logging.max_size.is_some()),
        ("logging.backup_count", logging.backup_count.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    let warnings = if unused.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} in {} not used: fms_agent logs to stderr (the journal under systemd)",
            unused.join(", "),
            path.display()
        )]
    };
    let file = FileConfig {
        robot_id: old.robot_id,
        zenoh_endpoint: old.zenoh_server_endpoint,
        interface: old.interface,
        log_level: logging.level,
        ros2dds: old.ros_domain_id.map(|domain| FileRos2dds {
            domain: Some(domain),
            ..FileRos2dds::default()
        }),
        ..FileConfig::default()
    };
    Ok((file, warnings))
}
