//! Server configuration: a TOML file, overridden by environment, overridden by flags.
//! Unknown keys are errors.

use crate::http::Bounds;
use crate::ratelimit::Limits;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::fleet::engine::{EngineParams, Location};
use crate::fleet::lease::LeaseParams;
use crate::fleet::registry::PresenceParams;
use crate::link::ZenohMode;
pub use fms_msgs::legacy::log_level;
use fms_msgs::Pose;

mod legacy_json;

pub const DEFAULT_PORT: u16 = 8088;
pub const DEFAULT_ZENOH_LISTEN: &str = "tcp/0.0.0.0:7447";
/// Read when present and no other locations file is named.
pub const DEFAULT_LOCATIONS: &str = "config/locations.toml";

#[derive(Debug, Default, Parser)]
#[command(
    name = "fms_server",
    version,
    about = "fms fleet server: REST/WebSocket API, dispatch, embedded Zenoh router"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML config file (see config/server.toml).
    #[arg(long, env = "FMS_SERVER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// HTTP port (0 picks a free one).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// HTTP bind address.
    #[arg(long, env = "FMS_BIND")]
    pub bind: Option<IpAddr>,
    /// Connect to this Zenoh router instead of embedding one, e.g. tcp/zenoh-router:7447.
    #[arg(long, env = "ZENOH_ENDPOINT")]
    pub zenoh_endpoint: Option<String>,
    /// Listen endpoint(s) of the embedded router, comma-separated.
    #[arg(long, env = "FMS_ZENOH_LISTEN")]
    pub zenoh_listen: Option<String>,
    /// Zenoh configuration file (JSON5) to start from: TLS, mTLS and access control for the
    /// embedded router (config/zenoh/). Mode and endpoints still come from the settings here.
    #[arg(long, env = "FMS_ZENOH_CONFIG")]
    pub zenoh_config: Option<PathBuf>,
    /// Directory of the dashboard's static files, served at `/`.
    #[arg(long, env = "FMS_FRONTEND_DIR")]
    pub frontend_dir: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace (or a tracing filter string).
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Origins allowed to call the API from a browser, comma-separated.
    #[arg(long, env = "CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// postgres://user@host/db for PostgreSQL, or sqlite:PATH; default: SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Directory for the embedded SQLite database (fms.db).
    #[arg(long, env = "FMS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML file of named locations and chargers (see config/locations.toml).
    #[arg(long, env = "FMS_LOCATIONS")]
    pub locations: Option<PathBuf>,
    /// Site map for the dashboard: a ROS map_server `map.yaml` (see config/maps/demo.yaml).
    #[arg(long, env = "FMS_MAP")]
    pub map: Option<PathBuf>,
    /// Production mode: refuse to start without authentication.
    #[arg(long, env = "FMS_PRODUCTION", value_parser = clap::builder::BoolishValueParser::new())]
    pub production: Option<bool>,
    /// Require authentication (API keys, JWT). Off: the API is open (demo).
    #[arg(long, env = "FMS_AUTH", value_parser = clap::builder::BoolishValueParser::new())]
    pub auth: Option<bool>,
    /// HS256 secret for JWT bearer tokens (at least 32 bytes); prefer --jwt-secret-file.
    #[arg(long, env = "FMS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File holding the JWT secret.
    #[arg(long, env = "FMS_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Log format: text (default) or json.
    #[arg(long, env = "FMS_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Also write logs to this file, rotated by size.
    #[arg(long, env = "FMS_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// Run as one of several replicas on a shared PostgreSQL database: the replica holding
    /// the dispatch lease dispatches, every replica serves the API (docs/scaling.md).
    /// `--replicas` alone means `--replicas true`.
    #[arg(long, env = "FMS_REPLICAS", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub replicas: Option<bool>,
    /// This replica's name in the lease and logs (default: host name plus a random suffix).
    #[arg(long, env = "FMS_REPLICA_ID")]
    pub replica_id: Option<String>,
}

