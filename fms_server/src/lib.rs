//! fms fleet server: ingests robot state and events from Zenoh, runs the task engine,
//! and serves the REST/WebSocket API.
//!
//! `fleet` is the pure domain; `coordinator` applies its effects; `state` is what the
//! HTTP handlers, the Zenoh ingest, the ticker and the coordinator share; `link` is Zenoh;
//! `http` is axum; `store` is persistence; `hub` fans out live updates.

pub mod auth;
pub mod bench;
pub mod config;
pub mod coordinator;
pub mod fleet;
pub mod http;
pub mod hub;
pub mod leader;
pub mod link;
pub mod log_gate;
pub mod logging;
pub mod map;
pub mod metrics;
pub mod phone;
pub mod ratelimit;
pub mod state;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fms_msgs::unix_ms;
use tokio::net::TcpListener;

pub use config::ServerConfig;
pub use http::{app, AppState, HttpOptions};

use coordinator::{Coordinator, Request};
use fleet::engine::{TaskEngine, FLEET_ESTOP_SETTING};
use fleet::registry::Registry;
use state::ServerState;

/// How often presence staleness is re-evaluated and dispatch retried.
const TICK: Duration = Duration::from_millis(250);
/// How long shutdown waits for WebSocket clients to be sent their close frame.
const WS_CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Overrides [`http::ws::DEFAULT_QUEUE_BYTES`], the bytes one WebSocket client may have
/// waiting before it is dropped as a slow consumer (tests use a small bound).
const WS_QUEUE_ENV: &str = "FMS_WS_QUEUE_BYTES";

