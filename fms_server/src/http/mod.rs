//! The HTTP side: `app(state)` builds the router (REST, WebSocket, metrics, static files),
//! with the guard (authentication, roles, rate limits) on every API route, security headers,
//! a body size limit, and request metrics.

mod error;
mod fleet;
pub mod guard;
mod keys;
pub mod openapi;
pub mod ops;
mod robots;
mod tasks;
pub mod telemetry;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{from_fn_with_state, map_response, Next};
use axum::routing::{delete, get, post};
use axum::Router;
use fms_msgs::{RobotId, TaskId};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::{ApiError, ErrorCode};

use crate::auth::{Authenticator, Principal, Role};
use crate::coordinator::CoordinatorHandle;
use crate::fleet::engine::Location;
use crate::map::MapAsset;
use crate::ratelimit::{Class, RateLimiter};
use crate::state::ServerState;
use guard::Policy;
use telemetry::HttpMetrics;

/// Largest request body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<ServerState>,
    pub coord: CoordinatorHandle,
    pub http: Arc<HttpOptions>,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    pub http_metrics: Arc<HttpMetrics>,
    /// Checked by `/readyz`; `None` in tests without Zenoh.
    pub zenoh: Option<ops::ZenohProbe>,
}

/// The caller, as the guard authenticated them (its name goes into the audit).
pub struct Actor(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Actor(
            parts
                .extensions
                .get::<Principal>()
                .cloned()
                .unwrap_or(Principal {
                    name: "unknown".into(),
                    role: Role::Viewer,
                    method: crate::auth::AuthMethod::Open,
                    key_id: None,
                }),
        ))
    }
}

/// Where task targets in the map frame may be (metres).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    pub min_x: f64,
    pub max_x: f64,
    pub min_y: f64,
    pub max_y: f64,
}

impl Bounds {
    pub fn contains(&self, x: f64, y: f64) -> bool {
        (self.min_x..=self.max_x).contains(&x) && (self.min_y..=self.max_y).contains(&y)
    }

    /// The area a map covers.
    pub fn of_map(m: &crate::map::MapMeta) -> Self {
        Self {
            min_x: m.origin.x,
            max_x: m.origin.x + f64::from(m.width) * m.resolution,
            min_y: m.origin.y,
            max_y: m.origin.y + f64::from(m.height) * m.resolution,
        }
    }

    pub fn is_valid(&self) -> bool {
        [self.min_x, self.max_x, self.min_y, self.max_y]
            .iter()
            .all(|v| v.is_finite())
            && self.min_x < self.max_x
            && self.min_y < self.max_y
    }
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
    /// Where task targets may be: configured, else the map's extent, else anywhere.
    pub bounds: Option<Bounds>,
    /// Bytes one WebSocket client may have waiting before it is dropped as a slow
    /// consumer; `None`: [`ws::DEFAULT_QUEUE_BYTES`].
    pub ws_queue_bytes: Option<usize>,
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
    let policy = |role: Role, class: Class| {
        from_fn_with_state(
            state.clone(),
            move |st: State<AppState>, req: Request, next: Next| {
                guard::guard(st, Policy { role, class }, req, next)
            },
        )
    };
    let read = || policy(Role::Viewer, Class::Reads);
    let operate = || policy(Role::Operator, Class::Tasks);
    let admin = || policy(Role::Admin, Class::Fleet);

    let api = Router::new()
        .route("/robots", get(robots::list.layer(read())))
        .route("/robots/{id}", get(robots::get_one.layer(read())))
        .route("/robots/{id}/cancel", post(robots::cancel.layer(operate())))
        .route(
            "/robots/{id}/emergency-stop",
            post(robots::estop.layer(operate())),
        )
        .route(
            "/robots/{id}/emergency-stop/release",
            post(robots::release.layer(operate())),
        )
        .route(
            "/tasks",
            get(tasks::list.layer(read())).post(tasks::create.layer(operate())),
        )
        .route("/tasks/{id}", get(tasks::get_one.layer(read())))
        .route("/tasks/{id}/cancel", post(tasks::cancel.layer(operate())))
        .route("/locations", get(tasks::locations.layer(read())))
        .route("/map", get(ops::map_meta.layer(read())))
        .route("/map/image", get(ops::map_image.layer(read())))
        .route("/fleet/status", get(fleet::status.layer(read())))
        .route("/fleet/emergency-stop", post(fleet::estop.layer(admin())))
        .route(
            "/fleet/emergency-stop/release",
            post(fleet::release.layer(admin())),
        )
        .route("/whoami", get(keys::whoami.layer(read())))
        .route(
            "/keys",
            get(keys::list.layer(admin())).post(keys::create.layer(admin())),
        )
        .route("/keys/{id}", delete(keys::revoke.layer(admin())))
        .route("/audit", get(keys::audit.layer(admin())))
        .route("/info", get(ops::info))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such API route") });

    let mut router = Router::new()
        .nest("/api", api)
        .route("/ws", get(ws::upgrade.layer(read())))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));

    if let Some(dir) = state.http.frontend_dir.as_ref().filter(|d| d.is_dir()) {
        let index = dir.join("index.html");
        router = router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)));
    } else {
        router = router.fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") });
    }
    router = router
        // Every error in the envelope, those axum answers by itself (405, path rejections) too.
        .layer(map_response(error::envelope_framework_errors))
        .layer(from_fn_with_state(state.clone(), telemetry::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
             connect-src 'self' ws: wss:; frame-ancestors 'none'",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
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
                .allow_headers(tower_http::cors::Any)
                .expose_headers([
                    HeaderName::from_static("x-ratelimit-limit"),
                    HeaderName::from_static("x-ratelimit-remaining"),
                    HeaderName::from_static("x-ratelimit-reset"),
                ]),
        );
    }
    router.with_state(state)
}