/// Subcommands besides running the server.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Time the dispatcher assigning queued tasks across idle robots, and print the figures.
    BenchDispatch {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        #[arg(long, default_value_t = 1000)]
        robots: usize,
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// The phone teleop server (port 8765): the mobile page and its joystick WebSocket.
    Phone(crate::phone::PhoneArgs),
    /// API keys in the store the server uses (--database-url / --data-dir / --config).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Prints an HS256 JWT signed with the configured secret (FMS_JWT_SECRET[_FILE]).
    Token {
        /// Who the token names (`sub`).
        #[arg(long)]
        sub: String,
        #[arg(long, value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<crate::auth::Role>()))]
        role: crate::auth::Role,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_s: u64,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Creates a key and prints it (once: only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<crate::auth::Role>()))]
        role: crate::auth::Role,
    },
    /// Lists keys (id, name, role, created, revoked).
    List,
    /// Revokes a key by id.
    Revoke { id: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub zenoh_endpoint: Option<String>,
    pub zenoh_listen: Option<Vec<String>>,
    pub zenoh_config: Option<PathBuf>,
    pub frontend_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub cors_origins: Option<Vec<String>>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub locations: Option<PathBuf>,
    pub map: Option<PathBuf>,
    pub production: Option<bool>,
    pub auth: Option<FileAuth>,
    pub rate_limit: Option<FileRateLimit>,
    pub log: Option<FileLog>,
    pub bounds: Option<Bounds>,
    pub presence: Option<FilePresence>,
    pub dispatch: Option<FileDispatch>,
    pub replicas: Option<FileReplicas>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplicas {
    pub enabled: Option<bool>,
    pub id: Option<String>,
    pub lease_ttl_ms: Option<u64>,
    pub lease_renew_ms: Option<u64>,
}

/// Settings of a replica among several (`[replicas]`).
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// This replica's name in the lease.
    pub id: String,
    pub lease: LeaseParams,
}

/// A replica name: the host name (a pod's name on Kubernetes) and a random suffix, so two
/// processes on one host never share one.
fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "fms".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    pub enabled: Option<bool>,
    pub jwt_secret_file: Option<PathBuf>,
    pub failures_per_min: Option<u32>,
    pub key_failures_per_min: Option<u32>,
    pub verify_threads: Option<usize>,
    pub verify_queue: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimit {
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub limits: Option<PartialLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialLimits {
    pub reads_per_min: Option<u32>,
    pub tasks_per_min: Option<u32>,
    pub fleet_per_min: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    pub format: Option<LogFormat>,
    pub file: Option<PathBuf>,
    pub max_size_mb: Option<u64>,
    pub backups: Option<u32>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging: level (`log_level`), format, and an optional size-rotated file.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub format: LogFormat,
    pub file: Option<PathBuf>,
    pub max_size_bytes: u64,
    pub backups: u32,
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    pub enabled: bool,
    pub jwt_secret: Option<Secret>,
    /// Failed-authentication limits and key verification threads (`[auth]`).
    pub load: crate::auth::LoadLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePresence {
    pub stale_after_ms: Option<u64>,
    pub offline_after_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDispatch {
    pub min_battery: Option<f64>,
    pub max_attempts: Option<u32>,
    pub offline_grace_ms: Option<u64>,
    pub resend_initial_ms: Option<u64>,
    pub resend_max_ms: Option<u64>,
    pub reconcile_grace_ms: Option<u64>,
    pub timeout_grace_ms: Option<u64>,
    pub preempt: Option<bool>,
}

/// The server's resolved settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub http_addr: SocketAddr,
    pub zenoh: ZenohMode,
    /// Zenoh configuration file the session starts from.
    pub zenoh_config: Option<PathBuf>,
    pub frontend_dir: PathBuf,
    pub log_level: String,
    pub cors_origins: Vec<String>,
    /// PostgreSQL or SQLite URL; None: SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub locations: Vec<Location>,
    /// ROS map (`map.yaml`) shown by the dashboard; none: the dashboard draws a grid.
    pub map: Option<PathBuf>,
    /// Refuses to start without authentication.
    pub production: bool,
    pub auth: AuthSettings,
    /// Per-client request limits; `None` turns them off.
    pub rate_limit: Option<Limits>,
    pub log: LogSettings,
    /// Where task targets may be; `None`: the map's extent, if any.
    pub bounds: Option<Bounds>,
    pub presence: PresenceParams,
    pub engine: EngineParams,
    /// Several replicas on one PostgreSQL database; `None`: this server is the only one.
    pub replicas: Option<ReplicaSettings>,
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
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    /// A setting refused by the check of the type it configures.
    #[error("invalid setting {name}: {source}")]
    Refused {
        name: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Reads our TOML, or the Python FMS's `config.json` when the name ends in `.json`; with
/// the warnings to log once logging is up.
fn load_file(path: &Path) -> Result<(FileConfig, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if is_json(path) {
        return legacy_json::load(path, &text);
    }
    let file = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })?;
    Ok((file, Vec::new()))
}

/// Whether a config file is the Python FMS's JSON (by its extension).
fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn check_endpoint(name: &'static str, e: &str) -> Result<(), ConfigError> {
    match e.split_once('/') {
        Some((proto, addr)) if !proto.is_empty() && !addr.is_empty() => Ok(()),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!("{e:?} is not a Zenoh endpoint like tcp/127.0.0.1:7447"),
        }),
    }
}

