//! Operational endpoints: `/healthz`, `/readyz`, Prometheus `/metrics`, and the site map
//! (`/api/map`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::fleet::registry::Presence;
use crate::fleet::tasks::TaskStatus;
use crate::metrics::Snapshot;
use crate::store::WriteHealth;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    robots: usize,
}

pub async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    Json(Health {
        status: "ok",
        robots: st.shared.registry().len(),
    })
}

pub async fn metrics(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // The robot, ingest and lease figures stay scrapeable while the database is away.
    let wait = std::time::Duration::from_secs(1);
    let store = &st.shared.store;
    let (counted, writes) = tokio::join!(
        tokio::time::timeout(wait, store.count_by_status()),
        write_health(store.as_ref(), wait),
    );
    let (tasks_by_status, store_down) = match counted {
        Ok(Ok(counts)) => (counts, false),
        Ok(Err(e)) => {
            tracing::debug!("metrics without task counts: {e}");
            (Default::default(), true)
        }
        Err(_) => (Default::default(), true),
    };
    let snap = {
        let reg = st.shared.registry();
        Snapshot {
            robots_total: reg.len(),
            robots_online: reg
                .robots()
                .filter(|r| r.presence == Presence::Online)
                .count(),
            robots_stale: reg
                .robots()
                .filter(|r| r.presence == Presence::Stale)
                .count(),
            tasks_active: [TaskStatus::Assigned, TaskStatus::Active]
                .iter()
                .map(|s| tasks_by_status.get(s).copied().unwrap_or(0) as usize)
                .sum(),
            tasks_by_status,
            store_down,
            store_write_failing: !writes.writable(),
            store_write_failures: writes.failures_total,
            ws_clients: st.shared.hub.listeners(),
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = st.shared.metrics.render(&snap);
            st.http_metrics.render(&mut text);
            text
        },
    ))
}

/// What `/readyz` checks of Zenoh: the session, and whether it is a client (which needs a
/// router) or the embedded router itself.
#[derive(Clone)]
pub struct ZenohProbe {
    pub session: zenoh::Session,
    pub client: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// The store answers reads and takes writes.
    pub store: bool,
    /// The store's last write (a commit, or the probe this check makes while writes fail)
    /// succeeded: false while the disk is full or the database refuses writes.
    pub store_writable: bool,
    pub zenoh: bool,
    /// Why the server is not ready; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The store's write health, probing with a tiny write while writes fail (at most once a
/// second, see `Store::probe_writes`). A probe that takes longer than `wait` leaves the
/// health as it was.
async fn write_health(store: &dyn crate::store::Store, wait: std::time::Duration) -> WriteHealth {
    match tokio::time::timeout(wait, store.probe_writes()).await {
        Ok(health) => health,
        Err(_) => store.write_health(),
    }
}

/// Readiness: the store answers reads, its writes work (its last commit succeeded, or a
/// probe write does), and Zenoh is up (as a client: connected to a router). 503 with a
/// `reason` when any is not.
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    let wait = std::time::Duration::from_secs(2);
    let store = &st.shared.store;
    let (readable, writes) = tokio::join!(
        tokio::time::timeout(wait, store.setting("readyz")),
        write_health(store.as_ref(), wait),
    );
    let readable = readable.is_ok_and(|r| r.is_ok());
    let zenoh = match &st.zenoh {
        None => true,
        Some(z) if z.session.is_closed() => false,
        Some(z) if z.client => z.session.info().routers_zid().await.next().is_some(),
        Some(_) => true,
    };
    let mut reasons = Vec::new();
    if !readable {
        reasons.push("the store does not answer reads".to_owned());
    }
    if let Some(failing) = &writes.failing {
        let secs = crate::store::health::unix_ms().saturating_sub(failing.since_ms) / 1000;
        reasons.push(format!(
            "store writes fail (for {secs} s, {} failed writes so far): {}",
            writes.failures_total, failing.error
        ));
    }
    if !zenoh {
        reasons.push("Zenoh is down or has no router".to_owned());
    }
    let ok = reasons.is_empty();
    let code = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Ready {
            status: if ok { "ready" } else { "unavailable" },
            store: readable && writes.writable(),
            store_writable: writes.writable(),
            zenoh,
            reason: (!ok).then(|| reasons.join("; ")),
        }),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Info {
    pub version: &'static str,
    /// false: the API is open to anybody (demo mode).
    pub auth_required: bool,
    /// Whether this server dispatches tasks: always for a single server; among replicas,
    /// only the one holding the dispatch lease (every replica serves the API).
    pub leader: bool,
}

/// Public facts a client needs before signing in.
pub async fn info(State(st): State<AppState>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        auth_required: st.auth.required(),
        leader: st.shared.metrics.is_leader(),
    })
}

/// The site map's metadata (404 `NOT_FOUND` when none is configured).
#[utoipa::path(get, path = "/api/map", tag = "map",
    responses((status = 200, body = crate::map::MapMeta), (status = 404, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn map_meta(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let map = st.http.map.as_ref().ok_or_else(no_map)?;
    Ok(Json(map.meta.clone()))
}

/// The thresholded occupancy grid as a grey PNG (row 0 is the top, as in map_server images).
#[utoipa::path(get, path = "/api/map/image", tag = "map",
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 404, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn map_image(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let map = st.http.map.clone().ok_or_else(no_map)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        map.png.clone(),
    ))
}

fn no_map() -> ApiError {
    ApiError::new(
        super::ErrorCode::NotFound,
        "no site map is configured (--map config/maps/NAME.yaml)",
    )
}
