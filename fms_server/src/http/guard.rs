//! The request guard on every API route: authenticates the caller (failed authentications
//! limited per address: 401 or 429; key verifications bounded: 503), checks the route's role,
//! spends the client's rate-limit budget (`X-RateLimit-*` headers, 429), and hands the
//! [`Principal`] to the handler (whose name goes into the audit).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, ErrorCode};
use crate::auth::{AuthError, AuthMethod, Credential, Principal, Refusal, Role};
use crate::ratelimit::{Class, Decision, Throttled};

/// What a group of routes requires.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub role: Role,
    pub class: Class,
}

/// The credential a request carries: `X-API-Key`, `Authorization: Bearer`, or (for
/// WebSockets, which browsers cannot give headers) the `access_token` query parameter.
pub fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<Credential> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::ApiKey(k.trim().to_owned()));
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = auth.trim().split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Credential::Bearer(token.trim().to_owned()));
        }
        return Some(Credential::Bearer(String::new()));
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .map(|t| Credential::Bearer(t.to_owned()))
}

fn rate_headers(d: &Decision, headers: &mut HeaderMap) {
    for (name, v) in [
        ("x-ratelimit-limit", u64::from(d.limit)),
        ("x-ratelimit-remaining", u64::from(d.remaining)),
        ("x-ratelimit-reset", d.reset_s),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(v));
    }
}

/// The answer to a request that was not authenticated: 401 with the address's failure
/// budget, 429 with `Retry-After` once over it, 503 with `Retry-After` when every key
/// verification slot is taken.
fn refused(st: &AppState, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Failed(e, budget) => {
            st.http_metrics.auth_failure();
            let mut r = ApiError::from(e).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, ApiKey"),
            );
            if let Some(d) = budget {
                rate_headers(&d, r.headers_mut());
            }
            r
        }
        Refusal::Throttled(t) => {
            st.http_metrics.rate_limited();
            let d = t.decision();
            let whose = match t {
                Throttled::Address(_) => "from this address",
                Throttled::Key(_) => "with this key id from this address",
            };
            let mut r = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many failed authentications {whose} (over {} a minute); retry in {} s",
                    d.limit, d.reset_s
                ),
            )
            .into_response();
            rate_headers(&d, r.headers_mut());
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_s));
            r
        }
        Refusal::Busy => {
            let mut r = ApiError::new(
                ErrorCode::Unavailable,
                "too many API keys are being checked at once; retry in 1 s",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            r
        }
    }
}

pub async fn guard(st: State<AppState>, policy: Policy, mut req: Request, next: Next) -> Response {
    let State(st) = st;
    let cred = credential(req.headers(), req.uri().query());
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let principal = match st.auth.authenticate(cred, address).await {
        Ok(p) => p,
        Err(refusal) => return refused(&st, refusal),
    };
    if principal.role < policy.role {
        st.http_metrics.auth_failure();
        return ApiError::from(AuthError::Forbidden {
            needed: policy.role,
            have: principal.role,
        })
        .into_response();
    }
    // Authenticated callers are limited by name; anonymous ones by address.
    let client = match principal.method {
        AuthMethod::Open => address.map_or_else(|| "unknown".into(), |ip| ip.to_string()),
        _ => format!("{}:{}", principal.role, principal.name),
    };
    let decision = st.limiter.check(policy.class, &client, Instant::now());
    if let Some(d) = decision.filter(|d| !d.allowed) {
        st.http_metrics.rate_limited();
        let mut r = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "over {} requests a minute for this kind of request; retry in {} s",
                d.limit, d.reset_s
            ),
        )
        .into_response();
        rate_headers(&d, r.headers_mut());
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_s));
        return r;
    }
    req.extensions_mut().insert::<Principal>(principal);
    let mut response = next.run(req).await;
    if let Some(d) = decision {
        rate_headers(&d, response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_headers_or_the_websocket_query() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h, None), None);
        assert_eq!(
            credential(&h, Some("batch_ms=100&access_token=abc")),
            Some(Credential::Bearer("abc".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(credential(&h, None), Some(Credential::Bearer("xyz".into())));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTpw"),
        );
        assert_eq!(
            credential(&h, None),
            Some(Credential::Bearer(String::new()))
        );
        h.insert("x-api-key", HeaderValue::from_static(" fms_k "));
        assert_eq!(
            credential(&h, None),
            Some(Credential::ApiKey("fms_k".into()))
        );
    }
}