impl ServerConfig {
    pub fn resolve(cli: Cli) -> Result<Self, ConfigError> {
        let (file, warnings) = match &cli.config {
            Some(p) => load_file(p)?,
            None => (FileConfig::default(), Vec::new()),
        };
        let port = cli.port.or(file.port).unwrap_or(DEFAULT_PORT);
        let bind = cli.bind.or(file.bind).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let zenoh = match cli
            .zenoh_endpoint
            .or(file.zenoh_endpoint)
            .filter(|s| !s.trim().is_empty())
        {
            Some(connect) => {
                check_endpoint("zenoh_endpoint", &connect)?;
                ZenohMode::Client { connect }
            }
            None => {
                let listen = cli
                    .zenoh_listen
                    .as_deref()
                    .map(split_list)
                    .or(file.zenoh_listen)
                    .unwrap_or_else(|| vec![DEFAULT_ZENOH_LISTEN.to_owned()]);
                if listen.is_empty() {
                    return Err(ConfigError::Invalid {
                        name: "zenoh_listen",
                        reason: "needs at least one endpoint".into(),
                    });
                }
                for e in &listen {
                    check_endpoint("zenoh_listen", e)?;
                }
                ZenohMode::EmbeddedRouter { listen }
            }
        };
        let p = file.presence.unwrap_or_default();
        let dp = PresenceParams::default();
        let presence = PresenceParams {
            stale_after_ms: p.stale_after_ms.unwrap_or(dp.stale_after_ms),
            offline_after_ms: p.offline_after_ms.unwrap_or(dp.offline_after_ms),
        };
        if presence.stale_after_ms == 0 || presence.offline_after_ms < presence.stale_after_ms {
            return Err(ConfigError::Invalid {
                name: "presence",
                reason: "need 0 < stale_after_ms <= offline_after_ms".into(),
            });
        }
        let d = file.dispatch.unwrap_or_default();
        let de = EngineParams::default();
        let engine = EngineParams {
            min_battery: d.min_battery.unwrap_or(de.min_battery),
            max_attempts: d.max_attempts.unwrap_or(de.max_attempts),
            offline_grace_ms: d.offline_grace_ms.unwrap_or(de.offline_grace_ms),
            resend_initial_ms: d.resend_initial_ms.unwrap_or(de.resend_initial_ms),
            resend_max_ms: d.resend_max_ms.unwrap_or(de.resend_max_ms),
            reconcile_grace_ms: d.reconcile_grace_ms.unwrap_or(de.reconcile_grace_ms),
            timeout_grace_ms: d.timeout_grace_ms.unwrap_or(de.timeout_grace_ms),
            preempt: d.preempt.unwrap_or(de.preempt),
        };
        if !(0.0..=100.0).contains(&engine.min_battery)
            || engine.max_attempts == 0
            || engine.resend_initial_ms == 0
            || engine.resend_max_ms < engine.resend_initial_ms
        {
            return Err(ConfigError::Invalid {
                name: "dispatch",
                reason: "need min_battery 0-100, max_attempts >= 1 and 0 < resend_initial_ms <= resend_max_ms".into(),
            });
        }
        let production = cli.production.or(file.production).unwrap_or(false);
        let file_auth = file.auth.unwrap_or_default();
        let jwt_secret = match (
            cli.jwt_secret,
            cli.jwt_secret_file.or(file_auth.jwt_secret_file),
        ) {
            (Some(s), _) => Some(s),
            (None, Some(path)) => {
                Some(
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            (None, None) => None,
        }
        .map(|s| crate::auth::check_secret(&s))
        .transpose()
        .map_err(|e| ConfigError::Refused {
            name: "jwt_secret",
            source: e.into(),
        })?
        .map(Secret);
        let dl = crate::auth::LoadLimits::default();
        let load = crate::auth::LoadLimits {
            failures: crate::ratelimit::FailureLimits {
                per_address: file_auth
                    .failures_per_min
                    .unwrap_or(dl.failures.per_address),
                per_key: file_auth
                    .key_failures_per_min
                    .unwrap_or(dl.failures.per_key),
            },
            verify_threads: file_auth.verify_threads.unwrap_or(dl.verify_threads),
            verify_queue: file_auth.verify_queue.unwrap_or(dl.verify_queue),
        };
        if !(1..=64).contains(&load.verify_threads) || load.verify_queue > 10_000 {
            return Err(ConfigError::Invalid {
                name: "auth",
                reason: "need verify_threads 1-64 and verify_queue <= 10000".into(),
            });
        }
        let auth = AuthSettings {
            enabled: cli.auth.or(file_auth.enabled).unwrap_or(false),
            jwt_secret,
            load,
        };
        if production && !auth.enabled {
            return Err(ConfigError::Invalid {
                name: "production",
                reason: "production mode needs authentication: set [auth] enabled = true (or FMS_AUTH=1) and create keys with `fms_server keys create`".into(),
            });
        }
        let rl = file.rate_limit.unwrap_or_default();
        let rate_limit = if rl.enabled.unwrap_or(true) {
            let d = Limits::default();
            let p = rl.limits.unwrap_or_default();
            Some(Limits {
                reads_per_min: p.reads_per_min.unwrap_or(d.reads_per_min),
                tasks_per_min: p.tasks_per_min.unwrap_or(d.tasks_per_min),
                fleet_per_min: p.fleet_per_min.unwrap_or(d.fleet_per_min),
            })
        } else {
            None
        };
        let fl = file.log.unwrap_or_default();
        let log = LogSettings {
            format: cli.log_format.or(fl.format).unwrap_or_default(),
            file: cli.log_file.or(fl.file),
            max_size_bytes: fl.max_size_mb.unwrap_or(100).saturating_mul(1024 * 1024),
            backups: fl.backups.unwrap_or(5),
        };
        if log.max_size_bytes == 0 || log.backups > 100 {
            return Err(ConfigError::Invalid {
                name: "log",
                reason: "need max_size_mb >= 1 and backups <= 100".into(),
            });
        }
        let bounds = file.bounds;
        if bounds.is_some_and(|b| !b.is_valid()) {
            return Err(ConfigError::Invalid {
                name: "bounds",
                reason: "need finite min_x < max_x and min_y < max_y".into(),
            });
        }
        let fr = file.replicas.unwrap_or_default();
        let replicas = if cli.replicas.or(fr.enabled).unwrap_or(false) {
            let d = LeaseParams::default();
            let lease = LeaseParams {
                ttl_ms: fr.lease_ttl_ms.unwrap_or(d.ttl_ms),
                renew_ms: fr.lease_renew_ms.unwrap_or(d.renew_ms),
            };
            lease.validate().map_err(|e| ConfigError::Refused {
                name: "replicas",
                source: e.into(),
            })?;
            let id = cli
                .replica_id
                .or(fr.id)
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(default_replica_id);
            if id.len() > 128 {
                return Err(ConfigError::Invalid {
                    name: "replica_id",
                    reason: "at most 128 bytes".into(),
                });
            }
            Some(ReplicaSettings { id, lease })
        } else {
            None
        };
        let locations = match cli.locations.or(file.locations) {
            Some(path) => load_locations(&path)?,
            None => {
                let default = PathBuf::from(DEFAULT_LOCATIONS);
                if default.is_file() {
                    load_locations(&default)?
                } else {
                    Vec::new()
                }
            }
        };
        let config = Self {
            http_addr: SocketAddr::new(bind, port),
            zenoh,
            zenoh_config: cli.zenoh_config.or(file.zenoh_config),
            frontend_dir: cli
                .frontend_dir
                .or(file.frontend_dir)
                .unwrap_or_else(|| PathBuf::from("frontend/dist")),
            log_level: log_level(
                &cli.log_level
                    .or(file.log_level)
                    .unwrap_or_else(|| "info".into()),
            ),
            cors_origins: cli
                .cors_origins
                .as_deref()
                .map(split_list)
                .or(file.cors_origins)
                .unwrap_or_default(),
            database_url: cli
                .database_url
                .or(file.database_url)
                .filter(|s| !s.trim().is_empty()),
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            locations,
            map: cli.map.or(file.map),
            production,
            auth,
            rate_limit,
            log,
            bounds,
            presence,
            engine,
            replicas,
            warnings,
        };
        let on_postgres = config
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
        if config.replicas.is_some() && !on_postgres {
            return Err(ConfigError::Invalid {
                name: "replicas",
                reason: "replicas share one PostgreSQL database: set DATABASE_URL=postgres://…"
                    .into(),
            });
        }
        Ok(config)
    }
}

/// `config/locations.toml`: `[[location]]` tables with name, x, y, yaw and charger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationsFile {
    #[serde(default)]
    location: Vec<FileLocation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLocation {
    name: String,
    x: f64,
    y: f64,
    #[serde(default)]
    yaw: f64,
    #[serde(default)]
    charger: bool,
}

/// Reads and checks the named locations.
pub fn load_locations(path: &Path) -> Result<Vec<Location>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: LocationsFile = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let mut out: Vec<Location> = Vec::new();
    for l in file.location {
        let valid_name = !l.name.is_empty()
            && l.name.len() <= 64
            && l.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(ConfigError::Invalid {
                name: "location.name",
                reason: format!("{:?}: use 1-64 of A-Z a-z 0-9 _ - .", l.name),
            });
        }
        if !(l.x.is_finite() && l.y.is_finite() && l.yaw.is_finite()) {
            return Err(ConfigError::Invalid {
                name: "location",
                reason: format!("{} has a non-finite coordinate", l.name),
            });
        }
        if out.iter().any(|o| o.name == l.name) {
            return Err(ConfigError::Invalid {
                name: "location.name",
                reason: format!("{} is defined twice", l.name),
            });
        }
        out.push(Location {
            name: l.name,
            pose: Pose::new(l.x, l.y, l.yaw),
            charger: l.charger,
        });
    }
    Ok(out)
}