/// The WebSocket send queue bound from [`WS_QUEUE_ENV`], if set and valid.
fn ws_queue_bytes() -> Option<usize> {
    let raw = std::env::var(WS_QUEUE_ENV).ok()?;
    match raw.trim().parse::<usize>() {
        Ok(n) if n >= 1024 => Some(n),
        _ => {
            tracing::warn!("{WS_QUEUE_ENV}={raw:?} ignored: expected a number of bytes >= 1024");
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("zenoh: {0}")]
    Zenoh(zenoh::Error),
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("map {path}: {source}")]
    Map {
        path: std::path::PathBuf,
        source: map::MapError,
    },
    #[error("API keys: {0}")]
    Keys(#[source] auth::KeyError),
}

/// A started server: Zenoh is up and ingesting, the coordinator runs; HTTP is not served yet.
pub struct Server {
    config: ServerConfig,
    session: zenoh::Session,
    state: AppState,
    _ingest: link::Ingest,
    ticker: tokio::task::JoinHandle<()>,
    /// This replica's lease loop (replicas only).
    lease: Option<(Arc<leader::Leadership>, tokio::task::JoinHandle<()>)>,
}

impl Server {
    /// Opens Zenoh (embedded router or client), subscribes, and starts the coordinator.
    pub async fn start(config: ServerConfig) -> Result<Self, ServerError> {
        let map = match &config.map {
            Some(path) => {
                let m = map::load(path).map_err(|source| ServerError::Map {
                    path: path.clone(),
                    source,
                })?;
                tracing::info!(path = %path.display(), width = m.meta.width, height = m.meta.height, resolution = m.meta.resolution, "site map loaded");
                Some(Arc::new(m))
            }
            None => None,
        };
        let store = store::open_store(config.database_url.as_deref(), &config.data_dir).await?;
        let leadership = config.replicas.as_ref().map(|r| {
            tracing::info!(replica = %r.id, lease_ttl_ms = r.lease.ttl_ms, lease_renew_ms = r.lease.renew_ms, "running as a replica: dispatching only while holding the lease");
            Arc::new(leader::Leadership::new(r.id.clone(), r.lease))
        });
        // Recover: every open task, the event cursors and the fleet e-stop. (A replica
        // loads them when it is elected instead.)
        let open = if leadership.is_some() {
            Vec::new()
        } else {
            store.open_tasks().await?
        };
        let cursors = store.cursors().await?;
        let fleet_estop = store
            .setting(FLEET_ESTOP_SETTING)
            .await?
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !open.is_empty() || fleet_estop {
            tracing::info!(
                open_tasks = open.len(),
                fleet_estop,
                "recovered from the store"
            );
        }
        let engine = TaskEngine::restore(
            config.engine,
            &config.locations,
            open,
            cursors,
            fleet_estop,
            unix_ms(),
        );
        let session = link::open(&config.zenoh, config.zenoh_config.as_deref())
            .await
            .map_err(ServerError::Zenoh)?;
        let shared = Arc::new(ServerState::new(
            Registry::new(config.presence),
            store,
            fleet_estop,
        ));
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let (coordinator, coord) =
            Coordinator::new(engine, shared.clone(), out_tx, leadership.clone());
        let ingest = link::start_ingest(&session, shared.clone(), coord.clone())
            .await
            .map_err(ServerError::Zenoh)?;
        tokio::spawn(coordinator.run());
        let lease = leadership.map(|l| {
            // Leadership reaches the coordinator as messages.
            let coord = coord.clone();
            let transition = move |t| coord.try_send(Request::Leadership(t));
            let task = tokio::spawn(leader::run(l.clone(), shared.store.clone(), transition));
            (l, task)
        });
        tokio::spawn(link::publish_outgoing(session.clone(), out_rx));
        let ticker = {
            let (shared, coord) = (shared.clone(), coord.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                loop {
                    tick.tick().await;
                    let changes = shared.tick_presence(unix_ms());
                    for change in changes {
                        coord.send(Request::Presence(change));
                    }
                    coord.send(Request::Tick);
                }
            })
        };
        let bounds = config
            .bounds
            .or_else(|| map.as_ref().map(|m| http::Bounds::of_map(&m.meta)));
        if !config.frontend_dir.is_dir() {
            tracing::warn!(dir = %config.frontend_dir.display(), "dashboard not served: build it with `cd frontend && npm ci && npm run build`");
        }
        let auth = Arc::new(auth::Authenticator::with_limits(
            config.auth.enabled,
            config.auth.jwt_secret.as_ref().map(|s| s.0.clone()),
            shared.store.clone(),
            config.auth.load,
        ));
        if config.auth.enabled {
            let keys = auth.keys().list().await.map_err(|e| match e {
                auth::KeyError::Store(s) => ServerError::Store(s),
                other => ServerError::Keys(other),
            })?;
            let active = keys.iter().filter(|k| k.revoked_ms.is_none()).count();
            tracing::info!(
                api_keys = active,
                jwt = config.auth.jwt_secret.is_some(),
                "authentication required"
            );
            if active == 0 && config.auth.jwt_secret.is_none() {
                tracing::warn!("authentication is on but nobody can sign in yet: create a key with `fms_server keys create --name admin --role admin`");
            }
        } else {
            tracing::warn!("AUTHENTICATION IS OFF: anyone who can reach this server can command the fleet. Demo use only; set FMS_AUTH=1 (and production = true) for real deployments");
        }
        let state = AppState {
            shared,
            coord,
            http: Arc::new(HttpOptions {
                frontend_dir: Some(config.frontend_dir.clone()),
                cors_origins: config.cors_origins.clone(),
                locations: config.locations.clone(),
                map,
                bounds,
                ws_queue_bytes: ws_queue_bytes(),
            }),
            auth,
            limiter: Arc::new(ratelimit::RateLimiter::new(config.rate_limit.unwrap_or(
                ratelimit::Limits {
                    reads_per_min: 0,
                    tasks_per_min: 0,
                    fleet_per_min: 0,
                },
            ))),
            http_metrics: Arc::new(http::telemetry::HttpMetrics::default()),
            zenoh: Some(http::ops::ZenohProbe {
                session: session.clone(),
                client: matches!(config.zenoh, link::ZenohMode::Client { .. }),
            }),
        };
        Ok(Self {
            config,
            session,
            state,
            _ingest: ingest,
            ticker,
            lease,
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then closes Zenoh.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let store = self.state.shared.store.clone();
        let hub = self.state.shared.hub.clone();
        let closing = hub.clone();
        // The peer address limits failed authentications (and anonymous clients).
        let service = app(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.close_all();
            })
            .await;
        // Upgraded connections are no longer HTTP's to wait for: give WebSocket clients
        // their close frame (1001) before going.
        hub.close_all();
        if !hub.clients_gone(WS_CLOSE_WAIT).await {
            tracing::warn!(
                clients = hub.listeners(),
                "WebSocket clients still open at shutdown"
            );
        }
        self.ticker.abort();
        if let Some((leadership, task)) = self.lease {
            // Hand over at once instead of letting the lease run out.
            task.abort();
            leadership.release();
            if let Err(e) = store.release_lease(leadership.holder()).await {
                tracing::warn!("cannot release the dispatch lease: {e}");
            }
        }
        if let Err(e) = self.session.close().await {
            tracing::warn!("zenoh session did not close cleanly: {e}");
        }
        Ok(served?)
    }
}

/// Starts the server and serves `listener` until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::start(config).await?.serve(listener, shutdown).await
}
