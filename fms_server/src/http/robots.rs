//! `/api/robots`: the fleet's robots, one robot, and per-robot cancel and e-stop.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::{robot_id, Actor, ApiError, AppState, ErrorCode};
use crate::fleet::registry::{RobotEntry, RobotJson};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub robot_id: String,
    pub accepted: bool,
    /// Set when the command was sent but could not be persisted (see docs/security.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::RobotNotFound, format!("robot {id} is not known"))
}

/// Every robot with its presence and latest state, by id (a JSON array: `jq length` counts
/// the robots). Each also carries the Python FMS's `robot_id`, `pose`, `battery`, `status`
/// and `last_seen`.
#[utoipa::path(get, path = "/api/robots", tag = "robots",
    responses((status = 200, body = [RobotJson]), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn list(State(st): State<AppState>) -> impl IntoResponse {
    // Written straight from the registry, reusing the states the ingest already encoded:
    // no clone of the fleet, no second encoding of 10,000 states.
    let body = st.shared.registry().robots_json();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

#[utoipa::path(get, path = "/api/robots/{id}", tag = "robots",
    params(("id" = String, Path, description = "robot id")),
    responses((status = 200, body = RobotJson), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RobotEntry>, ApiError> {
    let id = robot_id(&id)?;
    st.shared
        .registry()
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(id.as_str()))
}

fn known(st: &AppState, raw: &str) -> Result<fms_msgs::RobotId, ApiError> {
    let id = robot_id(raw)?;
    if st.shared.registry().get(&id).is_none() {
        return Err(not_found(id.as_str()));
    }
    Ok(id)
}

/// Cancels the robot's current task (404 `ROBOT_NOT_FOUND` for a robot never seen).
#[utoipa::path(post, path = "/api/robots/{id}/cancel", tag = "robots",
    params(("id" = String, Path, description = "robot id")),
    responses((status = 200, body = Ack), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn cancel(
    State(st): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    st.coord.cancel_robot(id.clone(), &who.name).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
        warning: None,
    }))
}

/// Engages one robot's emergency stop.
#[utoipa::path(post, path = "/api/robots/{id}/emergency-stop", tag = "robots",
    params(("id" = String, Path, description = "robot id")),
    responses((status = 200, body = Ack), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn estop(
    State(st): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    let done = st.coord.robot_estop(id.clone(), true, &who.name).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
        warning: done.warning,
    }))
}

/// Releases one robot's emergency stop.
#[utoipa::path(post, path = "/api/robots/{id}/emergency-stop/release", tag = "robots",
    params(("id" = String, Path, description = "robot id")),
    responses((status = 200, body = Ack), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn release(
    State(st): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    let done = st.coord.robot_estop(id.clone(), false, &who.name).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
        warning: done.warning,
    }))
}
