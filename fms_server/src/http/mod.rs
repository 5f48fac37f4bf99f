//! The HTTP side: `app(state)` builds the router (REST, WebSocket, metrics, static files).

mod error;
mod fleet;
mod ops;
mod robots;
mod tasks;
mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::HeaderValue;
use axum::routing::{get, post};
use axum::Router;
use fms_msgs::{RobotId, TaskId};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

pub use error::{ApiError, ErrorCode};

use crate::coordinator::{CoordinatorHandle, Shared};
use crate::fleet::engine::Location;
use crate::map::MapAsset;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub coord: CoordinatorHandle,
    pub http: Arc<HttpOptions>,
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Static files served at `/` (the dashboard), if the directory exists.
    pub frontend_dir: Option<PathBuf>,
    /// Origins allowed by CORS; empty means same-origin only.
    pub cors_origins: Vec<String>,
    /// Named locations tasks may target.
    pub locations: Vec<Location>,
    /// The site map, if one is configured.
    pub map: Option<Arc<MapAsset>>,
}

/// JSON body whose rejections use our error envelope.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Query string whose rejections use our error envelope.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

fn robot_id(raw: &str) -> Result<RobotId, ApiError> {
    RobotId::new(raw).map_err(|e| ApiError::validation(format!("robot id {raw:?}: {e}")))
}

fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    TaskId::new(raw).map_err(|e| ApiError::validation(format!("task id {raw:?}: {e}")))
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/robots", get(robots::list))
        .route("/robots/{id}", get(robots::get_one))
        .route("/robots/{id}/cancel", post(robots::cancel))
        .route("/robots/{id}/emergency-stop", post(robots::estop))
        .route("/robots/{id}/emergency-stop/release", post(robots::release))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::get_one))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/locations", get(tasks::locations))
        .route("/map", get(ops::map_meta))
        .route("/map/image", get(ops::map_image))
        .route("/fleet/status", get(fleet::status))
        .route("/fleet/emergency-stop", post(fleet::estop))
        .route("/fleet/emergency-stop/release", post(fleet::release))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such API route") });

    let mut router = Router::new()
        .nest("/api", api)
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics));

    if let Some(dir) = state.http.frontend_dir.as_ref().filter(|d| d.is_dir()) {
        let index = dir.join("index.html");
        router = router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)));
    }
    if !state.http.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = state
            .http
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any),
        );
    }
    router.with_state(state)
}
