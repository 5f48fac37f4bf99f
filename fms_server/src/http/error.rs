//! The one JSON error envelope, `{"error":{"code":"...","message":"..."}}`, with stable codes.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::coordinator::CoordError;
use crate::fleet::tasks::TaskError;

/// Stable error codes clients can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    RobotNotFound,
    TaskNotFound,
    RobotOffline,
    RobotBusy,
    LowBattery,
    ValidationError,
    InvalidState,
    NotFound,
    Internal,
    Unavailable,
    /// No or invalid credentials (401).
    Unauthorized,
    /// Authenticated, but the role does not allow this (403).
    Forbidden,
    /// Too many requests from this client in the current window (429).
    RateLimited,
    /// The request body is over the size limit (413).
    PayloadTooLarge,
    /// The route exists, but not for this method (405; the `Allow` header lists them).
    MethodNotAllowed,
    /// The `Idempotency-Key` was used before with another request body (422).
    IdempotencyKeyReused,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::RobotNotFound | ErrorCode::TaskNotFound | ErrorCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::RobotOffline
            | ErrorCode::RobotBusy
            | ErrorCode::LowBattery
            | ErrorCode::InvalidState => StatusCode::CONFLICT,
            ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The code of an error the framework answered by itself with `status`.
    fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            s if s.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::ValidationError,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: ErrorCode,
    message: &'a str,
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// The envelope as a JSON body (the status and other headers are the caller's).
fn envelope_body(code: ErrorCode, message: &str) -> Response {
    axum::Json(Envelope {
        error: Body { code, message },
    })
    .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Internal {
            tracing::error!("internal error: {}", self.message);
        }
        let mut res = (self.code.status(), envelope_body(self.code, &self.message)).into_response();
        if self.code == ErrorCode::Unavailable {
            // The store, a leader or the server itself may be back in a moment.
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        res
    }
}

/// Largest framework error body read to become the envelope's message.
const MAX_FRAMEWORK_MESSAGE: usize = 1024;

/// Puts the errors the framework answers by itself into the envelope: no route (404), a
/// method the route does not take (405), a path parameter, query or WebSocket upgrade it
/// cannot extract (400 and others). They come with an empty or plain-text body; their
/// status and headers (such as `Allow`) are kept, their text becomes the message. JSON
/// answers and successes are left as they are.
pub async fn envelope_framework_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let text = match is_text {
        true => axum::body::to_bytes(body, MAX_FRAMEWORK_MESSAGE)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        false => None,
    };
    let message = text.unwrap_or_else(|| framework_message(status, &parts.headers));
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let code = ErrorCode::for_status(status);
    (parts, envelope_body(code, &message)).into_response()
}

/// The message of a framework error that came without text.
fn framework_message(status: StatusCode, headers: &HeaderMap) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => match headers.get(header::ALLOW) {
            Some(allow) => format!(
                "method not allowed on this route; allowed: {}",
                String::from_utf8_lossy(allow.as_bytes())
            ),
            // axum adds `Allow` after the layers: the client sees it.
            None => {
                "method not allowed on this route; the Allow header lists those it takes".to_owned()
            }
        },
        s => s
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    }
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        let code = match &e {
            TaskError::RobotNotFound(_) => ErrorCode::RobotNotFound,
            TaskError::TaskNotFound(_) => ErrorCode::TaskNotFound,
            TaskError::RobotOffline(_) => ErrorCode::RobotOffline,
            TaskError::RobotBusy(_) => ErrorCode::RobotBusy,
            TaskError::LowBattery { .. } => ErrorCode::LowBattery,
            TaskError::LegacyUnsupported { .. } => ErrorCode::ValidationError,
            TaskError::InvalidState { .. } | TaskError::FleetEstopEngaged => {
                ErrorCode::InvalidState
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<CoordError> for ApiError {
    fn from(e: CoordError) -> Self {
        match e {
            CoordError::Task(t) => t.into(),
            CoordError::Store(s) => s.into(),
            CoordError::Stopped => Self::new(ErrorCode::Unavailable, "the server is shutting down"),
            e @ (CoordError::NotLeader | CoordError::NoLeader(_)) => {
                Self::new(ErrorCode::Unavailable, e.to_string())
            }
            e @ CoordError::Replica(_) => Self::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// A store that cannot take the request now (a full disk, an unreachable database) is
    /// 503 with `Retry-After`: nothing was recorded, the client may try again.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Backend(_) => Self::new(
                ErrorCode::Unavailable,
                format!("the store cannot take this request now; nothing was recorded: {e}"),
            ),
            e => Self::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(ErrorCode::PayloadTooLarge, "the request body is too large");
        }
        Self::validation(r.body_text())
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        let code = match e {
            crate::auth::AuthError::Forbidden { .. } => ErrorCode::Forbidden,
            _ => ErrorCode::Unauthorized,
        };
        Self::new(code, e.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::validation(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::validation(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(res: Response) -> (StatusCode, HeaderMap, serde_json::Value) {
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (parts.status, parts.headers, json)
    }

    fn content_type(h: &HeaderMap) -> &str {
        h.get(header::CONTENT_TYPE).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn framework_errors_become_the_envelope_with_their_status_and_headers() {
        let empty_405 = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
        );
        let (status, headers, body) =
            parts(envelope_framework_errors(empty_405.into_response()).await).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET,HEAD");
        assert_eq!(content_type(&headers), "application/json");
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET,HEAD"));

        let text_400 = (StatusCode::BAD_REQUEST, "Invalid URL: bad bytes");
        let (status, headers, body) =
            parts(envelope_framework_errors(text_400.into_response()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type(&headers), "application/json");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["message"], "Invalid URL: bad bytes");

        let html_503 = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::response::Html("<p>down</p>"),
        );
        let (_, _, body) = parts(envelope_framework_errors(html_503.into_response()).await).await;
        assert_eq!(body["error"]["code"], "UNAVAILABLE");
        assert_eq!(body["error"]["message"], "service unavailable");

        let (status, _, body) =
            parts(envelope_framework_errors(StatusCode::NOT_FOUND.into_response()).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }

    #[tokio::test]
    async fn json_errors_and_successes_are_left_alone() {
        let ours = ApiError::new(ErrorCode::RobotBusy, "robot r1 is busy").into_response();
        let (status, _, body) = parts(envelope_framework_errors(ours).await).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "ROBOT_BUSY");
        assert_eq!(body["error"]["message"], "robot r1 is busy");

        let ok = (StatusCode::OK, "metrics text").into_response();
        let res = envelope_framework_errors(ok).await;
        assert!(content_type(res.headers()).starts_with("text/plain"));
        let bytes = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&bytes[..], b"metrics text");
    }

    #[test]
    fn new_codes_have_their_status() {
        assert_eq!(
            ErrorCode::MethodNotAllowed.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            ErrorCode::IdempotencyKeyReused.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            serde_json::to_value(ErrorCode::IdempotencyKeyReused).unwrap(),
            "IDEMPOTENCY_KEY_REUSED"
        );
    }
}
