//! Who is calling, and what they may do: API keys (stored as argon2id hashes), HS256 JWT
//! bearer tokens, and the three roles (viewer < operator < admin).
//!
//! Keys look like `fms_<id>_<secret>`: the id finds the record (a setting `api_key/<id>` in the
//! store), the whole key is checked against its argon2id hash, on a few dedicated threads
//! (`verifier`). A verified key is remembered: argon2 runs once per key and process; the
//! record is read again every [`KEY_CACHE_TTL`] for revocations. A key that fails is refused
//! without hashing for [`FAILED_KEY_TTL`], and failures are limited per client address and
//! per key id ([`crate::ratelimit::FailureLimiter`]), so that bad keys cannot exhaust the
//! server (docs/security.md, "Authentication under load").

mod verifier;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use fms_msgs::codec;
use serde::{Deserialize, Serialize};

use crate::ratelimit::{Decision, FailureLimiter, FailureLimits, Throttled};
use crate::store::{Store, StoreError, Write, WriteBatch};
pub use verifier::{Busy, Verifier, MAX_M_COST_KIB};

/// How long a verified API key is trusted without reading its record again. A key revoked
/// through the API is forgotten at once; one revoked by another process within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a key that failed verification is refused without being hashed again.
pub const FAILED_KEY_TTL: Duration = Duration::from_secs(30);
/// Keys remembered as failed, at most (16 bytes each).
const FAILED_KEYS_CAP: usize = 100_000;
/// Verified keys remembered, at most (only real keys get in).
const VERIFIED_CAP: usize = 10_000;
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

