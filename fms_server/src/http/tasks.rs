//! `/api/tasks`: create (validated; named locations; `Idempotency-Key`), list with filters,
//! get with history, cancel; and `/api/locations`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fms_msgs::codec::{encode, JsonMap, JsonValue};
use fms_msgs::{Goal, Pose, Priority, TaskId};
use serde::{Deserialize, Serialize};

use super::{robot_id, task_id, Actor, ApiError, ApiJson, ApiQuery, AppState, Bounds, ErrorCode};
use crate::fleet::engine::Location;
use crate::fleet::tasks::{NewTask, Task, TaskStatus};
use crate::store::TaskFilter;

/// Largest |x| or |y| accepted for a goal, in metres.
const MAX_COORDINATE: f64 = 1.0e6;
const MAX_WAYPOINTS: usize = 100;
const MAX_FRAME_LEN: usize = 64;
const MAX_PARAMETERS_BYTES: usize = 16 * 1024;
const MAX_TIMEOUT_S: f64 = 7.0 * 86_400.0;
const MAX_RETRIES: u32 = 10;
const MAX_IDEMPOTENCY_KEY: usize = 200;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// A goal as clients send it: a named location, or a pose (`yaw` 0 and `frame` "map" by default).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TargetIn {
    Named(String),
    Pose(PoseIn),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseIn {
    x: f64,
    y: f64,
    #[serde(default)]
    yaw: f64,
    frame: Option<String>,
}

/// The Python FMS's `target_position`: a point in the map frame. fms navigates in the plane,
/// so `z` must be 0 (or left out).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPositionIn {
    x: f64,
    y: f64,
    /// Must be 0 when given.
    #[serde(default)]
    z: f64,
}

/// `POST /api/tasks` body. Give exactly one of `target`, `target_position` and `waypoints`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    robot_id: Option<String>,
    target: Option<TargetIn>,
    /// The Python FMS's form of `target` (`{"x":3,"y":1,"z":0}`, yaw 0, map frame), accepted
    /// so its clients keep working; give it or `target`, not both. `z` must be 0.
    target_position: Option<TargetPositionIn>,
    waypoints: Option<Vec<TargetIn>>,
    /// The Python FMS's `normal` and `high` mean the same here.
    priority: Option<Priority>,
    timeout_s: Option<f64>,
    /// Navigation failures to retry before the task fails (default 0).
    retries: Option<u32>,
    #[schema(value_type = Option<Object>)]
    parameters: Option<JsonMap>,
    queue_if_busy: Option<bool>,
}

fn pose(p: PoseIn, what: &str, bounds: Option<&Bounds>) -> Result<Pose, ApiError> {
    for (name, v) in [("x", p.x), ("y", p.y), ("yaw", p.yaw)] {
        if !v.is_finite() {
            return Err(ApiError::validation(format!(
                "{what}.{name} must be a finite number"
            )));
        }
    }
    if p.x.abs() > MAX_COORDINATE || p.y.abs() > MAX_COORDINATE {
        return Err(ApiError::validation(format!(
            "{what} is outside the +/-{MAX_COORDINATE} m bounds"
        )));
    }
    if let Some(b) = bounds {
        let in_map = p
            .frame
            .as_deref()
            .is_none_or(|f| f == fms_msgs::common::DEFAULT_FRAME);
        if in_map && !b.contains(p.x, p.y) {
            return Err(ApiError::validation(format!(
                "{what} ({}, {}) is outside the site bounds x {}..{}, y {}..{}",
                p.x, p.y, b.min_x, b.max_x, b.min_y, b.max_y
            )));
        }
    }
    let mut out = Pose::new(p.x, p.y, p.yaw);
    if let Some(frame) = p.frame {
        if frame.is_empty() || frame.len() > MAX_FRAME_LEN || frame.chars().any(char::is_control) {
            return Err(ApiError::validation(format!(
                "{what}.frame must be 1-{MAX_FRAME_LEN} printable characters"
            )));
        }
        out.frame = frame;
    }
    Ok(out)
}

fn target(
    t: TargetIn,
    what: &str,
    locations: &[Location],
    bounds: Option<&Bounds>,
) -> Result<(Pose, Option<String>), ApiError> {
    match t {
        TargetIn::Pose(p) => Ok((pose(p, what, bounds)?, None)),
        TargetIn::Named(name) => locations
            .iter()
            .find(|l| l.name == name)
            .map(|l| (l.pose.clone(), Some(l.name.clone())))
            .ok_or_else(|| ApiError::validation(format!("{what}: no location named {name:?}"))),
    }
}

