//! The agent's Zenoh session: client mode to one router, no multicast scouting,
//! and background reconnection when the router goes away.

use std::path::Path;

use zenoh::{Config, Session};

/// A Zenoh configuration file (JSON5, e.g. TLS certificates), or the defaults.
pub fn base_config(file: Option<&Path>) -> Result<Config, zenoh::Error> {
    match file {
        Some(path) => Config::from_file(path)
            .map_err(|e| format!("zenoh config file {}: {e}", path.display()).into()),
        None => Ok(Config::default()),
    }
}

/// Opens a client session to `endpoint` (e.g. `tcp/127.0.0.1:7447`).
///
/// Waits (retrying every second at most) until the router is reachable. Once open, the
/// session reconnects by itself when the router restarts and re-declares our token and
/// subscribers. `file` is a Zenoh configuration file to start from (TLS, for instance); the
/// mode and endpoint set here win over it.
pub async fn open(endpoint: &str, file: Option<&Path>) -> Result<Session, zenoh::Error> {
    let mut config = base_config(file)?;
    let set = |c: &mut Config, key: &str, value: &str| {
        c.insert_json5(key, value)
            .map_err(|e| -> zenoh::Error { format!("zenoh config {key}: {e}").into() })
    };
    set(&mut config, "mode", "\"client\"")?;
    let endpoints = crate::quote_list(&[endpoint]);
    set(&mut config, "connect/endpoints", &endpoints)?;
    set(&mut config, "connect/timeout_ms", "-1")?;
    set(
        &mut config,
        "connect/retry",
        "{period_init_ms: 250, period_max_ms: 1000, period_increase_factor: 2}",
    )?;
    set(&mut config, "scouting/multicast/enabled", "false")?;
    zenoh::open(config).await
}
