//! The one JSON error envelope, `{"error":{"code":"...","message":"..."}}`, with stable codes.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Internal {
            tracing::error!("internal error: {}", self.message);
        }
        let body = axum::Json(Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
            },
        });
        (self.code.status(), body).into_response()
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
            CoordError::Store(s) => Self::new(ErrorCode::Internal, s.to_string()),
            CoordError::Stopped => Self::new(ErrorCode::Unavailable, "the server is shutting down"),
            e @ (CoordError::NotLeader | CoordError::NoLeader(_)) => {
                Self::new(ErrorCode::Unavailable, e.to_string())
            }
            e @ CoordError::Replica(_) => Self::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
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
