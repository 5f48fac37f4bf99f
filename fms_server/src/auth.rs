//! Who is calling, and what they may do: API keys (stored as argon2id hashes), HS256 JWT
//! bearer tokens, and the three roles (viewer < operator < admin).
//!
//! Keys look like `fms_<id>_<secret>`: the id finds the record (a setting `api_key/<id>` in the
//! store), the whole key is checked against its argon2id hash. Verified keys are remembered
//! for [`KEY_CACHE_TTL`] so that argon2 runs once per key and minute, not per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use fms_msgs::codec::{self, JsonValue};
use serde::{Deserialize, Serialize};

use crate::store::{Batch, Store, StoreError, Write};

/// How long a verified API key is trusted without checking its hash again. A key revoked
/// through the API is forgotten at once; one revoked by another process within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Setting-key prefix of API key records.
pub const KEY_PREFIX: &str = "api_key/";
/// Shortest JWT secret accepted.
pub const MIN_JWT_SECRET: usize = 32;
/// Longest key or token looked at.
const MAX_CREDENTIAL_LEN: usize = 4096;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and the WebSocket.
    Viewer,
    /// Tasks, cancel, teleop, per-robot e-stop.
    Operator,
    /// Fleet e-stop and release, keys, configuration.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (viewer, operator, admin)")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    /// Authentication is off (demo): everybody is an anonymous admin.
    Open,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Principal {
    /// Key name, or the token's `sub`; `anonymous` when auth is off.
    pub name: String,
    pub role: Role,
    pub method: AuthMethod,
    /// The id of the API key used, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            role: Role::Admin,
            method: AuthMethod::Open,
            key_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send an X-API-Key header or an Authorization: Bearer token")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("this needs the {needed} role; you are {have}")]
    Forbidden { needed: Role, have: Role },
}

/// A stored API key (the hash, never the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(ignore)]
    pub hash: String,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

impl ApiKeyRecord {
    /// The record without its hash, for listing.
    pub fn public(&self) -> Self {
        Self {
            hash: String::new(),
            ..self.clone()
        }
    }
}

/// A fresh key: its id and the full key (shown once).
pub fn new_key() -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let key = format!("fms_{id}_{secret}");
    (id, key)
}

/// The id part of a well-formed key.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("fms_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    (ok(id, 12..=12) && ok(secret, 32..=128)).then_some(id)
}

fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// The argon2id hash of a key.
pub fn hash_key(key: &str) -> Result<String, String> {
    let salt_bytes = *uuid::Uuid::new_v4().as_bytes();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(key.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_key(key: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2().verify_password(key.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// JWT claims we read (HS256; `exp` is required).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Checks an HS256 token: signature, algorithm, expiry (no leeway), claims.
pub fn verify_jwt(token: &str, secret: &[u8]) -> Result<Principal, AuthError> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid,
    })?;
    let c = data.claims;
    if c.sub.is_empty() || c.sub.len() > 128 || c.sub.chars().any(char::is_control) {
        return Err(AuthError::Invalid);
    }
    Ok(Principal {
        name: c.sub,
        role: c.role,
        method: AuthMethod::Jwt,
        key_id: None,
    })
}

/// Signs an HS256 token (for `fms_server token` and tests).
pub fn issue_jwt(sub: &str, role: Role, ttl: Duration, secret: &[u8]) -> Result<String, String> {
    let now = fms_msgs::unix_ms() / 1000;
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp: now + ttl.as_secs(),
        iat: Some(now),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

/// What a request presented.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    ApiKey(String),
    Bearer(String),
}

/// API keys: creation, listing, revocation, all through the store.
pub struct Keys {
    store: Arc<dyn Store>,
}

impl Keys {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Creates a key; returns its record and the key itself (not stored anywhere).
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        actor: &str,
    ) -> Result<(ApiKeyRecord, String), KeyError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(KeyError::BadName);
        }
        let (id, key) = new_key();
        let record = ApiKeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            role,
            hash: hash_key(&key).map_err(KeyError::Hash)?,
            created_ms: fms_msgs::unix_ms(),
            revoked_ms: None,
        };
        let mut batch = Batch::default();
        batch.push(Write::Setting {
            key: format!("{KEY_PREFIX}{id}"),
            value: codec::to_value(&record),
        });
        batch.push(audit(actor, "key.create", &record));
        self.store.commit(&batch).await?;
        Ok((record, key))
    }

    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, KeyError> {
        let rows = self.store.settings_with_prefix(KEY_PREFIX).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(_, v)| codec::from_value::<ApiKeyRecord>(v).ok())
            .map(|r| r.public())
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, KeyError> {
        Ok(self
            .store
            .setting(&format!("{KEY_PREFIX}{id}"))
            .await?
            .and_then(|v| codec::from_value::<ApiKeyRecord>(v).ok()))
    }

    /// Revokes a key; false when there is no such key. Revoking twice is fine.
    pub async fn revoke(&self, id: &str, actor: &str) -> Result<bool, KeyError> {
        let Some(mut record) = self.get(id).await? else {
            return Ok(false);
        };
        if record.revoked_ms.is_none() {
            record.revoked_ms = Some(fms_msgs::unix_ms());
            let mut batch = Batch::default();
            batch.push(Write::Setting {
                key: format!("{KEY_PREFIX}{id}"),
                value: codec::to_value(&record),
            });
            batch.push(audit(actor, "key.revoke", &record));
            self.store.commit(&batch).await?;
        }
        Ok(true)
    }
}

