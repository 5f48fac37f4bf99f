//! Tests of authentication: keys, tokens, roles, failed-key limits and the verifier pool.

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

/// The error of a 401, if it was one.
fn failed(r: Result<Principal, Refusal>) -> Option<AuthError> {
    r.err().and_then(|r| r.error().cloned())
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
        .authenticate(Some(Credential::ApiKey(key.clone())), None)
        .await
        .unwrap();
    assert_eq!(
        (p.name.as_str(), p.role, p.method),
        ("ci", Role::Viewer, AuthMethod::ApiKey)
    );
    // As a bearer token too.
    assert!(auth
        .authenticate(Some(Credential::Bearer(key.clone())), None)
        .await
        .is_ok());
    assert_eq!(
        failed(auth.authenticate(None, None).await),
        Some(AuthError::Missing)
    );
    let (_, other) = new_key();
    assert_eq!(
        failed(
            auth.authenticate(Some(Credential::ApiKey(other)), None)
                .await
        ),
        Some(AuthError::Invalid)
    );
    let listed = auth.keys().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].hash.is_empty(), "listing never shows hashes");
    assert!(auth.keys().revoke(&record.id, "test").await.unwrap());
    auth.forget_key(&record.id);
    assert_eq!(
        failed(auth.authenticate(Some(Credential::ApiKey(key)), None).await),
        Some(AuthError::Invalid)
    );
    assert!(!auth.keys().revoke("000000000000", "test").await.unwrap());
    let audit = store.audit(10).await.unwrap();
    assert_eq!(audit[0].action, "key.revoke");
    assert_eq!(audit[1].action, "key.create");
    // Off: everybody is an anonymous admin.
    let open = Authenticator::new(false, None, store);
    assert_eq!(
        open.authenticate(None, None).await.unwrap(),
        Principal::anonymous()
    );
}

#[test]
fn failed_keys_are_remembered_for_a_while() {
    let mut f = FailedKeys::new(Duration::from_secs(30), 2);
    let t0 = Instant::now();
    f.insert("fms_a", t0);
    assert!(f.contains("fms_a", t0 + Duration::from_secs(29)));
    assert!(!f.contains("fms_a", t0 + Duration::from_secs(30)));
    assert!(!f.contains("fms_b", t0));
    // Full: the expired make room; if none has expired, a new one is not kept.
    f.insert("fms_b", t0 + Duration::from_secs(10));
    f.insert("fms_c", t0 + Duration::from_secs(20));
    assert!(!f.contains("fms_c", t0 + Duration::from_secs(20)));
    f.insert("fms_c", t0 + Duration::from_secs(31));
    assert!(f.contains("fms_c", t0 + Duration::from_secs(31)));
    assert_eq!(f.len(), 2);
}

