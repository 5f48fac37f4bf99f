//! `/api/robots`: the fleet's robots, one robot, and per-robot cancel and e-stop.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::{robot_id, ApiError, AppState, ErrorCode};
use crate::fleet::registry::RobotEntry;

#[derive(Serialize)]
pub struct Ack {
    pub robot_id: String,
    pub accepted: bool,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::RobotNotFound, format!("robot {id} is not known"))
}

pub async fn list(State(st): State<AppState>) -> Json<Vec<RobotEntry>> {
    let mut robots: Vec<RobotEntry> = st.shared.registry().robots().cloned().collect();
    robots.sort_by(|a, b| a.id.cmp(&b.id));
    Json(robots)
}

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

pub async fn cancel(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    st.coord.cancel_robot(id.clone()).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
    }))
}

pub async fn estop(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    st.coord.robot_estop(id.clone(), true).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
    }))
}

pub async fn release(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Ack>, ApiError> {
    let id = known(&st, &id)?;
    st.coord.robot_estop(id.clone(), false).await?;
    Ok(Json(Ack {
        robot_id: id.to_string(),
        accepted: true,
    }))
}
