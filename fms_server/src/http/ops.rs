//! Operational endpoints: `/healthz`, Prometheus `/metrics`, and the site map (`/api/map`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::fleet::registry::Presence;
use crate::fleet::tasks::TaskStatus;
use crate::metrics::Snapshot;

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
    let counted = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        st.shared.store.count_by_status(),
    )
    .await;
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
    pub store: bool,
    pub zenoh: bool,
}

/// Readiness: the store answers and Zenoh is up (as a client: connected to a router).
/// 503 when either is not.
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    let store = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        st.shared.store.setting("readyz"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let zenoh = match &st.zenoh {
        None => true,
        Some(z) if z.session.is_closed() => false,
        Some(z) if z.client => z.session.info().routers_zid().await.next().is_some(),
        Some(_) => true,
    };
    let ok = store && zenoh;
    let code = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Ready {
            status: if ok { "ready" } else { "unavailable" },
            store,
            zenoh,
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