/// The Python FMS's `target_position` as our pose (yaw 0, map frame); `z` must be 0.
fn old_position(p: TargetPositionIn) -> Result<PoseIn, ApiError> {
    if p.z != 0.0 {
        return Err(ApiError::validation(format!(
            "target_position.z must be 0: fms navigates in the plane (got {})",
            p.z
        )));
    }
    Ok(PoseIn {
        x: p.x,
        y: p.y,
        yaw: 0.0,
        frame: None,
    })
}

impl CreateTask {
    fn validate(
        self,
        locations: &[Location],
        bounds: Option<&Bounds>,
        idempotency_key: Option<String>,
    ) -> Result<NewTask, ApiError> {
        let single = match (self.target, self.target_position) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "give either target or target_position (the Python FMS's form), not both",
                ))
            }
            (t, None) => t,
            (None, Some(p)) => Some(TargetIn::Pose(old_position(p)?)),
        };
        let (goal, location) = match (single, self.waypoints) {
            (Some(t), None) => {
                let (p, name) = target(t, "target", locations, bounds)?;
                (Goal::Pose(p), name)
            }
            (None, Some(wps)) => {
                if wps.is_empty() || wps.len() > MAX_WAYPOINTS {
                    return Err(ApiError::validation(format!(
                        "waypoints must hold 1-{MAX_WAYPOINTS} poses"
                    )));
                }
                let poses = wps
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| {
                        target(t, &format!("waypoints[{i}]"), locations, bounds).map(|(p, _)| p)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (Goal::Waypoints(poses), None)
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "give either a target (or target_position) or waypoints, not both",
                ))
            }
            (None, None) => {
                return Err(ApiError::validation(
                    "a task needs a target (or target_position) or waypoints",
                ))
            }
        };
        if let Some(t) = self.timeout_s {
            if !(t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT_S) {
                return Err(ApiError::validation(format!(
                    "timeout_s must be in (0, {MAX_TIMEOUT_S}]"
                )));
            }
        }
        let retries = self.retries.unwrap_or(0);
        if retries > MAX_RETRIES {
            return Err(ApiError::validation(format!(
                "retries must be 0-{MAX_RETRIES}"
            )));
        }
        let parameters = self.parameters.unwrap_or_default();
        if encode(&parameters).len() > MAX_PARAMETERS_BYTES {
            return Err(ApiError::validation(format!(
                "parameters must encode to at most {MAX_PARAMETERS_BYTES} bytes"
            )));
        }
        if has_nul(&JsonValue::Object(parameters.clone())) {
            return Err(ApiError::validation(
                "parameters must not contain NUL characters",
            ));
        }
        Ok(NewTask {
            robot_id: self.robot_id.as_deref().map(robot_id).transpose()?,
            goal,
            priority: self.priority.unwrap_or_default(),
            timeout_s: self.timeout_s,
            parameters,
            queue_if_busy: self.queue_if_busy.unwrap_or(true),
            retries,
            location,
            idempotency_key,
        })
    }
}

/// True if any string (or key) in the value holds a NUL, which databases refuse.
fn has_nul(v: &JsonValue) -> bool {
    match v {
        JsonValue::String(s) => s.contains('\0'),
        JsonValue::Array(a) => a.iter().any(has_nul),
        JsonValue::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY
                && k.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// Whether `task` is what `new` asks for, so that a replay under the same
/// `Idempotency-Key` is of the same request: every field a request sets and a task keeps,
/// compared exactly (stored numbers round-trip exactly). `queue_if_busy` only decides whether
/// the task may queue when it is created, and is not kept.
fn same_request(task: &Task, new: &NewTask) -> bool {
    let NewTask {
        robot_id,
        goal,
        priority,
        timeout_s,
        parameters,
        queue_if_busy: _,
        retries,
        location,
        idempotency_key,
    } = new;
    task.robot_id == *robot_id
        && task.goal == *goal
        && task.priority == *priority
        && task.timeout_s == *timeout_s
        && task.parameters == *parameters
        && task.retries == *retries
        && task.location == *location
        && task.idempotency_key == *idempotency_key
}

/// The answer to `POST /api/tasks`: the task, plus `task_id` (the same as `id`) for clients
/// of the Python FMS, which read the new task's id from `task_id`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTask {
    /// The same as `id` (the Python FMS's name for it).
    task_id: TaskId,
    #[serde(flatten)]
    task: Task,
}

impl From<Task> for CreatedTask {
    fn from(task: Task) -> Self {
        Self {
            task_id: task.id.clone(),
            task,
        }
    }
}

/// Creates a task: 201 with the new task; 200 with the earlier one (and
/// `Idempotent-Replayed: true`) when the `Idempotency-Key` was seen before with the same
/// request; 422 `IDEMPOTENCY_KEY_REUSED` when it was seen with another request.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = CreateTask,
    params(("Idempotency-Key" = Option<String>, Header, description = "1-200 visible ASCII characters; the same key never creates a second task: the same request again answers 200 with the first task, another request 422 IDEMPOTENCY_KEY_REUSED")),
    responses((status = 201, body = CreatedTask), (status = 200, body = CreatedTask), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 422, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn create(
    State(st): State<AppState>,
    Actor(who): Actor,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let new = body.validate(&st.http.locations, st.http.bounds.as_ref(), key)?;
    // A keyed request is kept to check that a replay answers the same request.
    let keyed = new.idempotency_key.is_some().then(|| new.clone());
    let created = st.coord.create_task(new, &who.name).await?;
    if created.replayed {
        if let Some(asked) = keyed.filter(|asked| !same_request(&created.task, asked)) {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "Idempotency-Key {:?} was already used for task {} with another request; \
                     send a new key for a new task",
                    asked.idempotency_key.as_deref().unwrap_or_default(),
                    created.task.id
                ),
            ));
        }
        let replay = (
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
        Ok((
            StatusCode::OK,
            [replay],
            Json(CreatedTask::from(created.task)),
        )
            .into_response())
    } else {
        Ok((StatusCode::CREATED, Json(CreatedTask::from(created.task))).into_response())
    }
}

