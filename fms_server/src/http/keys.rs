//! `/api/whoami`, API key management (`/api/keys`, admin) and the command audit (`/api/audit`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{Actor, ApiError, ApiJson, ApiQuery, AppState, ErrorCode};
use crate::auth::{ApiKeyRecord, KeyError, Principal, Role};
use crate::store::AuditEntry;

/// Who the caller is (200 for any authenticated caller; `method: open` when auth is off).
#[utoipa::path(get, path = "/api/whoami", tag = "auth",
    responses((status = 200, body = Principal), (status = 401, body = super::error::ErrorEnvelope)))]
pub async fn whoami(Actor(who): Actor) -> Json<Principal> {
    Json(who)
}

/// Every API key (without hashes).
#[utoipa::path(get, path = "/api/keys", tag = "auth",
    responses((status = 200, body = [ApiKeyRecord]), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope)))]
pub async fn list(State(st): State<AppState>) -> Result<Json<Vec<ApiKeyRecord>>, ApiError> {
    Ok(Json(st.auth.keys().list().await.map_err(key_error)?))
}

/// `POST /api/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// 1-64 printable characters.
    pub name: String,
    pub role: Role,
}

/// A created key: the only time the key itself is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    pub key: String,
}

#[utoipa::path(post, path = "/api/keys", tag = "auth", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope)))]
pub async fn create(
    State(st): State<AppState>,
    Actor(who): Actor,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let (record, key) = st
        .auth
        .keys()
        .create(&body.name, body.role, &who.name)
        .await
        .map_err(key_error)?;
    tracing::info!(id = %record.id, name = %record.name, role = %record.role, by = %who.name, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            record: record.public(),
            key,
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub id: String,
    pub revoked: bool,
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = Revoked), (status = 400, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope)))]
pub async fn revoke(
    State(st): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::validation("a key id is hexadecimal"));
    }
    if who.key_id.as_deref() == Some(id.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "this is the key you are signed in with: revoke it with another admin key",
        ));
    }
    if !st
        .auth
        .keys()
        .revoke(&id, &who.name)
        .await
        .map_err(key_error)?
    {
        return Err(ApiError::new(ErrorCode::NotFound, format!("no key {id}")));
    }
    st.auth.forget_key(&id);
    tracing::info!(%id, by = %who.name, "API key revoked");
    Ok(Json(Revoked { id, revoked: true }))
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::BadName => ApiError::validation(e.to_string()),
        other => ApiError::new(ErrorCode::Internal, other.to_string()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many entries, newest first (1-1000, default 100).
    limit: Option<usize>,
}

/// The command audit: who asked for what, when; newest first.
#[utoipa::path(get, path = "/api/audit", tag = "auth", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 401, body = super::error::ErrorEnvelope), (status = 403, body = super::error::ErrorEnvelope)))]
pub async fn audit(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit must be 1-1000"));
    }
    Ok(Json(st.shared.store.audit(limit).await?))
}