/// A role name that is none of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (viewer, operator, admin)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
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
pub fn hash_key(key: &str) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes = *uuid::Uuid::new_v4().as_bytes();
    let salt = SaltString::encode_b64(&salt_bytes)?;
    argon2()
        .hash_password(key.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// Checks `key` against its argon2 hash (allocating argon2's memory for this call: the
/// server uses a [`Verifier`], which keeps it).
pub fn verify_key(key: &str, hash: &str) -> bool {
    verifier::verify_with(key, hash, &mut Vec::new())
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
pub fn issue_jwt(
    sub: &str,
    role: Role,
    ttl: Duration,
    secret: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
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
        let mut batch = WriteBatch::default();
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
            let mut batch = WriteBatch::default();
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

/// What an audit row of a key action says about the key.
#[derive(Serialize)]
struct KeyAuditDetail<'a> {
    key_id: &'a str,
    name: &'a str,
    role: Role,
}

fn audit(actor: &str, action: &str, record: &ApiKeyRecord) -> Write {
    Write::Audit(crate::store::AuditEntry {
        at_ms: fms_msgs::unix_ms(),
        actor: actor.to_owned(),
        action: action.into(),
        robot_id: None,
        task_id: None,
        detail: codec::to_value(&KeyAuditDetail {
            key_id: &record.id,
            name: &record.name,
            role: record.role,
        }),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key name is 1-64 printable characters")]
    BadName,
    #[error("cannot hash the key: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How much authentication work the server takes on (`[auth]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadLimits {
    /// Failed authentications per minute, per client address and per key id.
    pub failures: FailureLimits,
    /// Key verifications running at once (each holds argon2's memory, 19 MiB by default).
    pub verify_threads: usize,
    /// Key verifications waiting for a thread; more at once are answered 503.
    pub verify_queue: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            failures: FailureLimits::default(),
            verify_threads: 2,
            verify_queue: 16,
        }
    }
}

/// Keys that just failed verification: refused for a while without hashing them again. Only
/// a fingerprint of each is kept (SipHash, keyed per process). Plain code: `now` passed in.
#[derive(Debug)]
pub struct FailedKeys {
    ttl: Duration,
    cap: usize,
    hasher: RandomState,
    at: HashMap<u64, Instant>,
}

impl FailedKeys {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl,
            cap,
            hasher: RandomState::new(),
            at: HashMap::new(),
        }
    }

    fn fingerprint(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether `key` failed less than the TTL before `now`.
    pub fn contains(&self, key: &str, now: Instant) -> bool {
        self.at
            .get(&self.fingerprint(key))
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
    }

    /// Remembers that `key` failed at `now`. When full (after dropping the expired), it is
    /// not remembered: the failure limits still apply.
    pub fn insert(&mut self, key: &str, now: Instant) {
        if self.at.len() >= self.cap {
            let ttl = self.ttl;
            self.at
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
        }
        if self.at.len() < self.cap {
            self.at.insert(self.fingerprint(key), now);
        }
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No or wrong credentials (401), with the client's failure budget after this one
    /// (`None`: unlimited or not counted).
    Failed(AuthError, Option<Decision>),
    /// Too many failures from this address, or on this key id (429): nothing was checked.
    Throttled(Throttled),
    /// Every key verification slot is taken (503): try again in a second.
    Busy,
}

impl Refusal {
    /// The error, for callers that only tell 401 from 403.
    pub fn error(&self) -> Option<&AuthError> {
        match self {
            Refusal::Failed(e, _) => Some(e),
            _ => None,
        }
    }
}

/// A key this process has verified: who it is, against which hash, and when its record was
/// last read.
#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    hash: String,
    checked: Instant,
}

/// Checks credentials. `None` settings mean authentication is off.
pub struct Authenticator {
    required: bool,
    jwt_secret: Option<Vec<u8>>,
    keys: Keys,
    verified: Mutex<HashMap<String, Verified>>,
    failed: Mutex<FailedKeys>,
    /// One verification per key string at a time; the others wait for its verdict.
    checking: Turns,
    limiter: FailureLimiter,
    verifier: Verifier,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Turns = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// A place in the line of requests checking one key string; the line goes when its last
/// request does (even one canceled while waiting).
struct Turn<'a> {
    turns: &'a Turns,
    key: &'a str,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Turn<'a> {
    fn take(turns: &'a Turns, key: &'a str) -> Self {
        let lock = lock(turns).entry(key.to_owned()).or_default().clone();
        Self { turns, key, lock }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = lock(self.turns);
        // Ours and the map's only: nobody else is in line.
        if Arc::strong_count(&self.lock) == 2 {
            turns.remove(self.key);
        }
    }
}

impl Authenticator {
    /// With the default [`LoadLimits`].
    pub fn new(required: bool, jwt_secret: Option<Vec<u8>>, store: Arc<dyn Store>) -> Self {
        Self::with_limits(required, jwt_secret, store, LoadLimits::default())
    }

    pub fn with_limits(
        required: bool,
        jwt_secret: Option<Vec<u8>>,
        store: Arc<dyn Store>,
        limits: LoadLimits,
    ) -> Self {
        Self {
            required,
            jwt_secret,
            keys: Keys::new(store),
            verified: Mutex::new(HashMap::new()),
            failed: Mutex::new(FailedKeys::new(FAILED_KEY_TTL, FAILED_KEYS_CAP)),
            checking: Mutex::new(HashMap::new()),
            limiter: FailureLimiter::new(limits.failures),
            verifier: Verifier::new(limits.verify_threads, limits.verify_queue),
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// API keys hashed since the start.
    pub fn keys_hashed(&self) -> u64 {
        self.verifier.hashed()
    }

    /// Forgets the verified key with id `id` (after its revocation).
    pub fn forget_key(&self, id: &str) {
        lock(&self.verified).retain(|_, v| v.principal.key_id.as_deref() != Some(id));
    }

    /// Who presented `credential`, connecting from `client`; when auth is off, everybody is
    /// [`Principal::anonymous`].
    ///
    /// A key verified before passes whatever the limits. Anything else that fails counts
    /// against `client`'s failure budget; over it, the attempt is refused (429) without a
    /// store read or a hash. A key is hashed only if it did not just fail, its address and
    /// key id are within their budgets, and a verification slot is free (else 503).
    pub async fn authenticate(
        &self,
        credential: Option<Credential>,
        client: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        if !self.required {
            return Ok(Principal::anonymous());
        }
        let Some(credential) = credential else {
            return Err(self.cheap_failure(AuthError::Missing, client));
        };
        let text = match &credential {
            Credential::ApiKey(k) | Credential::Bearer(k) => k.as_str(),
        };
        if text.is_empty() || text.len() > MAX_CREDENTIAL_LEN {
            return Err(self.cheap_failure(AuthError::Invalid, client));
        }
        if let Some(id) = key_id(text) {
            return self.check_key(text, id, client).await;
        }
        let verdict = match (&credential, &self.jwt_secret) {
            (Credential::Bearer(token), Some(secret)) => verify_jwt(token, secret),
            _ => Err(AuthError::Invalid),
        };
        verdict.map_err(|e| self.cheap_failure(e, client))
    }

    /// A failure that took no work to find: counted against `client`; 429 once over.
    fn cheap_failure(&self, error: AuthError, client: Option<IpAddr>) -> Refusal {
        match self.limiter.fail(client, Instant::now()) {
            Some(d) if !d.allowed => Refusal::Throttled(Throttled::Address(d)),
            budget => Refusal::Failed(error, budget),
        }
    }

    /// A key verified before: fresh, or its record still there, unrevoked, with the same
    /// hash (then it is not hashed again). `None`: not verified before, or no longer.
    async fn reverify(&self, key: &str) -> Result<Option<Principal>, Refusal> {
        let Some(known) = lock(&self.verified).get(key).cloned() else {
            return Ok(None);
        };
        if known.checked.elapsed() < KEY_CACHE_TTL {
            return Ok(Some(known.principal));
        }
        let id = known.principal.key_id.clone().unwrap_or_default();
        match self.keys.get(&id).await {
            Ok(Some(r)) if r.revoked_ms.is_none() && r.hash == known.hash => {
                let mut verified = lock(&self.verified);
                if let Some(v) = verified.get_mut(key) {
                    v.checked = Instant::now();
                }
                Ok(Some(known.principal))
            }
            Ok(_) => {
                lock(&self.verified).remove(key);
                Ok(None)
            }
            Err(e) => {
                tracing::error!("cannot look up an API key: {e}");
                Err(Refusal::Failed(AuthError::Invalid, None))
            }
        }
    }

    async fn check_key(
        &self,
        key: &str,
        id: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        if let Some(p) = self.reverify(key).await? {
            return Ok(p);
        }
        // One verification of a key string at a time: the others then find its verdict.
        let turn = Turn::take(&self.checking, key);
        let _mine = turn.lock.lock().await;
        self.check_new_key(key, id, client).await
    }

    async fn check_new_key(
        &self,
        key: &str,
        id: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        if let Some(p) = self.reverify(key).await? {
            return Ok(p);
        }
        if lock(&self.failed).contains(key, Instant::now()) {
            return Err(self.cheap_failure(AuthError::Invalid, client));
        }
        let budget = self
            .limiter
            .admit(client, id, Instant::now())
            .map_err(Refusal::Throttled)?;
        let wrong = |this: &Self| {
            lock(&this.failed).insert(key, Instant::now());
            Refusal::Failed(AuthError::Invalid, budget)
        };
        let record = match self.keys.get(id).await {
            Ok(Some(r)) if r.revoked_ms.is_none() => r,
            Ok(_) => return Err(wrong(self)),
            Err(e) => {
                self.limiter.refund(client, id, Instant::now());
                tracing::error!("cannot look up an API key: {e}");
                return Err(Refusal::Failed(AuthError::Invalid, None));
            }
        };
        match self.verifier.verify(key, &record.hash).await {
            Ok(true) => {}
            Ok(false) => return Err(wrong(self)),
            Err(Busy) => {
                self.limiter.refund(client, id, Instant::now());
                return Err(Refusal::Busy);
            }
        }
        self.limiter.refund(client, id, Instant::now());
        let p = Principal {
            name: record.name,
            role: record.role,
            method: AuthMethod::ApiKey,
            key_id: Some(record.id),
        };
        let mut verified = lock(&self.verified);
        if verified.len() >= VERIFIED_CAP {
            verified.retain(|_, v| v.checked.elapsed() < KEY_CACHE_TTL);
        }
        if verified.len() < VERIFIED_CAP {
            verified.insert(
                key.to_owned(),
                Verified {
                    principal: p.clone(),
                    hash: record.hash,
                    checked: Instant::now(),
                },
            );
        }
        Ok(p)
    }
}

/// A JWT secret shorter than [`MIN_JWT_SECRET`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_JWT_SECRET} bytes")]
pub struct SecretTooShort;

/// Reads `FMS_JWT_SECRET`-style secret text: trimmed, at least [`MIN_JWT_SECRET`] bytes.
pub fn check_secret(secret: &str) -> Result<Vec<u8>, SecretTooShort> {
    let s = secret.trim();
    if s.len() < MIN_JWT_SECRET {
        return Err(SecretTooShort);
    }
    Ok(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests;