/// `GET /api/tasks?status=ACTIVE&robot=tb3_1&limit=50`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
pub struct ListQuery {
    status: Option<String>,
    robot: Option<String>,
    limit: Option<usize>,
}

/// Tasks, newest first.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(ListQuery),
    responses((status = 200, body = [Task]), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Task>>, ApiError> {
    let status = q
        .status
        .map(|s| s.parse::<TaskStatus>().map_err(ApiError::validation))
        .transpose()?;
    let robot = q.robot.as_deref().map(robot_id).transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::validation(format!("limit must be 1-{MAX_LIMIT}")));
    }
    let tasks = st
        .shared
        .store
        .list_tasks(&TaskFilter {
            status,
            robot,
            limit,
        })
        .await?;
    Ok(Json(tasks))
}

/// One task with its history.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = task_id(&id)?;
    st.shared
        .store
        .get_task(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::TaskNotFound, format!("task {id} is not known")))
}

/// Cancels a task (409 when it is already over).
#[utoipa::path(post, path = "/api/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, body = Task), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn cancel(
    State(st): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = task_id(&id)?;
    Ok(Json(st.coord.cancel_task(id, &who.name).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocationOut {
    name: String,
    x: f64,
    y: f64,
    yaw: f64,
    charger: bool,
}

/// The named locations tasks may target.
#[utoipa::path(get, path = "/api/locations", tag = "tasks",
    responses((status = 200, body = [LocationOut]), (status = 401, body = super::error::ErrorEnvelope), (status = 429, body = super::error::ErrorEnvelope)))]
