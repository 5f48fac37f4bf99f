//! `/api/fleet`: totals and the fleet-wide emergency stop.

use axum::extract::State;
use axum::Json;
use fms_msgs::{unix_ms, RobotMode};
use serde::Serialize;

use super::{Actor, ApiError, AppState};
use crate::fleet::registry::Presence;
use crate::fleet::tasks::TaskStatus;

const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FleetStatus {
    pub total: usize,
    pub online: usize,
    pub stale: usize,
    pub offline: usize,
    /// Online robots with a task or in motion.
    pub busy: usize,
    /// Online robots ready for a task.
    pub idle: usize,
    /// Online robots holding an emergency stop.
    pub estopped: usize,
    /// Mean battery percentage of robots that are not offline (null when none).
    pub average_battery: Option<f64>,
    pub active_tasks: u64,
    pub queued_tasks: u64,
    /// Tasks completed since midnight UTC.
    pub completed_today: u64,
    pub estop_engaged: bool,
}

/// Fleet totals: presence, busy/idle, battery, tasks, e-stop.
#[utoipa::path(get, path = "/api/fleet/status", tag = "fleet",
    responses((status = 200, body = FleetStatus), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn status(State(st): State<AppState>) -> Result<Json<FleetStatus>, ApiError> {
    let counts = st.shared.store.count_by_status().await?;
    let completed_today = st
        .shared
        .store
        .completed_since(unix_ms() / DAY_MS * DAY_MS)
        .await?;
    let count = |s: TaskStatus| counts.get(&s).copied().unwrap_or(0);
    let reg = st.shared.registry();
    let (mut online, mut stale, mut offline, mut busy, mut idle, mut estopped) = (0, 0, 0, 0, 0, 0);
    let (mut battery_sum, mut battery_n) = (0.0, 0usize);
    for r in reg.robots() {
        match r.presence {
            Presence::Online => online += 1,
            Presence::Stale => stale += 1,
            Presence::Offline => offline += 1,
        }
        if r.presence != Presence::Offline {
            if let Some(b) = r.battery() {
                battery_sum += b;
                battery_n += 1;
            }
        }
        if r.presence == Presence::Online {
            match r.state.as_ref() {
                Some(s)
                    if s.task.is_some()
                        || matches!(s.mode, RobotMode::Navigating | RobotMode::Teleop) =>
                {
                    busy += 1
                }
                Some(s) if matches!(s.mode, RobotMode::Idle | RobotMode::Charging) => idle += 1,
                Some(s) if s.mode == RobotMode::Estopped => estopped += 1,
                _ => {}
            }
        }
    }
    Ok(Json(FleetStatus {
        total: reg.len(),
        online,
        stale,
        offline,
        busy,
        idle,
        estopped,
        average_battery: (battery_n > 0).then(|| battery_sum / battery_n as f64),
        active_tasks: count(TaskStatus::Assigned) + count(TaskStatus::Active),
        queued_tasks: count(TaskStatus::Queued),
        completed_today,
        estop_engaged: st.shared.fleet_estop(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EstopReply {
    pub engaged: bool,
    /// Robots the command was sent to.
    pub robots: usize,
    /// Set when the command was sent but could not be persisted (see docs/security.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Engages the fleet emergency stop (persisted; resent until every robot shows it).
#[utoipa::path(post, path = "/api/fleet/emergency-stop", tag = "fleet",
    responses((status = 200, body = EstopReply), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn estop(
    State(st): State<AppState>,
    Actor(who): Actor,
) -> Result<Json<EstopReply>, ApiError> {
    tracing::warn!(by = %who.name, "fleet emergency stop engaged");
    let done = st.coord.fleet_estop(true, &who.name).await?;
    Ok(Json(EstopReply {
        engaged: true,
        robots: done.robots,
        warning: done.warning,
    }))
}

/// Releases the fleet emergency stop.
#[utoipa::path(post, path = "/api/fleet/emergency-stop/release", tag = "fleet",
    responses((status = 200, body = EstopReply), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn release(
    State(st): State<AppState>,
    Actor(who): Actor,
) -> Result<Json<EstopReply>, ApiError> {
    tracing::warn!(by = %who.name, "fleet emergency stop released");
    let done = st.coord.fleet_estop(false, &who.name).await?;
    Ok(Json(EstopReply {
        engaged: false,
        robots: done.robots,
        warning: done.warning,
    }))
}
