//! The agent's Zenoh session: client mode to one router, no multicast scouting,
//! and background reconnection when the router goes away.

use zenoh::{Config, Session};

/// Opens a client session to `endpoint` (e.g. `tcp/127.0.0.1:7447`).
///
/// Waits (retrying every second at most) until the router is reachable. Once open, the
/// session reconnects by itself when the router restarts and re-declares our token and
/// subscribers.
pub async fn open(endpoint: &str) -> Result<Session, zenoh::Error> {
    let mut config = Config::default();
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