/// The process arguments without the `--ros-args …` that `ros2 launch` appends (up to a lone
/// `--`, after which our own arguments resume). The server is no ROS node; launching it from a
/// launch file (`server.launch.py`) must not make it fail on them.
pub fn strip_ros_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ours = Vec::new();
    let mut in_ros = false;
    for a in args {
        match (in_ros, a.as_str()) {
            (_, "--ros-args") => in_ros = true,
            (true, "--") => in_ros = false,
            (true, _) => {}
            (false, _) => ours.push(a),
        }
    }
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ros_args_are_stripped() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            strip_ros_args(args(&[
                "fms_server",
                "--port",
                "9000",
                "--ros-args",
                "-r",
                "__node:=fms_server",
                "--params-file",
                "/tmp/p.yaml",
                "--",
                "--log-level",
                "debug",
            ])),
            args(&["fms_server", "--port", "9000", "--log-level", "debug"])
        );
        assert_eq!(
            strip_ros_args(args(&["fms_server", "--ros-args"])),
            args(&["fms_server"])
        );
    }

    #[test]
    fn shipped_config_file_parses_and_matches_defaults() {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/server.toml"
        ));
        let from_file = ServerConfig::resolve(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap();
        let defaults = ServerConfig::resolve(Cli::default()).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn shipped_locations_parse_and_bad_ones_fail() {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/locations.toml"
        ));
        let locations = load_locations(&path).unwrap();
        assert!(locations.iter().filter(|l| l.charger).count() >= 1);
        assert!(locations.iter().any(|l| l.name == "pick_a"));
        let dir = std::env::temp_dir().join(format!("fms_locations_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        for text in [
            "[[location]]\nname = \"a b\"\nx = 1.0\ny = 1.0\n",
            "[[location]]\nname = \"a\"\nx = 1.0\ny = 1.0\n[[location]]\nname = \"a\"\nx = 2.0\ny = 1.0\n",
            "[[location]]\nname = \"a\"\nx = nan\ny = 1.0\n",
            "[[location]]\nname = \"a\"\nx = 1.0\ny = 1.0\nsize = 3\n",
        ] {
            std::fs::write(&bad, text).unwrap();
            assert!(load_locations(&bad).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn defaults_embed_a_router_on_7447() {
        let c = ServerConfig::resolve(Cli::default()).unwrap();
        assert_eq!(c.http_addr.port(), 8088);
        assert_eq!(
            c.zenoh,
            ZenohMode::EmbeddedRouter {
                listen: vec!["tcp/0.0.0.0:7447".into()]
            }
        );
    }

    #[test]
    fn replicas_need_postgres_and_sane_lease_timing() {
        let pg = || Some("postgres://127.0.0.1/test".to_string());
        let on = |database_url| Cli {
            replicas: Some(true),
            database_url,
            ..Cli::default()
        };
        assert!(ServerConfig::resolve(Cli::default())
            .unwrap()
            .replicas
            .is_none());
        // `--replicas` alone switches it on; it takes a value too.
        let bare = Cli::try_parse_from(["fms_server", "--replicas", "--port", "1"]).unwrap();
        assert_eq!((bare.replicas, bare.port), (Some(true), Some(1)));
        let off = Cli::try_parse_from(["fms_server", "--replicas", "false"]).unwrap();
        assert_eq!(off.replicas, Some(false));
        let err = ServerConfig::resolve(on(None)).unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let c = ServerConfig::resolve(Cli {
            replica_id: Some("replica-a".into()),
            ..on(pg())
        })
        .unwrap();
        let r = c.replicas.unwrap();
        assert_eq!(r.id, "replica-a");
        assert_eq!(r.lease, LeaseParams::default());
        // A generated id differs per process start.
        let a = ServerConfig::resolve(on(pg()))
            .unwrap()
            .replicas
            .unwrap()
            .id;
        let b = ServerConfig::resolve(on(pg()))
            .unwrap()
            .replicas
            .unwrap()
            .id;
        assert_ne!(a, b);

        let dir = std::env::temp_dir().join(format!("fms_server_rep_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "[replicas]\nenabled = true\nlease_ttl_ms = 1000\nlease_renew_ms = 900\n",
        )
        .unwrap();
        let err = ServerConfig::resolve(Cli {
            config: Some(path.clone()),
            database_url: pg(),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lease_renew_ms"), "{err}");
        std::fs::write(&path, "[replicas]\nenabled = true\nleader = true\n").unwrap();
        let err = ServerConfig::resolve(Cli {
            config: Some(path),
            database_url: pg(),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("leader"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn endpoint_switches_to_client_and_flags_beat_the_file() {
        let dir = std::env::temp_dir().join(format!("fms_server_cfg_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "port = 9000\nzenoh_endpoint = \"tcp/10.0.0.1:7447\"\n[dispatch]\nmin_battery = 30.0\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            port: Some(9100),
            ..Cli::default()
        };
        let c = ServerConfig::resolve(cli).unwrap();
        assert_eq!(c.http_addr.port(), 9100);
        assert_eq!(
            c.zenoh,
            ZenohMode::Client {
                connect: "tcp/10.0.0.1:7447".into()
            }
        );
        assert_eq!(c.engine.min_battery, 30.0);
        std::fs::write(&path, "port = 9000\nprot = 1\n").unwrap();
        assert!(matches!(
            ServerConfig::resolve(Cli {
                config: Some(path),
                ..Cli::default()
            }),
            Err(ConfigError::Parse { .. })
        ));
        let bad = Cli {
            zenoh_endpoint: Some("localhost".into()),
            ..Cli::default()
        };
        assert!(matches!(
            ServerConfig::resolve(bad),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn the_python_fms_config_json_is_read_and_env_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("fms_server_json_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.prod.json");
        std::fs::write(
            &path,
            r#"{"zenoh_server_endpoint":"tcp/zenoh.site:7447",
                "security":{"enable_cors":true,"allowed_origins":["https://ops.example.org"],
                            "rate_limiting":{"enabled":true,"requests_per_minute":75}},
                "logging":{"level":"WARNING","file":"/tmp/fms-old.log","max_size":"50MB","backup_count":2}}"#,
        )
        .unwrap();
        let file_only = |cli: Cli| ServerConfig::resolve(cli).unwrap();
        let c = file_only(Cli {
            config: Some(path.clone()),
            ..Cli::default()
        });
        assert_eq!(
            c.zenoh,
            ZenohMode::Client {
                connect: "tcp/zenoh.site:7447".into()
            }
        );
        assert_eq!(c.cors_origins, ["https://ops.example.org"]);
        assert_eq!(
            c.rate_limit,
            Some(Limits {
                reads_per_min: 75,
                tasks_per_min: 75,
                fleet_per_min: 75
            })
        );
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.log.file, Some(PathBuf::from("/tmp/fms-old.log")));
        assert_eq!((c.log.max_size_bytes, c.log.backups), (50 << 20, 2));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // Environment over the file, flags over the environment (clap merges both into Cli).
        let saved: Vec<_> = ENV
            .iter()
            .map(|(var, _)| (*var, std::env::var_os(var)))
            .collect();
        for (var, value) in ENV {
            std::env::set_var(var, value);
        }
        let json = path.display().to_string();
        let from_env = Cli::try_parse_from(["fms_server", "--config", json.as_str()]);
        let from_flags = Cli::try_parse_from([
            "fms_server",
            "--config",
            json.as_str(),
            "--zenoh-endpoint",
            "tcp/flag:7447",
            "--log-level",
            "error",
            "--cors-origins",
            "https://flag.example",
            "--port",
            "9300",
        ]);
        for (var, value) in saved {
            match value {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
        let c = file_only(from_env.unwrap());
        assert_eq!(
            c.zenoh,
            ZenohMode::Client {
                connect: "tcp/env:7447".into()
            }
        );
        assert_eq!((c.log_level.as_str(), c.http_addr.port()), ("debug", 9200));
        assert_eq!(c.cors_origins, ["http://localhost:3000"]);
        let c = file_only(from_flags.unwrap());
        assert_eq!(
            c.zenoh,
            ZenohMode::Client {
                connect: "tcp/flag:7447".into()
            }
        );
        assert_eq!((c.log_level.as_str(), c.http_addr.port()), ("error", 9300));
        assert_eq!(c.cors_origins, ["https://flag.example"]);

        // Known keys that mean nothing here are named in a warning; unknown keys are errors.
        std::fs::write(
            &path,
            r#"{"security":{"enable_cors":false,"allowed_origins":["https://ops.example.org"]}}"#,
        )
        .unwrap();
        let c = file_only(Cli {
            config: Some(path.clone()),
            ..Cli::default()
        });
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        std::fs::write(
            &path,
            r#"{"zenoh_server_endpoint":"tcp/a:7447","workers":4}"#,
        )
        .unwrap();
        let err = ServerConfig::resolve(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::ParseJson { .. }), "{err}");
        assert!(err.to_string().contains("workers"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The Python FMS's server environment (its `server/.env`), as this test sets it.
    const ENV: [(&str, &str); 4] = [
        ("ZENOH_ENDPOINT", "tcp/env:7447"),
        ("LOG_LEVEL", "DEBUG"),
        ("PORT", "9200"),
        ("CORS_ORIGINS", "http://localhost:3000"),
    ];

    #[test]
    fn python_log_levels_read_as_ours() {
        for (old, ours) in [
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("WARNING", "warn"),
            ("ERROR", "error"),
            ("CRITICAL", "error"),
            ("info,zenoh=warn", "info,zenoh=warn"),
        ] {
            assert_eq!(log_level(old), ours, "{old}");
        }
    }

    #[test]
    fn store_flags_work_after_the_subcommand_too() {
        for args in [
            &[
                "fms_server",
                "keys",
                "create",
                "--name",
                "n",
                "--role",
                "viewer",
                "--data-dir",
                "D",
                "--database-url",
                "sqlite:x.db",
                "--config",
                "c.toml",
            ][..],
            &[
                "fms_server",
                "--data-dir",
                "D",
                "--database-url",
                "sqlite:x.db",
                "--config",
                "c.toml",
                "keys",
                "create",
                "--name",
                "n",
                "--role",
                "viewer",
            ][..],
            &[
                "fms_server",
                "keys",
                "--data-dir",
                "D",
                "--database-url",
                "sqlite:x.db",
                "list",
                "--config",
                "c.toml",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.data_dir, Some(PathBuf::from("D")), "{args:?}");
            assert_eq!(cli.database_url.as_deref(), Some("sqlite:x.db"));
            assert_eq!(cli.config, Some(PathBuf::from("c.toml")));
            assert!(matches!(cli.command, Some(Command::Keys { .. })));
        }
        // The other flags stay before the subcommand.
        assert!(Cli::try_parse_from(["fms_server", "keys", "list", "--port", "1"]).is_err());
    }

    #[test]
    fn auth_load_limits_come_from_the_file_and_are_checked() {
        let dir = std::env::temp_dir().join(format!("fms_server_auth_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        let with = |text: &str| {
            std::fs::write(&path, text).unwrap();
            ServerConfig::resolve(Cli {
                config: Some(path.clone()),
                ..Cli::default()
            })
        };
        let c = with("[auth]\nfailures_per_min = 5\nkey_failures_per_min = 0\nverify_threads = 1\nverify_queue = 3\n").unwrap();
        let load = c.auth.load;
        assert_eq!((load.failures.per_address, load.failures.per_key), (5, 0));
        assert_eq!((load.verify_threads, load.verify_queue), (1, 3));
        assert_eq!(
            ServerConfig::resolve(Cli::default()).unwrap().auth.load,
            crate::auth::LoadLimits::default()
        );
        for bad in [
            "[auth]\nverify_threads = 0\n",
            "[auth]\nverify_queue = 100000\n",
        ] {
            assert!(
                matches!(with(bad), Err(ConfigError::Invalid { name: "auth", .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            with("[auth]\nverify_thread = 2\n"),
            Err(ConfigError::Parse { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
