//! The one error type of the HTTP API.
//!
//! Every error answers with a JSON body `{"code": ..., "message": ...}`: `code` is stable
//! for programs, `message` is for people. Internal failures answer a bare 500 and are logged
//! here; no body ever names a member, a provider or a token.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::formats::native::FieldError;

/// An API error.
#[derive(Debug)]
pub enum AppError {
    /// The request was wrong; `code` names the problem.
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// The submission had invalid items; all of them are listed.
    Invalid(Vec<FieldError>),
    /// The store cannot take writes now (disk full, read-only); nothing was stored.
    Unavailable { status: StatusCode, message: String },
    /// The member sent more requests than its budget allows.
    RateLimited { retry_after_secs: u64 },
    /// A bug or an unexpected failure; details go to the log only.
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Client {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// The same answer for "does not exist" and "you may not see it", so that a member
    /// cannot probe for reports they may not see.
    pub fn not_found(what: &str) -> AppError {
        AppError::Client {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no {what} with that id"),
        }
    }

    pub fn unauthorized() -> AppError {
        AppError::Client {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "a valid bearer token is required (Authorization: Bearer <token>)".into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::Client {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }
}

impl From<crate::council::StoreError> for AppError {
    fn from(e: crate::council::StoreError) -> Self {
        if e.is_disk_full() {
            AppError::Unavailable {
                status: StatusCode::INSUFFICIENT_STORAGE,
                message: "the store is out of disk space; nothing was stored".into(),
            }
        } else if e.is_read_only() {
            AppError::Unavailable {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the data directory is read-only; nothing was stored, retry once it is writable again".into(),
            }
        } else if e.is_storage_unavailable() {
            AppError::Unavailable {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the store cannot take writes now; nothing was stored, retry later".into(),
            }
        } else {
            AppError::Internal(e.to_string())
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::RateLimited { retry_after_secs } = &self {
            let body = Body {
                code: "rate_limited",
                message: "too many requests for this token; slow down",
                errors: None,
            };
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    axum::http::header::RETRY_AFTER,
                    retry_after_secs.to_string(),
                )],
                Json(body),
            )
                .into_response();
        }
        let (status, code, message, errors) = match &self {
            AppError::Client {
                status,
                code,
                message,
            } => (*status, *code, message.clone(), None),
            AppError::Invalid(errors) => (
                StatusCode::BAD_REQUEST,
                "invalid_submission",
                format!(
                    "the submission has {} invalid item(s); nothing was stored",
                    errors.len()
                ),
                Some(errors.as_slice()),
            ),
            AppError::Unavailable { status, message } => {
                tracing::warn!(status = %status, "Refused a write: store unavailable.");
                (*status, "store_unavailable", message.clone(), None)
            }
            AppError::RateLimited { .. } => unreachable!("answered above"),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "Internal error while serving a request.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_string(),
                    None,
                )
            }
        };
        let body = Body {
            code,
            message: &message,
            errors,
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, AppError>;
