//! The one JSON error envelope, `{"error":{"code":"...","message":"..."}}`, with stable codes.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::coordinator::CoordError;
use crate::fleet::tasks::TaskError;

/// Stable error codes clients can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
        Self::validation(r.body_text())
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