pub async fn locations(State(st): State<AppState>) -> Json<Vec<LocationOut>> {
    Json(
        st.http
            .locations
            .iter()
            .map(|l| LocationOut {
                name: l.name.clone(),
                x: l.pose.x,
                y: l.pose.y,
                yaw: l.pose.yaw,
                charger: l.charger,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::engine::{new_task, EngineParams};

    fn request(body: &str, key: &str) -> NewTask {
        let body: CreateTask = fms_msgs::decode(body.as_bytes()).unwrap();
        let home = Location {
            name: "home".into(),
            pose: Pose::new(1.0, 2.0, 0.5),
            charger: false,
        };
        body.validate(&[home], None, Some(key.into())).unwrap()
    }

    fn parse(body: &str) -> Result<NewTask, ApiError> {
        let body: CreateTask =
            fms_msgs::decode(body.as_bytes()).map_err(|e| ApiError::validation(e.to_string()))?;
        body.validate(&[], None, None)
    }

    #[test]
    fn the_python_fms_task_body_is_accepted_and_mapped() {
        let old = parse(
            r#"{"robot_id":"robot-001","target_position":{"x":3.5,"y":-1,"z":0},"priority":"high"}"#,
        )
        .unwrap();
        let ours = parse(r#"{"robot_id":"robot-001","target":{"x":3.5,"y":-1},"priority":"high"}"#)
            .unwrap();
        assert_eq!(old, ours);
        assert_eq!(old.goal, Goal::Pose(Pose::new(3.5, -1.0, 0.0)));
        assert_eq!(old.robot_id.as_ref().unwrap().as_str(), "robot-001");
        // `z` may be left out; the old priorities are ours.
        for (text, want) in [("normal", Priority::Normal), ("high", Priority::High)] {
            let t = parse(&format!(
                r#"{{"robot_id":"r1","target_position":{{"x":1,"y":2}},"priority":"{text}"}}"#
            ))
            .unwrap();
            assert_eq!(
                (t.priority, &t.goal),
                (want, &Goal::Pose(Pose::new(1.0, 2.0, 0.0)))
            );
        }
        let default = parse(r#"{"target_position":{"x":1,"y":2}}"#).unwrap();
        assert_eq!(default.priority, Priority::Normal);
    }

    #[test]
    fn old_and_new_shapes_together_bad_z_and_unknown_fields_are_refused() {
        for (body, says) in [
            (
                r#"{"target":{"x":1,"y":2},"target_position":{"x":1,"y":2,"z":0}}"#,
                "not both",
            ),
            (
                r#"{"waypoints":[{"x":1,"y":2}],"target_position":{"x":1,"y":2}}"#,
                "not both",
            ),
            (
                r#"{"robot_id":"r1","target_position":{"x":1,"y":2,"z":0.5}}"#,
                "target_position.z must be 0",
            ),
            (
                r#"{"robot_id":"r1","target_position":{"x":1,"y":2,"z":0},"speed":1}"#,
                "unknown field `speed`",
            ),
            (
                r#"{"robot_id":"r1","target_position":{"x":1,"y":2,"w":1}}"#,
                "unknown field `w`",
            ),
            (
                r#"{"robot_id":"r1","target_position":{"x":1,"y":2},"priority":"asap"}"#,
                "unknown variant",
            ),
            (r#"{"target_position":{"x":2e7,"y":2}}"#, "bounds"),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::ValidationError, "{body}");
            assert!(err.message.contains(says), "{body}: {}", err.message);
        }
    }

    #[test]
    fn the_create_answer_carries_task_id_beside_ours() {
        let new = parse(r#"{"robot_id":"r1","target_position":{"x":1,"y":2}}"#).unwrap();
        let task = new_task(&EngineParams::default(), TaskId::new("t9").unwrap(), new, 1);
        let out = fms_msgs::codec::to_value(&CreatedTask::from(task.clone()));
        assert_eq!(out["task_id"], "t9");
        assert_eq!(out["id"], "t9");
        assert_eq!(out["robot_id"], "r1");
        assert_eq!(out["status"], "QUEUED");
        // Everything else is the task as before.
        let mut rest = out.as_object().unwrap().clone();
        rest.remove("task_id");
        assert_eq!(JsonValue::Object(rest), fms_msgs::codec::to_value(&task));
    }

    #[test]
    fn a_replay_must_be_of_the_same_request() {
        let first = request(
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]}}"#,
            "k",
        );
        let task = new_task(
            &EngineParams::default(),
            TaskId::new("t1").unwrap(),
            first.clone(),
            1,
        );
        // Through the store's JSON, as a replay reads it.
        let task: Task = fms_msgs::decode(&fms_msgs::encode(&task)).unwrap();
        assert!(same_request(&task, &first));
        // Defaults spelled out, another key order, `queue_if_busy`: the same request.
        assert!(same_request(
            &task,
            &request(
                r#"{"parameters":{"a":[1,{"b":0.1}]},"timeout_s":30.5,"priority":"high","target":{"x":1.5,"y":-2.25,"yaw":0,"frame":"map"},"retries":0,"queue_if_busy":false}"#,
                "k"
            )
        ));
        for other in [
            r#"{"target":{"x":1.5,"y":-2.2500001},"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]}}"#,
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"normal","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]}}"#,
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"high","parameters":{"a":[1,{"b":0.1}]}}"#,
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.2}]}}"#,
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]},"retries":1}"#,
            r#"{"target":{"x":1.5,"y":-2.25},"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]},"robot_id":"r1"}"#,
            r#"{"waypoints":[{"x":1.5,"y":-2.25}],"priority":"high","timeout_s":30.5,"parameters":{"a":[1,{"b":0.1}]}}"#,
        ] {
            assert!(!same_request(&task, &request(other, "k")), "{other}");
        }
        // A named location is not the same request as its pose given by hand.
        let named = request(r#"{"target":"home"}"#, "k");
        let named_task = new_task(
            &EngineParams::default(),
            TaskId::new("t2").unwrap(),
            named.clone(),
            1,
        );
        assert!(same_request(&named_task, &named));
        let by_hand = request(r#"{"target":{"x":1.0,"y":2.0,"yaw":0.5}}"#, "k");
        assert!(!same_request(&named_task, &by_hand));
    }
}