fn audit(actor: &str, action: &str, record: &ApiKeyRecord) -> Write {
    Write::Audit(crate::store::AuditEntry {
        at_ms: fms_msgs::unix_ms(),
        actor: actor.to_owned(),
        action: action.into(),
        robot_id: None,
        task_id: None,
        detail: JsonValue::String(format!(
            "key {} ({}, {})",
            record.id, record.name, record.role
        )),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key name is 1-64 printable characters")]
    BadName,
    #[error("cannot hash the key: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks credentials. `None` settings mean authentication is off.
pub struct Authenticator {
    required: bool,
    jwt_secret: Option<Vec<u8>>,
    keys: Keys,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Authenticator {
    pub fn new(required: bool, jwt_secret: Option<Vec<u8>>, store: Arc<dyn Store>) -> Self {
        Self {
            required,
            jwt_secret,
            keys: Keys::new(store),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Forgets cached verifications (after a revocation).
    pub fn forget_keys(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Who presented `credential`; when auth is off, everybody is [`Principal::anonymous`].
    pub async fn authenticate(
        &self,
        credential: Option<Credential>,
    ) -> Result<Principal, AuthError> {
        if !self.required {
            return Ok(Principal::anonymous());
        }
        let credential = credential.ok_or(AuthError::Missing)?;
        let text = match &credential {
            Credential::ApiKey(k) | Credential::Bearer(k) => k.as_str(),
        };
        if text.is_empty() || text.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::Invalid);
        }
        if key_id(text).is_some() {
            return self.check_key(text).await;
        }
        match (&credential, &self.jwt_secret) {
            (Credential::Bearer(token), Some(secret)) => verify_jwt(token, secret),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn check_key(&self, key: &str) -> Result<Principal, AuthError> {
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((p, at)) = cache.get(key) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(p.clone());
                }
            }
        }
        let id = key_id(key).ok_or(AuthError::Invalid)?;
        let record = match self.keys.get(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(AuthError::Invalid),
            Err(e) => {
                tracing::error!("cannot look up an API key: {e}");
                return Err(AuthError::Invalid);
            }
        };
        if record.revoked_ms.is_some() {
            return Err(AuthError::Invalid);
        }
        let (key_owned, hash) = (key.to_owned(), record.hash.clone());
        // argon2 is CPU-heavy by design: off the async workers.
        let ok = tokio::task::spawn_blocking(move || verify_key(&key_owned, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(AuthError::Invalid);
        }
        let p = Principal {
            name: record.name,
            role: record.role,
            method: AuthMethod::ApiKey,
            key_id: Some(record.id),
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
        }
        cache.insert(key.to_owned(), (p.clone(), Instant::now()));
        Ok(p)
    }
}

/// Reads `FMS_JWT_SECRET`-style secret text: trimmed, at least [`MIN_JWT_SECRET`] bytes.
pub fn check_secret(secret: &str) -> Result<Vec<u8>, String> {
    let s = secret.trim();
    if s.len() < MIN_JWT_SECRET {
        return Err(format!(
            "the JWT secret must be at least {MIN_JWT_SECRET} bytes"
        ));
    }
    Ok(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn keys_have_a_shape_and_verify_against_their_hash() {
        let (id, key) = new_key();
        assert_eq!(key_id(&key), Some(id.as_str()));
        let hash = hash_key(&key).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_key(&key, &hash));
        assert!(!verify_key(&format!("{key}0"), &hash));
        assert!(!verify_key(&key, "not a hash"));
        for bad in [
            "",
            "fms_",
            "fms_zz_",
            "key",
            "fms_0123456789ab_short",
            "fms_0123456789ab_*",
        ] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn jwts_are_checked() {
        let token = issue_jwt("alice", Role::Operator, Duration::from_secs(60), SECRET).unwrap();
        let p = verify_jwt(&token, SECRET).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("alice", Role::Operator));
        assert_eq!(
            verify_jwt(&token, b"another secret of enough length 12345"),
            Err(AuthError::Invalid)
        );
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Claims {
                sub: "bob".into(),
                role: Role::Admin,
                exp: fms_msgs::unix_ms() / 1000 - 5,
                iat: None,
            },
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(verify_jwt(&expired, SECRET), Err(AuthError::Expired));
        // Another algorithm, or none, is refused.
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &Claims {
                sub: "eve".into(),
                role: Role::Admin,
                exp: fms_msgs::unix_ms() / 1000 + 60,
                iat: None,
            },
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(verify_jwt(&hs512, SECRET), Err(AuthError::Invalid));
        let unsigned = format!(
            "{}.{}.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
            "eyJzdWIiOiJldmUiLCJyb2xlIjoiYWRtaW4iLCJleHAiOjk5OTk5OTk5OTl9"
        );
        assert_eq!(verify_jwt(&unsigned, SECRET), Err(AuthError::Invalid));
        assert!(check_secret("short").is_err());
    }

    #[tokio::test]
    async fn keys_authenticate_until_revoked() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let auth = Authenticator::new(true, Some(SECRET.to_vec()), store.clone());
        let (record, key) = auth
            .keys()
            .create("ci", Role::Viewer, "test")
            .await
            .unwrap();
        let p = auth
            .authenticate(Some(Credential::ApiKey(key.clone())))
            .await
            .unwrap();
        assert_eq!(
            (p.name.as_str(), p.role, p.method),
            ("ci", Role::Viewer, AuthMethod::ApiKey)
        );
        // As a bearer token too.
        assert!(auth
            .authenticate(Some(Credential::Bearer(key.clone())))
            .await
            .is_ok());
        assert_eq!(auth.authenticate(None).await, Err(AuthError::Missing));
        let (_, other) = new_key();
        assert_eq!(
            auth.authenticate(Some(Credential::ApiKey(other))).await,
            Err(AuthError::Invalid)
        );
        let listed = auth.keys().list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].hash.is_empty(), "listing never shows hashes");
        assert!(auth.keys().revoke(&record.id, "test").await.unwrap());
        auth.forget_keys();
        assert_eq!(
            auth.authenticate(Some(Credential::ApiKey(key))).await,
            Err(AuthError::Invalid)
        );
        assert!(!auth.keys().revoke("000000000000", "test").await.unwrap());
        let audit = store.audit(10).await.unwrap();
        assert_eq!(audit[0].action, "key.revoke");
        assert_eq!(audit[1].action, "key.create");
        // Off: everybody is an anonymous admin.
        let open = Authenticator::new(false, None, store);
        assert_eq!(
            open.authenticate(None).await.unwrap(),
            Principal::anonymous()
        );
    }
}
