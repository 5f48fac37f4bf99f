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
    let tasks_by_status = st.shared.store.count_by_status().await?;
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
            ws_clients: st.shared.hub.listeners(),
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.shared.metrics.render(&snap),
    ))
}

/// `GET /api/map`: the site map's metadata (404 `NOT_FOUND` when none is configured).
pub async fn map_meta(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let map = st.http.map.as_ref().ok_or_else(no_map)?;
    Ok(Json(map.meta.clone()))
}

/// `GET /api/map/image`: the thresholded occupancy grid as a grey PNG.
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