fn addr(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[tokio::test]
async fn bad_keys_are_hashed_once_limited_per_address_and_cannot_lock_out_a_verified_key() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let auth = Authenticator::with_limits(
        true,
        Some(SECRET.to_vec()),
        store,
        LoadLimits {
            failures: FailureLimits {
                per_address: 3,
                per_key: 100,
            },
            verify_threads: 1,
            verify_queue: 4,
        },
    );
    let (record, key) = auth
        .keys()
        .create("ops", Role::Operator, "test")
        .await
        .unwrap();
    let api = |k: &str| Some(Credential::ApiKey(k.to_owned()));
    let attacker = addr("203.0.113.5");
    assert!(auth.authenticate(api(&key), attacker).await.is_ok());
    assert_eq!(auth.keys_hashed(), 1);
    let bad = format!("fms_{}_{}", record.id, "ab".repeat(32));
    // A wrong secret for a real id: hashed, 401 with the address's budget.
    match auth.authenticate(api(&bad), attacker).await {
        Err(Refusal::Failed(AuthError::Invalid, Some(d))) => {
            assert_eq!((d.limit, d.remaining), (3, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(auth.keys_hashed(), 2);
    // The same again: refused without hashing (still a failure of the address).
    assert!(matches!(
        auth.authenticate(api(&bad), attacker).await,
        Err(Refusal::Failed(AuthError::Invalid, Some(d))) if d.remaining == 1
    ));
    assert_eq!(auth.keys_hashed(), 2);
    // No credential: a failure too; then the address is over its budget: 429, nothing
    // looked at, whatever it sends...
    assert!(matches!(
        auth.authenticate(None, attacker).await,
        Err(Refusal::Failed(AuthError::Missing, Some(d))) if d.remaining == 0
    ));
    let other_bad = format!("fms_{}_{}", record.id, "cd".repeat(32));
    for cred in [
        None,
        api(&other_bad),
        Some(Credential::Bearer("x.y.z".into())),
    ] {
        match auth.authenticate(cred, attacker).await {
            Err(Refusal::Throttled(Throttled::Address(d))) => {
                assert!(!d.allowed && d.reset_s <= 60 && d.remaining == 0);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(auth.keys_hashed(), 2);
    // ...but the key verified before still works from there, not hashed again.
    assert!(auth.authenticate(api(&key), attacker).await.is_ok());
    // A valid token still works from there too (checking one costs nothing).
    let token = issue_jwt("alice", Role::Viewer, Duration::from_secs(60), SECRET).unwrap();
    assert!(auth
        .authenticate(Some(Credential::Bearer(token)), attacker)
        .await
        .is_ok());
    assert_eq!(auth.keys_hashed(), 2);
    // Other addresses are not affected.
    assert!(matches!(
        auth.authenticate(api(&other_bad), addr("198.51.100.3")).await,
        Err(Refusal::Failed(AuthError::Invalid, Some(d))) if d.remaining == 2
    ));
    assert_eq!(auth.keys_hashed(), 3);
}

#[tokio::test]
async fn the_same_key_many_times_at_once_is_hashed_once_and_slots_are_bounded() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let limits = LoadLimits {
        failures: FailureLimits {
            per_address: 0,
            per_key: 0,
        },
        verify_threads: 1,
        verify_queue: 0,
    };
    let auth = Authenticator::with_limits(true, None, store, limits);
    let (record, key) = auth
        .keys()
        .create("ops", Role::Operator, "test")
        .await
        .unwrap();
    let api = |k: &str| Some(Credential::ApiKey(k.to_owned()));
    let client = addr("192.0.2.1");
    let (a, b, c) = tokio::join!(
        auth.authenticate(api(&key), client),
        auth.authenticate(api(&key), client),
        auth.authenticate(api(&key), client),
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(auth.keys_hashed(), 1, "one hash for three requests");
    // Two different bad keys at once with one slot: the second is busy (503).
    let bad = |s: &str| format!("fms_{}_{}", record.id, s.repeat(32));
    let (x, y) = tokio::join!(
        auth.authenticate(api(&bad("01")), client),
        auth.authenticate(api(&bad("02")), client),
    );
    assert_eq!(failed(x), Some(AuthError::Invalid));
    assert_eq!(y, Err(Refusal::Busy));
    assert!(lock(&auth.checking).is_empty(), "no line is left behind");
    // Revoking a key forgets it, and only it.
    let (second, key2) = auth
        .keys()
        .create("ci", Role::Viewer, "test")
        .await
        .unwrap();
    assert!(auth.authenticate(api(&key2), client).await.is_ok());
    auth.keys().revoke(&second.id, "test").await.unwrap();
    auth.forget_key(&second.id);
    assert_eq!(
        failed(auth.authenticate(api(&key2), client).await),
        Some(AuthError::Invalid)
    );
    let hashed = auth.keys_hashed();
    assert!(auth.authenticate(api(&key), client).await.is_ok());
    assert_eq!(auth.keys_hashed(), hashed, "the other key stays verified");
}
